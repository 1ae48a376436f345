/**
 * What protects what: lock-context assertions (lockdep_assert_held, mmap_assert_locked,
 * vma_assert_write_locked, i_mmap_assert_write_locked — include/linux/mmap_lock.h, mm.h, fs.h)
 * and the locksets of kernel data (Eraser, and lockdep's __guarded_by): every class of
 * machine-memory word the mm writes declares here the lock, or the lockless protocol, that
 * guards it, and one small guard per class checks a write against it.
 *
 * - Assertions are always on: a path that Linux asserts a lock in runs with this CPU holding it
 *   (its held-lock stack, sync/wait.ts), or the run fails with a 'lockdep:assert' violation
 *   naming the function (ASSERT_SITES), the lock and who holds it.
 * - Guards run in the checking mode only (Kernel.lockset: explore, the tests, `--lockset`); off,
 *   each costs one well-predicted branch. A write outside its declared protection is a 'lockset'
 *   violation naming the word's class, the function and the lock classes this CPU held.
 *
 * Both fail-stop through the violation ring (mmdebug.ts); src/check/index.ts words them. This
 * module reads only machine memory and the CPU's held stack: mm code imports it, it imports no
 * mm code but mmdebug (and Kernel's type).
 */
import {
  FILE_WORDS, FL_IMMAP_RWSEM, FL_REF, FL_XA_LOCK, M_FLAGS, M_LOCK_SEQ, M_MMAP_LOCK, M_PAGE_TABLE_LOCK, M_USERS,
  MM_WORDS, MMF_QRWLOCK, P_OWNER, P_PTL, PTP_WORDS, V_DETACHED, V_LOCK, V_LOCK_SEQ, V_MM, VMA_WORDS,
} from '../shm/layout.js';
import { LockClass, LockMode } from '../sync/lockdep.js';
import { RW_OWNER } from '../sync/rwsem.js';
import { spin_owner } from '../sync/spinlock.js';
import { report_violation, Violation } from './mmdebug.js';
import { FAULT_FLAG_VMA_LOCK, type Kernel, type VmFault } from './percpu.js';

/**
 * The functions that assert a lock or guard a write, by site id (a violation names its site).
 * Linux's names where Linux has the function.
 */
export const ASSERT_SITES = [
  'do_munmap', 'do_mmap', 'mprotect_fixup', 'split_vma', 'zap_page_range', 'unmap_mapping_range', 'vma_link_mm',
  'vma_start_write', 'vma_set_range', 'vma_mark_detached', 'vm_flags_set', 'free_pgtables', 'unmap_vmas',
  'handle_mm_fault', 'change_protection', 'vma_interval_tree_insert', 'vma_interval_tree_remove', 'move_vma',
  'move_ptes', 'madvise_update_vma', 'mlock_fixup', 'userfaultfd_register', 'copy_page_range', 'zap_pte_range',
  'finish_fault', 'do_wp_page', 'wp_page_copy', 'fix_pte_prot', '__pte_alloc', 'huge_pmd_share', 'huge_pmd_unshare',
  'share_host_entry', 'guest_unshare', 'guest_pmd_fault', 'change_uffd_wp', 'wrprotect_vma', 'filemap_add_folio',
  'filemap_remove_folio', 'alloc_ptp', 'pt_share_transfer', 'change_access_range', 'host_map_range',
  'guest_detach', 'mremap_expand', 'vma_modify', 'pt_share_get', 'mshare_fault', 'mshare_unmap',
  'rmap_walk_file', 'try_to_unmap_one',
  'copy_cow_pte_range', 'handle_cow_pte_fault', 'cow_pte_put',
] as const;
export const enum AssertSite {
  DoMunmap, DoMmap, MprotectFixup, SplitVma, ZapPageRange, UnmapMappingRange, VmaLinkMm,
  VmaStartWrite, VmaSetRange, VmaMarkDetached, VmFlagsSet, FreePgtables, UnmapVmas,
  HandleMmFault, ChangeProtection, IMmapInsert, IMmapRemove, MoveVma,
  MovePtes, MadviseUpdateVma, MlockFixup, UserfaultfdRegister, CopyPageRange, ZapPteRange,
  FinishFault, DoWpPage, WpPageCopy, FixPteProt, PteAlloc, HugePmdShare, HugePmdUnshare,
  ShareHostEntry, GuestUnshare, GuestPmdFault, ChangeUffdWp, WrprotectVma, FilemapAdd,
  FilemapRemove, AllocPtp, PtShareTransfer, ChangeAccessRange, HostMapRange,
  GuestDetach, MremapExpand, VmaModify, PtShareGet, MshareFault, MshareUnmap,
  RmapWalkFile, TryToUnmapOne,
  CopyCowPteRange, HandleCowPteFault, CowPtePut,
}

