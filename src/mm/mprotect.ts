/**
 * mprotect (mm/mprotect.c): do_mprotect_pkey -> mprotect_fixup (split, set vm_flags, merge) ->
 * change_protection (rewrite the PTEs under their split locks). Narrowing a permission flushes
 * every CPU that may cache the old entries before the syscall returns; the tables' P_WPSEQ
 * brackets that flush (wpseq_begin / wpseq_end) so the stale-TLB check can tell a store that
 * slipped through.
 */
import { mmap_write_lock, mmap_write_unlock, vma_start_write, AssertSite, mmap_assert_write_locked } from './mmap_lock.js';
import { guard_pte, pte_assert_locked, vma_write_checks } from './guarded.js';
import { F_MAPCOUNT, F_UFFD_WP, FRAME_FILE, M_MMAP_LOCK, P_OWNER, R_STATE, V_FLAGS } from '../shm/layout.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { break_cow_pte_range, MmuGather, vm_page_prot, walk_pte_tables } from './memory.js';
import { page_align, PROT_EXEC, PROT_READ, PROT_WRITE, remove_vma, split_vma_range } from './mmap.js';
import { EACCES, EINVAL, ENOMEM } from './errno.js';
import { frameBase, ptpBase } from './page_alloc.js';
import type { Kernel } from './percpu.js';
import { _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, entry_off, mk_pte, pte_index, pte_pfn, TASK_SIZE, PAGE_SIZE } from './pgtable.js';
import { flush_tlb_mm, wpseq_begin, wpseq_end } from './tlb.js';
import { pte_marker, uffd_active } from './userfaultfd.js';
import {
  find_vma, vma_end, vma_file, vma_flags, vma_next, vma_pgoff, vma_prev, vma_set_range, vma_start,
  vma_unlink_mm, vmaBase, VM_ACCESS_FLAGS, VM_EXEC, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE, VM_READ,
  VM_SHARED, VM_SHARED_PT, VM_WRITE, vma_priv,
} from './vma.js';

export function calc_vm_prot_bits(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0);
}

/**
 * change_protection over [start, end) of `mm`'s own tables for a VMA now carrying `vm_flags`.
 * Returns true when some entry lost a permission (the caller must flush). Entries of tables
 * `mm` does not own (shared ones) are left to the model.
 */
export function change_protection(k: Kernel, mm: number, start: number, end: number, vm_flags: number, tlb: MmuGather): boolean {
  const i32 = k.i32;
  const base = vm_page_prot(vm_flags);
  let narrowed = false;
  mmap_assert_write_locked(k, mm, AssertSite.ChangeProtection); // mprotect's: the host's for a sharing model
  const own = (t: number) => Atomics.load(i32, ptpBase(k, t) + P_OWNER) === mm;
  walk_pte_tables(k, mm, start, end, own, (t, vpn, n) => {
    pte_assert_locked(k, t, AssertSite.ChangeProtection); // change_pte_range under pte_offset_map_lock
    guard_pte(k, t, AssertSite.ChangeProtection); // ptep_modify_prot_commit below: once per table
    let touched = false;
    for (let i = 0; i < n; i++) {
      const off = entry_off(k, t, pte_index(vpn + i));
      const e = Atomics.load(i32, off);
      if (e === 0) continue;
      if ((e & _PAGE_PRESENT) === 0) {
        // change_pte_range on a migration entry: a writable one becomes readable when the VMA
        // loses write (make_readable_migration_entry); remove_migration_pte rebuilds the rest
        // from the VMA it finds then.
        if ((vm_flags & VM_WRITE) === 0 && (e & _PAGE_RW) !== 0) Atomics.store(i32, off, e & ~_PAGE_RW);
        continue;
      }
      const f = pte_pfn(e);
      let prot = base;
      // A private mapping of a page-cache page stays read-only (copy on write); an exclusive
      // anonymous page may be writable at once (can_change_pte_writable).
      if ((vm_flags & VM_WRITE) !== 0 && (vm_flags & VM_SHARED) === 0) {
        prot = Atomics.load(i32, frameBase(k, f) + R_STATE) === FRAME_FILE ? base & ~_PAGE_RW : base | _PAGE_RW;
        // ... and an anonymous page only if it is exclusive (can_change_pte_writable:
        // PageAnonExclusive): after fork both sides map it read-only until a write fault
        // copies it, whatever mprotect says in between.
        if ((prot & _PAGE_RW) !== 0 && Atomics.load(i32, frameBase(k, f) + F_MAPCOUNT) > 1) prot &= ~_PAGE_RW;
      }
      // uffd-wp stays: a marked PTE or a page flagged in the page cache stays read-only.
      if ((prot & _PAGE_RW) !== 0 && uffd_active(k) && (pte_marker(k, off) || Atomics.load(i32, frameBase(k, f) + F_UFFD_WP) !== 0)) prot &= ~_PAGE_RW;
      const ne = mk_pte(f, prot | (e & _PAGE_DIRTY));
      if (ne === e) continue;
      if (((e & _PAGE_RW) !== 0 && (ne & _PAGE_RW) === 0) || ((e & _PAGE_USER) !== 0 && (ne & _PAGE_USER) === 0) || (ne & _PAGE_PRESENT) === 0) {
        narrowed = true;
        touched = true;
      }
      Atomics.store(i32, off, ne);
    }
    if (touched) tlb.addTable(t);
  });
  return narrowed;
}

