/**
 * `pt-hint`: page-table sharing as a hidden optimisation behind a hint (David Hildenbrand, seed
 * 000), modelled on hugetlb PMD sharing (mm/hugetlb.c: want_pmd_share, huge_pmd_share,
 * huge_pmd_unshare).
 *
 * - madvise(MADV_SHARE_PT) on a MAP_SHARED shmem range marks its VMAs (split at the edges) as
 *   willing to share; on any other mapping the hint is ignored, as a hint may be.
 * - The rule for when sharing is allowed is one predicate, want_pmd_share: the PMD-aligned 2 MiB
 *   range around the fault lies inside the VMA. hugetlb shares the PMD table above its 2 MiB
 *   leaves when the PUD-aligned 1 GiB range lies in the VMA; with 4 KiB leaves, pt-hint shares the
 *   PTE table above them when the PMD-aligned range does — the same rule one level down.
 * - huge_pmd_share: a fault with no PTE table looks through the file's i_mmap (under
 *   i_mmap_rwsem, read) for a sibling VMA with the same vm_flags that maps the same file offset
 *   at the same offset within a PMD and covers that whole PMD range; if the sibling has a PTE
 *   table there, the faulting mm's PMD entry points to it and its share count (P_SHARE, hugetlb's
 *   pt_share_count) goes up.
 * - huge_pmd_unshare: mprotect, a partial munmap (a VMA split) and unmap/exit first unshare —
 *   under i_mmap_rwsem held for write, the VMA's hint is cleared (so no fault shares from it any
 *   more), each shared table loses this mm's entry and one share, and the TLB is flushed before
 *   the lock drops (the rule CVE-2021-4002 broke). Then the change proceeds as under `none`.
 *   uffd-wp registration unshares too (the VMA loses its hint), and want_pmd_share refuses a
 *   VM_UFFD_WP VMA, as hugetlb's uffd_disable_huge_pmd_share does.
 * - A shared table stays accounted to one mm, its owner; when the owner unshares, the table and
 *   its pgtables_bytes move to a remaining sharer.
 *
 * Its promise is that no program can tell: every result, errno, signal and value is what `none`
 * gives (the differential property test checks it).
 */
import { FL_IMMAP_HEAD, FL_IMMAP_RWSEM, M_CPUMASK, M_PGD, M_PGTABLES, P_OWNER, P_SHARE, V_FLAGS, V_IMMAP_NEXT, V_MM, V_SHARE_LOCK, P_REFCOUNT } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { down_read, down_write, up_read, up_write } from '../sync/rwsem.js';
import { fileBase } from '../mm/filemap.js';
import {
  lookup_entry, MmuGather, pt_put, pte_alloc_fault, tlb_finish_mmu, VM_FAULT_SIGSEGV, walk_to_pmd, zap_page_range,
} from '../mm/memory.js';
import { split_vma_range } from '../mm/mmap.js';
import { EINVAL, ENOMEM } from '../mm/errno.js';
import { vma_start_write } from '../mm/mmap_lock.js';
import { MODEL_DEFAULT, type ModelOps } from '../mm/model_ops.js';
import { flush_protection, mprotect_fixup } from '../mm/mprotect.js';
import { ptpBase } from '../mm/page_alloc.js';
import { FAULT_FLAG_WRITE, ST_FAULT_SHARED_PMD, type Kernel, type VmFault } from '../mm/percpu.js';
import { entry_off, entry_table, pgd_index, pmd_index, PMD_LEVEL, PMD_SIZE, PTE_LEVEL, pud_index, PUD_LEVEL, table_alloc, table_of } from '../mm/pgtable.js';
import { flush_tlb_mm, tlb_remove_table_sync_one } from '../mm/tlb.js';
import { pte_lock } from '../mm/ptlock.js';
import { spin_unlock } from '../sync/spinlock.js';
import {
  find_vma, vma_end, vma_file, vma_flags, vma_next, vma_pgoff, vma_start, vmaBase, VM_EXEC, VM_READ,
  VM_SHARED, VM_SHARED_PT, VM_UFFD_WP, VM_WRITE,
} from '../mm/vma.js';
import { AssertSite, guard_pgtables, guard_pt_share, guard_upper, guard_upper_populate, i_mmap_assert_locked, i_mmap_assert_write_locked, mmap_assert_write_locked, vma_write_checks } from '../mm/guarded.js';