/** Invariant violation code of a failed lock assertion (src/check/index.ts describes it). */
export const LOCK_ASSERT_VIOLATION = 8;

/**
 * The lock an assertion asked for (the violation's fourth word). 0, 1, 2 keep the values of the
 * first assertions (mmap_lock, mmap_lock for write, i_mmap_rwsem).
 */
export const enum AssertLock { Mmap, MmapWrite, IMmap, IMmapWrite, Ptl, VmaLocked, VmaWriteLocked, VmaAttached, VmaNotWriteLocked }
export const ASSERT_LOCK_NAMES = [
  'its mmap_lock (mmap_assert_locked)', 'its mmap_lock for write (mmap_assert_write_locked)',
  "the file's i_mmap_rwsem (i_mmap_assert_locked)", "the file's i_mmap_rwsem for write (i_mmap_assert_write_locked)",
  "the PTE table's lock (lockdep_assert_held(pte_lockptr))", "the VMA's lock (vma_assert_locked)",
  'the VMA write-locked (vma_assert_write_locked)',
  // Not locks: what holding the VMA's read lock must mean (assert_fault_locked, below).
  'a VMA still attached to its mm (vma_assert_attached)', 'a VMA no writer has write-locked (vma_start_read\'s vm_lock_seq recheck)',
];

// ---- machine-memory addresses, computed here so that this module imports no mm code ----

function mmBase(k: Kernel, mm: number): number {
  return k.layout.mms + mm * MM_WORDS;
}
function ptpOff(k: Kernel, t: number): number {
  return k.ptps.base + t * PTP_WORDS;
}
function vmaOff(k: Kernel, v: number): number {
  return k.pools.vmas.base + v * VMA_WORDS;
}
function fileOff(k: Kernel, f: number): number {
  return k.pools.files.base + f * FILE_WORDS;
}

/**
 * pte_lockptr: the lock that guards the entries of PTE table `t` — its own split lock
 * (ptlock_ptr), or with `--ptl mm` its owner mm's page_table_lock.
 */
export function pte_lockptr(k: Kernel, t: number): number {
  const b = ptpOff(k, t);
  return k.ptlMm ? mmBase(k, Atomics.load(k.i32, b + P_OWNER)) + M_PAGE_TABLE_LOCK : b + P_PTL;
}

/** The mm that owns page-table page `t` (whose tables it is part of). */
function table_owner(k: Kernel, t: number): number {
  return Atomics.load(k.i32, ptpOff(k, t) + P_OWNER);
}

/** No task reaches `mm` any more (mm_users 0: exit_mmap's teardown, a host being torn down). */
function mm_unreachable(k: Kernel, mm: number): boolean {
  return mm < 0 || Atomics.load(k.i32, mmBase(k, mm) + M_USERS) === 0;
}

/** The CPU a writer-held rw lock (an rwsem's RW_OWNER) or a spinlock names, or -1. */
function rwsem_writer(k: Kernel, sem: number): number {
  return Atomics.load(k.i32, sem + RW_OWNER) - 1;
}
function mmap_lock_writer(k: Kernel, mm: number): number {
  const b = mmBase(k, mm);
  return (Atomics.load(k.i32, b + M_FLAGS) & MMF_QRWLOCK) !== 0 ? -1 : rwsem_writer(k, b + M_MMAP_LOCK);
}

function assert_failed(k: Kernel, site: AssertSite, mm: number, lock: AssertLock, readOnly: boolean, holder: number): void {
  report_violation(k.i32, k.layout, Violation.Invariant, k.cpu, LOCK_ASSERT_VIOLATION, site, mm, lock, readOnly ? 1 : 0, holder + 1);
}

// ---- lock-context assertions (always on) ----