/** Flush the changed tables, telling the stale-TLB check (see tlb_finish_mmu). */
export function flush_protection(k: Kernel, mm: number, tlb: MmuGather): void {
  if (tlb.ntables === 0) return;
  if (k.sched !== null) k.sched.point(k, SchedPoint.MprotectBeforeFlush);
  for (let i = 0; i < tlb.ntables; i++) wpseq_begin(k, tlb.tables[i]);
  flush_tlb_mm(k, mm);
  for (let i = 0; i < tlb.ntables; i++) wpseq_end(k, tlb.tables[i]);
  tlb.reset();
}

function can_merge(k: Kernel, a: number, b: number): boolean {
  if (vma_end(k, a) !== vma_start(k, b)) return false;
  const fa = vma_flags(k, a);
  if (fa !== vma_flags(k, b) || (fa & VM_SHARED_PT) !== 0) return false;
  const file = vma_file(k, a);
  if (file !== vma_file(k, b) || vma_priv(k, a) !== vma_priv(k, b)) return false;
  return file < 0 || vma_pgoff(k, a) + (vma_end(k, a) - vma_start(k, a)) / PAGE_SIZE === vma_pgoff(k, b);
}

/** vma_merge: fold `b` into `a` (adjacent, same flags, same file at contiguous offsets). */
function merge_into(k: Kernel, mm: number, a: number, b: number): void {
  vma_start_write(k, a); // vma_prepare
  vma_start_write(k, b);
  vma_set_range(k, a, vma_start(k, a), vma_end(k, b));
  vma_unlink_mm(k, mm, b);
  remove_vma(k, b);
}

/**
 * mprotect_fixup for one VMA piece [start, end) inside `v`: split, set the flags, rewrite the
 * entries, and merge with the neighbours when they now match.
 */
export function mprotect_fixup(k: Kernel, mm: number, v: number, start: number, end: number, newflags: number, tlb: MmuGather): number {
  mmap_assert_write_locked(k, mm, AssertSite.MprotectFixup);
  // cow-pte: the COW-shared tables of the range become this mm's own before anything changes
  // (Lin's "mm/mprotect: Break COW PTE before changing protection").
  const b = break_cow_pte_range(k, mm, start, end);
  if (b < 0) return b;
  v = split_vma_range(k, mm, v, start, end);
  if (v < 0) return v;
  vma_start_write(k, v); // vm_flags_reset
  vma_write_checks(k, v, AssertSite.MprotectFixup);
  Atomics.store(k.i32, vmaBase(k, v) + V_FLAGS, newflags);
  change_protection(k, mm, start, end, newflags, tlb);
  const next = vma_next(k, v);
  if (next >= 0 && can_merge(k, v, next)) merge_into(k, mm, v, next);
  const prev = vma_prev(k, mm, v);
  if (prev >= 0 && can_merge(k, prev, v)) merge_into(k, mm, prev, v);
  return 0;
}

