/**
 * Page migration (mm/migrate.c migrate_pages -> migrate_folio_unmap / migrate_folio_move;
 * mm/rmap.c try_to_migrate / try_to_migrate_one; remove_migration_ptes), for page-cache pages
 * of shmem files: a page moves to a new frame while every process that maps it keeps running.
 *
 * For each page, as MIGRATE_ASYNC does it:
 * 1. folio_trylock the old page (a page another migration holds is skipped: -EAGAIN) and take a
 *    new one (locked, unmapped);
 * 2. try_to_migrate: through rmap (the file's i_mmap, i_mmap_rwsem held for read) every PTE that
 *    maps the page becomes a migration entry (under its PTE lock; map count dropped, RSS kept),
 *    and every CPU of every mm that maps a changed table is flushed — a PTE table several mms
 *    share (pt-hint, cow-pte) is changed once and flushed for all of them;
 * 3. if the page is still mapped (an entry moved away under the walk), the entries go back to
 *    the old page and the move is abandoned (-EAGAIN);
 * 4. the data is copied (folio_mc_copy) and the page cache's slot moves to the new page
 *    (folio_migrate_mapping, under xa_lock); the old page is marked gone (its mapping NULL);
 * 5. remove_migration_ptes: every migration entry becomes a PTE of the new page, the new page
 *    unlocked (faults waiting on the entry go on), the old one unlocked and freed.
 *
 * Faults that meet a migration entry wait for the old page's lock (do_swap_page ->
 * migration_entry_wait); faults and writes that looked the page up before it moved see it gone
 * under the PTE lock (or the page lock) and look again. The checkers: a store that reaches the
 * old page after the copy is lost (the lost-write check: the old page's ledger is not carried
 * over), a TLB entry left on the old page is stale (stale-tlb-write, the stale-TLB audit), and a
 * freed old page reached through a PTE is a use-after-free.
 */
import { F_LEDGER, F_MAPCOUNT, F_OWNER_GEN, F_UFFD_WP, FL_IMMAP_HEAD, FL_IMMAP_RWSEM, FRAME_FILE, P_OWNER, P_SHARE, V_IMMAP_NEXT, V_MM } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { down_read, up_read } from '../sync/rwsem.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { spin_unlock } from '../sync/spinlock.js';
import { fileBase, filemap_get_frame, filemap_indices, filemap_replace_frame, folio_trylock, folio_unlock } from './filemap.js';
import { AssertSite, guard_pte, i_mmap_assert_locked, pte_assert_locked } from './guarded.js';
import { copy_page_data, MmuGather, tlb_finish_mmus, vm_page_prot } from './memory.js';
import { alloc_frame, frameBase, free_frame, ptpBase } from './page_alloc.js';
import { ST_MIGRATE_FAILED, ST_MIGRATE_PAGES, type Kernel } from './percpu.js';
import { _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, entry_off, is_migration_entry, make_migration_entry, mk_pte, PAGE_SIZE, pte_index, pte_pfn } from './pgtable.js';
import { pte_lock } from './ptlock.js';
import { frame_add_rmap, frame_remove_rmap, mm_pte_table, rmap_table_sharers, vma_address } from './rmap.js';
import { vma_flags, vmaBase } from './vma.js';
import { walk_file_vmas } from './vmscan.js';

/**
 * --bug migrate-copy-before-flush: the data is copied to the new page after the PTEs became
 * migration entries but before the TLB flush that makes them so for every CPU — the order bug
 * of "flush after instead of before". A CPU whose TLB still holds the old page writable stores
 * into it after the copy: the store is lost.
 */
export const BUG_MIGRATE_COPY_BEFORE_FLUSH = 'migrate-copy-before-flush';