/** mmap_assert_write_locked: this CPU holds `mm`'s mmap_lock for write (or no task reaches `mm`). */
export function mmap_assert_write_locked(k: Kernel, mm: number, site: AssertSite): void {
  const lock = mmBase(k, mm) + M_MMAP_LOCK;
  if (k.holdsWrite(lock) || !k.heldStackComplete() || mm_unreachable(k, mm)) return;
  assert_failed(k, site, mm, AssertLock.MmapWrite, k.holds(lock), mmap_lock_writer(k, mm));
}

/** mmap_assert_locked: held for read or write (or no task reaches `mm`). */
export function mmap_assert_locked(k: Kernel, mm: number, site: AssertSite): void {
  const lock = mmBase(k, mm) + M_MMAP_LOCK;
  if (k.holds(lock) || !k.heldStackComplete() || mm_unreachable(k, mm)) return;
  assert_failed(k, site, mm, AssertLock.Mmap, false, mmap_lock_writer(k, mm));
}

/** lockdep_assert_held on the file's i_mmap_rwsem: i_mmap_assert_locked. */
export function i_mmap_assert_locked(k: Kernel, file: number, site: AssertSite, mm = -1): void {
  const sem = fileOff(k, file) + FL_IMMAP_RWSEM;
  if (k.holds(sem) || !k.heldStackComplete()) return;
  assert_failed(k, site, mm, AssertLock.IMmap, false, rwsem_writer(k, sem));
}

/** i_mmap_assert_write_locked: lockdep_assert_held_write(&mapping->i_mmap_rwsem). */
export function i_mmap_assert_write_locked(k: Kernel, file: number, site: AssertSite, mm = -1): void {
  const sem = fileOff(k, file) + FL_IMMAP_RWSEM;
  if (k.holdsWrite(sem) || !k.heldStackComplete()) return;
  assert_failed(k, site, mm, AssertLock.IMmapWrite, k.holds(sem), rwsem_writer(k, sem));
}

/** The first assertion's form: lockdep_assert_held on the i_mmap_rwsem word itself. */
export function lockdep_assert_held(k: Kernel, word: number, site: AssertSite, mm = -1): void {
  if (k.holds(word) || !k.heldStackComplete()) return;
  assert_failed(k, site, mm, AssertLock.IMmap, false, rwsem_writer(k, word));
}

/** lockdep_assert_held(pte_lockptr(mm, pmd)): this CPU holds PTE table `t`'s lock. */
export function pte_assert_locked(k: Kernel, t: number, site: AssertSite): void {
  const w = pte_lockptr(k, t);
  if (k.holds(w) || !k.heldStackComplete()) return;
  assert_failed(k, site, table_owner(k, t), AssertLock.Ptl, false, spin_owner(k.i32, w));
}

/** Is VMA `v` write-locked (__is_vma_write_locked: vm_lock_seq == mm_lock_seq)? */
function vma_write_locked(k: Kernel, v: number): boolean {
  const b = vmaOff(k, v);
  return Atomics.load(k.i32, b + V_LOCK_SEQ) === Atomics.load(k.i32, mmBase(k, Atomics.load(k.i32, b + V_MM)) + M_LOCK_SEQ);
}

/**
 * vma_assert_write_locked (CONFIG_PER_VMA_LOCK; nothing without it): a change to an attached
 * VMA comes after vma_start_write. A detached VMA (new, not yet linked; or unlinked) no fault
 * can find; an mm no task reaches neither.
 */
export function vma_assert_write_locked(k: Kernel, v: number, site: AssertSite): void {
  if (!k.perVmaLock) return;
  const b = vmaOff(k, v);
  if (vma_write_locked(k, v) || Atomics.load(k.i32, b + V_DETACHED) !== 0) return;
  const mm = Atomics.load(k.i32, b + V_MM);
  if (mm_unreachable(k, mm)) return;
  assert_failed(k, site, mm, AssertLock.VmaWriteLocked, k.holds(b + V_LOCK), mmap_lock_writer(k, mm));
}