/**
 * mprotect's second pass over a host mm whose protection a sharing model changes (map-shared-pt's
 * mprotect, CONTAINER_PROTECT): the VMAs of `mm` inside [start, end) take the access bits
 * `access`, piece by piece (mprotect_fixup where they change), then one flush. mmap_lock held for
 * write; 0 or the first error.
 */
export function change_access_range(k: Kernel, mm: number, start: number, end: number, access: number): number {
  mmap_assert_write_locked(k, mm, AssertSite.ChangeAccessRange);
  const tlb = new MmuGather();
  let r = 0;
  for (let v = find_vma(k, mm, start); v >= 0 && vma_start(k, v) < end;) {
    const s = Math.max(start, vma_start(k, v));
    const e = Math.min(end, vma_end(k, v));
    const f = vma_flags(k, v);
    const nf = (f & ~VM_ACCESS_FLAGS) | (access & VM_ACCESS_FLAGS);
    if (nf !== f) r = mprotect_fixup(k, mm, v, s, e, nf, tlb);
    if (r < 0 || e >= end) break;
    v = find_vma(k, mm, e);
  }
  flush_protection(k, mm, tlb);
  return r;
}

/**
 * do_mprotect_pkey with `mm`'s mmap_lock taken here. EINVAL: unaligned start or unknown prot
 * bits; ENOMEM: a hole in the range; EACCES: asking for a permission the mapping may not have.
 */
export function do_mprotect(k: Kernel, mm: number, start: number, len: number, prot: number): number {
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) return -EINVAL;
  if (len === 0) return 0;
  if (len < 0) return -EINVAL;
  const end = start + page_align(len);
  if (end > TASK_SIZE) return -ENOMEM;
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_write_lock(k, lock);
  try {
    const want = calc_vm_prot_bits(prot);
    // do_mprotect_pkey's walk: VMA by VMA, each part changed as it comes; a hole (ENOMEM) or a
    // VMA that may not take the permissions (EACCES) ends it with the parts before it changed.
    // A range that starts in a hole changes nothing.
    const tlb = new MmuGather();
    let v = find_vma(k, mm, start);
    if (v < 0 || vma_start(k, v) > start) return -ENOMEM;
    for (let at = start; ;) {
      const f = vma_flags(k, v);
      if ((want & VM_READ && !(f & VM_MAYREAD)) || (want & VM_WRITE && !(f & VM_MAYWRITE)) || (want & VM_EXEC && !(f & VM_MAYEXEC))) {
        flush_protection(k, mm, tlb);
        return -EACCES;
      }
      const e = Math.min(end, vma_end(k, v));
      const newflags = (f & ~VM_ACCESS_FLAGS) | want;
      let r = 0;
      if ((f & VM_SHARED_PT) !== 0) r = k.model.mprotect(k, v, at, e, newflags);
      else if (newflags !== f) r = mprotect_fixup(k, mm, v, at, e, newflags, tlb);
      if (r < 0) {
        flush_protection(k, mm, tlb);
        return r;
      }
      at = e;
      if (at >= end) break;
      v = find_vma(k, mm, at); // (mprotect_fixup may have merged the VMA that holds `at` with the one before)
      if (v < 0 || vma_start(k, v) > at) {
        flush_protection(k, mm, tlb);
        return -ENOMEM;
      }
    }
    flush_protection(k, mm, tlb);
    return 0;
  } finally {
    mmap_write_unlock(k, lock);
  }
}
