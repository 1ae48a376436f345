/**
 * mmap and munmap (mm/mmap.c, mm/vma.c): argument checks with Linux's errnos, get_unmapped_area
 * (top-down from mmap_base), mmap_region, split_vma, do_munmap with partial unmaps, and
 * remove_vma. The model sees every MAP_SHARED file mapping first (ModelOps.mmap) and owns
 * VM_SHARED_PT VMAs.
 */
import { AssertSite, mmap_assert_write_locked, mmap_write_lock, mmap_write_unlock, vma_start_write } from './mmap_lock.js';
import { guard_vma } from './guarded.js';
import { M_MMAP_LOCK, V_FILE, V_FILE_GEN, V_FLAGS, V_PGOFF, V_PRIV, V_PRIV_GEN } from '../shm/layout.js';
import { break_cow_pte_edges, free_pgtables, MmuGather, tlb_finish_mmu, zap_page_range } from './memory.js';
import { MODEL_DEFAULT, type MmapArgs } from './model_ops.js';
import type { Kernel } from './percpu.js';
import { PAGE_SIZE, TASK_SIZE } from './pgtable.js';
import { i_mmap_insert, i_mmap_remove } from './rmap.js';
import { file_gen, fput, get_file, is_model_file, shmem_file_setup, shmem_setsize } from './shmem.js';
import {
  find_vma, first_vma, vm_area_alloc, vm_area_dup, vm_area_free, vma_end, vma_file, vma_flags,
  vma_link_mm, vma_next, vma_pgoff, vma_set_range, vma_start, vma_unlink_mm, vmaBase, VM_EXEC,
  VM_MAYEXEC, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED, VM_SHARED_PT, VM_WRITE, VM_LOCKED, VM_NORESERVE, range_has_vma,
} from './vma.js';

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_TYPE = 0x0f;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_FIXED_NOREPLACE = 0x100000;
/** The flags mmap has always taken (LEGACY_MAP_MASK): MAP_SHARED_VALIDATE refuses any other. */
export const LEGACY_MAP_MASK = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | 0x0800 | 0x1000 | 0x4000000 | 0x0100 | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | 0x10000 | 0x20000 | 0x40000;
/** The fd's f_mode bits do_mmap looks at. */
export const FMODE_READ = 1;
export const FMODE_WRITE = 2;
/** MAP_SHARED_PT (seed 001). Its value is ptlab's: the RFC's was never merged. */
export const MAP_SHARED_PT = 0x200000;

import { EACCES, EEXIST, EINVAL, ENODEV, ENOMEM, EOPNOTSUPP } from './errno.js';

export const MMAP_BASE = 0x7f0000000000;
export const MMAP_MIN_ADDR = 0x10000;

export function page_align(len: number): number {
  return Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
}

/** calc_vm_prot_bits + the VM_MAY* bits do_mmap adds. */
export function calc_vm_flags(prot: number, flags: number): number {
  let f = 0;
  if (prot & PROT_READ) f |= VM_READ;
  if (prot & PROT_WRITE) f |= VM_WRITE;
  if (prot & PROT_EXEC) f |= VM_EXEC;
  f |= VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (flags & MAP_SHARED) f |= VM_SHARED | VM_MAYSHARE;
  return f;
}

/**
 * get_unmapped_area: `hint` when it is free, else the highest gap below mmap_base that fits
 * `len` at `align` (arch_get_unmapped_area_topdown). -ENOMEM when nothing fits.
 */
export function get_unmapped_area(k: Kernel, mm: number, hint: number, len: number, align: number): number {
  if (len > TASK_SIZE) return -ENOMEM;
  if (hint !== 0) {
    hint = Math.floor(hint / PAGE_SIZE) * PAGE_SIZE;
    if (hint % align === 0 && hint >= MMAP_MIN_ADDR && hint + len <= TASK_SIZE) {
      const v = find_vma(k, mm, hint);
      if (v < 0 || hint + len <= vma_start(k, v)) return hint;
    }
  }
  let best = -ENOMEM;
  let low = MMAP_MIN_ADDR;
  const fit = (gapLo: number, gapHi: number) => {
    const hi = Math.min(gapHi, MMAP_BASE);
    const a = Math.floor((hi - len) / align) * align;
    if (a >= gapLo && a >= MMAP_MIN_ADDR) best = Math.max(best, a);
  };
  for (let v = first_vma(k, mm); v >= 0; v = vma_next(k, v)) {
    fit(low, vma_start(k, v));
    low = vma_end(k, v);
  }
  fit(low, MMAP_BASE);
  return best;
}