/** vma_assert_locked: the VMA read-locked by this CPU (a fault under its lock), or write-locked. */
export function vma_assert_locked(k: Kernel, v: number, site: AssertSite): void {
  const b = vmaOff(k, v);
  if (k.holds(b + V_LOCK) || vma_write_locked(k, v) || !k.heldStackComplete()) return;
  assert_failed(k, site, Atomics.load(k.i32, b + V_MM), AssertLock.VmaLocked, false, rwsem_writer(k, b + V_LOCK));
}

// ---- locksets (Kernel.lockset) ----

/** The classes of kernel data a guard checks (the violation's first word). */
export const enum Guarded { Pte, Upper, PtShare, Vma, Rss, Pgtables, PageCache, IMmap }
export const GUARDED_NAMES = [
  'PTE', 'upper-level entry (PGD/PUD/PMD)', 'page-table share count or owner (P_SHARE/P_OWNER)', 'vm_area_struct field',
  'RSS counter', 'pgtables_bytes', 'page-cache slot', 'i_mmap link',
];
/** Each class's declared protection (__guarded_by), as the report states it. */
export const GUARDED_RULES = [
  // set_pte_at / ptep_get_and_clear in zap_pte_range / change_pte_range: all under pte_offset_map_lock.
  "the table's PTE lock (pte_lockptr: its split ptlock, or its mm's page_table_lock under --ptl mm)",
  // pud_populate / pmd_populate under page_table_lock in Linux; ptlab populates a none entry with
  // one compareExchange (table_alloc) under mmap_lock or a VMA lock. Clearing or replacing an
  // entry (free_pgtables, unsharing) needs the owner mm's mmap_lock for write, or its
  // page_table_lock, or i_mmap_rwsem for write (huge_pmd_unshare), or an mm no task reaches.
  "populate (compareExchange on a none entry) under the owner mm's mmap_lock or a VMA lock; clear or replace under the owner's mmap_lock for write, its page_table_lock or i_mmap_rwsem for write (huge_pmd_unshare), or the guest's and host's mmap_lock (share_host_entry); " +
    "a PMD entry of a COW-shared PTE table (cow-pte) is write-protected, swung to a copy or cleared under that table's PTE lock, its mm's mmap_lock or a VMA lock held",
  // A reference is taken while something keeps the table alive: the owner's mmap_lock (the
  // host's, for a sharing model), or i_mmap_rwsem (huge_pmd_share's sibling walk). pt_put's
  // atomic dec-and-test needs no lock: its caller cleared, under that entry's guard, the entry
  // the reference stood for.
  "take a share under the owner mm's mmap_lock or i_mmap_rwsem (huge_pmd_share); drop it with pt_put's atomic dec-and-test after clearing the entry; " +
    "a COW-shared PTE table's share count, owner and sharers (cow-pte) change only under its PTE lock",
  "the mm's mmap_lock for write (and with per-VMA locks the VMA write-locked: vma_start_write), unless the VMA is detached (new or unlinked) or no task reaches the mm",
  // mm_counter is a percpu counter changed with the PTE it counts: under that PTE's lock.
  "an atomic add with the PTE change it counts, under that table's PTE lock (or an mm no task reaches)",
  // mm_inc_nr_ptes / mm_dec_nr_ptes: an atomic counter, increased where a table is installed
  // (under mmap_lock or a VMA lock), decreased by the table's last reference (free_ptp).
  "an atomic add where a table is installed, under the mm's mmap_lock or a VMA lock (or i_mmap_rwsem for write when a shared table changes owner, or the table's PTE lock when a COW-shared one does: cow-pte)",
  "the file's xa_lock (i_pages), or a file no one references",
  "the file's i_mmap_rwsem for write (i_mmap_lock_write)",
];

/** Lockset violations are Invariant violations with this code (the machine's ring carries them). */
export const LOCKSET_VIOLATION = 9;

/** Reports a write of class `cls` outside its protection: the classes this CPU holds, by mode. */
function lockset_failed(k: Kernel, cls: Guarded, site: AssertSite, obj: number, mm: number): void {
  let w = 0;
  let r = 0;
  for (let d = Math.min(k.heldDepth, k.heldWord.length) - 1; d >= 0; d--) {
    if (k.heldMode[d] === LockMode.Read) r |= 1 << k.heldClass[d];
    else w |= 1 << k.heldClass[d];
  }
  report_violation(k.i32, k.layout, Violation.Invariant, k.cpu, LOCKSET_VIOLATION, cls | (site << 8), obj, mm, w, r);
}

