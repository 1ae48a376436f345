/**
 * `container-fd`: David Hildenbrand's container (seed 000, Nov 2023): "a container that multiple
 * processes can mmap (fd?) ... separate operations to work on such an fd (ioctl), and *not* using
 * mmap()/mprotect() for that ... only allow to mmap that fd with a superset of all permissions
 * used inside the container (and only MAP_SHARED) ... page table sharing would likely be an
 * implementation detail".
 *
 * - open('/dev/ptcontainer', O_CREAT) makes a new anonymous container (a model file, FL_KIND
 *   FILE_MODEL); without O_CREAT: ENOENT. '/dev/ptcontainer/<name>' names one (O_CREAT creates
 *   it, O_CREAT|O_EXCL on an existing name: no O_CREAT and no name: ENOENT; unlink
 *   removes the name). Names live in the machine's name table, hashed apart from /dev/shm's.
 * - A container is a host mm attached to no task (MMF_HOST) holding its mappings and page
 *   tables, at HOST_BASE + offset in the host's address space. ftruncate sizes it: a PMD
 *   multiple (the guests share at the PMD level), else EINVAL; resizing while anything is mapped
 *   inside or while a process maps it: EBUSY.
 * - ioctl CONTAINER_MAP {offset, size, fd, file_offset, prot} maps a shmem/memfd file inside;
 *   CONTAINER_UNMAP {offset, size} unmaps; CONTAINER_PROTECT {offset, size, prot} changes
 *   permissions inside. Every sharer sees the change at once (one set of entries), and the
 *   shootdown reaches every CPU running a process that maps the container. Unknown cmd: ENOTTY.
 * - A process maps the whole container with mmap(MAP_SHARED) at a PMD-aligned address; its VMA
 *   carries VM_SHARED_PT with V_PRIV = the host. Its prot must be a superset of every permission
 *   used inside (EACCES otherwise), and stays one: a later CONTAINER_MAP / CONTAINER_PROTECT
 *   beyond some mapper's prot is refused with EACCES. mprotect or a partial munmap of the
 *   process's container VMA: EINVAL (changes go through the ioctls).
 * - The fault (like map-shared-pt): the task's mmap_lock, then the host's (nested, for read);
 *   the host VMA decides (none or forbidding: SIGSEGV); the host's PMD entry is copied into the
 *   guest's and the PTE fault is handled in the host's context.
 * - The host keeps its PTE tables while the container lives, even under ranges CONTAINER_UNMAP
 *   emptied (guests may still point at them); they go with the host, whose last reference — an
 *   fd, a name, a process mapping — tears it down.
 *
 * Locks: container ioctls and ftruncate take the host's mmap_lock for write; attach takes it for
 * read inside the task's. The mappers are the container file's i_mmap (under i_mmap_rwsem): the
 * superset checks and the shootdown mask (every mapper's mm_cpumask) read it.
 */
import { calc_vm_prot_bits, change_access_range } from '../mm/mprotect.js';
import { host_mmap_write_lock, mmap_write_unlock, vma_start_write } from '../mm/mmap_lock.js';
import {
  FILE_SHMEM, FL_KIND,
  M_MMAP_LOCK,
} from '../shm/layout.js';
import { fdget } from '../mm/fdtable.js';
import { fileBase } from '../mm/filemap.js';
import {
  attach_whole_file, device_open, device_unlink, guest_detach, guest_fork, host_backing_file_id, host_map_range,
  host_of_file, host_release, is_model_file, mappers_allow, model_flush_mask, whole_file_guest_fault,
  whole_file_setsize,
} from './host_mm.js';
import { MmuGather, tlb_finish_mmu, zap_page_range } from '../mm/memory.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE, remove_vma, split_vmas_in } from '../mm/mmap.js';
import { EACCES, EBADF, EINVAL, ENOMEM, ENOTTY } from '../mm/errno.js';
import { MODEL_DEFAULT, type IoctlArgs, type ModelOps } from '../mm/model_ops.js';
import { type Kernel } from '../mm/percpu.js';
import { PAGE_SIZE, PGDIR_SIZE, PMD_LEVEL, PMD_SIZE, TASK_SIZE } from '../mm/pgtable.js';
import { i_size_read } from '../mm/shmem.js';
import {
  find_vma, vma_end, vma_next, vma_start, vma_unlink_mm,
} from '../mm/vma.js';

export const CONTAINER_DEV = '/dev/ptcontainer';
export const CONTAINER_MAP = 'CONTAINER_MAP';
export const CONTAINER_UNMAP = 'CONTAINER_UNMAP';
export const CONTAINER_PROTECT = 'CONTAINER_PROTECT';

/** Where container offset 0 sits in the host's address space (one PGD entry's worth up). */
export const HOST_BASE = PGDIR_SIZE;
/** The largest container: what fits in the host's address space above HOST_BASE. */
export const CONTAINER_MAX = Math.floor((TASK_SIZE - HOST_BASE) / PMD_SIZE) * PMD_SIZE;

const PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC;

