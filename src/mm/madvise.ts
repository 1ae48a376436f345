/**
 * mm/madvise.c: madvise(2). do_madvise's checks (an unknown advice or an unaligned start is
 * EINVAL; len rounds up to pages; len 0 does nothing), then madvise_walk_vmas: each VMA the range
 * meets gets the advice for its part, and a hole in the range is ENOMEM, returned after the
 * mapped parts were done. A sharing model's advice (MADV_SHARE_PT) goes to the model; its own
 * VM_SHARED_PT VMAs take none of Linux's advices (EINVAL: the models' rules do not say yet).
 */
import { M_MMAP_LOCK, V_FLAGS } from '../shm/layout.js';
import { EFAULT, EINVAL, EACCES, ENOMEM } from './errno.js';
import { MmuGather, tlb_finish_mmu, zap_page_range } from './memory.js';
import { page_align, split_vma_range } from './mmap.js';
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock, vma_start_write } from './mmap_lock.js';
import { ACCESS_OK, do_user_addr_fault } from './mmu.js';
import type { Kernel } from './percpu.js';
import { PAGE_SIZE, TASK_SIZE } from './pgtable.js';
import { is_model_file, shmem_punch_hole } from './shmem.js';
import {
  find_vma, VM_READ, VM_EXEC, vma_end, vma_file, vma_flags, vma_next, vma_pgoff, vma_start, vmaBase, VM_DONTCOPY, VM_LOCKED, VM_MAYWRITE, VM_RAND_READ, VM_SEQ_READ, VM_SHARED,
  VM_SHARED_PT, VM_WIPEONFORK, VM_WRITE,
} from './vma.js';
import { AssertSite, mmap_assert_write_locked, vma_write_checks } from './guarded.js';

/** The advices Linux knows (include/uapi/asm-generic/mman-common.h). */
export const MADV: Record<string, number> = {
  MADV_NORMAL: 0, MADV_RANDOM: 1, MADV_SEQUENTIAL: 2, MADV_WILLNEED: 3, MADV_DONTNEED: 4, MADV_FREE: 8, MADV_REMOVE: 9, MADV_DONTFORK: 10, MADV_DOFORK: 11,
  MADV_WIPEONFORK: 18, MADV_KEEPONFORK: 19, MADV_POPULATE_READ: 22, MADV_POPULATE_WRITE: 23,
};

/**
 * madvise(2) on the current task's mm. Returns 0 or -errno. Advices that change VMA flags split
 * the VMAs at the range's edges (madvise_update_vma); DONTNEED zaps the range (private anonymous
 * memory reads 0 again, shared memory keeps its page-cache data, a private file page goes back
 * to the file's); REMOVE punches the shmem hole (every mapping reads 0); FREE keeps the data
 * (lazily freed pages stay until reclaim, and ptlab has none); POPULATE_* fault the range in.
 */
export function do_madvise(k: Kernel, mm: number, start: number, len: number, advice: string): number {
  const known = advice in MADV;
  if (!known && !(k.model.madvise && k.model.advices?.includes(advice))) return -EINVAL; // madvise_behavior_valid
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  const alen = page_align(len);
  if (len !== 0 && alen === 0) return -EINVAL;
  const end = start + alen;
  if (end < start) return -EINVAL;
  if (end === start) return 0;
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  if (!known) {
    mmap_write_lock(k, lock);
    try {
      return end > TASK_SIZE ? -ENOMEM : k.model.madvise!(k, mm, start, end, advice);
    } finally {
      mmap_write_unlock(k, lock);
    }
  }
  if (advice === 'MADV_POPULATE_READ' || advice === 'MADV_POPULATE_WRITE') return madvise_populate(k, mm, start, end, advice === 'MADV_POPULATE_WRITE');
  if (advice === 'MADV_REMOVE') return madvise_remove(k, mm, start, end);
  // madvise_need_mmap_write: the advices that only zap or read ahead (DONTNEED, FREE, WILLNEED)
  // run under mmap_lock held for read, so they race with faults of the same mm, as in Linux;
  // the ones that change vm_flags (and may split VMAs) take it for write.
  const write = !(advice === 'MADV_DONTNEED' || advice === 'MADV_FREE' || advice === 'MADV_WILLNEED');
  if (write) mmap_write_lock(k, lock);
  else mmap_read_lock(k, lock);
  try {
    let unmapped = 0;
    let at = start;
    const tlb = new MmuGather();
    for (let v = find_vma(k, mm, start); at < end; v = vma_next(k, v)) {
      if (v < 0 || vma_start(k, v) >= end) {
        unmapped = -ENOMEM;
        break;
      }
      if (vma_start(k, v) > at) unmapped = -ENOMEM;
      const s = Math.max(at, vma_start(k, v));
      const e = Math.min(end, vma_end(k, v));
      const r = madvise_vma_behavior(k, mm, v, s, e, advice, tlb);
      if (r < 0) return r;
      at = e;
      v = find_vma(k, mm, e - 1); // the VMA may have been split: go on from the one that ends at e
    }
    tlb_finish_mmu(k, mm, tlb);
    return unmapped;
  } finally {
    if (write) mmap_write_unlock(k, lock);
    else mmap_read_unlock(k, lock);
  }
}