/** Does this CPU hold a lock of class `cls` (any mode / for write)? */
function holdsClass(k: Kernel, cls: LockClass, write: boolean): boolean {
  for (let d = Math.min(k.heldDepth, k.heldWord.length) - 1; d >= 0; d--) {
    if (k.heldClass[d] === cls && (!write || k.heldMode[d] === LockMode.Write)) return true;
  }
  return false;
}

/** Does this CPU hold the VMA lock of some VMA of `mm` (a fault under lock_vma_under_rcu)? */
function holdsVmaLockOf(k: Kernel, mm: number): boolean {
  const base = k.pools.vmas.base;
  for (let d = Math.min(k.heldDepth, k.heldWord.length) - 1; d >= 0; d--) {
    if (k.heldClass[d] !== LockClass.VmaLock) continue;
    const b = k.heldWord[d] - V_LOCK;
    if ((b - base) % VMA_WORDS === 0 && Atomics.load(k.i32, b + V_MM) === mm) return true;
  }
  return false;
}

/** A PTE of table `t` changes (set_pte_at, ptep_get_and_clear, ptep_set_wrprotect): its PTE lock held. */
export function guard_pte(k: Kernel, t: number, site: AssertSite): void {
  if (k.lockset) check_pte(k, t, site);
}
function check_pte(k: Kernel, t: number, site: AssertSite): void {
  if (k.holds(pte_lockptr(k, t)) || !k.heldStackComplete()) return;
  lockset_failed(k, Guarded.Pte, site, t, table_owner(k, t));
}

/** An RSS counter of `mm` changes with a PTE of table `t`: under that table's PTE lock. */
export function guard_rss(k: Kernel, mm: number, t: number, site: AssertSite): void {
  if (k.lockset) check_rss(k, mm, t, site);
}
function check_rss(k: Kernel, mm: number, t: number, site: AssertSite): void {
  if (k.holds(pte_lockptr(k, t)) || !k.heldStackComplete() || mm_unreachable(k, mm)) return;
  lockset_failed(k, Guarded.Rss, site, t, mm);
}

/** mmap_lock of `mm` held by this CPU (any mode), or a VMA lock of it, or no task reaches it. */
function mm_stable(k: Kernel, mm: number): boolean {
  return k.holds(mmBase(k, mm) + M_MMAP_LOCK) || holdsVmaLockOf(k, mm) || mm_unreachable(k, mm);
}

/**
 * The upper-level entry at word `off` goes from none to a table (pud_populate / pmd_populate,
 * ptlab's compareExchange in table_alloc): the owner's mmap_lock or a VMA lock keeps the range's
 * tables from being freed meanwhile.
 */
export function guard_upper_populate(k: Kernel, off: number, site: AssertSite): void {
  if (k.lockset) check_upper_populate(k, off, site);
}
/** The page-table page that holds the entry at word `off`. */
function table_at(k: Kernel, off: number): number {
  return Math.floor((off - k.ptps.base) / PTP_WORDS);
}
function check_upper_populate(k: Kernel, off: number, site: AssertSite): void {
  const t = table_at(k, off);
  const mm = table_owner(k, t);
  if (!k.heldStackComplete() || mm_stable(k, mm)) return;
  lockset_failed(k, Guarded.Upper, site, t, mm);
}

/**
 * The upper-level entry at word `off` is cleared or replaced (free_pgtables, a guest unsharing,
 * huge_pmd_unshare): the owner's mmap_lock for write, its page_table_lock, i_mmap_rwsem for write
 * (huge_pmd_unshare's i_mmap_assert_write_locked), or an mm no task reaches.
 */
export function guard_upper(k: Kernel, off: number, site: AssertSite): void {
  if (k.lockset) check_upper(k, off, site);
}
function check_upper(k: Kernel, off: number, site: AssertSite): void {
  const t = table_at(k, off);
  const mm = table_owner(k, t);
  const b = mmBase(k, mm);
  if (k.holdsWrite(b + M_MMAP_LOCK) || k.holds(b + M_PAGE_TABLE_LOCK) || !k.heldStackComplete() || mm_unreachable(k, mm)) return;
  if (holdsClass(k, LockClass.IMmapRwsem, true)) return;
  lockset_failed(k, Guarded.Upper, site, t, mm);
}

