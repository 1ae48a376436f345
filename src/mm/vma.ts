/**
 * vm_area_struct and the mm's VMA set (mm/vma.c). ptlab keeps each mm's VMAs in a list sorted by
 * address (Linux: the maple tree); it is changed under mmap_lock held for write and read under
 * it held for read — or, with per-VMA locks, walked without it (lock_vma_under_rcu, which checks
 * what it found): a VMA's next pointer is set before the VMA is published, and kept when it is
 * unlinked, as RCU readers of the maple tree need.
 */
import {
  M_LOCK_SEQ, M_NR_VMAS, M_VMA_HEAD, R_GEN, V_DETACHED, V_END_HI, V_END_LO, V_FILE, V_FILE_GEN, V_FLAGS, V_IMMAP_NEXT,
  V_LOCK, V_LOCK_SEQ, V_SHARE_LOCK, V_MM, V_NEXT, V_PGOFF, V_PRIV, V_PRIV_GEN, V_START_HI, V_START_LO, VMA_WORDS,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { RWSEM_WORDS } from '../sync/rwsem.js';
import { PoolId } from './mmdebug.js';
import type { Kernel } from './percpu.js';
import { pool_alloc, pool_free } from './slab.js';
import { AssertSite, guard_vma_list, mmap_assert_write_locked, vma_write_checks } from './guarded.js';

// vm_flags, with Linux's values.
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
/** Registered for userfaultfd write-protect (UFFDIO_REGISTER_MODE_WP), Linux's value. */
export const VM_UFFD_WP = 0x1000;
export const VM_LOCKED = 0x2000;
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_DONTCOPY = 0x20000;
export const VM_LOCKONFAULT = 0x80000;
export const VM_NORESERVE = 0x200000;
export const VM_WIPEONFORK = 0x2000000;
/** The RFC takes a bit above 32; ptlab's vm_flags word is 32 bits, so it takes bit 30. */
export const VM_SHARED_PT = 1 << 30;
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

const TWO32 = 2 ** 32;

export function vmaBase(k: Kernel, v: number): number {
  return k.pools.vmas.base + v * VMA_WORDS;
}

export function vma_start(k: Kernel, v: number): number {
  const b = vmaBase(k, v);
  return Atomics.load(k.i32, b + V_START_HI) * TWO32 + (Atomics.load(k.i32, b + V_START_LO) >>> 0);
}

export function vma_end(k: Kernel, v: number): number {
  const b = vmaBase(k, v);
  return Atomics.load(k.i32, b + V_END_HI) * TWO32 + (Atomics.load(k.i32, b + V_END_LO) >>> 0);
}

export function vma_set_range(k: Kernel, v: number, start: number, end: number): void {
  vma_write_checks(k, v, AssertSite.VmaSetRange);
  const b = vmaBase(k, v);
  Atomics.store(k.i32, b + V_START_HI, Math.floor(start / TWO32));
  Atomics.store(k.i32, b + V_START_LO, start % TWO32 | 0);
  Atomics.store(k.i32, b + V_END_HI, Math.floor(end / TWO32));
  Atomics.store(k.i32, b + V_END_LO, end % TWO32 | 0);
}

export function vma_flags(k: Kernel, v: number): number {
  return Atomics.load(k.i32, vmaBase(k, v) + V_FLAGS);
}

export function vma_file(k: Kernel, v: number): number {
  return Atomics.load(k.i32, vmaBase(k, v) + V_FILE);
}

export function vma_pgoff(k: Kernel, v: number): number {
  return Atomics.load(k.i32, vmaBase(k, v) + V_PGOFF);
}

export function vma_priv(k: Kernel, v: number): number {
  return Atomics.load(k.i32, vmaBase(k, v) + V_PRIV);
}

export function vma_gen(k: Kernel, v: number): number {
  return Atomics.load(k.i32, vmaBase(k, v) + R_GEN);
}

/** vm_area_alloc: a VMA of `mm`, not yet linked. -1 when out of VMAs. */
export function vm_area_alloc(k: Kernel, mm: number): number {
  const v = pool_alloc(k, k.pools.vmas, LockClass.SlabPool, 1);
  if (v < 0) return -1;
  const i32 = k.i32;
  const b = vmaBase(k, v);
  Atomics.store(i32, b + V_MM, mm);
  Atomics.store(i32, b + V_FLAGS, 0);
  Atomics.store(i32, b + V_FILE, -1);
  Atomics.store(i32, b + V_FILE_GEN, 0);
  Atomics.store(i32, b + V_PGOFF, 0);
  Atomics.store(i32, b + V_NEXT, -1);
  Atomics.store(i32, b + V_PRIV, -1);
  Atomics.store(i32, b + V_PRIV_GEN, 0);
  Atomics.store(i32, b + V_IMMAP_NEXT, -1);
  vma_lock_init(k, v, mm);
  return v;
}

/**
 * vma_lock_init: a new VMA's lock is free and the VMA counts as write-locked (vm_lock_seq =
 * mm_lock_seq: its creator holds mmap_lock for write, and __mmap_region write-locks a VMA before
 * vma_link), detached until linked.
 */
function vma_lock_init(k: Kernel, v: number, mm: number): void {
  const i32 = k.i32;
  const b = vmaBase(k, v);
  for (let w = 0; w < RWSEM_WORDS; w++) Atomics.store(i32, b + V_LOCK + w, 0);
  for (let w = 0; w < RWSEM_WORDS; w++) Atomics.store(i32, b + V_SHARE_LOCK + w, 0); // hugetlb_vma_lock_alloc
  Atomics.store(i32, b + V_LOCK_SEQ, Atomics.load(i32, k.mmBase(mm) + M_LOCK_SEQ));
  Atomics.store(i32, b + V_DETACHED, 1);
}

/** vm_area_dup: a copy of `v` (same mm, flags, file, model data), not yet linked. */
export function vm_area_dup(k: Kernel, v: number): number {
  const i32 = k.i32;
  const n = pool_alloc(k, k.pools.vmas, LockClass.SlabPool, 1);
  if (n < 0) return -1;
  const src = vmaBase(k, v);
  const dst = vmaBase(k, n);
  for (let w = V_MM; w < VMA_WORDS; w++) Atomics.store(i32, dst + w, Atomics.load(i32, src + w));
  Atomics.store(i32, dst + V_NEXT, -1);
  Atomics.store(i32, dst + V_IMMAP_NEXT, -1);
  vma_lock_init(k, n, Atomics.load(i32, src + V_MM));
  return n;
}

export function vm_area_free(k: Kernel, v: number): void {
  pool_free(k, k.pools.vmas, LockClass.SlabPool, v, PoolId.Vmas);
}

/** find_vma: the first VMA of `mm` that ends above `addr`, or -1. mmap_lock held. */
export function find_vma(k: Kernel, mm: number, addr: number): number {
  const i32 = k.i32;
  let v = Atomics.load(i32, k.mmBase(mm) + M_VMA_HEAD);
  while (v >= 0) {
    if (vma_end(k, v) > addr) return v;
    v = Atomics.load(i32, vmaBase(k, v) + V_NEXT);
  }
  return -1;
}

/** The VMA before `v` in address order (-1 for the first). */
export function vma_prev(k: Kernel, mm: number, v: number): number {
  const i32 = k.i32;
  let p = -1;
  let c = Atomics.load(i32, k.mmBase(mm) + M_VMA_HEAD);
  while (c >= 0 && c !== v) {
    p = c;
    c = Atomics.load(i32, vmaBase(k, c) + V_NEXT);
  }
  return p;
}

export function vma_next(k: Kernel, v: number): number {
  return Atomics.load(k.i32, vmaBase(k, v) + V_NEXT);
}

export function first_vma(k: Kernel, mm: number): number {
  return Atomics.load(k.i32, k.mmBase(mm) + M_VMA_HEAD);
}

/** Inserts `v` into `mm`'s sorted list. mmap_lock held for write. */
export function vma_link_mm(k: Kernel, mm: number, v: number): void {
  mmap_assert_write_locked(k, mm, AssertSite.VmaLinkMm); // vma_iter_store: the maple tree under mmap_lock for write
  guard_vma_list(k, mm, AssertSite.VmaLinkMm);
  const i32 = k.i32;
  const start = vma_start(k, v);
  let prev = -1;
  let c = Atomics.load(i32, k.mmBase(mm) + M_VMA_HEAD);
  while (c >= 0 && vma_start(k, c) < start) {
    prev = c;
    c = Atomics.load(i32, vmaBase(k, c) + V_NEXT);
  }
  Atomics.store(i32, vmaBase(k, v) + V_NEXT, c);
  Atomics.store(i32, vmaBase(k, v) + V_DETACHED, 0);
  if (prev < 0) Atomics.store(i32, k.mmBase(mm) + M_VMA_HEAD, v);
  else Atomics.store(i32, vmaBase(k, prev) + V_NEXT, v);
  Atomics.add(i32, k.mmBase(mm) + M_NR_VMAS, 1);
}

/**
 * Removes `v` from `mm`'s list and marks it detached (vma_mark_detached). mmap_lock held for
 * write, and the VMA write-locked (vma_start_write) by the caller.
 */
export function vma_unlink_mm(k: Kernel, mm: number, v: number): void {
  vma_write_checks(k, v, AssertSite.VmaMarkDetached); // vma_mark_detached: vma_assert_write_locked
  guard_vma_list(k, mm, AssertSite.VmaMarkDetached);
  const i32 = k.i32;
  Atomics.store(i32, vmaBase(k, v) + V_DETACHED, 1);
  const prev = vma_prev(k, mm, v);
  const next = Atomics.load(i32, vmaBase(k, v) + V_NEXT);
  if (prev < 0) Atomics.store(i32, k.mmBase(mm) + M_VMA_HEAD, next);
  else Atomics.store(i32, vmaBase(k, prev) + V_NEXT, next);
  Atomics.sub(i32, k.mmBase(mm) + M_NR_VMAS, 1);
}

/** Does any VMA of `mm` intersect [start, end)? */
export function range_has_vma(k: Kernel, mm: number, start: number, end: number): boolean {
  const v = find_vma(k, mm, start);
  return v >= 0 && vma_start(k, v) < end;
}

export { V_FILE_GEN, V_PRIV_GEN, V_FLAGS, V_PRIV, V_FILE, V_PGOFF };
