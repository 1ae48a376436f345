/**
 * mm/mremap.c: mremap(2). The checks of do_mremap (flags, alignment, MREMAP_FIXED needs
 * MREMAP_MAYMOVE, MREMAP_DONTUNMAP needs it and equal lengths on private anonymous memory, the old
 * range inside one VMA (EFAULT); since 5.13 any mapping may be moved with MREMAP_DONTUNMAP); shrinking unmaps the tail in place; growing extends the VMA in
 * place when the room after it is free; else, with MREMAP_MAYMOVE, or to MREMAP_FIXED's address,
 * move_vma: a new VMA, the PTEs moved as move_page_tables moves them (frames, map counts and RSS
 * go along), the old range unmapped (or, with MREMAP_DONTUNMAP, left mapped and empty).
 */
import { FL_IMMAP_RWSEM, M_MMAP_LOCK, M_PGD, V_PGOFF } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { down_write, up_write } from '../sync/rwsem.js';
import { fileBase } from './filemap.js';
import { EFAULT, EINVAL, ENOMEM } from './errno.js';
import { break_cow_pte_range, lookup_table, MmuGather, tlb_finish_mmu } from './memory.js';
import { do_munmap, get_unmapped_area, mmap_region, page_align } from './mmap.js';
import { mmap_write_lock, mmap_write_unlock, vma_start_write } from './mmap_lock.js';
import type { Kernel } from './percpu.js';
import { entry_off, PAGE_SIZE, PMD_LEVEL, PMD_SIZE, pgd_index, pmd_index, pte_index, PTE_LEVEL, PUD_LEVEL, pud_index, table_alloc, TASK_SIZE } from './pgtable.js';
import { find_vma, vma_end, vma_file, vma_flags, vma_next, vma_pgoff, vma_set_range, vma_start, vmaBase, VM_LOCKED, VM_SHARED, VM_SHARED_PT } from './vma.js';
import { mm_populate } from './mlock.js';
import { AssertSite, guard_pte, guard_vma, mmap_assert_write_locked, pte_lockptr } from './guarded.js';
import { pte_lock } from './ptlock.js';
import { spin_unlock } from '../sync/spinlock.js';

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

/** What a locked mapping's growth leaves to populate once mmap_lock is dropped ([start, end)). */
const grown = { start: 0, end: 0 };

/**
 * mremap(2): the checks and the work under mmap_lock (__do_sys_mremap), then, for a VM_LOCKED
 * mapping that grew (in place or moved), mm_populate of the new part with the lock dropped.
 */
export function do_mremap(k: Kernel, mm: number, addr: number, oldLen: number, newLen: number, flags: number, newAddr: number): number {
  grown.start = grown.end = 0;
  const r = mremap_locked(k, mm, addr, oldLen, newLen, flags, newAddr);
  if (r >= 0 && grown.end > grown.start) mm_populate(k, mm, grown.start, grown.end);
  return r;
}