/**
 * share_host_entry's rule: a guest's upper entry (at word `off`) is swung to a host's table
 * by compareExchange under the guest's mmap_lock and the host's (both for read at least).
 */
export function guard_upper_share(k: Kernel, off: number, host: number, site: AssertSite): void {
  if (k.lockset) check_upper_share(k, off, host, site);
}
function check_upper_share(k: Kernel, off: number, host: number, site: AssertSite): void {
  const t = table_at(k, off);
  const mm = table_owner(k, t);
  if (!k.heldStackComplete() || (mm_stable(k, mm) && k.holds(mmBase(k, host) + M_MMAP_LOCK))) return;
  lockset_failed(k, Guarded.Upper, site, t, mm);
}

/**
 * A share of table `t` is taken (P_SHARE up), or its owner changes (P_OWNER): the owner's
 * mmap_lock keeps it alive, or i_mmap_rwsem (huge_pmd_share found it through i_mmap).
 */
export function guard_pt_share(k: Kernel, t: number, site: AssertSite): void {
  if (k.lockset) check_pt_share(k, t, site);
}
function check_pt_share(k: Kernel, t: number, site: AssertSite): void {
  const mm = table_owner(k, t);
  if (!k.heldStackComplete() || k.holds(mmBase(k, mm) + M_MMAP_LOCK) || holdsClass(k, LockClass.IMmapRwsem, false) || mm_unreachable(k, mm)) return;
  lockset_failed(k, Guarded.PtShare, site, t, mm);
}

/**
 * cow-pte's rule for a COW-shared PTE table `t`: its share count, owner and sharer slots, and the
 * accounting that moves with its owner (pgtables_bytes, RSS), change under `t`'s PTE lock — the
 * one lock every sharer takes, whatever mm's locks it holds (Lin's "Use pte lock to protect the
 * break COW PTE and free COW-ed PTE").
 */
export function guard_cow_pte(k: Kernel, t: number, cls: Guarded, mm: number, site: AssertSite): void {
  if (k.lockset) check_cow_pte(k, t, cls, mm, site);
}
function check_cow_pte(k: Kernel, t: number, cls: Guarded, mm: number, site: AssertSite): void {
  if (!k.heldStackComplete() || k.holds(pte_lockptr(k, t))) return;
  lockset_failed(k, cls, site, t, mm);
}

/**
 * A PMD entry (at word `off`) pointing to COW-shared PTE table `t` is write-protected, swung to
 * a private copy or cleared (cow-pte): under `t`'s PTE lock (every sharer's change of the table
 * serialises there), with the entry's own mm kept stable by its mmap_lock or a VMA lock.
 */
export function guard_upper_cow(k: Kernel, off: number, t: number, site: AssertSite): void {
  if (k.lockset) check_upper_cow(k, off, t, site);
}
function check_upper_cow(k: Kernel, off: number, t: number, site: AssertSite): void {
  const pmd = table_at(k, off);
  const mm = table_owner(k, pmd);
  if (!k.heldStackComplete() || (k.holds(pte_lockptr(k, t)) && mm_stable(k, mm))) return;
  lockset_failed(k, Guarded.Upper, site, pmd, mm);
}

/** pgtables_bytes of `mm` changes where a table is installed or changes owner. */
export function guard_pgtables(k: Kernel, mm: number, site: AssertSite): void {
  if (k.lockset) check_pgtables(k, mm, site);
}
function check_pgtables(k: Kernel, mm: number, site: AssertSite): void {
  if (!k.heldStackComplete() || mm_stable(k, mm) || holdsClass(k, LockClass.IMmapRwsem, true)) return;
  lockset_failed(k, Guarded.Pgtables, site, -1, mm);
}

/**
 * A field of VMA `v` changes (range, vm_flags, pgoff, its place in the mm's list): the mm's
 * mmap_lock for write, and with per-VMA locks the VMA write-locked — unless the VMA is detached
 * (new: its creator's alone) or no task reaches the mm.
 */
