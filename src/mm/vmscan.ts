/**
 * Page reclaim through the reverse map (mm/vmscan.c shrink_folio_list, mm/rmap.c try_to_unmap /
 * rmap_walk_file / try_to_unmap_one / folio_referenced_one), for page-cache pages of shmem files.
 *
 * What eviction means here. Linux reclaims a shmem folio by swapping it out: unmap it from every
 * mapping (try_to_unmap), write it to swap, drop it from the page cache. ptlab has no swap, so it
 * does what shrink_folio_list does with a folio it cannot write out (shmem without swap, or a
 * dirty folio kept): the folio is unmapped from every mapping — after which folio_mapped() is
 * false — and stays in the page cache (keep_locked / activate). The next access faults it back in
 * from the page cache with the same data, so no data can be lost; the danger reclaim brings is a
 * stale TLB entry, for a PTE cleared on one CPU and not flushed on another. (Real reclaim then
 * frees the folio, and that stale entry becomes a use-after-free; here it is caught as the entry
 * itself: the stale-TLB audit at quiescence, or a store through it, stale-tlb-write.)
 *
 * Shared page tables change the rmap walk (Pedro Falcato, Feb 2026): "modify the PTE, flush the
 * TLB for the mm" becomes "for every mm that maps this table". rmap_walk_file meets a PTE table
 * that pt-hint shares (P_SHARE > 1) once per sharer's VMA; it is cleared once — through its owner,
 * as zap_page_range changes a shared table only from there — and every CPU of every mm whose
 * walk reaches that table is flushed. (hugetlb instead unshares the PMD table in
 * try_to_unmap_one, huge_pmd_unshare; pt-hint keeps the table shared.) And reclaim loses
 * accessed-bit information: page_referenced counts one reference per mapping whose PTE has
 * _PAGE_ACCESSED, so N processes that reference a page through one shared PTE count once.
 */
