/**
 * The fault path and page-table teardown (mm/memory.c).
 *
 *   handle_mm_fault -> __handle_mm_fault -> handle_pte_fault -> do_pte_missing -> do_fault /
 *   do_anonymous_page -> finish_fault;  handle_pte_fault -> do_wp_page
 *
 * One struct vm_fault per CPU (Kernel.vmf) goes down the chain. Return codes are VM_FAULT_* bit
 * sets; the fault path never throws (a MachineStop from a wait deadline is not a fault result).
 * zap_pte_range / free_pgtables undo what the fault path built.
 */
import {
  FRAME_ANON, FRAME_FILE, M_PGD, M_RSS_ANON, M_RSS_FILE, M_TLB_GEN, P_OWNER, P_SHARE,
  PTRS_PER_TABLE, R_GEN, R_STATE, F_MAPCOUNT,
 F_HDR,} from '../shm/layout.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { spin_unlock } from '../sync/spinlock.js';
import { PoolId, report_violation, Violation } from './mmdebug.js';
import { pool_check } from './slab.js';
import { alloc_frame, frameBase, free_frame, free_ptp, ptpBase } from './page_alloc.js';
import { pte_lock } from './ptlock.js';
import { AssertSite, assert_fault_locked, guard_pte, guard_rss, guard_upper, mmap_assert_write_locked, pte_assert_locked } from './guarded.js';
import {
  _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, ALLOC_OOM, entry_off,
  mk_pte, PGD_LEVEL, pgd_index, PMD_LEVEL, pmd_index, PMD_SIZE, pte_index, PTE_LEVEL, pte_pfn, PUD_LEVEL,
  pud_index, PUD_SIZE, PGDIR_SIZE, table_alloc, table_of, index_at,
} from './pgtable.js';
import { ST_FAULT_ALLOC, ST_FAULT_MAP, ST_FAULT_SPURIOUS, ST_FAULT_WP, ST_MIGRATE_WAITS, type Kernel, type VmFault, FAULT_FLAG_WRITE } from './percpu.js';
import { frame_add_rmap, frame_remove_rmap } from './rmap.js';
import { i_size_read, SHMEM_OOM, shmem_get_frame } from './shmem.js';
import { folio_busy, folio_wait_locked } from './filemap.js';
import { flush_tlb_mask, flush_tlb_mm, wpseq_begin, wpseq_end } from './tlb.js';
import { handle_userfault, uffd_active, uffd_wp_blocked } from './userfaultfd.js';
import { range_has_vma, V_FILE_GEN, vmaBase, vma_file, vma_pgoff, VM_EXEC, VM_READ, VM_SHARED, VM_SHARED_PT, VM_WRITE } from './vma.js';
import { ENOMEM } from './errno.js';

// vm_fault_t bits, with Linux's values.
export const VM_FAULT_OOM = 0x000001;
export const VM_FAULT_SIGBUS = 0x000002;
export const VM_FAULT_SIGSEGV = 0x000040;
export const VM_FAULT_NOPAGE = 0x000100;
export const VM_FAULT_RETRY = 0x000400;
/** ptlab's: handle_userfault queued a uffd-wp event; drop mmap_lock, wait for the handler, retry (VM_FAULT_RETRY's userfault case). */
export const VM_FAULT_UFFD = 0x008000;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV;

const allocated = { allocated: false };