/**
 * mmap_region: a new VMA [addr, addr + len) in `mm` (the range must be free). Takes a file
 * reference and joins the file's i_mmap. Returns the VMA or -ENOMEM.
 */
export function mmap_region(k: Kernel, mm: number, addr: number, len: number, vm_flags: number, file: number, pgoff: number, priv = -1, privGen = 0): number {
  const i32 = k.i32;
  const v = vm_area_alloc(k, mm);
  if (v < 0) return -ENOMEM;
  const b = vmaBase(k, v);
  vma_set_range(k, v, addr, addr + len);
  Atomics.store(i32, b + V_FLAGS, vm_flags);
  Atomics.store(i32, b + V_PGOFF, pgoff);
  Atomics.store(i32, b + V_PRIV, priv);
  Atomics.store(i32, b + V_PRIV_GEN, privGen);
  if (file >= 0) {
    get_file(k, file);
    Atomics.store(i32, b + V_FILE, file);
    Atomics.store(i32, b + V_FILE_GEN, file_gen(k, file));
    i_mmap_insert(k, file, v);
  }
  vma_link_mm(k, mm, v);
  return v;
}

/**
 * do_mmap, called with `mm`'s mmap_lock held for write. Returns the address or -errno, as Linux
 * checks them: EINVAL for a zero length, an unaligned offset or MAP_FIXED address, or a bad
 * mapping type; ENOMEM past TASK_SIZE or when no room; EEXIST when MAP_FIXED_NOREPLACE's range
 * is taken; EOPNOTSUPP for a flag MAP_SHARED_VALIDATE does not know; EACCES for a file mapping
 * its fd's mode does not allow (a shared writable mapping of a read-only fd, any mapping of a
 * write-only one). A shared mapping of a read-only fd loses VM_MAYWRITE and VM_SHARED, so a later
 * mprotect(PROT_WRITE) is EACCES. Processes run as root: a MAP_FIXED address under mmap_min_addr
 * is allowed (CAP_SYS_RAWIO). MAP_LOCKED and MAP_POPULATE ask the caller to populate (a.populate).
 */