export function guard_vma(k: Kernel, v: number, site: AssertSite): void {
  if (k.lockset) check_vma(k, v, site);
}
function check_vma(k: Kernel, v: number, site: AssertSite): void {
  const b = vmaOff(k, v);
  const mm = Atomics.load(k.i32, b + V_MM);
  if (!k.heldStackComplete() || Atomics.load(k.i32, b + V_DETACHED) !== 0 || mm_unreachable(k, mm)) return;
  if (k.holdsWrite(mmBase(k, mm) + M_MMAP_LOCK) && (!k.perVmaLock || vma_write_locked(k, v))) return;
  lockset_failed(k, Guarded.Vma, site, v, mm);
}

/** A page-cache slot (or nrpages) of `file` changes: its xa_lock, or a file no one references. */
export function guard_page_cache(k: Kernel, file: number, site: AssertSite): void {
  if (k.lockset) check_page_cache(k, file, site);
}
function check_page_cache(k: Kernel, file: number, site: AssertSite): void {
  const b = fileOff(k, file);
  if (!k.heldStackComplete() || k.holds(b + FL_XA_LOCK) || Atomics.load(k.i32, b + FL_REF) <= 0) return;
  lockset_failed(k, Guarded.PageCache, site, file, -1);
}

/** A link of `file`'s i_mmap changes (vma_interval_tree_insert / _remove): i_mmap_rwsem for write. */
export function guard_i_mmap(k: Kernel, file: number, site: AssertSite): void {
  if (k.lockset) check_i_mmap(k, file, site);
}
function check_i_mmap(k: Kernel, file: number, site: AssertSite): void {
  if (!k.heldStackComplete() || k.holdsWrite(fileOff(k, file) + FL_IMMAP_RWSEM)) return;
  lockset_failed(k, Guarded.IMmap, site, file, -1);
}

/**
 * vm_flags_set / vm_flags_clear / vm_flags_reset and the other changes of a VMA: with per-VMA
 * locks it is write-locked (vma_assert_write_locked, always checked), and the lockset's rule.
 */
export function vma_write_checks(k: Kernel, v: number, site: AssertSite): void {
  vma_assert_write_locked(k, v, site);
  guard_vma(k, v, site);
}

/**
 * The mm's VMA set (ptlab's sorted list, Linux's maple tree: mas_store under mmap_lock for write,
 * readers under RCU) changes: `mm`'s mmap_lock held for write.
 */
export function guard_vma_list(k: Kernel, mm: number, site: AssertSite): void {
  if (k.lockset) check_vma_list(k, mm, site);
}
function check_vma_list(k: Kernel, mm: number, site: AssertSite): void {
  if (!k.heldStackComplete() || k.holdsWrite(mmBase(k, mm) + M_MMAP_LOCK) || mm_unreachable(k, mm)) return;
  lockset_failed(k, Guarded.Vma, site, -1, mm);
}

/**
 * assert_fault_locked: a fault runs under the faulting mm's mmap_lock, or (FAULT_FLAG_VMA_LOCK)
 * its VMA's lock.
 */
export function assert_fault_locked(k: Kernel, vmf: VmFault): void {
  if ((vmf.flags & FAULT_FLAG_VMA_LOCK) === 0) {
    mmap_assert_locked(k, vmf.task_mm, AssertSite.HandleMmFault);
    return;
  }
  vma_assert_locked(k, vmf.vma, AssertSite.HandleMmFault);
  // What lock_vma_under_rcu promised: the VMA is attached (vma_assert_attached: a detached one
  // was unlinked by a writer, its tables may be gone), and no writer has it write-locked — a
  // writer waits for readers in vma_start_write, so a reader holding the lock while
  // vm_lock_seq == mm_lock_seq got it after the writer's mark, which vma_start_read's recheck refuses.
  const v = vmf.vma;
  const b = vmaOff(k, v);
  const mm = Atomics.load(k.i32, b + V_MM);
  if (Atomics.load(k.i32, b + V_DETACHED) !== 0) assert_failed(k, AssertSite.HandleMmFault, mm, AssertLock.VmaAttached, false, -1);
  else if (vma_write_locked(k, v) && !k.holdsWrite(mmBase(k, mm) + M_MMAP_LOCK)) {
    assert_failed(k, AssertSite.HandleMmFault, mm, AssertLock.VmaNotWriteLocked, false, rwsem_writer(k, mmBase(k, mm) + M_MMAP_LOCK));
  }
}