export const MADV_SHARE_PT = 'MADV_SHARE_PT';

/** want_pmd_share: may the fault at `addr` share a PTE table? The whole PMD range must be in the VMA. */
export function want_pmd_share(k: Kernel, vma: number, addr: number): boolean {
  if ((vma_flags(k, vma) & VM_UFFD_WP) !== 0) return false; // uffd_disable_huge_pmd_share
  const base = Math.floor(addr / PMD_SIZE) * PMD_SIZE;
  return base >= vma_start(k, vma) && base + PMD_SIZE <= vma_end(k, vma);
}

/**
 * --bug unshare-defers-flush (the shape of CVE-2021-4002, "hugetlbfs: flush TLBs correctly after
 * huge_pmd_unshare"): huge_pmd_unshare drops i_mmap_rwsem without flushing, leaving the flush to
 * the caller's mmu_gather — which flushes only when it changed entries in its own range. A
 * partial munmap of a range with no PTEs then unshares a table and flushes nothing: this mm's CPU
 * keeps translations through a table it no longer shares, and the next change the remaining
 * sharer makes there (its shootdown reaches only its own CPUs) leaves them stale. (That the flush
 * comes after the lock drops is not by itself observable here: ptlab's processes are
 * single-threaded, so no CPU runs this mm's user code until the syscall returns; the missing
 * flush is.)
 */
export const BUG_UNSHARE_DEFERS_FLUSH = 'unshare-defers-flush';
/**
 * --bug split-unshares-early (the shape of CVE-2025-38084, "mm/hugetlb: unshare page tables
 * during VMA split, not before"): a partial munmap unshares in may_split, before the split takes
 * the VMA and rmap locks, and clears the hint only then. In between, another process's fault
 * (huge_pmd_share through i_mmap) can share this VMA's table again; the unmap then zaps PTEs in a
 * table the other process maps, and flushes only this mm's CPUs.
 */
export const BUG_SPLIT_UNSHARES_EARLY = 'split-unshares-early';

/**
 * --bug fault-without-vma-lock (the 2022 hugetlb race, fixed by "hugetlb: use new vma_lock for
 * pmd sharing synchronization"): the fault does not take the VMA's share lock, so a
 * huge_pmd_unshare of the same mm under mmap_lock held for read (MADV_DONTNEED) can take the
 * table out of the mm between the fault's walk and its PTE lock — and the sibling that still
 * maps it may then free it: the fault fills a table that is no longer its mm's, or no longer
 * exists.
 */
export const BUG_FAULT_WITHOUT_VMA_LOCK = 'fault-without-vma-lock';

/**
 * --bug unshare-skips-gup-sync (CVE-2025-38085, before "mm/hugetlb: fix huge_pmd_unshare() vs
 * GUP-fast race"): huge_pmd_unshare gives the table away without waiting for gup_fast walkers.
 * With IPI-based TLB flushes the unsharer's own flush happens to wait for them; with broadcast
 * invalidation (--tlb-flush broadcast: arm64 TLBI, x86 INVLPGB) nothing does, and the table's
 * last user may free it while a lockless walker of this mm still stands in it.
 */
export const BUG_UNSHARE_SKIPS_GUP_SYNC = 'unshare-skips-gup-sync';

/**
 * --bug share-count-from-refcount (CVE-2024-57883, fixed by "mm: hugetlb: independent PMD page
 * table shared count"): huge_pmd_unshare asks whether the table is shared from its page's
 * refcount, which a speculative reference (compaction's pfn scanner: the `compact` op) inflates.
 * An unshared table then looks shared: its PMD entry is cleared and its count dropped as if
 * another mm still held it — the table goes with the pages it maps still counted as mapped.
 */
