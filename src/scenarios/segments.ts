/**
 * How a process maps a shared segment under each sharing model: the same workload, each model's
 * own calls. Process 0 has created /dev/shm `name` (fd 'fd') and sized it before its recipe
 * runs; every recipe meets the others at barrier 0 and leaves the mapping in `region`.
 */
import type { Op } from '../proc/program.js';

export interface SegmentRecipe {
  map(p: number, name: string, size: number, region: string): Op[];
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

const RECIPES: Record<string, SegmentRecipe> = {
  none: mapSharedPt,
  'map-shared-pt': mapSharedPt,
  'pt-hint': ptHint,
};

export function segmentRecipe(model: string): SegmentRecipe {
  return RECIPES[model] ?? mapSharedPt;
}