/**
 * One VMA's mapping of the page at `vpn` in table `t`: `visit` runs under the PTE lock (as
 * page_vma_mapped_walk holds it) with the entry's word offset. A table several mms share is
 * visited through its owner's VMA alone (the owner maps it: pt-hint hands it to a remaining
 * sharer when the owner unshares); a COW-shared table (cow-pte) through the first VMA that
 * reaches it, the others then find the entry changed.
 */
function rmap_walk_page(k: Kernel, file: number, index: number, visit: (v: number, t: number, off: number) => void): void {
  const i32 = k.i32;
  for (let v = Atomics.load(i32, fileBase(k, file) + FL_IMMAP_HEAD); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) {
    const addr = vma_address(k, v, index);
    if (addr < 0) continue;
    const mm = Atomics.load(i32, vmaBase(k, v) + V_MM);
    const vpn = addr / PAGE_SIZE;
    const t = mm_pte_table(k, mm, vpn);
    if (t < 0) continue;
    if (Atomics.load(i32, ptpBase(k, t) + P_SHARE) > 1 && Atomics.load(i32, ptpBase(k, t) + P_OWNER) !== mm) continue;
    const ptl = pte_lock(k, t);
    try {
      pte_assert_locked(k, t, AssertSite.TryToUnmapOne);
      visit(v, t, entry_off(k, t, pte_index(vpn)));
    } finally {
      spin_unlock(k, ptl);
    }
  }
}

/**
 * try_to_migrate: every present PTE mapping `frame` becomes a migration entry that remembers
 * its write, accessed and dirty bits (try_to_migrate_one: ptep_get_and_clear, then set_pte_at of
 * the swap PTE; folio_remove_rmap_pte; RSS unchanged). The changed tables go into `tlb`, the
 * mms to flush into `mms` (every mm that maps a changed table).
 */
function try_to_migrate(k: Kernel, file: number, index: number, frame: number, tlb: MmuGather, mms: number[]): void {
  const i32 = k.i32;
  const changed: number[] = [];
  rmap_walk_page(k, file, index, (_v, t, off) => {
    const e = Atomics.load(i32, off);
    if ((e & _PAGE_PRESENT) === 0 || pte_pfn(e) !== frame) return; // none, a COW copy, an entry already changed
    guard_pte(k, t, AssertSite.TryToUnmapOne);
    Atomics.store(i32, off, make_migration_entry(e));
    frame_remove_rmap(k, frame);
    if (!changed.includes(t)) changed.push(t);
    tlb.addTable(t);
  });
  if (changed.length > 0) rmap_table_sharers(k, file, index, changed, mms);
}

/**
 * remove_migration_ptes: every migration entry for `from` becomes a PTE of `to` (`from` itself
 * when the move is abandoned), with the VMA's protection as it is now and the write and dirty
 * bits the entry kept (remove_migration_pte; mprotect may have made the entry read-only since).
 * No flush: a migration entry is not present, so no TLB holds it.
 */
function remove_migration_ptes(k: Kernel, file: number, index: number, from: number, to: number): void {
  const i32 = k.i32;
  rmap_walk_page(k, file, index, (v, t, off) => {
    const e = Atomics.load(i32, off);
    if (!is_migration_entry(e) || pte_pfn(e) !== from) return;
    guard_pte(k, t, AssertSite.TryToUnmapOne);
    const prot = (vm_page_prot(vma_flags(k, v)) & ~(_PAGE_RW | _PAGE_DIRTY)) | (e & (_PAGE_RW | _PAGE_DIRTY));
    frame_add_rmap(k, to);
    Atomics.store(i32, off, mk_pte(to, prot));
  });
}

/**
 * The move itself once the old page is unmapped: the data copied, the ledger (the sum of the
 * stores that reached the page) carried with it, the uffd-wp flag too.
 */
function migrate_copy(k: Kernel, from: number, to: number): void {
  copy_page_data(k, from, to);
  const i32 = k.i32;
  Atomics.add(i32, frameBase(k, to) + F_LEDGER, Atomics.exchange(i32, frameBase(k, from) + F_LEDGER, 0));
  Atomics.store(i32, frameBase(k, to) + F_UFFD_WP, Atomics.load(i32, frameBase(k, from) + F_UFFD_WP));
}