export function createContainerFdModel(): ModelOps {

  /** [offset, offset + size) page-aligned, non-empty and inside the container? */
  function range_ok(k: Kernel, file: number, offset: number, size: number): boolean {
    return Number.isInteger(offset) && Number.isInteger(size) && offset >= 0 && size > 0 &&
      offset % PAGE_SIZE === 0 && size % PAGE_SIZE === 0 && offset + size <= i_size_read(k, file);
  }

  function ioctl(k: Kernel, file: number, cmd: string, args: IoctlArgs): number {
    switch (cmd) {
      case CONTAINER_MAP: return container_map(k, file, args);
      case CONTAINER_UNMAP: return container_unmap(k, file, args);
      case CONTAINER_PROTECT: return container_protect(k, file, args);
      default: return -ENOTTY;
    }
  }

  function container_map(k: Kernel, file: number, a: IoctlArgs): number {
    const { offset, size, fd, file_offset: fileOffset, prot } = a;
    if (fd === undefined) return -EBADF;
    const src = fdget(k, fd);
    if (src < 0) return -EBADF;
    // Only shmem / memfd files go inside: not another container (no nesting), nothing else.
    if (Atomics.load(k.i32, fileBase(k, src) + FL_KIND) !== FILE_SHMEM) return -EINVAL;
    if (prot === undefined || !Number.isInteger(prot) || (prot & ~PROT_ALL) !== 0) return -EINVAL;
    if (fileOffset === undefined || !Number.isInteger(fileOffset) || fileOffset < 0 || fileOffset % PAGE_SIZE !== 0) return -EINVAL;
    const host = host_of_file(k, file);
    if (host < 0) return -EINVAL;
    return host_map_range(k, file, host, HOST_BASE + offset, size, prot, src, fileOffset / PAGE_SIZE, () => range_ok(k, file, offset, size));
  }

  /**
   * CONTAINER_UNMAP: the host VMAs in the range go (split at its edges), their entries are
   * zapped and every sharer's CPU flushed. Unlike munmap, the emptied PTE tables stay: guests'
   * PMD entries may still point at them (they go with the host).
   */
  function container_unmap(k: Kernel, file: number, a: IoctlArgs): number {
    const { offset, size } = a;
    const host = host_of_file(k, file);
    if (host < 0) return -EINVAL;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_write_lock(k, hlock);
    try {
      if (!range_ok(k, file, offset, size)) return -EINVAL;
      const start = HOST_BASE + offset;
      const end = start + size;
      const removed: number[] = [];
      const r = split_vmas_in(k, host, start, end, removed);
      if (r < 0) return r;
      const tlb = new MmuGather();
      for (const r of removed) {
        vma_start_write(k, r);
        vma_unlink_mm(k, host, r);
      }
      for (const r of removed) zap_page_range(k, host, vma_start(k, r), vma_end(k, r), tlb);
      tlb_finish_mmu(k, host, tlb); // flush_mask(host): every mapper's CPUs
      for (const r of removed) remove_vma(k, r);
      return 0;
    } finally {
      mmap_write_unlock(k, hlock);
    }
  }

  /** CONTAINER_PROTECT: the host's VMAs and entries change, so every mapper's view does. */
  function container_protect(k: Kernel, file: number, a: IoctlArgs): number {
    const { offset, size, prot } = a;
    if (prot === undefined || !Number.isInteger(prot) || (prot & ~PROT_ALL) !== 0) return -EINVAL;
    const host = host_of_file(k, file);
    if (host < 0) return -EINVAL;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_write_lock(k, hlock);
    try {
      if (!range_ok(k, file, offset, size)) return -EINVAL;
      const start = HOST_BASE + offset;
      const end = start + size;
      // As mprotect(2): the whole range must be mapped inside (ENOMEM for a hole).
      let at = start;
      for (let v = find_vma(k, host, start); at < end; v = vma_next(k, v)) {
        if (v < 0 || vma_start(k, v) > at) return -ENOMEM;
        at = vma_end(k, v);
      }
      const want = calc_vm_prot_bits(prot);
      if (!mappers_allow(k, file, want)) return -EACCES;
      return change_access_range(k, host, start, end, want); // flush_mask(host): every mapper's CPUs
    } finally {
      mmap_write_unlock(k, hlock);
    }
  }

  return {
    name: 'container-fd',
    // mmap(MAP_SHARED) of a container: the process becomes a guest of its host (else a plain shared mapping, as Linux).
    mmap: (k, a) => (is_model_file(k, a.file) ? attach_whole_file(k, a) : MODEL_DEFAULT),
    // The host VMA at the same container offset decides (the guest's own prot is a superset of
    // it, checked at attach and at every ioctl); PMD entries are copied.
    fault: (k, vmf) => whole_file_guest_fault(k, vmf, HOST_BASE, false),
    mprotect: () => -EINVAL, // changes inside go through CONTAINER_PROTECT
    may_munmap: (k, vma, start, end) => (start === vma_start(k, vma) && end === vma_end(k, vma) ? 0 : -EINVAL),
    detach: (k, vma) => guest_detach(k, vma, PMD_LEVEL),
    fork_vma: (k, src) => guest_fork(k, src),
    vma_open: (k, vma) => void guest_fork(k, vma), // a host user per VMA, as fork's copy
    switch_mm: () => {}, // flush_mask reads the mappers' own cpumasks
    flush_mask: model_flush_mask,
    open: (k, path, create, excl) => device_open(k, CONTAINER_DEV, 'ptcontainer', path, create, excl),
    unlink: (k, path) => device_unlink(k, CONTAINER_DEV, 'ptcontainer', path),
    ioctl,
    setsize: (k, file, size) => whole_file_setsize(k, file, size, CONTAINER_MAX),
    release: host_release,
    backing_file_id: host_backing_file_id,
  };
}