export const BUG_SHARE_COUNT_FROM_REFCOUNT = 'share-count-from-refcount';

export function createPtHintModel(bug = ''): ModelOps {
  const countFromRefcount = bug === BUG_SHARE_COUNT_FROM_REFCOUNT;
  /** Is table t shared? Its share count (pt_share_count), or under the bug its page refcount. */
  function pt_shared(k: Kernel, t: number): boolean {
    const b = ptpBase(k, t);
    return Atomics.load(k.i32, b + P_SHARE) + (countFromRefcount ? Atomics.load(k.i32, b + P_REFCOUNT) : 0) > 1;
  }
  const skipsGupSync = bug === BUG_UNSHARE_SKIPS_GUP_SYNC;
  const noVmaLock = bug === BUG_FAULT_WITHOUT_VMA_LOCK;
  const defersFlush = bug === BUG_UNSHARE_DEFERS_FLUSH;
  const unsharesEarly = bug === BUG_SPLIT_UNSHARES_EARLY;
  /** The address at which sibling `svma` maps the file offset that `vma` maps at `addr`. */
  function sibling_addr(k: Kernel, vma: number, addr: number, svma: number): number {
    const idx = vma_pgoff(k, vma) + (addr - vma_start(k, vma)) / 4096;
    return vma_start(k, svma) + (idx - vma_pgoff(k, svma)) * 4096;
  }

  /**
   * huge_pmd_share: point vmf.pmd (none) at a sibling's PTE table for the same file range.
   * Called with the task's mmap_lock held for read.
   */
  function pmd_share(k: Kernel, vmf: VmFault): void {
    const i32 = k.i32;
    const vma = vmf.vma;
    const file = vma_file(k, vma);
    const sem = fileBase(k, file) + FL_IMMAP_RWSEM;
    down_read(k, sem, LockClass.IMmapRwsem);
    i_mmap_assert_locked(k, file, AssertSite.HugePmdShare, vmf.mm);
    try {
      for (let svma = Atomics.load(i32, fileBase(k, file) + FL_IMMAP_HEAD); svma >= 0; svma = Atomics.load(i32, vmaBase(k, svma) + V_IMMAP_NEXT)) {
        if (svma === vma || vma_flags(k, svma) !== vmf.vm_flags) continue;
        const saddr = sibling_addr(k, vma, vmf.address, svma);
        if (saddr % PMD_SIZE !== vmf.address % PMD_SIZE || !want_pmd_share(k, svma, saddr)) continue;
        const smm = Atomics.load(i32, vmaBase(k, svma) + V_MM);
        const off = lookup_entry(k, smm, Math.floor(saddr / 4096), PMD_LEVEL);
        if (off < 0) continue;
        const se = Atomics.load(i32, off);
        // huge_pmd_share: the sibling's entry, read under i_mmap_rwsem (read) alone, before it is copied.
        if (k.sched !== null) k.sched.point(k, SchedPoint.ShareLoad);
        if (se === 0) continue;
        const t = table_of(k, se, PTE_LEVEL, smm);
        if (t < 0) return;
        guard_pt_share(k, t, AssertSite.HugePmdShare); // the sibling's table, found under i_mmap_rwsem
        Atomics.add(i32, ptpBase(k, t) + P_SHARE, 1);
        guard_upper_populate(k, vmf.pmd, AssertSite.HugePmdShare);
        if (Atomics.compareExchange(i32, vmf.pmd, 0, se) === 0) k.stats[ST_FAULT_SHARED_PMD]++;
        else Atomics.sub(i32, ptpBase(k, t) + P_SHARE, 1);
        return;
      }
    } finally {
      up_read(k, sem);
    }
  }

  /**
   * The fault of a hinted VMA: the VMA's own permissions, then share if allowed, then as none —
   * all under the VMA's share lock held for read (hugetlb_fault's hugetlb_vma_lock_read), so no
   * huge_pmd_unshare of this VMA runs between the walk and the PTE's install.
   */
  function fault(k: Kernel, vmf: VmFault): number {
    const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
    const f = vmf.vm_flags;
    if (write ? (f & VM_WRITE) === 0 : (f & (VM_READ | VM_WRITE | VM_EXEC)) === 0) return VM_FAULT_SIGSEGV;
    if (noVmaLock) return fault_locked(k, vmf);
    const lock = vmaBase(k, vmf.vma) + V_SHARE_LOCK;
    down_read(k, lock, LockClass.ShareVmaLock);
    try {
      return fault_locked(k, vmf);
    } finally {
      up_read(k, lock);
    }
  }

  function fault_locked(k: Kernel, vmf: VmFault): number {
    const r = walk_to_pmd(k, vmf);
    if (r !== 0) return r;
    const pmdv = Atomics.load(k.i32, vmf.pmd);
    // The PMD entry was none when read; another thread or a sibling may fill it before the share.
    if (k.sched !== null) k.sched.point(k, SchedPoint.ShareLoad);
    if (pmdv === 0 && want_pmd_share(k, vmf.vma, vmf.address)) pmd_share(k, vmf);
    return pte_alloc_fault(k, vmf);
  }

  /** The table is leaving `mm` but others still use it: move it, and its bytes, to one of them. */
  function transfer_owner(k: Kernel, t: number, mm: number, vma: number, addr: number): void {
    const i32 = k.i32;
    const file = vma_file(k, vma);
    i_mmap_assert_write_locked(k, file, AssertSite.PtShareTransfer, mm);
    // A sibling can map table t only where it maps the same file offset (huge_pmd_share's rule).
    for (let svma = Atomics.load(i32, fileBase(k, file) + FL_IMMAP_HEAD); svma >= 0; svma = Atomics.load(i32, vmaBase(k, svma) + V_IMMAP_NEXT)) {
      const smm = Atomics.load(i32, vmaBase(k, svma) + V_MM);
      if (smm === mm) continue;
      const saddr = sibling_addr(k, vma, addr, svma);
      if (saddr < vma_start(k, svma) || saddr >= vma_end(k, svma)) continue;
      const off = lookup_entry(k, smm, Math.floor(saddr / 4096), PMD_LEVEL);
      if (off < 0) continue;
      const e = Atomics.load(i32, off);
      if (k.sched !== null) k.sched.point(k, SchedPoint.UnshareLoad);
      if (e === 0 || entry_table(e) !== t) continue;
      guard_pt_share(k, t, AssertSite.PtShareTransfer);
      guard_pgtables(k, mm, AssertSite.PtShareTransfer);
      guard_pgtables(k, smm, AssertSite.PtShareTransfer);
      Atomics.sub(i32, k.mmBase(mm) + M_PGTABLES, 1);
      Atomics.add(i32, k.mmBase(smm) + M_PGTABLES, 1);
      Atomics.store(i32, ptpBase(k, t) + P_OWNER, smm);
      return;
    }
  }

  /**
   * huge_pmd_unshare's last step, once `mm`'s entry for table `t` (at `a`) is cleared: the table
   * goes to a remaining sharer if `mm` owned it, and loses `mm`'s share. Before that, the 2025
   * fix for CVE-2025-38085 ("mm/hugetlb: fix huge_pmd_unshare() vs GUP-fast race") waits for
   * every gup_fast walker (tlb_remove_table_sync_one): once the caller drops i_mmap_rwsem the
   * table may be another process's ordinary table, which it may free. Under --unshare-flush
   * batched that wait is the caller's, once per batch (see unshare_sync). Returns true when the
   * table is left with one user.
   */
  function drop_share(k: Kernel, t: number, mm: number, vma: number, a: number): boolean {
    if (!skipsGupSync && !k.unshareBatched) tlb_remove_table_sync_one(k);
    if (Atomics.load(k.i32, ptpBase(k, t) + P_OWNER) === mm) transfer_owner(k, t, mm, vma, Math.max(a, vma_start(k, vma)));
    pt_put(k, t);
    return Atomics.load(k.i32, ptpBase(k, t) + P_SHARE) === 1;
  }

  /**
   * --unshare-flush batched (David Hildenbrand, Dec 2025: the unshare's IPI batched in the
   * mmu_gather): one tlb_remove_table_sync_one for the whole batch, after its TLB flush and
   * before i_mmap_rwsem drops, and none unless a table was left with one user (only then can it
   * become an ordinary table that its last user frees).
   */
  function unshare_sync(k: Kernel, lastSharer: boolean): void {
    if (lastSharer && k.unshareBatched && !skipsGupSync) tlb_remove_table_sync_one(k);
  }

  /**
   * huge_pmd_unshare over the whole VMA, and the hint cleared: afterwards the VMA is an ordinary
   * one. Takes i_mmap_rwsem for write; flushes this mm's TLBs before dropping it.
   */
  function unhint(k: Kernel, vma: number, early = false): void {
    const i32 = k.i32;
    const mm = Atomics.load(i32, vmaBase(k, vma) + V_MM);
    const sem = fileBase(k, vma_file(k, vma)) + FL_IMMAP_RWSEM;
    down_write(k, sem, LockClass.IMmapRwsem);
    mmap_assert_write_locked(k, mm, AssertSite.HugePmdUnshare);
    if (!early) {
      vma_start_write(k, vma); // vm_flags_clear
      vma_write_checks(k, vma, AssertSite.HugePmdUnshare);
      Atomics.and(i32, vmaBase(k, vma) + V_FLAGS, ~VM_SHARED_PT);
    }
    let unshared = false;
    let lastSharer = false;
    for (let a = Math.floor(vma_start(k, vma) / PMD_SIZE) * PMD_SIZE; a < vma_end(k, vma); a += PMD_SIZE) {
      const off = lookup_entry(k, mm, a / 4096, PMD_LEVEL);
      if (off < 0) continue;
      const e = Atomics.load(i32, off);
      // huge_pmd_unshare: the PMD entry read, before it is cleared and its share dropped.
      if (k.sched !== null) k.sched.point(k, SchedPoint.UnshareLoad);
      if (e === 0) continue;
      const t = table_of(k, e, PTE_LEVEL, mm);
      if (t < 0) break;
      if (!pt_shared(k, t)) continue;
      guard_upper(k, off, AssertSite.HugePmdUnshare); // pud_clear under i_mmap_rwsem for write
      Atomics.store(i32, off, 0);
      if (drop_share(k, t, mm, vma, a)) lastSharer = true;
      unshared = true;
    }
    if (unshared && !defersFlush) flush_tlb_mm(k, mm); // before the lock drops
    unshare_sync(k, lastSharer);
    up_write(k, sem);
    if (early) {
      // The bug: the split takes the locks only now, and only now does the VMA lose its hint.
      down_write(k, sem, LockClass.IMmapRwsem);
      vma_start_write(k, vma);
      vma_write_checks(k, vma, AssertSite.HugePmdUnshare);
      Atomics.and(i32, vmaBase(k, vma) + V_FLAGS, ~VM_SHARED_PT);
      up_write(k, sem);
    }
  }

  /**
   * MADV_DONTNEED on [start, end) of a hinted VMA, mmap_lock held for read: __hugetlb_zap_begin
   * takes i_mmap_rwsem for write for the whole zap, and __unmap_hugepage_range unshares every
   * shared table the range meets (huge_pmd_unshare under the table's PTE lock) — the whole 2 MiB
   * it maps leaves this mm, not only the range — then zaps what is this mm's own. The TLB is
   * flushed for the unshared tables before the lock drops ("hugetlbfs: flush TLBs correctly
   * after huge_pmd_unshare", CVE-2021-4002: the flush covered only the range zapped). The hint
   * stays: later faults may share again. Faults of this VMA are held off by its share lock
   * (hugetlb_vma_lock_write), taken first, as __hugetlb_zap_begin does.
   */
  function madvise_dontneed(k: Kernel, vma: number, start: number, end: number, tlb: MmuGather): void {
    const i32 = k.i32;
    const mm = Atomics.load(i32, vmaBase(k, vma) + V_MM);
    const sem = fileBase(k, vma_file(k, vma)) + FL_IMMAP_RWSEM;
    const lock = vmaBase(k, vma) + V_SHARE_LOCK;
    down_write(k, lock, LockClass.ShareVmaLock); // hugetlb_vma_lock_write: no fault of this VMA is between walk and PTE lock
    down_write(k, sem, LockClass.IMmapRwsem);
    try {
      let unshared = false;
      let lastSharer = false;
      for (let a = Math.floor(start / PMD_SIZE) * PMD_SIZE; a < end; a += PMD_SIZE) {
        const off = lookup_entry(k, mm, a / 4096, PMD_LEVEL);
        if (off < 0) continue;
        const e = Atomics.load(i32, off);
        if (k.sched !== null) k.sched.point(k, SchedPoint.UnshareLoad);
        if (e === 0) continue;
        const t = table_of(k, e, PTE_LEVEL, mm);
        if (t < 0 || !pt_shared(k, t)) continue;
        // huge_pmd_unshare with the PTE lock held (huge_pte_lock in __unmap_hugepage_range): a
        // fault holding the lock sees the entry still there, or after, gone.
        const ptl = pte_lock(k, t);
        guard_upper(k, off, AssertSite.HugePmdUnshare);
        Atomics.store(i32, off, 0);
        spin_unlock(k, ptl);
        if (drop_share(k, t, mm, vma, a)) lastSharer = true;
        unshared = true;
      }
      if (unshared && !defersFlush) flush_tlb_mm(k, mm); // the whole unshared range, before the lock drops
      unshare_sync(k, lastSharer);
      zap_page_range(k, mm, start, end, tlb);
      tlb_finish_mmu(k, mm, tlb);
    } finally {
      up_write(k, sem);
      up_write(k, lock);
    }
  }

  /**
   * fork of a hinted VMA, as hugetlb's copy_hugetlb_page_range for a shared mapping: the child's
   * VMA keeps the hint, and wherever the child may share (want_pmd_share) and the parent has a
   * PTE table, the child's PMD entry points to the parent's table (huge_pte_alloc ->
   * huge_pmd_share, under i_mmap_rwsem for read): "if the pagetables are shared don't copy or
   * take references". Elsewhere the child's faults share or fill later. Both mms' mmap_lock are
   * held for write (dup_mmap).
   */
  function fork_vma(k: Kernel, src: number, dst: number): number {
    const i32 = k.i32;
    const parent = Atomics.load(i32, vmaBase(k, src) + V_MM);
    const child = Atomics.load(i32, vmaBase(k, dst) + V_MM);
    const sem = fileBase(k, vma_file(k, dst)) + FL_IMMAP_RWSEM;
    down_read(k, sem, LockClass.IMmapRwsem);
    try {
      const cpgd = Atomics.load(i32, k.mmBase(child) + M_PGD);
      for (let a = Math.ceil(vma_start(k, dst) / PMD_SIZE) * PMD_SIZE; a + PMD_SIZE <= vma_end(k, dst); a += PMD_SIZE) {
        if (!want_pmd_share(k, dst, a)) continue;
        const soff = lookup_entry(k, parent, a / 4096, PMD_LEVEL);
        if (soff < 0) continue;
        const se = Atomics.load(i32, soff);
        if (k.sched !== null) k.sched.point(k, SchedPoint.ShareLoad);
        if (se === 0) continue;
        const t = table_of(k, se, PTE_LEVEL, parent);
        if (t < 0) continue;
        const vpn = a / 4096;
        const pud = table_alloc(k, entry_off(k, cpgd, pgd_index(vpn)), child, PUD_LEVEL);
        if (pud < 0) return -ENOMEM;
        const pmd = table_alloc(k, entry_off(k, pud, pud_index(vpn)), child, PMD_LEVEL);
        if (pmd < 0) return -ENOMEM;
        const doff = entry_off(k, pmd, pmd_index(vpn));
        guard_pt_share(k, t, AssertSite.HugePmdShare);
        Atomics.add(i32, ptpBase(k, t) + P_SHARE, 1);
        guard_upper_populate(k, doff, AssertSite.HugePmdShare);
        if (Atomics.compareExchange(i32, doff, 0, se) !== 0) Atomics.sub(i32, ptpBase(k, t) + P_SHARE, 1);
      }
      return 0;
    } finally {
      up_read(k, sem);
    }
  }

  return {
    name: 'pt-hint',
    mmap: () => MODEL_DEFAULT,
    fault,
    mprotect(k, vma, start, end, vm_flags) {
      unhint(k, vma);
      const tlb = new MmuGather();
      const mm = Atomics.load(k.i32, vmaBase(k, vma) + V_MM);
      const r = mprotect_fixup(k, mm, vma, start, end, vm_flags & ~VM_SHARED_PT, tlb);
      flush_protection(k, mm, tlb);
      return r;
    },
    may_munmap(k, vma, start, end) {
      // A partial unmap splits the VMA: unshare first, then it is unmapped as under none.
      if (start !== vma_start(k, vma) || end !== vma_end(k, vma)) unhint(k, vma, unsharesEarly);
      return 0;
    },
    detach(k, vma) {
      unhint(k, vma);
      const mm = Atomics.load(k.i32, vmaBase(k, vma) + V_MM);
      const tlb = new MmuGather();
      zap_page_range(k, mm, vma_start(k, vma), vma_end(k, vma), tlb);
      tlb_finish_mmu(k, mm, tlb);
    },
    switch_mm: () => {},
    flush_mask: (k, mm) => Atomics.load(k.i32, k.mmBase(mm) + M_CPUMASK),
    /** uffd-wp registration unshares first (hugetlb: uffd_disable_huge_pmd_share); the VMA is then an ordinary one. */
    uffd_register: (k, vma) => unhint(k, vma),
    madvise_dontneed,
    fork_vma,
    /** mremap: unshare first and drop the hint (hugetlb_unshare_all_pmds before moving); then as none. */
    mremap_prepare(k, vma) {
      unhint(k, vma);
      return 0;
    },
    advices: ['MADV_SHARE_PT'],
    /** madvise(MADV_SHARE_PT): mark the shared shmem VMAs of [start, end). mmap_lock held for write. */
    madvise(k, mm, start, end, advice) {
      if (advice !== MADV_SHARE_PT) return -EINVAL;
      // madvise_walk_vmas: the advice applies to what is mapped; a hole makes the call return
      // ENOMEM after the rest was done.
      let hole = false;
      for (let at = start, v = find_vma(k, mm, start); at < end; v = vma_next(k, v)) {
        if (v < 0 || vma_start(k, v) > at) hole = true;
        if (v < 0) break;
        at = vma_end(k, v);
      }
      for (let v = find_vma(k, mm, start); v >= 0 && vma_start(k, v) < end; v = vma_next(k, v)) {
        const f = vma_flags(k, v);
        if ((f & VM_SHARED) === 0 || vma_file(k, v) < 0 || (f & VM_SHARED_PT) !== 0) continue;
        v = split_vma_range(k, mm, v, start, end);
        if (v < 0) return v;
        vma_start_write(k, v); // vm_flags_set
        vma_write_checks(k, v, AssertSite.VmFlagsSet);
        Atomics.or(k.i32, vmaBase(k, v) + V_FLAGS, VM_SHARED_PT);
      }
      return hole ? -ENOMEM : 0;
    },
  };
}