function mremap_locked(k: Kernel, mm: number, addr: number, oldLen: number, newLen: number, flags: number, newAddr: number): number {
  if ((flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0) return -EINVAL;
  if ((flags & MREMAP_FIXED) !== 0 && (flags & MREMAP_MAYMOVE) === 0) return -EINVAL;
  if ((flags & MREMAP_DONTUNMAP) !== 0 && ((flags & MREMAP_MAYMOVE) === 0 || oldLen !== newLen)) return -EINVAL;
  if (addr % PAGE_SIZE !== 0) return -EINVAL;
  oldLen = page_align(oldLen);
  newLen = page_align(newLen);
  if (newLen === 0) return -EINVAL;
  if (newLen > TASK_SIZE || addr > TASK_SIZE - newLen) return -EINVAL;
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_write_lock(k, lock);
  try {
    const v = find_vma(k, mm, addr);
    if (v < 0 || vma_start(k, v) > addr) return -EFAULT;
    if ((vma_flags(k, v) & VM_SHARED_PT) !== 0) {
      // A sharing model's VMA: the model unshares it first (pt-hint) or refuses.
      const r = k.model.mremap_prepare ? k.model.mremap_prepare(k, v) : -EINVAL;
      if (r < 0) return r;
      if ((vma_flags(k, v) & VM_SHARED_PT) !== 0) return -EINVAL;
    }
    const flagsV = vma_flags(k, v);
    // old_len 0: a second mapping of a shared one (private ones: EINVAL).
    if (oldLen === 0 && ((flagsV & VM_SHARED) === 0 || (flags & MREMAP_MAYMOVE) === 0)) return -EINVAL;
    if (oldLen > vma_end(k, v) - addr) return -EFAULT;
    if ((flags & MREMAP_FIXED) !== 0) {
      if (newAddr % PAGE_SIZE !== 0) return -EINVAL;
      if (newLen > TASK_SIZE || newAddr > TASK_SIZE - newLen) return -EINVAL;
      if (newAddr < addr + Math.max(oldLen, 1) && addr < newAddr + newLen) return -EINVAL; // overlapping
      let r = do_munmap(k, mm, newAddr, newLen);
      if (r < 0) return r;
      if (oldLen > newLen) {
        r = do_munmap(k, mm, addr + newLen, oldLen - newLen);
        if (r < 0) return r;
        oldLen = newLen;
      }
      return move_vma(k, mm, find_vma(k, mm, addr), addr, oldLen, newLen, newAddr, flags);
    }
    if (oldLen >= newLen) {
      if (oldLen > newLen) {
        const r = do_munmap(k, mm, addr + newLen, oldLen - newLen);
        if (r < 0) return r;
      }
      if ((flags & MREMAP_DONTUNMAP) === 0) return addr;
    }
    // Grow in place when the old range ends the VMA and the room after it is free.
    if ((flags & MREMAP_DONTUNMAP) === 0 && addr + oldLen === vma_end(k, v)) {
      const next = vma_next(k, v);
      const room = next < 0 ? TASK_SIZE : vma_start(k, next);
      if (addr + newLen <= room && addr + newLen <= TASK_SIZE) {
        vma_start_write(k, v);
        vma_set_range(k, v, vma_start(k, v), addr + newLen);
        if ((flagsV & VM_LOCKED) !== 0) {
          grown.start = addr + oldLen;
          grown.end = addr + newLen;
        }
        return addr;
      }
    }
    if ((flags & MREMAP_MAYMOVE) === 0) return -ENOMEM;
    const to = get_unmapped_area(k, mm, 0, newLen, PAGE_SIZE);
    if (to < 0) return to;
    return move_vma(k, mm, v, addr, oldLen, newLen, to, flags);
  } finally {
    mmap_write_unlock(k, lock);
  }
}

/** move_vma: [addr, addr + oldLen) of `v` moves to `to` as a VMA of newLen bytes. */
function move_vma(k: Kernel, mm: number, v: number, addr: number, oldLen: number, newLen: number, to: number, flags: number): number {
  mmap_assert_write_locked(k, mm, AssertSite.MoveVma);
  const pgoff = vma_pgoff(k, v) + (addr - vma_start(k, v)) / PAGE_SIZE;
  const n = mmap_region(k, mm, to, newLen, vma_flags(k, v), vma_file(k, v), pgoff);
  if (n < 0) return -ENOMEM;
  guard_vma(k, n, AssertSite.MoveVma);
  Atomics.store(k.i32, vmaBase(k, n) + V_PGOFF, pgoff);
  if (move_page_tables(k, mm, vma_file(k, v), addr, to, Math.min(oldLen, newLen)) < 0) return -ENOMEM;
  if ((flags & MREMAP_DONTUNMAP) === 0 && oldLen > 0) {
    const r = do_munmap(k, mm, addr, oldLen);
    if (r < 0) return r;
  }
  if ((vma_flags(k, n) & VM_LOCKED) !== 0 && newLen > oldLen) {
    grown.start = to + oldLen;
    grown.end = to + newLen;
  }
  return to;
}

/**
 * move_page_tables: each PTE of [from, from + len) moves to the same offset from `to` (its
 * frame, map count and RSS with it); the old PTEs are cleared and flushed before the move is
 * seen. A mapping of `file` (or -1) moves under the file's i_mmap_rwsem held for write
 * (take_rmap_locks): an rmap walk — remove_migration_ptes above all — must not pass the new
 * place before an entry arrives and the old one after it left. (Linux takes it only when
 * need_rmap_locks says the walk could meet the two VMAs in that order; ptlab always does.)
 */
function move_page_tables(k: Kernel, mm: number, file: number, from: number, to: number, len: number): number {
  // cow-pte: both ranges' COW-shared tables become this mm's own first (Lin's move_page_tables
  // break_cow_pte): the old one loses PTEs, the new one gains them.
  if (break_cow_pte_range(k, mm, from, from + len) < 0 || break_cow_pte_range(k, mm, to, to + len) < 0) return -1;
  if (file < 0) return move_ptes(k, mm, from, to, len);
  const sem = fileBase(k, file) + FL_IMMAP_RWSEM;
  down_write(k, sem, LockClass.IMmapRwsem);
  try {
    return move_ptes(k, mm, from, to, len);
  } finally {
    up_write(k, sem);
  }
}

function move_ptes(k: Kernel, mm: number, from: number, to: number, len: number): number {
  const i32 = k.i32;
  const pgd = Atomics.load(i32, k.mmBase(mm) + M_PGD);
  const tlb = new MmuGather();
  for (let off = 0; off < len; off += PAGE_SIZE) {
    const svpn = (from + off) / PAGE_SIZE;
    const t = lookup_table(k, pgd, svpn, PTE_LEVEL, mm);
    if (t < 0) {
      off = Math.max(off, Math.floor((from + off) / PMD_SIZE + 1) * PMD_SIZE - from - PAGE_SIZE);
      continue;
    }
    const so = entry_off(k, t, pte_index(svpn));
    const e = Atomics.load(i32, so);
    if (e === 0) continue;
    const dvpn = (to + off) / PAGE_SIZE;
    const pud = table_alloc(k, entry_off(k, pgd, pgd_index(dvpn)), mm, PUD_LEVEL);
    if (pud < 0) return -1;
    const pmd = table_alloc(k, entry_off(k, pud, pud_index(dvpn)), mm, PMD_LEVEL);
    if (pmd < 0) return -1;
    const dt = table_alloc(k, entry_off(k, pmd, pmd_index(dvpn)), mm, PTE_LEVEL);
    if (dt < 0) return -1;
    // move_ptes: the old table's lock, and the new one's nested inside it when they differ
    // (spin_lock_nested(new_ptl, SINGLE_DEPTH_NESTING)); a fault or an rmap zap of either
    // table waits. (The entry is read again under the lock.)
    const optl = pte_lock(k, t);
    const nptl = pte_lockptr(k, dt) !== optl ? pte_lock(k, dt) : -1;
    const cur = Atomics.exchange(i32, so, 0);
    guard_pte(k, t, AssertSite.MovePtes);
    if (cur !== 0) {
      tlb.addTable(t);
      guard_pte(k, dt, AssertSite.MovePtes);
      Atomics.store(i32, entry_off(k, dt, pte_index(dvpn)), cur);
    }
    if (nptl >= 0) spin_unlock(k, nptl);
    spin_unlock(k, optl);
  }
  tlb_finish_mmu(k, mm, tlb);
  return 0;
}