import {
  F_MAPCOUNT, FL_IMMAP_HEAD, FL_IMMAP_RWSEM, M_MMAP_LOCK, M_RSS_FILE, P_OWNER, P_SHARE, V_IMMAP_NEXT, V_MM,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { down_read, up_read } from '../sync/rwsem.js';
import { spin_unlock } from '../sync/spinlock.js';
import { EINVAL, ENOMEM } from './errno.js';
import { fileBase, filemap_get_frame, filemap_indices, folio_trylock, folio_unlock } from './filemap.js';
import { AssertSite, guard_pte, guard_rss, i_mmap_assert_locked, pte_assert_locked } from './guarded.js';
import { MmuGather, tlb_finish_mmus } from './memory.js';
import { page_align } from './mmap.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import { frameBase, ptpBase } from './page_alloc.js';
import { ST_RECLAIM_ACCESSED, ST_RECLAIM_PAGES, ST_RECLAIM_PTES, type Kernel } from './percpu.js';
import { _PAGE_ACCESSED, _PAGE_PRESENT, entry_off, PAGE_SIZE, pte_index, pte_pfn } from './pgtable.js';
import { pte_lock } from './ptlock.js';
import { frame_remove_rmap, mm_pte_table, rmap_table_sharers, vma_address } from './rmap.js';
import { is_model_file } from './shmem.js';
import { find_vma, vma_end, vma_file, vma_flags, vma_next, vma_pgoff, vma_start, vmaBase, VM_LOCKED } from './vma.js';

/**
 * --bug reclaim-flushes-one-sharer (pt-hint's: only its tables are shared between mms this way):
 * try_to_unmap_one flushes only the mm of the VMA it walked through — ptep_clear_flush's
 * flush_tlb_page(vma, address) as Linux writes it for a table one mm maps — not every mm that
 * maps the shared PTE table. The other sharers' CPUs keep translations of the cleared PTE.
 */
export const BUG_RECLAIM_FLUSHES_ONE_SHARER = 'reclaim-flushes-one-sharer';

/** try_to_unmap_one's outcomes. */
const TTU_NOT_MAPPED = 0;
const TTU_CLEARED = 1;
/** The VMA is VM_LOCKED and maps the page: mlock_vma_folio, walk_abort (the folio is unevictable). */
const TTU_MLOCKED = 2;

/**
 * try_to_unmap_one for VMA `v` of `mm`: under table `t`'s PTE lock (page_vma_mapped_walk takes
 * it), if the PTE for `vpn` maps `frame`: a VM_LOCKED VMA keeps it (TTU_MLOCKED); else the entry
 * is read and cleared in one step (ptep_clear_flush's ptep_get_and_clear — the flush is the
 * caller's, batched: TTU_BATCH_FLUSH), its accessed bit counted (page_referenced's
 * ptep_clear_flush_young), the mm's file RSS and the frame's map count dropped as
 * zap_pte_range drops them (folio_remove_rmap_pte, dec_mm_counter). A dirty bit would go to the
 * folio (folio_mark_dirty); shmem pages have no writeback here, and the page stays cached anyway.
 */
function try_to_unmap_one(k: Kernel, v: number, mm: number, t: number, vpn: number, frame: number): number {
  const i32 = k.i32;
  const off = entry_off(k, t, pte_index(vpn));
  const ptl = pte_lock(k, t);
  try {
    pte_assert_locked(k, t, AssertSite.TryToUnmapOne);
    const e = Atomics.load(i32, off);
    if ((e & _PAGE_PRESENT) === 0 || pte_pfn(e) !== frame) return TTU_NOT_MAPPED; // a COW copy, a racing zap
    if ((vma_flags(k, v) & VM_LOCKED) !== 0) return TTU_MLOCKED;
    guard_pte(k, t, AssertSite.TryToUnmapOne);
    const old = Atomics.exchange(i32, off, 0);
    k.stats[ST_RECLAIM_PTES]++;
    if ((old & _PAGE_ACCESSED) !== 0) k.stats[ST_RECLAIM_ACCESSED]++;
    guard_rss(k, mm, t, AssertSite.TryToUnmapOne);
    Atomics.sub(i32, k.mmBase(mm) + M_RSS_FILE, 1);
    frame_remove_rmap(k, frame);
    return TTU_CLEARED;
  } finally {
    spin_unlock(k, ptl);
  }
}

/**
 * try_to_unmap of page-cache page `index` (frame `frame`) of `file`: rmap_walk_file over the
 * file's i_mmap (i_mmap_rwsem held for read by the caller), try_to_unmap_one for every VMA that
 * maps the page. A PTE table several mms share is changed only through its owner's VMA (once);
 * afterwards every mm whose walk reaches a table this call changed joins `mms`, the mms the
 * batched flush must reach — under the planted bug only the mm each PTE was cleared through.
 * Returns whether the page ended up mapped nowhere (folio_mapped false).
 */
function try_to_unmap(k: Kernel, file: number, index: number, frame: number, tlb: MmuGather, mms: number[]): boolean {
  const i32 = k.i32;
  const head = fileBase(k, file) + FL_IMMAP_HEAD;
  const changed: number[] = [];
  let mlocked = false;
  for (let v = Atomics.load(i32, head); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) {
    const addr = vma_address(k, v, index);
    if (addr < 0) continue;
    const mm = Atomics.load(i32, vmaBase(k, v) + V_MM);
    const vpn = addr / PAGE_SIZE;
    const t = mm_pte_table(k, mm, vpn);
    if (t < 0) continue;
    // A shared table: its one PTE for the page is changed through the owner's VMA, once (the
    // owner maps the table: pt-hint hands it to a remaining sharer when the owner unshares).
    // A sharer's VM_LOCKED VMA still keeps the page (the folio is mlocked).
    const shared = Atomics.load(i32, ptpBase(k, t) + P_SHARE) > 1;
    if (shared && Atomics.load(i32, ptpBase(k, t) + P_OWNER) !== mm && (vma_flags(k, v) & VM_LOCKED) === 0) continue;
    const r = try_to_unmap_one(k, v, mm, t, vpn, frame);
    if (r === TTU_MLOCKED) {
      mlocked = true; // walk_abort: the mappings cleared so far stay cleared, and are flushed below
      break;
    }
    if (r !== TTU_CLEARED) continue;
    changed.push(t);
    tlb.addTable(t);
    if (k.bug === BUG_RECLAIM_FLUSHES_ONE_SHARER && !mms.includes(mm)) mms.push(mm); // flush_tlb_page(vma, address): this mm alone
  }
  if (changed.length > 0 && k.bug !== BUG_RECLAIM_FLUSHES_ONE_SHARER) rmap_table_sharers(k, file, index, changed, mms);
  return !mlocked && Atomics.load(i32, frameBase(k, frame) + F_MAPCOUNT) === 0;
}

/**
 * shrink_folio_list over the page-cache pages [first, last) of `file` that are mapped: each is
 * unmapped from every mapping (try_to_unmap) and kept in the page cache (see the file comment).
 * The TLB flush is batched (TTU_BATCH_FLUSH, then try_to_unmap_flush): one shootdown to every
 * CPU of every mm gathered, before i_mmap_rwsem drops, then the changed tables' P_WPSEQ moves
 * (the stale-TLB check's "changed and flushed"). rmap_walk_file takes i_mmap_rwsem for read per
 * folio; ptlab holds it across the range, so the page cache there is stable too (truncation and
 * hole punching take it for write). Any lock of the caller's may be held but a PTE lock.
 */
export function reclaim_file_range(k: Kernel, file: number, first: number, last: number): void {
  const sem = fileBase(k, file) + FL_IMMAP_RWSEM;
  down_read(k, sem, LockClass.IMmapRwsem); // i_mmap_lock_read (rmap_walk_file)
  try {
    i_mmap_assert_locked(k, file, AssertSite.RmapWalkFile);
    const tlb = new MmuGather();
    const mms: number[] = [];
    for (const index of filemap_indices(k, file, first, last)) {
      const frame = filemap_get_frame(k, file, index);
      if (frame < 0) continue;
      if (Atomics.load(k.i32, frameBase(k, frame) + F_MAPCOUNT) <= 0) continue; // !folio_mapped: nothing to unmap
      if (!folio_trylock(k, frame)) continue; // shrink_folio_list: a locked folio (being migrated) is kept
      if (try_to_unmap(k, file, index, frame, tlb, mms)) k.stats[ST_RECLAIM_PAGES]++;
      folio_unlock(k, frame);
    }
    tlb_finish_mmus(k, mms, tlb); // try_to_unmap_flush
  } finally {
    up_read(k, sem);
  }
}

/**
 * madvise_walk_vmas for the rmap ops (`reclaim`, `migrate`): the caller's mappings of
 * [start, start + len), mmap_lock held for read; `fn(file, first, last)` runs on the page-cache
 * pages [first, last) of each VMA's file and returns a count, summed into the result. -errno:
 * - EINVAL: an unaligned start, a range that wraps; a VMA with no file (private anonymous memory:
 *   ptlab has no swap and no anon_vma rmap, so neither op reaches it), a sharing model's own file
 *   (msharefs, a container: its pages are another file's), or VM_LOCKED unless `locked`;
 * - ENOMEM: a hole in the range, after the mapped parts were done.
 */
export function walk_file_vmas(k: Kernel, mm: number, start: number, len: number, locked: boolean, fn: (file: number, first: number, last: number) => number): number {
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  const alen = page_align(len);
  // A start in the kernel half (negative here, 2^64 + start to Linux): past every VMA (ENOMEM),
  // unless start + len wraps past 2^64 (end < start: EINVAL).
  if (start < 0) return alen === 0 ? 0 : alen >= -start ? -EINVAL : -ENOMEM;
  const end = start + alen;
  if (end === start) return 0;
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_read_lock(k, lock);
  try {
    let sum = 0;
    let hole = false;
    let at = start;
    for (let v = find_vma(k, mm, start); at < end; v = vma_next(k, v)) {
      if (v < 0 || vma_start(k, v) >= end) {
        hole = true;
        break;
      }
      if (vma_start(k, v) > at) hole = true;
      const s = Math.max(at, vma_start(k, v));
      const e = Math.min(end, vma_end(k, v));
      const file = vma_file(k, v);
      if (file < 0 || is_model_file(k, file) || (!locked && (vma_flags(k, v) & VM_LOCKED) !== 0)) return -EINVAL;
      const first = vma_pgoff(k, v) + (s - vma_start(k, v)) / PAGE_SIZE;
      sum += fn(file, first, first + (e - s) / PAGE_SIZE);
      at = e;
    }
    return hole ? -ENOMEM : sum;
  } finally {
    mmap_read_unlock(k, lock);
  }
}

/**
 * The `reclaim` op: the page-cache pages that the caller's mappings of [start, start + len) map
 * are reclaimed as kswapd's shrink_folio_list would take them off the LRU — a MADV_PAGEOUT-like
 * trigger (madvise_pageout's checks and walk, mmap_lock held for read), except that MADV_PAGEOUT
 * skips a folio other processes map too (folio_maybe_mapped_shared), and reclaim does not: the
 * pages are unmapped from every mapping of the file through rmap. Returns 0 or -errno (see
 * walk_file_vmas; VM_LOCKED is EINVAL: can_madv_lru_vma). Shared anonymous memory is a shmem
 * file and is reclaimed like one; a private file mapping's page-cache pages are (its COW copies
 * are anonymous pages, left alone).
 */
export function do_reclaim(k: Kernel, mm: number, start: number, len: number): number {
  return walk_file_vmas(k, mm, start, len, false, (file, first, last) => {
    reclaim_file_range(k, file, first, last);
    return 0;
  });
}
