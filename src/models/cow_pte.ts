/**
 * `cow-pte`: copy-on-write PTE tables at fork — On-Demand-Fork (Zhao, Bergman, Fonseca; EuroSys
 * 2021) and Chih-En Lin's "Introduce Copy-On-Write to Page Table" v4 (Feb 2023). Lin's series
 * turns it on per process with prctl(PR_SET_COW_PTE) before fork; under `--model cow-pte` every
 * process has it on.
 *
 * - fork (copy_pmd_range -> copy_cow_pte_range): instead of copying a PTE table of the parent,
 *   the child's PMD entry points to the parent's table, and both PMD entries are write-protected
 *   (pmdp_set_wrprotect, set_pmd_at(pmd_wrprotect)); the table's share count goes up
 *   (pmd_get_pte). The PTEs are not touched: as on x86, R/W cleared in the PMD entry makes every
 *   translation below it read-only, and dup_mmap flushes the parent's TLB. A table is shared
 *   only when every VMA of the parent in its 2 MiB is a private mapping fork copies (no
 *   VM_SHARED, VM_DONTCOPY, VM_WIPEONFORK, uffd-wp; Lin: "Handle VM_DONTCOPY with COW PTE fork")
 *   and it holds no uffd-wp marker; else it is copied as `none` copies it.
 * - Accounting is deferred, as in ODF and Lin's RFC v1/v2 (v3 moved it back into fork): fork
 *   takes no map count and gives the child no RSS for a shared table; the table stays accounted
 *   (pgtables_bytes, RSS of its PTEs) to one mm, its owner (P_OWNER). Its other sharers are
 *   recorded beside it (P_COW_SHARERS, nine at most: a fork that would make a tenth copies
 *   the table), so an owner that leaves hands the table and its accounting to one of them.
 * - The COW break (handle_cow_pte_fault / break_cow_pte), before anything changes a PTE of a
 *   shared table for one mm — a fault (any: ptlab has no shared zero page, so a read fault
 *   installs a page too), mprotect, mremap (both ranges), MADV_DONTNEED, uffd-wp, a munmap that
 *   keeps a VMA of the mm in the table's 2 MiB: the last user takes the table back writable
 *   (pmd_mkwrite); otherwise the mm gets a copy — each present PTE copied with its map count and
 *   RSS, and, the page now being mapped twice, write-protected in both tables (copy_present_pte's
 *   is_cow_mapping rule: page-level COW as after a plain fork) — its PMD entry swung to the copy
 *   under the shared table's PTE lock, one share dropped, and its TLB flushed.
 * - A munmap or exit that takes the table's whole 2 MiB out of the mm only drops the mm's share
 *   (free_pmd_range's pmd_put_pte); the last user zaps and frees it as usual. Truncation and hole
 *   punching (unmap_mapping_range) zap a shared table in place, once for every sharer: its PTEs
 *   are the same for all of them, and every sharer maps the file there.
 * - Every change of a shared table's share count, owner and sharers, and of a PMD entry pointing
 *   to it, is made under the table's PTE lock (Lin: "Use pte lock to protect the break COW PTE
 *   and free COW-ed PTE"), whatever locks of its own mm the changer holds.
 *
 * The promise is `none`'s results for every program (test/models/cow_pte.test.ts checks it op by
 * op); the one place a program can tell is memory exhaustion, where a copy can fail (a fault then
 * gives VM_FAULT_OOM, munmap, mprotect, mremap, madvise and UFFDIO_WRITEPROTECT -ENOMEM).
 */