/** Migrates page `index` of `file` (frame `frame`); false when it could not be moved. */
function migrate_folio(k: Kernel, file: number, index: number, frame: number): boolean {
  const i32 = k.i32;
  if (!folio_trylock(k, frame)) return false; // MIGRATE_ASYNC: another migration has it
  const nf = alloc_frame(k, FRAME_FILE, file, Atomics.load(i32, frameBase(k, frame) + F_OWNER_GEN), index);
  if (nf < 0) {
    folio_unlock(k, frame);
    return false;
  }
  folio_trylock(k, nf); // a new page: no one else can hold it
  const tlb = new MmuGather();
  const mms: number[] = [];
  try_to_migrate(k, file, index, frame, tlb, mms);
  const early = k.bug === BUG_MIGRATE_COPY_BEFORE_FLUSH;
  if (early) migrate_copy(k, frame, nf);
  if (k.sched !== null) k.sched.point(k, SchedPoint.MigrateUnmapped);
  tlb_finish_mmus(k, mms, tlb); // try_to_migrate_one's ptep_clear_flush, for every mm of every changed table
  if (Atomics.load(i32, frameBase(k, frame) + F_MAPCOUNT) !== 0) {
    // Still mapped (folio_mapped after try_to_migrate): put the entries back, give up.
    if (early) migrate_copy(k, nf, frame);
    remove_migration_ptes(k, file, index, frame, frame);
    folio_unlock(k, nf);
    free_frame(k, nf);
    folio_unlock(k, frame);
    return false;
  }
  if (!early) migrate_copy(k, frame, nf);
  filemap_replace_frame(k, file, index, frame, nf);
  remove_migration_ptes(k, file, index, frame, nf);
  folio_unlock(k, nf);
  folio_unlock(k, frame);
  // The old page is freed; what was stored into it after the copy (a missed flush) is not
  // carried anywhere: the lost-write check counts it missing.
  Atomics.store(i32, frameBase(k, frame) + F_LEDGER, 0);
  free_frame(k, frame);
  return true;
}

/**
 * migrate_pages over the page-cache pages [first, last) of `file`: each cached page moves to a
 * new frame, mapped or not. rmap_walk_file takes i_mmap_rwsem for read per page; ptlab holds it
 * across the range, so truncation and hole punching (which take it for write) wait. Returns the
 * number of pages that could not be moved (migrate_pages' return).
 */
export function migrate_file_range(k: Kernel, file: number, first: number, last: number): number {
  const sem = fileBase(k, file) + FL_IMMAP_RWSEM;
  down_read(k, sem, LockClass.IMmapRwsem);
  try {
    i_mmap_assert_locked(k, file, AssertSite.RmapWalkFile);
    let failed = 0;
    for (const index of filemap_indices(k, file, first, last)) {
      const frame = filemap_get_frame(k, file, index);
      if (frame < 0) continue;
      if (migrate_folio(k, file, index, frame)) k.stats[ST_MIGRATE_PAGES]++;
      else {
        k.stats[ST_MIGRATE_FAILED]++;
        failed++;
      }
    }
    return failed;
  } finally {
    up_read(k, sem);
  }
}

/**
 * The `migrate` op, as move_pages(2) or mbind(MPOL_MF_MOVE) would trigger it for the caller's
 * mappings of [start, start + len): every page-cache page there moves to a new frame (mlocked
 * ones too: migration, unlike reclaim, moves them). Returns the number of pages not moved, or
 * -errno as the reclaim op does (walk_file_vmas).
 */
export function do_migrate(k: Kernel, mm: number, start: number, len: number): number {
  return walk_file_vmas(k, mm, start, len, true, (file, first, last) => migrate_file_range(k, file, first, last));
}