/** vm_get_page_prot: the PTE flags a fresh entry of this VMA gets. */
export function vm_page_prot(vm_flags: number): number {
  if ((vm_flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0) return _PAGE_PRESENT; // PROT_NONE: present, no user access
  let f = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
  if ((vm_flags & (VM_WRITE | VM_SHARED)) === (VM_WRITE | VM_SHARED)) f |= _PAGE_RW;
  return f;
}

/**
 * handle_mm_fault. Called with the faulting task's mmap_lock held for read; vmf.vma, vmf.mm,
 * vmf.address/vpn and vmf.flags are set, and the access was checked against the VMA.
 */
export function handle_mm_fault(k: Kernel, vmf: VmFault): number {
  // assert_fault_locked: the one assertion per fault, so it runs with the checking mode (as the
  // lockset guards), not always: always on it cost about 5% of the fault rate (README).
  if (k.lockset) assert_fault_locked(k, vmf);
  if ((vmf.vm_flags & VM_SHARED_PT) !== 0) return k.model.fault(k, vmf);
  return __handle_mm_fault(k, vmf);
}

/**
 * Walks vmf.mm's tables down to the PMD entry for vmf.vpn, allocating PUD and PMD tables as
 * needed; sets vmf.pmd. Returns 0 or VM_FAULT_OOM / VM_FAULT_SIGBUS (the latter when a walk hit
 * a freed table: the machine is stopping).
 */
export function walk_to_pmd(k: Kernel, vmf: VmFault): number {
  const i32 = k.i32;
  const mm = vmf.mm;
  const pgd = Atomics.load(i32, k.mmBase(mm) + M_PGD);
  const pud = table_alloc(k, entry_off(k, pgd, pgd_index(vmf.vpn)), mm, PUD_LEVEL);
  if (pud < 0) return pud === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
  const pmd = table_alloc(k, entry_off(k, pud, pud_index(vmf.vpn)), mm, PMD_LEVEL);
  if (pmd < 0) return pmd === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
  vmf.pmd = entry_off(k, pmd, pmd_index(vmf.vpn));
  return 0;
}

/** __handle_mm_fault: build the path to the PTE in vmf.mm, then handle_pte_fault. */
export function __handle_mm_fault(k: Kernel, vmf: VmFault): number {
  const r = walk_to_pmd(k, vmf);
  if (r !== 0) return r;
  // cow-pte (Lin's __handle_mm_fault -> handle_cow_pte_fault): a write-protected PMD entry
  // points to a PTE table fork shared. A fault that gets here installs or changes a PTE of it
  // (ptlab has no shared zero page: an anonymous read fault installs a page too), so the table
  // becomes this mm's own first. Other models never write-protect a PMD entry.
  const pmdv = Atomics.load(k.i32, vmf.pmd);
  if (pmdv !== 0 && (pmdv & _PAGE_RW) === 0 && k.model.break_cow_pte !== undefined && k.model.break_cow_pte(k, vmf.mm, vmf.pmd, vmf.address) < 0) return VM_FAULT_OOM;
  return pte_alloc_fault(k, vmf);
}

/** The PTE table under vmf.pmd (allocated if none), then handle_pte_fault. */
export function pte_alloc_fault(k: Kernel, vmf: VmFault): number {
  const pte = table_alloc(k, vmf.pmd, vmf.mm, PTE_LEVEL);
  if (pte < 0) return pte === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
  vmf.pte_table = pte;
  vmf.pte = entry_off(k, pte, pte_index(vmf.vpn));
  return handle_pte_fault(k, vmf);
}

/** handle_pte_fault: vmf.pte is set (the PTE table exists). */
export function handle_pte_fault(k: Kernel, vmf: VmFault): number {
  const e = Atomics.load(k.i32, vmf.pte);
  vmf.orig_pte = e;
  // vmf->orig_pte is read without the PTE lock: whatever follows rechecks it under the lock.
  if (k.sched !== null) k.sched.point(k, SchedPoint.FaultAfterPteRead);
  if (e === 0) return do_pte_missing(k, vmf);
  if ((e & _PAGE_PRESENT) === 0) return do_swap_page(k, vmf, e);
  const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
  if (write && (e & _PAGE_RW) === 0) return do_wp_page(k, vmf);
  if ((e & _PAGE_USER) === 0) return fix_pte_prot(k, vmf);
  k.stats[ST_FAULT_SPURIOUS]++; // another CPU installed it first
  return 0;
}

/**
 * do_swap_page for the one swap entry ptlab has, a migration entry (is_migration_entry): the page
 * is being moved. migration_entry_wait: under the PTE lock, if the entry is still there, note
 * its page; then, the lock dropped, sleep until the page is unlocked (the move ended or gave up).
 * The access is retried and walks again (mmap_lock stays held, as in Linux).
 */
function do_swap_page(k: Kernel, vmf: VmFault, e: number): number {
  const frame = pte_pfn(e);
  const ptl = pte_lock(k, vmf.pte_table);
  const still = Atomics.load(k.i32, vmf.pte) === e;
  const gen = Atomics.load(k.i32, frameBase(k, frame) + R_GEN);
  spin_unlock(k, ptl);
  if (!still) return 0;
  k.stats[ST_MIGRATE_WAITS]++;
  folio_wait_locked(k, frame, gen);
  return 0;
}

/**
 * A page-cache page looked up without a reference may have left the cache since (truncation,
 * migration) or be locked by a migration under way: filemap_fault's lock_folio and
 * "folio->mapping != mapping" recheck, done here under the PTE lock (the unmap of a truncation
 * or a migration takes that lock for the same PTE, so it either ran before — and left these
 * marks — or runs after and finds the PTE). `gen`: the frame's generation at the lookup.
 */
function page_cache_stale(k: Kernel, frame: number, gen: number): boolean {
  return Atomics.load(k.i32, frameBase(k, frame) + R_GEN) !== gen || folio_busy(k, frame);
}

/** After page_cache_stale, the PTE lock dropped: wait for a migration to end; the fault retries. */
function page_cache_retry(k: Kernel, frame: number, gen: number): number {
  if (Atomics.load(k.i32, frameBase(k, frame) + R_GEN) === gen) folio_wait_locked(k, frame, gen);
  return VM_FAULT_NOPAGE;
}

function do_pte_missing(k: Kernel, vmf: VmFault): number {
  return vma_file(k, vmf.vma) >= 0 ? do_fault(k, vmf) : do_anonymous_page(k, vmf);
}

/** do_read_fault / do_shared_fault / do_cow_fault's first half: the page from the page cache. */
function do_fault(k: Kernel, vmf: VmFault): number {
  const vma = vmf.vma;
  const file = vma_file(k, vma);
  if (!pool_check(k, k.pools.files, file, Atomics.load(k.i32, vmaBase(k, vma) + V_FILE_GEN), PoolId.Files)) return VM_FAULT_SIGBUS;
  const pgoff = vma_pgoff(k, vma) + (vmf.vpn - vmf.vm_start / 4096);
  if (pgoff >= Math.ceil(i_size_read(k, file) / 4096)) return VM_FAULT_SIGBUS; // beyond EOF
  const frame = shmem_get_frame(k, file, pgoff, allocated);
  if (frame === SHMEM_OOM) return VM_FAULT_OOM;
  const gen = Atomics.load(k.i32, frameBase(k, frame) + R_GEN);
  const flags = vmf.vm_flags;
  if ((flags & VM_SHARED) === 0 && (vmf.flags & FAULT_FLAG_WRITE) !== 0) {
    // do_cow_fault: a private write gets its own copy of the page.
    return wp_page_copy(k, vmf, frame, gen);
  }
  // A private read maps the page-cache page read-only (copy on write later).
  let prot = (flags & VM_SHARED) !== 0 ? vm_page_prot(flags) : vm_page_prot(flags) & ~_PAGE_RW;
  // uffd-wp: a marker left on a none PTE (a PTE marker) or a page flagged in the page cache.
  if (uffd_active(k) && uffd_wp_blocked(k, vmf, frame)) {
    if ((vmf.flags & FAULT_FLAG_WRITE) !== 0) {
      handle_userfault(k, vmf, frame);
      return VM_FAULT_UFFD;
    }
    prot &= ~_PAGE_RW;
  }
  const dirty = (vmf.flags & FAULT_FLAG_WRITE) !== 0 ? _PAGE_DIRTY : 0;
  const r = finish_fault(k, vmf, frame, prot | dirty, M_RSS_FILE, gen);
  if (r === 0) k.stats[allocated.allocated ? ST_FAULT_ALLOC : ST_FAULT_MAP]++;
  return r === VM_FAULT_NOPAGE && page_cache_stale(k, frame, gen) ? page_cache_retry(k, frame, gen) : r;
}

/** do_anonymous_page: a fresh private page (ptlab does not model the shared zero page). */
function do_anonymous_page(k: Kernel, vmf: VmFault): number {
  const frame = alloc_frame(k, FRAME_ANON, vmf.mm, Atomics.load(k.i32, k.mmBase(vmf.mm) + R_GEN), vmf.vpn);
  if (frame < 0) return VM_FAULT_OOM;
  let prot = vm_page_prot(vmf.vm_flags);
  if ((vmf.vm_flags & VM_WRITE) !== 0) prot |= _PAGE_RW | _PAGE_DIRTY; // exclusive: writable
  const r = finish_fault(k, vmf, frame, prot, M_RSS_ANON, -1);
  if (r === 0) k.stats[ST_FAULT_ALLOC]++;
  else if (r === VM_FAULT_NOPAGE) free_frame(k, frame);
  return r === VM_FAULT_NOPAGE ? 0 : r;
}

/**
 * finish_fault / set_pte_range: install the PTE under the table's split lock, unless another CPU
 * did first (then VM_FAULT_NOPAGE, nothing changed). Called with mmap_lock held for read.
 */
function finish_fault(k: Kernel, vmf: VmFault, frame: number, prot: number, rss: number, gen: number): number {
  const i32 = k.i32;
  if (k.sched !== null) k.sched.point(k, SchedPoint.FaultBeforePteInstall);
  const ptl = pte_lock(k, vmf.pte_table);
  // (a page-cache page: still the file's, not being migrated; else the caller retries)
  if (Atomics.load(i32, vmf.pte) !== 0 || (gen >= 0 && page_cache_stale(k, frame, gen))) {
    spin_unlock(k, ptl);
    k.stats[ST_FAULT_SPURIOUS]++;
    return VM_FAULT_NOPAGE;
  }
  frame_add_rmap(k, frame);
  guard_rss(k, vmf.mm, vmf.pte_table, AssertSite.FinishFault);
  Atomics.add(i32, k.mmBase(vmf.mm) + rss, 1);
  guard_pte(k, vmf.pte_table, AssertSite.FinishFault); // set_pte_range under vmf->ptl
  Atomics.store(i32, vmf.pte, mk_pte(frame, prot));
  spin_unlock(k, ptl);
  return 0;
}

/**
 * do_wp_page: a write to a present read-only PTE of a writable VMA. Shared mappings and
 * exclusive anonymous pages become writable in place (wp_page_shared / wp_page_reuse); a private
 * mapping of a page-cache page gets its own copy (wp_page_copy).
 */
function do_wp_page(k: Kernel, vmf: VmFault): number {
  const i32 = k.i32;
  const flags = vmf.vm_flags;
  const frame = pte_pfn(vmf.orig_pte);
  const uffd = uffd_active(k);
  const state = Atomics.load(i32, frameBase(k, frame) + R_STATE);
  // A private page-cache page, or an anonymous page another mm still maps (fork's COW): copy it
  // (wp_can_reuse_anon_folio: only a page this mapping alone holds is reused in place).
  if ((flags & VM_SHARED) === 0 && (state === FRAME_FILE || Atomics.load(i32, frameBase(k, frame) + F_MAPCOUNT) > 1)) {
    if (uffd && uffd_wp_blocked(k, vmf, frame)) {
      handle_userfault(k, vmf, frame);
      return VM_FAULT_UFFD;
    }
    return wp_page_copy(k, vmf, frame, -1);
  }
  if (k.sched !== null) k.sched.point(k, SchedPoint.FaultBeforePtl);
  const ptl = pte_lock(k, vmf.pte_table);
  if (Atomics.load(i32, vmf.pte) === vmf.orig_pte) {
    // userfaultfd_pte_wp (or the page-cache flag), checked under the PTE lock: a protect that
    // set the flag before taking this lock is seen here; one after it clears the write bit.
    if (uffd && uffd_wp_blocked(k, vmf, frame)) {
      spin_unlock(k, ptl);
      handle_userfault(k, vmf, frame);
      return VM_FAULT_UFFD;
    }
    guard_pte(k, vmf.pte_table, AssertSite.DoWpPage);
    Atomics.store(i32, vmf.pte, vmf.orig_pte | _PAGE_RW | _PAGE_DIRTY | _PAGE_USER);
    k.stats[ST_FAULT_WP]++;
  }
  spin_unlock(k, ptl);
  return 0;
}

/** A present PTE without user access in a VMA that now allows it: rebuild its protection. */
function fix_pte_prot(k: Kernel, vmf: VmFault): number {
  const i32 = k.i32;
  if (k.sched !== null) k.sched.point(k, SchedPoint.FaultBeforePtl);
  const ptl = pte_lock(k, vmf.pte_table);
  if (Atomics.load(i32, vmf.pte) === vmf.orig_pte) {
    guard_pte(k, vmf.pte_table, AssertSite.FixPteProt);
    Atomics.store(i32, vmf.pte, mk_pte(pte_pfn(vmf.orig_pte), vm_page_prot(vmf.vm_flags) | (vmf.orig_pte & _PAGE_DIRTY)));
  }
  spin_unlock(k, ptl);
  return 0;
}

/**
 * wp_page_copy: a private copy of `src` (a page-cache page) replaces the mapping. `srcGen` >= 0
 * when no PTE was there (do_cow_fault: `src` was looked up in the page cache, at that
 * generation), else (-1) the read-only PTE in vmf.orig_pte is replaced.
 */
function wp_page_copy(k: Kernel, vmf: VmFault, src: number, srcGen: number): number {
  const i32 = k.i32;
  const fresh = srcGen >= 0;
  const copy = alloc_frame(k, FRAME_ANON, vmf.mm, Atomics.load(i32, k.mmBase(vmf.mm) + R_GEN), vmf.vpn);
  if (copy < 0) return VM_FAULT_OOM;
  // cow_user_page: the copy holds the page's data; its ledger starts at 0 (the stores into the
  // page-cache page stay counted there: copying the ledger would count them twice).
  copy_page_data(k, src, copy);
  if (k.sched !== null) k.sched.point(k, SchedPoint.FaultBeforePtl);
  const ptl = pte_lock(k, vmf.pte_table);
  const cur = Atomics.load(i32, vmf.pte);
  if (cur !== (fresh ? 0 : vmf.orig_pte) || (fresh && page_cache_stale(k, src, srcGen))) {
    spin_unlock(k, ptl);
    free_frame(k, copy);
    return fresh && cur === 0 ? page_cache_retry(k, src, srcGen) : 0;
  }
  frame_add_rmap(k, copy);
  guard_rss(k, vmf.mm, vmf.pte_table, AssertSite.WpPageCopy);
  Atomics.add(i32, k.mmBase(vmf.mm) + M_RSS_ANON, 1);
  guard_pte(k, vmf.pte_table, AssertSite.WpPageCopy);
  Atomics.store(i32, vmf.pte, mk_pte(copy, vm_page_prot(vmf.vm_flags) | _PAGE_RW | _PAGE_DIRTY));
  let freeSrc = false;
  if (!fresh) {
    const anon = Atomics.load(i32, frameBase(k, src) + R_STATE) === FRAME_ANON;
    // The other mapper may have gone meanwhile: the last map count of an anonymous page frees it.
    freeSrc = frame_remove_rmap(k, src) === 0 && anon;
    Atomics.sub(i32, k.mmBase(vmf.mm) + (anon ? M_RSS_ANON : M_RSS_FILE), 1);
  }
  spin_unlock(k, ptl);
  if (!fresh) {
    wpseq_begin(k, vmf.pte_table);
    flush_tlb_mm(k, vmf.mm);
    wpseq_end(k, vmf.pte_table);
    if (freeSrc) free_frame(k, src);
  }
  k.stats[ST_FAULT_ALLOC]++;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Teardown: zap_page_range and free_pgtables.

/**
 * mmu_gather: what a teardown collected — frames to free and tables whose entries lost write
 * permission — released only after the TLB flush (tlb_finish_mmu), so no CPU can still reach
 * them through its TLB.
 */
export class MmuGather {
  frames = new Int32Array(64);
  nframes = 0;
  tables = new Int32Array(64);
  ntables = 0;
  /** A zap met a table more than one mm maps (pt-hint's shared PMD tables): every sharer must flush. */
  shared = false;
  reset(): void {
    this.nframes = 0;
    this.ntables = 0;
    this.shared = false;
  }
  addFrame(f: number): void {
    if (this.nframes === this.frames.length) {
      const n = new Int32Array(this.frames.length * 2);
      n.set(this.frames);
      this.frames = n;
    }
    this.frames[this.nframes++] = f;
  }
  addTable(t: number): void {
    if (this.ntables > 0 && this.tables[this.ntables - 1] === t) return;
    if (this.ntables === this.tables.length) {
      const n = new Int32Array(this.tables.length * 2);
      n.set(this.tables);
      this.tables = n;
    }
    this.tables[this.ntables++] = t;
  }
}

/**
 * walk_page_range's PTE level, for the walks that change entries (zap, change_protection, uffd-wp):
 * for each PTE table of `mm`'s tree over [start, end) that `want` accepts (all when null; it sees
 * the table and the PMD entry that reached it), calls `pte_range(t, vpn, n)` with the table's
 * lock held — the `n` pages from `vpn` are the range's part in table `t`. As
 * pte_offset_map_lock, the PMD entry is read again once the lock is held, and the table looked
 * up again if it changed (cow-pte swings an entry to a private copy under the old table's lock,
 * with only the mm's mmap_lock for read held: an rmap walk holds none of the mm's locks). Not the
 * fault path: it takes two closures per call.
 */
export function walk_pte_tables(k: Kernel, mm: number, start: number, end: number, want: ((t: number, pmdval: number) => boolean) | null, pte_range: (t: number, vpn: number, n: number) => void): void {
  const i32 = k.i32;
  const pgd = Atomics.load(i32, k.mmBase(mm) + M_PGD);
  for (let addr = start; addr < end;) {
    const next = Math.min(end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE); // pmd_addr_end
    const vpn = Math.floor(addr / 4096);
    const pmd = lookup_table(k, pgd, vpn, PMD_LEVEL, mm);
    if (pmd >= 0) {
      const off = entry_off(k, pmd, pmd_index(vpn));
      for (;;) {
        const e = Atomics.load(i32, off);
        // (lookup_table's point for this level: the entry may change before it is followed)
        if (k.sched !== null) k.sched.point(k, SchedPoint.PtLookupLoad);
        if (e === 0) break;
        const t = table_of(k, e, PTE_LEVEL, mm);
        if (t < 0 || (want !== null && !want(t, e))) break;
        const ptl = pte_lock(k, t);
        if (Atomics.load(i32, off) !== e) { // !pmd_same: look again
          spin_unlock(k, ptl);
          continue;
        }
        pte_range(t, vpn, (next - addr) / 4096);
        spin_unlock(k, ptl);
        break;
      }
    }
    addr = next;
  }
}

/**
 * zap_pte_range over [start, end) of `mm`'s own tables: clears every PTE, drops map counts and
 * RSS, and gathers anonymous frames whose last mapping went. Called with mmap_lock held for
 * write (or on an mm no one else can reach; MADV_DONTNEED: for read), or — `rmap`, the zap of
 * unmap_mapping_range (truncation, hole punch) — under the file's i_mmap_rwsem alone. Shared
 * tables are not zapped here: a model detaches a VM_SHARED_PT VMA itself. Returns 0, or -ENOMEM
 * when a COW-shared table (cow-pte) had to be copied first and no memory was left (nothing
 * zapped then).
 */
export function zap_page_range(k: Kernel, mm: number, start: number, end: number, tlb: MmuGather, rmap = false): number {
  const i32 = k.i32;
  if (!rmap && k.model.break_cow_pte !== undefined && unshare_cow_pte_range(k, mm, start, end, tlb) < 0) return -ENOMEM;
  // A shared table seen from a guest: the model's detach handles it.
  const own = (t: number, pmdval: number) => {
    if (Atomics.load(i32, ptpBase(k, t) + P_SHARE) <= 1) return true;
    tlb.shared = true;
    // cow-pte: a COW-shared table (reached through a write-protected entry) holds the same PTEs
    // for every sharer, so an rmap zap clears it once for all of them, from whichever sharer's
    // walk reaches it first (its owner may be handing it on meanwhile), flushing every sharer.
    return (pmdval & _PAGE_RW) === 0 || Atomics.load(i32, ptpBase(k, t) + P_OWNER) === mm;
  };
  walk_pte_tables(k, mm, start, end, own, (t, vpn, n) => {
    pte_assert_locked(k, t, AssertSite.ZapPteRange);
    // RSS is the mm's that accounts the table: `mm`'s own, or a COW-shared table's owner.
    const acct = Atomics.load(i32, ptpBase(k, t) + P_OWNER);
    // Every write below is to table t's PTEs (ptep_get_and_clear_full) and the mm's RSS, under
    // t's PTE lock: checked once per table, not per PTE.
    guard_pte(k, t, AssertSite.ZapPteRange);
    guard_rss(k, acct, t, AssertSite.ZapPteRange);
    for (let i = 0; i < n; i++) {
      const e = Atomics.exchange(i32, entry_off(k, t, pte_index(vpn + i)), 0);
      if (e === 0) continue;
      const f = pte_pfn(e);
      const anon = Atomics.load(i32, frameBase(k, f) + R_STATE) === FRAME_ANON;
      Atomics.sub(i32, k.mmBase(acct) + (anon ? M_RSS_ANON : M_RSS_FILE), 1);
      // A migration entry still counts in RSS but holds no map count (zap_nonpresent_ptes).
      if ((e & _PAGE_PRESENT) === 0) continue;
      if (frame_remove_rmap(k, f) === 0 && anon) tlb.addFrame(f);
    }
    tlb.addTable(t);
  });
  return 0;
}

/**
 * cow-pte, before a zap changes `mm`'s PTEs over [start, end): a COW-shared table the range
 * meets leaves `mm` whole when no VMA of `mm` is left in its 2 MiB (munmap, exit: free_pmd_range's
 * pmd_put_pte; the other sharers keep it, and the zap's tlb_finish_mmu flushes `mm`), else it is
 * made `mm`'s own first (zap_pte_range's break_cow_pte when the VMA does not cover the table:
 * MADV_DONTNEED; do_munmap breaks the edges of its range before anything changes). -ENOMEM when
 * a copy found no memory.
 */
function unshare_cow_pte_range(k: Kernel, mm: number, start: number, end: number, tlb: MmuGather): number {
  const i32 = k.i32;
  const pgd = Atomics.load(i32, k.mmBase(mm) + M_PGD);
  for (let a = Math.floor(start / PMD_SIZE) * PMD_SIZE; a < end; a += PMD_SIZE) {
    const pmd = lookup_table(k, pgd, a / 4096, PMD_LEVEL, mm);
    if (pmd < 0) continue;
    const off = entry_off(k, pmd, pmd_index(a / 4096));
    const e = Atomics.load(i32, off);
    if (e === 0 || (e & _PAGE_RW) !== 0) continue;
    if (!range_has_vma(k, mm, a, a + PMD_SIZE)) {
      const t = table_of(k, e, PTE_LEVEL, mm);
      if (t < 0) return 0;
      if (k.model.drop_cow_pte !== undefined && k.model.drop_cow_pte(k, mm, off, t)) tlb.addTable(t);
    } else if (k.model.break_cow_pte !== undefined && k.model.break_cow_pte(k, mm, off, Math.max(a, start)) < 0) {
      return -ENOMEM;
    }
  }
  return 0;
}

/**
 * break_cow_pte_range: every COW-shared PTE table (cow-pte) that [start, end) of `mm` meets
 * becomes `mm`'s own, before a change of its PTEs (mprotect, mremap, uffd-wp). 0, or -ENOMEM.
 * Nothing to do under the other models.
 */
export function break_cow_pte_range(k: Kernel, mm: number, start: number, end: number): number {
  if (k.model.break_cow_pte === undefined) return 0;
  const pgd = Atomics.load(k.i32, k.mmBase(mm) + M_PGD);
  for (let a = Math.floor(start / PMD_SIZE) * PMD_SIZE; a < end; a += PMD_SIZE) {
    const pmd = lookup_table(k, pgd, a / 4096, PMD_LEVEL, mm);
    if (pmd < 0) continue;
    const off = entry_off(k, pmd, pmd_index(a / 4096));
    const e = Atomics.load(k.i32, off);
    if (e !== 0 && (e & _PAGE_RW) === 0 && k.model.break_cow_pte(k, mm, off, Math.max(a, start)) < 0) return -ENOMEM;
  }
  return 0;
}

/**
 * do_munmap's break (__split_vma's break_cow_pte, cow-pte): the tables at the two ends of
 * [start, end) that keep a VMA of `mm` outside it become `mm`'s own before anything changes, so
 * that -ENOMEM leaves the mapping as it was; the tables wholly inside leave `mm` in the zap.
 */
export function break_cow_pte_edges(k: Kernel, mm: number, start: number, end: number): number {
  if (k.model.break_cow_pte === undefined) return 0;
  const lo = Math.floor(start / PMD_SIZE) * PMD_SIZE;
  const hi = Math.ceil(end / PMD_SIZE) * PMD_SIZE;
  if (lo < start && range_has_vma(k, mm, lo, start) && break_cow_pte_range(k, mm, lo, lo + 1) < 0) return -ENOMEM;
  if (hi > end && range_has_vma(k, mm, end, hi) && break_cow_pte_range(k, mm, hi - 1, hi) < 0) return -ENOMEM;
  return 0;
}

/**
 * tlb_finish_mmu: flush every CPU that may cache `mm`'s translations (the stale-TLB check told
 * that those tables' entries changed: wpseq_begin / wpseq_end), then free the gathered frames.
 */
export function tlb_finish_mmu(k: Kernel, mm: number, tlb: MmuGather): void {
  if (tlb.ntables === 0 && tlb.nframes === 0) return;
  for (let i = 0; i < tlb.ntables; i++) wpseq_begin(k, tlb.tables[i]);
  flush_tlb_mm(k, mm);
  for (let i = 0; i < tlb.ntables; i++) wpseq_end(k, tlb.tables[i]);
  for (let i = 0; i < tlb.nframes; i++) free_frame(k, tlb.frames[i]);
  tlb.reset();
}

/**
 * tlb_finish_mmu for a zap that went through several mms (unmap_mapping_range over i_mmap): one
 * shootdown to every CPU of every mm in `mms`, then the gathered tables and frames as above.
 */
export function tlb_finish_mmus(k: Kernel, mms: number[], tlb: MmuGather): void {
  if (mms.length === 0) return;
  let mask = 0;
  for (const mm of mms) {
    Atomics.add(k.i32, k.mmBase(mm) + M_TLB_GEN, 1);
    mask |= k.model.flush_mask(k, mm);
  }
  // The entries are changed; no CPU has been told yet.
  if (k.sched !== null) k.sched.point(k, SchedPoint.TlbBeforeFlush);
  for (let i = 0; i < tlb.ntables; i++) wpseq_begin(k, tlb.tables[i]);
  flush_tlb_mask(k, mask);
  for (let i = 0; i < tlb.ntables; i++) wpseq_end(k, tlb.tables[i]);
  for (let i = 0; i < tlb.nframes; i++) free_frame(k, tlb.frames[i]);
  tlb.reset();
}

/** The table of `level` on the path to `vpn`, or -1 when an entry on the way is none. */
export function lookup_table(k: Kernel, pgd: number, vpn: number, level: number, mm: number): number {
  let t = pgd;
  for (let l = PGD_LEVEL; l > level; l--) {
    const idx = l === PGD_LEVEL ? pgd_index(vpn) : l === PUD_LEVEL ? pud_index(vpn) : pmd_index(vpn);
    const e = Atomics.load(k.i32, entry_off(k, t, idx));
    // A software walk's read: the entry may change before it is followed (the caller's lock decides whether it may).
    if (k.sched !== null) k.sched.point(k, SchedPoint.PtLookupLoad);
    if (e === 0) return -1;
    t = table_of(k, e, l - 1, mm);
    if (t < 0) return -1;
  }
  return t;
}

/** Word offset of the entry of the `level` table that maps `vpn` in `mm`, or -1 when none. */
export function lookup_entry(k: Kernel, mm: number, vpn: number, level: number): number {
  const t = lookup_table(k, Atomics.load(k.i32, k.mmBase(mm) + M_PGD), vpn, level, mm);
  return t < 0 ? -1 : entry_off(k, t, index_at(vpn, level));
}

/**
 * Drops one upper-level reference to page-table page `t`: a table others still point to only
 * loses a share (the hugetlb rule: a shared PMD page is freed by its last user); otherwise it
 * is freed. The caller has cleared the entry that pointed to it.
 */
export function pt_put(k: Kernel, t: number): void {
  // One atomic step: of two last holders dropping at once, exactly one frees it.
  if (Atomics.sub(k.i32, ptpBase(k, t) + P_SHARE, 1) === 1) free_ptp(k, t);
}

function table_empty(k: Kernel, t: number): boolean {
  const i32 = k.i32;
  for (let i = 0; i < PTRS_PER_TABLE; i++) if (Atomics.load(i32, entry_off(k, t, i)) !== 0) return false;
  return true;
}

/**
 * free_pgtables for [start, end) of `mm`: frees each PTE, PMD and PUD table that maps only
 * addresses no VMA of `mm` covers any more (the floor/ceiling rule of free_pgd_range), once its
 * entries are all gone. Tables shared with other mms are unshared instead (a share less). Called
 * with mmap_lock held for write, after zap_page_range and the TLB flush.
 *
 * Another thread of the process may be inside a lock-free hardware walk of these tables on
 * another CPU: as Linux's mmu_gather (tlb_remove_table), the entries are cleared first, then
 * every CPU running the mm is flushed — a CPU takes that IPI only between walks — and only then
 * are the tables freed.
 */
export function free_pgtables(k: Kernel, mm: number, start: number, end: number): void {
  mmap_assert_write_locked(k, mm, AssertSite.FreePgtables);
  const i32 = k.i32;
  const pgd = Atomics.load(i32, k.mmBase(mm) + M_PGD);
  const gone: number[] = [];
  let dropped = false;
  const put = (t: number) => {
    if (Atomics.sub(i32, ptpBase(k, t) + P_SHARE, 1) === 1) gone.push(t);
  };
  walk: for (let a1 = Math.floor(start / PGDIR_SIZE) * PGDIR_SIZE; a1 < end; a1 += PGDIR_SIZE) {
    const o1 = entry_off(k, pgd, pgd_index(a1 / 4096));
    const e1 = Atomics.load(i32, o1);
    if (e1 === 0) continue;
    // (a point for each present entry read: the empty ones of a whole-address-space walk would be hundreds)
    if (k.sched !== null) k.sched.point(k, SchedPoint.FreePgtablesLoad);
    const pud = table_of(k, e1, PUD_LEVEL, mm);
    if (pud < 0) break;
    for (let a2 = Math.max(a1, Math.floor(start / PUD_SIZE) * PUD_SIZE); a2 < Math.min(end, a1 + PGDIR_SIZE); a2 += PUD_SIZE) {
      const o2 = entry_off(k, pud, pud_index(a2 / 4096));
      const e2 = Atomics.load(i32, o2);
      if (e2 === 0) continue;
      if (k.sched !== null) k.sched.point(k, SchedPoint.FreePgtablesLoad);
      const pmd = table_of(k, e2, PMD_LEVEL, mm);
      if (pmd < 0) break walk;
      for (let a3 = Math.max(a2, Math.floor(start / PMD_SIZE) * PMD_SIZE); a3 < Math.min(end, a2 + PUD_SIZE); a3 += PMD_SIZE) {
        const o3 = entry_off(k, pmd, pmd_index(a3 / 4096));
        const e3 = Atomics.load(i32, o3);
        if (e3 === 0) continue;
        if (k.sched !== null) k.sched.point(k, SchedPoint.FreePgtablesLoad);
        if (range_has_vma(k, mm, a3, a3 + PMD_SIZE)) continue;
        const pte = table_of(k, e3, PTE_LEVEL, mm);
        if (pte < 0) break walk;
        // cow-pte: a COW-shared table leaves this mm only (free_pmd_range's pmd_put_pte); its
        // last user gets it back writable and frees it as usual.
        if ((e3 & _PAGE_RW) === 0 && k.model.drop_cow_pte !== undefined && k.model.drop_cow_pte(k, mm, o3, pte)) {
          dropped = true;
          continue;
        }
        const shared = Atomics.load(i32, ptpBase(k, pte) + P_SHARE) > 1;
        if (!shared && !table_empty(k, pte)) {
          report_violation(i32, k.layout, Violation.Invariant, k.cpu, 2, pte, mm, 0);
          break walk;
        }
        guard_upper(k, o3, AssertSite.FreePgtables); // pmd_clear (free_pte_range)
        Atomics.store(i32, o3, 0);
        put(pte);
      }
      if (!range_has_vma(k, mm, a2, a2 + PUD_SIZE) && table_empty(k, pmd)) {
        guard_upper(k, o2, AssertSite.FreePgtables); // pud_clear (free_pmd_range)
        Atomics.store(i32, o2, 0);
        put(pmd);
      }
    }
    if (!range_has_vma(k, mm, a1, a1 + PGDIR_SIZE) && table_empty(k, pud)) {
      guard_upper(k, o1, AssertSite.FreePgtables); // p4d_clear (free_pud_range)
      Atomics.store(i32, o1, 0);
      put(pud);
    }
  }
  if (gone.length === 0 && !dropped) return;
  flush_tlb_mm(k, mm);
  for (const t of gone) free_ptp(k, t);
}


/** copy_user_highpage: the data words of frame `src` into frame `dst` (not the ledger). */
export function copy_page_data(k: Kernel, src: number, dst: number): void {
  const i32 = k.i32;
  const s = frameBase(k, src) + F_HDR;
  const d = frameBase(k, dst) + F_HDR;
  for (let w = 0, n = k.layout.config.payloadWords; w < n; w++) Atomics.store(i32, d + w, Atomics.load(i32, s + w));
}