import { FRAME_ANON, M_CPUMASK, M_FLAGS, MMF_COW_PTE, M_PGD, M_PGTABLES, M_RSS_ANON, M_RSS_FILE, P_COW_SHARERS, P_COW_SLOTS, P_OWNER, P_SHARE, P_UFFD_WP, PTRS_PER_TABLE, R_GEN, R_STATE } from '../shm/layout.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { spin_unlock } from '../sync/spinlock.js';
import { EINVAL, ENOMEM } from '../mm/errno.js';
import { AssertSite, guard_cow_pte, guard_pte, guard_rss, guard_upper_cow, guard_upper_populate, Guarded, pte_lockptr } from '../mm/guarded.js';
import { __handle_mm_fault, lookup_entry, type MmuGather } from '../mm/memory.js';
import { MODEL_DEFAULT, type ModelOps } from '../mm/model_ops.js';
import { alloc_ptp, frameBase, free_ptp, ptpBase } from '../mm/page_alloc.js';
import { ST_COW_PTE_COPIED, ST_COW_PTE_REUSED, ST_COW_PTE_SHARED, type Kernel } from '../mm/percpu.js';
import {
  _PAGE_PRESENT, _PAGE_RW, entry_off, entry_table, mk_table_entry, pgd_index, PMD_LEVEL, pmd_index, PMD_SIZE, pte_pfn, PTE_LEVEL, PUD_LEVEL, pud_index, table_alloc, table_of,
} from '../mm/pgtable.js';
import { pte_lock } from '../mm/ptlock.js';
import { frame_add_rmap } from '../mm/rmap.js';
import { flush_tlb_mm } from '../mm/tlb.js';
import { vma_start_write } from '../mm/mmap_lock.js';
import { find_vma, vma_flags, vma_next, vma_start, VM_DONTCOPY, VM_SHARED, VM_SHARED_PT, VM_UFFD_WP, VM_WIPEONFORK } from '../mm/vma.js';

/**
 * --bug cow-break-keeps-share: the break copies the table and swings the mm's PMD entry to the
 * copy but leaves the shared table's share count (and the mm among its sharers) — a missing
 * pmd_put_pte. The count then says two while one entry points to the table: the last real user
 * can never take it back, and when it goes the table is left with nobody pointing to it.
 */
export const BUG_COW_BREAK_KEEPS_SHARE = 'cow-break-keeps-share';
/**
 * --bug cow-fork-no-flush: fork write-protects the parent's PMD entries but does not flush the
 * parent's TLB (dup_mmap's flush_tlb_mm(oldmm) left out for shared tables). A translation the
 * parent's CPU cached writable before the fork stays writable: the parent's next store to that
 * page lands in the page the child reads through the shared table.
 */
export const BUG_COW_FORK_NO_FLUSH = 'cow-fork-no-flush';

/**
 * --bug cow-break-no-recheck: once the copy is allocated (the table's lock dropped for it) the
 * break does not look again: it copies even when another thread of its mm has broken the entry
 * meanwhile (the first copy is orphaned, the share dropped twice) or the other sharers have left
 * (Lin's pmd_put_pte refuses to drop the last reference: "Free the new one and reuse the old
 * one"), leaving a table no entry points to.
 */
export const BUG_COW_BREAK_NO_RECHECK = 'cow-break-no-recheck';

/** A VMA with any of these keeps its table out of sharing: fork does not copy its PTEs as they are. */
const NOT_SHAREABLE = VM_SHARED | VM_DONTCOPY | VM_WIPEONFORK | VM_SHARED_PT | VM_UFFD_WP;

