/**
 * How a process maps a shared segment under each sharing model: the same workload, each model's
 * own calls. Process 0 has created /dev/shm `name` (fd 'fd') and sized it before its recipe
 * runs; every recipe meets the others at barrier 0 and leaves the mapping in `region`.
 */
import type { Op } from '../proc/program.js';

export interface SegmentRecipe {
  map(p: number, name: string, size: number, region: string): Op[];
  /** Unmaps what `map` mapped as `region` (default: munmap of the segment's `size` bytes). */
  unmap?(region: string, size: number): Op[];
}

const RW = ['PROT_READ', 'PROT_WRITE'] as const;

/** mmap(MAP_SHARED | MAP_SHARED_PT): map-shared-pt's opt-in, an unknown flag to the others. */
const mapSharedPt: SegmentRecipe = {
  map: (p, name, size, region) => [
    ...(p === 0 ? [{ op: 'barrier', id: 0 } as Op] : [{ op: 'barrier', id: 0 } as Op, { op: 'shm_open', name, as: 'fd' } as Op]),
    { op: 'mmap', len: size, prot: [...RW], flags: ['MAP_SHARED', 'MAP_SHARED_PT'], fd: 'fd', as: region },
    { op: 'close', fd: 'fd' },
  ],
};

/** A plain MAP_SHARED mapping with pt-hint's advice that sharing its page tables is welcome. */
const ptHint: SegmentRecipe = {
  map: (p, name, size, region) => [
    ...mapSharedPt.map(p, name, size, region),
    { op: 'madvise', region, len: size, advice: 'MADV_SHARE_PT' },
  ],
};

/**
 * container-fd: process 0 creates a named container, sizes it (the segment rounded up to 2 MiB),
 * maps the segment inside with CONTAINER_MAP and publishes it under the segment's name; the
 * others open it by that name; everyone maps the whole container. Process 0 removes the name
 * once everyone has opened it (barrier 5, the recipe's own).
 */
const containerFd: SegmentRecipe = {
  map: (p, name, size, region) => {
    const path = '/dev/ptcontainer/' + name.replace(/^\/+/, '');
    const csize = Math.ceil(size / (2 * 1024 * 1024)) * 2 * 1024 * 1024;
    const pages = Math.ceil(size / 4096) * 4096;
    const ops: Op[] = p === 0
      ? [
        { op: 'open', path, create: true, excl: true, as: 'ct' },
        { op: 'ftruncate', fd: 'ct', size: csize },
        { op: 'ioctl', fd: 'ct', cmd: 'CONTAINER_MAP', args: { offset: 0, size: pages, fd: 'fd', file_offset: 0, prot: 3 } },
        { op: 'close', fd: 'fd' },
        { op: 'barrier', id: 0 },
      ]
      : [{ op: 'barrier', id: 0 }, { op: 'open', path, as: 'ct' }];
    ops.push({ op: 'mmap', len: csize, prot: [...RW], flags: ['MAP_SHARED'], fd: 'ct', as: region }, { op: 'close', fd: 'ct' }, { op: 'barrier', id: 5 });
    if (p === 0) ops.push({ op: 'unlink', path });
    return ops;
  },
};

/**
 * mshare (upstream v3): process 0 creates /sys/fs/mshare/<name>, sizes the region (the segment
 * rounded up to 1 GiB, mshare's PUD-level granule in ptlab) and maps the segment at its start
 * with MSHAREFS_CREATE_MAPPING; the others open it after barrier 0; everyone maps the whole
 * region. The segment is the region's first `size` bytes. Process 0 removes the name once
 * everyone has opened it (barrier 6, the recipe's own); unmapping takes the whole region (a
 * partial munmap of it is EINVAL).
 */
const GiB = 1024 * 1024 * 1024;
const mshareRegion = (size: number) => Math.ceil(size / GiB) * GiB;
const mshare: SegmentRecipe = {
  map: (p, name, size, region) => {
    const path = '/sys/fs/mshare/' + name.replace(/^\/+/, '');
    const rsize = mshareRegion(size);
    const pages = Math.ceil(size / 4096) * 4096;
    const ops: Op[] = p === 0
      ? [
        { op: 'open', path, create: true, excl: true, as: 'ms' },
        { op: 'ftruncate', fd: 'ms', size: rsize },
        { op: 'ioctl', fd: 'ms', cmd: 'MSHAREFS_CREATE_MAPPING', args: { region_offset: 0, size: pages, offset: 0, prot: 3, flags: 1, fd: 'fd' } },
        { op: 'close', fd: 'fd' },
        { op: 'barrier', id: 0 },
      ]
      : [{ op: 'barrier', id: 0 }, { op: 'open', path, as: 'ms' }];
    ops.push({ op: 'mmap', len: rsize, prot: [...RW], flags: ['MAP_SHARED'], fd: 'ms', as: region }, { op: 'close', fd: 'ms' }, { op: 'barrier', id: 6 });
    if (p === 0) ops.push({ op: 'unlink', path });
    return ops;
  },
  unmap: (region, size) => [{ op: 'munmap', region, len: mshareRegion(size) }],
};

/**
 * address-space (seed 002): process 0 creates a named address space, sizes it (the segment
 * rounded up to 2 MiB), maps the segment at its base with AS_MMAP, and meets the others at
 * barrier 0; they open the space by name; everyone maps the whole space. Process 0 removes the
 * name once everyone has opened it (barrier 6, the recipe's own); unmapping takes the whole space
 * (a partial munmap of it is EINVAL).
 */
const asSpace = (size: number) => Math.ceil(size / (2 * 1024 * 1024)) * 2 * 1024 * 1024;
const addressSpace: SegmentRecipe = {
  map: (p, name, size, region) => {
    const path = '/dev/address_space/' + name.replace(/^\/+/, '');
    const pages = Math.ceil(size / 4096) * 4096;
    const ops: Op[] = p === 0
      ? [
        { op: 'open', path, create: true, excl: true, as: 'as' },
        { op: 'ftruncate', fd: 'as', size: asSpace(size) },
        { op: 'ioctl', fd: 'as', cmd: 'AS_MMAP', args: { addr: 0, fd: 'fd', offset: 0, size: pages, prot: 3 } },
        { op: 'close', fd: 'fd' },
        { op: 'barrier', id: 0 },
      ]
      : [{ op: 'barrier', id: 0 }, { op: 'open', path, as: 'as' }];
    ops.push({ op: 'mmap', len: asSpace(size), prot: [...RW], flags: ['MAP_SHARED'], fd: 'as', as: region }, { op: 'close', fd: 'as' }, { op: 'barrier', id: 6 });
    if (p === 0) ops.push({ op: 'unlink', path });
    return ops;
  },
  unmap: (region, size) => [{ op: 'munmap', region, len: asSpace(size) }],
};

const RECIPES: Record<string, SegmentRecipe> = {
  none: mapSharedPt,
  'map-shared-pt': mapSharedPt,
  'pt-hint': ptHint,
  'container-fd': containerFd,
  mshare,
  'address-space': addressSpace,
};

export function segmentRecipe(model: string): SegmentRecipe {
  return RECIPES[model] ?? mapSharedPt;
}