export function do_mmap(k: Kernel, a: MmapArgs): number {
  mmap_assert_write_locked(k, a.mm, AssertSite.DoMmap);
  a.populate = false;
  if (a.len <= 0) return -EINVAL;
  const len = page_align(a.len);
  if (len > TASK_SIZE) return -ENOMEM;
  const type = a.flags & MAP_TYPE;
  const fixed = (a.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0;
  // __get_unmapped_area: a fixed range past TASK_SIZE is ENOMEM, checked before its alignment (EINVAL).
  if (fixed && a.addr > TASK_SIZE - len) return -ENOMEM;
  if (fixed && a.addr % PAGE_SIZE !== 0) return -EINVAL;
  if ((a.flags & MAP_FIXED_NOREPLACE) !== 0 && range_has_vma(k, a.mm, a.addr, a.addr + len)) return -EEXIST;
  let vm_flags = calc_vm_flags(a.prot, type === MAP_PRIVATE ? MAP_PRIVATE : MAP_SHARED);
  if (a.file >= 0) {
    if (type !== MAP_SHARED && type !== MAP_SHARED_VALIDATE && type !== MAP_PRIVATE) return -EINVAL;
    if (type === MAP_SHARED_VALIDATE && (a.flags & ~LEGACY_MAP_MASK & ~MAP_TYPE) !== 0) return -EOPNOTSUPP;
    const mode = a.fmode;
    if (type !== MAP_PRIVATE) {
      if ((a.prot & PROT_WRITE) !== 0 && (mode & FMODE_WRITE) === 0) return -EACCES;
      if ((mode & FMODE_WRITE) === 0) vm_flags &= ~(VM_MAYWRITE | VM_SHARED);
    }
    if ((mode & FMODE_READ) === 0) return -EACCES;
  } else if (type !== MAP_SHARED && type !== MAP_PRIVATE) return -EINVAL;
  if ((a.flags & MAP_LOCKED) !== 0) vm_flags |= VM_LOCKED;
  if ((a.flags & MAP_NORESERVE) !== 0) vm_flags |= VM_NORESERVE;
  a.len = len;
  if (a.file >= 0 && type !== MAP_PRIVATE) {
    const r = k.model.mmap(k, a);
    if (r !== MODEL_DEFAULT) return r;
  }
  // A model's own file is mapped only the way its model says.
  if (a.file >= 0 && is_model_file(k, a.file)) return type !== MAP_PRIVATE ? -ENODEV : -EINVAL;
  let addr: number;
  if (fixed) {
    addr = a.addr;
    const r = do_munmap(k, a.mm, addr, len);
    if (r < 0) return r;
  } else {
    addr = get_unmapped_area(k, a.mm, a.addr, len, PAGE_SIZE);
    if (addr < 0) return addr;
  }
  let file = a.file;
  let pgoff = a.pgoff;
  if (file < 0 && type === MAP_SHARED) {
    // shmem_zero_setup: shared anonymous memory is a shmem file of its own.
    file = shmem_file_setup(k);
    if (file < 0) return -ENOMEM;
    shmem_setsize(k, file, len);
    pgoff = 0;
  }
  const v = mmap_region(k, a.mm, addr, len, vm_flags, file, pgoff);
  if (file >= 0 && file !== a.file) fput(k, file); // the VMA holds it now
  if (v < 0) return v;
  a.populate = (vm_flags & VM_LOCKED) !== 0 || (a.flags & MAP_POPULATE) !== 0;
  return addr;
}

/** split_vma: `v` becomes [start, addr) and a new VMA [addr, end) follows it. Returns it or -ENOMEM. */
export function split_vma(k: Kernel, mm: number, v: number, addr: number): number {
  mmap_assert_write_locked(k, mm, AssertSite.SplitVma);
  const n = vm_area_dup(k, v);
  if (n < 0) return -ENOMEM;
  vma_start_write(k, v); // vma_prepare
  const start = vma_start(k, v);
  const end = vma_end(k, v);
  vma_set_range(k, n, addr, end);
  guard_vma(k, n, AssertSite.SplitVma);
  Atomics.store(k.i32, vmaBase(k, n) + V_PGOFF, vma_pgoff(k, v) + (addr - start) / PAGE_SIZE);
  vma_set_range(k, v, start, addr);
  const file = vma_file(k, v);
  if (file >= 0) {
    get_file(k, file);
    i_mmap_insert(k, file, n);
  }
  vma_link_mm(k, mm, n);
  // __split_vma: new->vm_ops->open(new) — a sharing model's VMA takes what each of its VMAs holds
  // (a host mm's user, which the detach of each half drops).
  if ((vma_flags(k, n) & VM_SHARED_PT) !== 0) k.model.vma_open?.(k, n);
  return n;
}

/**
 * vma_modify's split: makes the part of `v` inside [start, end) a VMA of its own, splitting `v`
 * where `start` and `end` fall inside it, and returns that VMA (or -ENOMEM).
 */
export function split_vma_range(k: Kernel, mm: number, v: number, start: number, end: number): number {
  if (vma_start(k, v) < start) {
    const n = split_vma(k, mm, v, start);
    if (n < 0) return n;
    v = n;
  }
  if (vma_end(k, v) > end) {
    const n = split_vma(k, mm, v, end);
    if (n < 0) return n;
  }
  return v;
}

/**
 * The VMAs of `mm` inside [start, end), split at its edges (vms_gather_munmap_vmas), into
 * `out`; 0 or -ENOMEM.
 */
export function split_vmas_in(k: Kernel, mm: number, start: number, end: number, out: number[]): number {
  let v = find_vma(k, mm, start);
  if (v < 0 || vma_start(k, v) >= end) return 0;
  if (vma_start(k, v) < start) {
    const n = split_vma(k, mm, v, start);
    if (n < 0) return n;
    v = n;
  }
  while (v >= 0 && vma_start(k, v) < end) {
    if (vma_end(k, v) > end) {
      const n = split_vma(k, mm, v, end);
      if (n < 0) return n;
    }
    out.push(v);
    v = vma_next(k, v);
  }
  return 0;
}

/** unlink_file_vma: the VMA leaves its file's i_mmap, so no rmap walk can reach it. */
export function unlink_file_vma(k: Kernel, v: number): void {
  const file = vma_file(k, v);
  if (file >= 0) i_mmap_remove(k, file, v);
}

/**
 * remove_vma: the VMA is already unlinked from its mm; leave i_mmap (unless `fileUnlinked`: done
 * before its tables were freed), drop the file, free it.
 */
export function remove_vma(k: Kernel, v: number, fileUnlinked = false): void {
  const file = vma_file(k, v);
  if (file >= 0) {
    if (!fileUnlinked) i_mmap_remove(k, file, v);
    fput(k, file);
  }
  vm_area_free(k, v);
}

/**
 * do_munmap / do_vmi_munmap, with `mm`'s mmap_lock held for write: EINVAL for an unaligned
 * start, a zero length or a range past TASK_SIZE. VMAs are split at the edges; a VM_SHARED_PT
 * VMA's model may refuse (map-shared-pt refuses partial unmaps) before anything changes.
 */
export function do_munmap(k: Kernel, mm: number, start: number, len: number): number {
  mmap_assert_write_locked(k, mm, AssertSite.DoMunmap);
  if (start % PAGE_SIZE !== 0 || len <= 0) return -EINVAL;
  const end = start + page_align(len);
  if (end > TASK_SIZE) return -EINVAL;
  for (let v = find_vma(k, mm, start); v >= 0 && vma_start(k, v) < end; v = vma_next(k, v)) {
    if ((vma_flags(k, v) & VM_SHARED_PT) !== 0) {
      const r = k.model.may_munmap(k, v, Math.max(start, vma_start(k, v)), Math.min(end, vma_end(k, v)));
      if (r < 0) return r;
    }
  }
  // cow-pte: a COW-shared table that keeps a VMA of this mm beside the range becomes this mm's
  // own before anything changes (__split_vma's break_cow_pte): -ENOMEM leaves the mapping whole.
  const b = break_cow_pte_edges(k, mm, start, end);
  if (b < 0) return b;
  const removed: number[] = [];
  const r = split_vmas_in(k, mm, start, end, removed);
  if (r < 0) return r;
  unmap_vmas(k, mm, removed, false);
  return 0;
}

/** A planted bug (none --bug): unmap_vmas detaches VMAs without write-locking them first. */
export const BUG_MUNMAP_SKIPS_VMA_WRITE_LOCK = 'munmap-skips-vma-write-lock';

/** Unlinks, unmaps and frees `vmas` of `mm` (mmap_lock held for write). */
export function unmap_vmas(k: Kernel, mm: number, vmas: number[], exiting: boolean): void {
  mmap_assert_write_locked(k, mm, AssertSite.UnmapVmas);
  const gather = new MmuGather();
  let lo = Infinity;
  let hi = 0;
  for (const v of vmas) {
    if (k.bug !== BUG_MUNMAP_SKIPS_VMA_WRITE_LOCK) vma_start_write(k, v); // vma_mark_detached
    vma_unlink_mm(k, mm, v);
    lo = Math.min(lo, vma_start(k, v));
    hi = Math.max(hi, vma_end(k, v));
  }
  for (const v of vmas) {
    if ((vma_flags(k, v) & VM_SHARED_PT) !== 0) k.model.detach(k, v, exiting);
    else zap_page_range(k, mm, vma_start(k, v), vma_end(k, v), gather);
  }
  tlb_finish_mmu(k, mm, gather);
  // free_pgtables: "Hide vma from rmap and truncate_pagecache before freeing pgtables" — an
  // i_mmap walker (huge_pmd_share, pt-hint's owner transfer) must not reach tables being freed.
  for (const v of vmas) unlink_file_vma(k, v);
  if (vmas.length > 0) free_pgtables(k, mm, lo, hi);
  for (const v of vmas) remove_vma(k, v, true);
}

/** The mmap(2) syscall body: takes mmap_lock for write around do_mmap. */
export function vm_mmap(k: Kernel, a: MmapArgs): number {
  const lock = k.mmBase(a.mm) + M_MMAP_LOCK;
  mmap_write_lock(k, lock);
  try {
    return do_mmap(k, a);
  } finally {
    mmap_write_unlock(k, lock);
  }
}

/** The munmap(2) syscall body. */
export function vm_munmap(k: Kernel, mm: number, start: number, len: number): number {
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_write_lock(k, lock);
  try {
    return do_munmap(k, mm, start, len);
  } finally {
    mmap_write_unlock(k, lock);
  }
}

export { V_FILE, V_FILE_GEN };