export function createCowPteModel(bug = ''): ModelOps {
  const keepsShare = bug === BUG_COW_BREAK_KEEPS_SHARE;
  const forkNoFlush = bug === BUG_COW_FORK_NO_FLUSH;
  const noRecheck = bug === BUG_COW_BREAK_NO_RECHECK;

  /** May fork share `src`'s table `t` for the 2 MiB at `base`? */
  function shareable(k: Kernel, src: number, base: number, t: number): boolean {
    const i32 = k.i32;
    for (let v = find_vma(k, src, base); v >= 0 && vma_start(k, v) < base + PMD_SIZE; v = vma_next(k, v)) {
      if ((vma_flags(k, v) & NOT_SHAREABLE) !== 0) return false;
    }
    const b = ptpBase(k, t);
    // uffd-wp markers live beside the PTEs and a child does not inherit them (copy_present_pte:
    // pte_clear_uffd_wp unless the child's VMA is registered).
    for (let w = 0; w < PTRS_PER_TABLE / 32; w++) if (Atomics.load(i32, b + P_UFFD_WP + w) !== 0) return false;
    // An empty table: fork copies nothing there (copy_pte_range would allocate no child table).
    for (let i = 0; i < PTRS_PER_TABLE; i++) if (Atomics.load(i32, entry_off(k, t, i)) !== 0) return true;
    return false;
  }

  /** Records `mm` among table `t`'s sharers; false when every slot is taken. Under t's PTE lock. */
  function add_sharer(k: Kernel, t: number, mm: number): boolean {
    const b = ptpBase(k, t) + P_COW_SHARERS;
    for (let i = 0; i < P_COW_SLOTS; i++) {
      if (Atomics.load(k.i32, b + i) === 0) {
        Atomics.store(k.i32, b + i, mm + 1);
        return true;
      }
    }
    return false;
  }

  /**
   * pmd_put_pte for a table `mm` leaves while others keep it (its entry already swung or
   * cleared): one share less, and if `mm` owned it, the table and what it accounts — its 4 KiB of
   * pgtables_bytes, the RSS of its present PTEs — go to a remaining sharer. Under t's PTE lock;
   * the owner changes last (under --ptl mm the lock is the owner's page_table_lock).
   */
  function drop_share(k: Kernel, t: number, mm: number, site: AssertSite): void {
    const i32 = k.i32;
    const b = ptpBase(k, t);
    if (keepsShare && site === AssertSite.HandleCowPteFault) return; // the bug: no pmd_put_pte
    guard_cow_pte(k, t, Guarded.PtShare, mm, site);
    Atomics.sub(i32, b + P_SHARE, 1);
    const owner = Atomics.load(i32, b + P_OWNER);
    let slot = -1;
    for (let i = 0; i < P_COW_SLOTS; i++) {
      const s = Atomics.load(i32, b + P_COW_SHARERS + i);
      if (owner === mm ? s !== 0 : s === mm + 1) {
        slot = i;
        break;
      }
    }
    if (slot < 0) return; // (an owner with no sharer recorded: only after a planted bug)
    if (owner !== mm) {
      Atomics.store(i32, b + P_COW_SHARERS + slot, 0);
      return;
    }
    const to = Atomics.load(i32, b + P_COW_SHARERS + slot) - 1;
    let nf = 0;
    let na = 0;
    for (let i = 0; i < PTRS_PER_TABLE; i++) {
      const e = Atomics.load(i32, entry_off(k, t, i));
      if (e === 0) continue;
      if (Atomics.load(i32, frameBase(k, pte_pfn(e)) + R_STATE) === FRAME_ANON) na++;
      else nf++;
    }
    guard_cow_pte(k, t, Guarded.Rss, to, site);
    guard_cow_pte(k, t, Guarded.Pgtables, to, site);
    Atomics.sub(i32, k.mmBase(mm) + M_RSS_FILE, nf);
    Atomics.sub(i32, k.mmBase(mm) + M_RSS_ANON, na);
    Atomics.add(i32, k.mmBase(to) + M_RSS_FILE, nf);
    Atomics.add(i32, k.mmBase(to) + M_RSS_ANON, na);
    Atomics.sub(i32, k.mmBase(mm) + M_PGTABLES, 1);
    Atomics.add(i32, k.mmBase(to) + M_PGTABLES, 1);
    Atomics.store(i32, b + P_COW_SHARERS + slot, 0);
    Atomics.store(i32, b + P_OWNER, to);
  }

  /** The last user takes its table back: the PMD entry at `off` (value `e`) writable again. Under t's PTE lock. */
  function reuse(k: Kernel, off: number, e: number, t: number, site: AssertSite): void {
    guard_upper_cow(k, off, t, site);
    Atomics.store(k.i32, off, e | _PAGE_RW); // pmd_mkwrite: widening, no flush needed
    k.stats[ST_COW_PTE_REUSED]++;
  }

  /**
   * copy_cow_pte_range: share `src`'s PTE table for the 2 MiB at `addr` with `dst`. Called by
   * copy_page_range for each PMD range of each private VMA, so a table spanning several VMAs is
   * met again: the child's entry then already points to it.
   */
  function copy_pte_table(k: Kernel, dst: number, src: number, addr: number, tlb: MmuGather): number {
    const i32 = k.i32;
    const vpn = Math.floor(addr / 4096);
    const soff = lookup_entry(k, src, vpn, PMD_LEVEL);
    if (soff < 0) return 0;
    const se = Atomics.load(i32, soff);
    if (se === 0) return 0;
    const t = table_of(k, se, PTE_LEVEL, src);
    if (t < 0) return 0;
    // Only a process that asked (prctl(PR_SET_COW_PTE): MMF_COW_PTE) forks with shared tables.
    if ((Atomics.load(i32, k.mmBase(src) + M_FLAGS) & MMF_COW_PTE) === 0) return 0;
    const doff0 = lookup_entry(k, dst, vpn, PMD_LEVEL);
    if (doff0 >= 0) {
      const de = Atomics.load(i32, doff0);
      if (de !== 0) return entry_table(de) === t ? 1 : 0; // "Skip if the PTE already did COW PTE this time"
    }
    const base = Math.floor(addr / PMD_SIZE) * PMD_SIZE;
    if (!shareable(k, src, base, t)) return 0;
    // The table carries the PTEs of every VMA in its 2 MiB, not only the one dup_mmap is at:
    // write-lock them all now ("fork: lock VMAs of the parent process when forking"), or a fault
    // under a later VMA's lock could still fill the table after it is shared.
    for (let v = find_vma(k, src, base); v >= 0 && vma_start(k, v) < base + PMD_SIZE; v = vma_next(k, v)) vma_start_write(k, v);
    const dpgd = Atomics.load(i32, k.mmBase(dst) + M_PGD);
    const pud = table_alloc(k, entry_off(k, dpgd, pgd_index(vpn)), dst, PUD_LEVEL);
    if (pud < 0) return -1;
    const pmd = table_alloc(k, entry_off(k, pud, pud_index(vpn)), dst, PMD_LEVEL);
    if (pmd < 0) return -1;
    const doff = entry_off(k, pmd, pmd_index(vpn));
    const ptl = pte_lock(k, t);
    try {
      if (!add_sharer(k, t, dst)) return 0; // nine sharers already: copy it
      guard_cow_pte(k, t, Guarded.PtShare, src, AssertSite.CopyCowPteRange);
      Atomics.add(i32, ptpBase(k, t) + P_SHARE, 1); // pmd_get_pte
      guard_upper_populate(k, doff, AssertSite.CopyCowPteRange); // pmd_install in the child, under its mmap_lock
      Atomics.store(i32, doff, se & ~_PAGE_RW); // set_pmd_at(dst_mm, pmd_wrprotect)
      if ((se & _PAGE_RW) !== 0) {
        guard_upper_cow(k, soff, t, AssertSite.CopyCowPteRange);
        Atomics.store(i32, soff, se & ~_PAGE_RW); // pmdp_set_wrprotect(src_mm)
        if (!forkNoFlush) tlb.addTable(t); // dup_mmap flushes the parent before its lock drops
      }
    } finally {
      spin_unlock(k, ptl);
    }
    k.stats[ST_COW_PTE_SHARED]++;
    return 1;
  }

  /** handle_cow_pte_fault / break_cow_pte: see ModelOps.break_cow_pte. */
  function break_cow_pte(k: Kernel, mm: number, off: number, _addr: number): number {
    const i32 = k.i32;
    const e = Atomics.load(i32, off);
    if (e === 0 || (e & _PAGE_RW) !== 0) return 0;
    const t = table_of(k, e, PTE_LEVEL, mm);
    if (t < 0) return 0; // reported: the machine stops
    const b = ptpBase(k, t);
    let ptl = pte_lock(k, t);
    if (Atomics.load(i32, off) !== e) { // another thread of the mm broke it first
      spin_unlock(k, ptl);
      return 0;
    }
    if (Atomics.load(i32, b + P_SHARE) === 1) { // "Fast path, check if we are the only one ... reuse it."
      reuse(k, off, e, t, AssertSite.HandleCowPteFault);
      spin_unlock(k, ptl);
      return 0;
    }
    spin_unlock(k, ptl);
    // "We don't hold the lock when allocating the new PTE."
    const nt = alloc_ptp(k, mm, PTE_LEVEL);
    if (nt < 0) return -ENOMEM;
    // Another sharer may break, drop or leave the table meanwhile; another thread may break it.
    if (k.sched !== null) k.sched.point(k, SchedPoint.CowBreakRelock);
    ptl = pte_lock(k, t);
    if (!noRecheck && (Atomics.load(i32, off) !== e || Atomics.load(i32, b + P_SHARE) === 1)) {
      // Broken by another thread meanwhile, or the other sharers left: "Free the new one and
      // reuse the old one" (pmd_put_pte refused to drop the last reference).
      if (Atomics.load(i32, off) === e) reuse(k, off, e, t, AssertSite.HandleCowPteFault);
      spin_unlock(k, ptl);
      free_ptp(k, nt);
      return 0;
    }
    // The copy is no one's yet; its lock is taken as set_pte_at's rule asks (unless it is the same word).
    const nptl = pte_lockptr(k, nt) !== ptl ? pte_lock(k, nt) : -1;
    guard_pte(k, t, AssertSite.HandleCowPteFault);
    guard_pte(k, nt, AssertSite.HandleCowPteFault);
    guard_rss(k, mm, nt, AssertSite.HandleCowPteFault);
    let nf = 0;
    let na = 0;
    for (let i = 0; i < PTRS_PER_TABLE; i++) {
      const so = entry_off(k, t, i);
      let pe = Atomics.load(i32, so);
      if (pe === 0) continue;
      if ((pe & _PAGE_RW) !== 0) {
        // copy_present_pte, is_cow_mapping && pte_write: the page is now mapped by two tables;
        // write-protect it in both (no TLB holds it writable: every sharer's PMD entry is
        // write-protected while the table is shared).
        pe &= ~_PAGE_RW;
        Atomics.store(i32, so, pe);
      }
      const f = pte_pfn(pe);
      if ((pe & _PAGE_PRESENT) !== 0) frame_add_rmap(k, f); // (a migration entry holds no map count)
      if (Atomics.load(i32, frameBase(k, f) + R_STATE) === FRAME_ANON) na++;
      else nf++;
      Atomics.store(i32, entry_off(k, nt, i), pe);
    }
    Atomics.add(i32, k.mmBase(mm) + M_RSS_FILE, nf);
    Atomics.add(i32, k.mmBase(mm) + M_RSS_ANON, na);
    guard_upper_cow(k, off, t, AssertSite.HandleCowPteFault);
    Atomics.store(i32, off, mk_table_entry(nt, Atomics.load(i32, ptpBase(k, nt) + R_GEN))); // writable: the copy is mm's alone
    if (nptl >= 0) spin_unlock(k, nptl);
    drop_share(k, t, mm, AssertSite.HandleCowPteFault);
    spin_unlock(k, ptl);
    // "Do TLB flushing in break COW PTE handler": mm's CPUs let go of translations through the
    // table it left.
    flush_tlb_mm(k, mm);
    k.stats[ST_COW_PTE_COPIED]++;
    return 0;
  }

  /** free_pmd_range's pmd_put_pte: see ModelOps.drop_cow_pte. mmap_lock held for write. */
  function drop_cow_pte(k: Kernel, mm: number, off: number, t: number): boolean {
    const i32 = k.i32;
    const ptl = pte_lock(k, t);
    try {
      const e = Atomics.load(i32, off);
      if (e === 0 || entry_table(e) !== t) return true; // (gone already)
      if (Atomics.load(i32, ptpBase(k, t) + P_SHARE) === 1) {
        reuse(k, off, e, t, AssertSite.CowPtePut);
        return false;
      }
      guard_upper_cow(k, off, t, AssertSite.CowPtePut);
      Atomics.store(i32, off, 0); // pmd_clear
      drop_share(k, t, mm, AssertSite.CowPtePut);
      return true;
    } finally {
      spin_unlock(k, ptl);
    }
  }

  return {
    name: 'cow-pte',
    mmap: () => MODEL_DEFAULT,
    fault: (k, vmf) => __handle_mm_fault(k, vmf),
    mprotect: () => -EINVAL, // (no VM_SHARED_PT VMA under this model)
    may_munmap: () => 0,
    detach: () => {},
    switch_mm: () => {},
    flush_mask: (k, mm) => Atomics.load(k.i32, k.mmBase(mm) + M_CPUMASK),
    copy_pte_table,
    break_cow_pte,
    drop_cow_pte,
  };
}