/** One VMA's part [s, e) of the range: 0 or -errno. */
function madvise_vma_behavior(k: Kernel, mm: number, v: number, s: number, e: number, advice: string, tlb: MmuGather): number {
  const flags = vma_flags(k, v);
  if ((flags & VM_SHARED_PT) !== 0) {
    // A sharing model's VMA: only MADV_DONTNEED, and only where the model says what it does.
    if (advice !== 'MADV_DONTNEED' || !k.model.madvise_dontneed || (flags & VM_LOCKED) !== 0) return -EINVAL;
    k.model.madvise_dontneed(k, v, s, e, tlb);
    return 0;
  }
  switch (advice) {
    case 'MADV_WILLNEED':
    case 'MADV_FREE':
      // WILLNEED: readahead / swap-in, nothing to do in ptlab. FREE: only private anonymous
      // memory (madvise_free_single_vma: -EINVAL otherwise); the pages keep their data until
      // reclaim takes them, and ptlab has no reclaim.
      if (advice === 'MADV_FREE' && (vma_file(k, v) >= 0 || (flags & VM_SHARED) !== 0)) return -EINVAL;
      return 0;
    case 'MADV_DONTNEED':
      // madvise_dontneed_free_valid_vma: not on VM_LOCKED.
      if ((flags & VM_LOCKED) !== 0) return -EINVAL;
      {
        // -ENOMEM: a COW-shared table (cow-pte) could not be copied first; nothing was zapped.
        const r = zap_page_range(k, mm, s, e, tlb);
        tlb_finish_mmu(k, mm, tlb);
        return r;
      }
    case 'MADV_NORMAL': return set_flags(k, mm, v, s, e, flags & ~(VM_SEQ_READ | VM_RAND_READ));
    case 'MADV_RANDOM': return set_flags(k, mm, v, s, e, (flags & ~VM_SEQ_READ) | VM_RAND_READ);
    case 'MADV_SEQUENTIAL': return set_flags(k, mm, v, s, e, (flags & ~VM_RAND_READ) | VM_SEQ_READ);
    case 'MADV_DONTFORK': return set_flags(k, mm, v, s, e, flags | VM_DONTCOPY);
    case 'MADV_DOFORK': return set_flags(k, mm, v, s, e, flags & ~VM_DONTCOPY);
    case 'MADV_WIPEONFORK':
    case 'MADV_KEEPONFORK':
      // Only private anonymous memory can be wiped on fork.
      if (vma_file(k, v) >= 0 || (flags & VM_SHARED) !== 0) return -EINVAL;
      return set_flags(k, mm, v, s, e, advice === 'MADV_WIPEONFORK' ? flags | VM_WIPEONFORK : flags & ~VM_WIPEONFORK);
    default: return -EINVAL;
  }
}

/** madvise_update_vma: [s, e) of `v` takes `newflags` (split off first when they change). */
function set_flags(k: Kernel, mm: number, v: number, s: number, e: number, newflags: number): number {
  mmap_assert_write_locked(k, mm, AssertSite.MadviseUpdateVma);
  if (newflags === vma_flags(k, v)) return 0;
  const n = split_vma_range(k, mm, v, s, e);
  if (n < 0) return n;
  vma_start_write(k, n);
  vma_write_checks(k, n, AssertSite.MadviseUpdateVma); // vm_flags_reset
  Atomics.store(k.i32, vmaBase(k, n) + V_FLAGS, newflags);
  return 0;
}

/**
 * madvise_remove: the range's file pages are punched out of the file (vfs_fallocate with
 * FALLOC_FL_PUNCH_HOLE), so every mapping of them reads 0. EINVAL on a locked or anonymous VMA,
 * EACCES unless the mapping is shared and may be written. Runs with mmap_lock dropped, as Linux.
 */
function madvise_remove(k: Kernel, mm: number, start: number, end: number): number {
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  let unmapped = 0;
  for (let at = start; at < end;) {
    mmap_read_lock(k, lock);
    const v = find_vma(k, mm, at);
    if (v < 0 || vma_start(k, v) >= end) {
      mmap_read_unlock(k, lock);
      return -ENOMEM;
    }
    if (vma_start(k, v) > at) unmapped = -ENOMEM;
    const s = Math.max(at, vma_start(k, v));
    const e = Math.min(end, vma_end(k, v));
    const flags = vma_flags(k, v);
    const file = vma_file(k, v);
    const pgoff = vma_pgoff(k, v);
    const vs = vma_start(k, v);
    mmap_read_unlock(k, lock);
    if ((flags & VM_LOCKED) !== 0 || (flags & VM_SHARED_PT) !== 0 || file < 0 || is_model_file(k, file)) return -EINVAL;
    if ((flags & VM_SHARED) === 0 || (flags & VM_MAYWRITE) === 0) return -EACCES;
    const off = pgoff * PAGE_SIZE + (s - vs);
    shmem_punch_hole(k, file, off, off + (e - s));
    at = e;
  }
  return unmapped;
}

/**
 * madvise_populate: faults every page of the range in, for read or for write (breaking COW),
 * as get_user_pages would, without mmap_lock held across (each fault takes it). ENOMEM for a
 * hole, EINVAL for a mapping that does not allow the access, EFAULT where a fault fails (past EOF).
 */
function madvise_populate(k: Kernel, mm: number, start: number, end: number, write: boolean): number {
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  for (let at = start; at < end;) {
    mmap_read_lock(k, lock);
    const v = find_vma(k, mm, at);
    const ok = v >= 0 && vma_start(k, v) <= at;
    const e = ok ? Math.min(end, vma_end(k, v)) : 0;
    const flags = ok ? vma_flags(k, v) : 0;
    mmap_read_unlock(k, lock);
    if (!ok) return -ENOMEM;
    // check_vma_flags: a mapping that does not allow the access is "incompatible": EINVAL.
    if ((flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0 || (write && (flags & VM_WRITE) === 0)) return -EINVAL;
    for (; at < e; at += PAGE_SIZE) if (do_user_addr_fault(k, at, write) !== ACCESS_OK) return -EFAULT;
  }
  return 0;
}
