/**
 * mm/msync.c: msync(2). Unknown flags, or MS_ASYNC with MS_SYNC, are EINVAL; so is an unaligned
 * start. The range must be mapped (ENOMEM, found after going through it); MS_INVALIDATE on a
 * VM_LOCKED mapping is EBUSY. shmem has nothing to write back, so nothing else happens.
 */
import { M_MMAP_LOCK } from '../shm/layout.js';
import { EBUSY, EINVAL, ENOMEM } from './errno.js';
import { page_align } from './mmap.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import type { Kernel } from './percpu.js';
import { PAGE_SIZE } from './pgtable.js';
import { find_vma, vma_end, vma_flags, vma_start, VM_LOCKED } from './vma.js';

export const MS_ASYNC = 1;
export const MS_INVALIDATE = 2;
export const MS_SYNC = 4;

export function do_msync(k: Kernel, mm: number, start: number, len: number, flags: number): number {
  if ((flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) !== 0) return -EINVAL;
  if ((flags & MS_ASYNC) !== 0 && (flags & MS_SYNC) !== 0) return -EINVAL;
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  const end = start + page_align(len);
  if (end === start) return 0;
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_read_lock(k, lock);
  try {
    let unmapped = 0;
    for (let at = start; ;) {
      const v = find_vma(k, mm, at);
      if (v < 0) return -ENOMEM;
      if (at < vma_start(k, v)) {
        if (flags === MS_ASYNC) return -ENOMEM;
        at = vma_start(k, v);
        if (at >= end) return -ENOMEM;
        unmapped = -ENOMEM;
      }
      if ((flags & MS_INVALIDATE) !== 0 && (vma_flags(k, v) & VM_LOCKED) !== 0) return -EBUSY;
      at = vma_end(k, v);
      if (at >= end) return unmapped;
    }
  } finally {
    mmap_read_unlock(k, lock);
  }
}
