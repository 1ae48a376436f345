/**
 * mm/mlock.c: mlock, mlock2(MLOCK_ONFAULT) and munlock. The start rounds down and the length up
 * to pages; the range must be mapped (apply_vma_lock_flags: a hole is ENOMEM, after the parts
 * before it took the flag); VM_LOCKED (and VM_LOCKONFAULT) are set or cleared per VMA part
 * (split off at the edges). mlock then populates the range (__mm_populate: write faults on
 * private writable memory, to break COW; no access, nothing), and a fault that fails there is
 * ENOMEM (__mlock_posix_error_return). As root, no RLIMIT_MEMLOCK applies.
 */
import { M_MMAP_LOCK, V_FLAGS } from '../shm/layout.js';
import { ENOMEM } from './errno.js';
import { split_vma_range } from './mmap.js';
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock, vma_start_write } from './mmap_lock.js';
import { ACCESS_OK, do_user_addr_fault } from './mmu.js';
import type { Kernel } from './percpu.js';
import { PAGE_SIZE } from './pgtable.js';
import { find_vma, vma_end, vma_flags, vma_next, vma_start, vmaBase, VM_ACCESS_FLAGS, VM_LOCKED, VM_LOCKONFAULT, VM_SHARED, VM_WRITE } from './vma.js';
import { AssertSite, mmap_assert_write_locked, vma_write_checks } from './guarded.js';

/** The page-rounded range of mlock's (addr, len): [start, end). */
function lock_range(addr: number, len: number): [number, number] {
  const start = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  return [start, start + Math.ceil((len + (addr - start)) / PAGE_SIZE) * PAGE_SIZE];
}

/** apply_vma_lock_flags: every VMA part of [start, end) takes `set` and loses `clear`; ENOMEM at a hole. */
function apply_vma_lock_flags(k: Kernel, mm: number, start: number, end: number, set: number, clear: number): number {
  mmap_assert_write_locked(k, mm, AssertSite.MlockFixup);
  let at = start;
  for (let v = find_vma(k, mm, start); at < end; v = vma_next(k, v)) {
    if (v < 0 || vma_start(k, v) > at) return -ENOMEM;
    const e = Math.min(end, vma_end(k, v));
    const f = vma_flags(k, v);
    const nf = (f & ~clear) | set;
    if (nf !== f) {
      const n = split_vma_range(k, mm, v, at, e);
      if (n < 0) return n;
      vma_start_write(k, n);
      vma_write_checks(k, n, AssertSite.MlockFixup); // mlock_fixup: vm_flags_reset_once
      Atomics.store(k.i32, vmaBase(k, n) + V_FLAGS, nf);
      v = n;
    }
    at = e;
  }
  return 0;
}

export function do_mlock(k: Kernel, mm: number, addr: number, len: number, onfault: boolean): number {
  const [start, end] = lock_range(addr, len);
  if (end === start) return 0;
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_write_lock(k, lock);
  let r: number;
  try {
    r = apply_vma_lock_flags(k, mm, start, end, VM_LOCKED | (onfault ? VM_LOCKONFAULT : 0), onfault ? 0 : VM_LOCKONFAULT);
  } finally {
    mmap_write_unlock(k, lock);
  }
  if (r < 0 || onfault) return r;
  return mm_populate(k, mm, start, end) < 0 ? -ENOMEM : 0;
}

export function do_munlock(k: Kernel, mm: number, addr: number, len: number): number {
  const [start, end] = lock_range(addr, len);
  if (end === start) return 0;
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_write_lock(k, lock);
  try {
    return apply_vma_lock_flags(k, mm, start, end, 0, VM_LOCKED | VM_LOCKONFAULT);
  } finally {
    mmap_write_unlock(k, lock);
  }
}

/**
 * __mm_populate: faults [start, end) in, VMA by VMA (without mmap_lock held across: each fault
 * takes it). A VMA with no access fails it; private writable memory is faulted for write.
 * Returns 0, or -1 when a fault failed (SIGBUS past EOF) or a VMA allows no access.
 */
export function mm_populate(k: Kernel, mm: number, start: number, end: number): number {
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  for (let at = start; at < end;) {
    mmap_read_lock(k, lock);
    let v = find_vma(k, mm, at);
    if (v >= 0 && vma_start(k, v) >= end) v = -1;
    const s = v >= 0 ? Math.max(at, vma_start(k, v)) : end;
    const e = v >= 0 ? Math.min(end, vma_end(k, v)) : end;
    const flags = v >= 0 ? vma_flags(k, v) : 0;
    mmap_read_unlock(k, lock);
    if (v < 0) return 0;
    // A mapping no access reaches cannot be faulted in (check_vma_flags: -EFAULT, ENOMEM to mlock).
    if ((flags & VM_ACCESS_FLAGS) === 0) return -1;
    const write = (flags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
    for (let a = s; a < e; a += PAGE_SIZE) if (do_user_addr_fault(k, a, write) !== ACCESS_OK) return -1;
    at = e;
  }
  return 0;
}
