/**
 * userfaultfd write-protect on shared memory (seed 003), two ways.
 *
 * 1. Per-process PTE markers, as in Linux (mm/userfaultfd.c: mwriteprotect_range;
 *    fs/userfaultfd.c: userfaultfd_register, handle_userfault). UFFDIO_REGISTER (MODE_WP) sets
 *    VM_UFFD_WP on the VMAs of a range; UFFDIO_WRITEPROTECT sets (or clears) a uffd-wp marker on
 *    every present PTE of the caller's range and clears (or sets) its write bit. The markers live
 *    "beside" the entries, in a 512-bit bitmap in the page-table page's header (P_UFFD_WP): the
 *    32-bit entry has room only for the hardware walker's bits. A marker is a property of the
 *    *table*: on a table shared between processes (map-shared-pt, mshare, container-fd) it hits
 *    every sharer, registered or not — the seed's point.
 * 2. File-level tracking in the page cache (David Hildenbrand's proposal): the file is registered
 *    once, and write-protecting it flags every cached page (F_UFFD_WP in the frame) and takes the
 *    write bit away from every PTE mapping those pages (an rmap walk of the file's i_mmap, like
 *    page_mkclean). A write fault on a flagged page raises the event, whoever writes.
 *
 * Either way a write fault on a protected page queues an event in a machine-wide ring (file,
 * page index, writer task) and returns VM_FAULT_UFFD; the access then drops mmap_lock and waits
 * (handle_userfault's VM_FAULT_RETRY) — bounded, taking interrupts — until the marker or flag is
 * gone, and retries. The handler (QEMU's loop, uffd_handle) pops events, "saves" each page
 * (the snapshot check below), and resolves it: flavour 1 unprotects the page in EVERY registered
 * process's tables (QEMU holds each process's uffd: one UFFDIO_WRITEPROTECT per mm, under that
 * mm's mmap_lock for read); flavour 2 clears the page's flag (one write). Then it wakes waiters.
 *
 * The snapshot check: when a page is write-protected its payload sum is recorded in a side array
 * (after the flush: from then on, every write faults); saving a page twice, saving a page whose
 * payload no longer matches ("written before it was saved"), or ending the snapshot with a
 * changed page never saved, is a Violation.Snapshot.
 *
 * A waiting writer holds its CPU (it waits inside an op): with more processes than CPUs the
 * handler could be starved, so the snapshot scenarios need procs <= cpus (each process pinned).
 */
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock, vma_start_write } from './mmap_lock.js';
import {
  B_ARRIVED, BARRIER_WORDS, F_INDEX, F_MAPCOUNT, F_LEDGER, F_OWNER, F_UFFD_WP, FILE_SHMEM, FL_ID, FL_KIND, FL_IMMAP_HEAD,
  FL_IMMAP_RWSEM, FRAME_ANON, FRAME_FILE, G_PROGRESS, M_MMAP_LOCK, MAX_UFFD_MMS, P_HDR, P_OWNER,
  P_UFFD_WP, PTP_WORDS, R_GEN, R_STATE, T_MM, U_ACTIVE, U_EVENTS, U_FILE, U_FILE_GEN, U_HEAD, U_LOCK,
  U_MMS, U_NMM, U_SNAP_FILE, U_SNAP_FILE_GEN, U_TAIL, U_WAKE, UE_FILE, UE_FILE_ID, UE_FLAVOUR, UE_INDEX, UE_MM,
  UE_TASK, UE_VPN_HI, UE_VPN_LO, UE_WORDS, US_PENDING, US_RECORDED, US_SAVED, US_STATE, US_UNPROTECTED, US_SUM, US_WORDS,
  V_FLAGS, V_IMMAP_NEXT, V_MM,
} from '../shm/layout.js';
import { LockClass, LockMode } from '../sync/lockdep.js';
import { down_read, up_read } from '../sync/rwsem.js';
import { spin_lock, spin_unlock } from '../sync/spinlock.js';
import { fdget } from './fdtable.js';
import { fileBase, filemap_get_frame } from './filemap.js';
import { break_cow_pte_range, walk_pte_tables } from './memory.js';
import { page_align, split_vma_range } from './mmap.js';
import { EBADF, EINVAL, ENOMEM } from './errno.js';
import { report_violation, Violation } from './mmdebug.js';
import { frameBase, ptpBase } from './page_alloc.js';
import {
  ST_UFFD_ENTRY_WRITES, ST_UFFD_EVENTS, ST_UFFD_SYSCALLS, ST_UFFD_WAKEUPS, type Kernel, type VmFault,
} from './percpu.js';
import { _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, entry_off, PAGE_SIZE, pte_index, pte_pfn, TASK_SIZE } from './pgtable.js';
import { flush_tlb_mm, wpseq_begin, wpseq_end } from './tlb.js';
import {
  find_vma, vma_end, vma_file, vma_flags, vma_next, vma_pgoff, vma_start, vmaBase, VM_SHARED, VM_SHARED_PT,
  VM_UFFD_WP, VM_WRITE,
} from './vma.js';
import { AssertSite, guard_pte, i_mmap_assert_locked, mmap_assert_locked, pte_assert_locked, vma_write_checks } from './guarded.js';

export const UFFD_FLAVOUR_PTE = 1;
export const UFFD_FLAVOUR_FILE = 2;

/** What the last VM_FAULT_UFFD of this CPU waits for (CPU-local, like the TLB). */
const pending = { kind: 0, word: 0, mask: 0, genOff: 0, gen: 0 };

function U(k: Kernel, w: number): number {
  return k.layout.uffd + w;
}

/** Is uffd-wp in use at all? (One load: the fault path's only cost when it is not.) */
export function uffd_active(k: Kernel): boolean {
  return Atomics.load(k.i32, U(k, U_ACTIVE)) !== 0;
}

/** The frame's ledger: the sum of every value stored into it (moves with any store). */
function frame_sum(k: Kernel, f: number): number {
  return Atomics.load(k.i32, frameBase(k, f) + F_LEDGER);
}

/** The table and the marker word/bit of the PTE at word offset `pteOff`. */
function marker_of(k: Kernel, pteOff: number): { t: number; word: number; mask: number } {
  const rel = pteOff - k.ptps.base;
  const t = Math.floor(rel / PTP_WORDS);
  const idx = (rel % PTP_WORDS) - P_HDR;
  return { t, word: ptpBase(k, t) + P_UFFD_WP + (idx >>> 5), mask: 1 << (idx & 31) };
}

export function pte_marker(k: Kernel, pteOff: number): boolean {
  const m = marker_of(k, pteOff);
  return (Atomics.load(k.i32, m.word) & m.mask) !== 0;
}

/**
 * userfaultfd_pte_wp / the page-cache flag: does a write to the page `frame` through vmf.pte
 * have to wait for the handler? Called from the fault path (do_wp_page under the PTE lock, or
 * do_fault before installing). Remembers what to wait for.
 */
export function uffd_wp_blocked(k: Kernel, vmf: VmFault, frame: number): boolean {
  const i32 = k.i32;
  const m = marker_of(k, vmf.pte);
  if ((Atomics.load(i32, m.word) & m.mask) !== 0) {
    pending.kind = UFFD_FLAVOUR_PTE;
    pending.word = m.word;
    pending.mask = m.mask;
    pending.genOff = ptpBase(k, m.t) + R_GEN;
    pending.gen = Atomics.load(i32, pending.genOff);
    return true;
  }
  if (frame >= 0 && Atomics.load(i32, frameBase(k, frame) + F_UFFD_WP) !== 0) {
    pending.kind = UFFD_FLAVOUR_FILE;
    pending.word = frameBase(k, frame) + F_UFFD_WP;
    pending.mask = -1;
    pending.genOff = frameBase(k, frame) + R_GEN;
    pending.gen = Atomics.load(i32, pending.genOff);
    return true;
  }
  return false;
}

/**
 * handle_userfault's first half: queue the event (one per page while it is pending) and tell the
 * fault path to return VM_FAULT_UFFD. The caller still holds mmap_lock (not the PTE lock).
 */
export function handle_userfault(k: Kernel, vmf: VmFault, frame: number): void {
  const i32 = k.i32;
  const fb = frameBase(k, frame);
  const anon = Atomics.load(i32, fb + R_STATE) === FRAME_ANON;
  const file = anon ? -1 : Atomics.load(i32, fb + F_OWNER);
  const index = anon ? -1 : Atomics.load(i32, fb + F_INDEX);
  const fileId = anon ? 0 : Atomics.load(i32, fileBase(k, file) + FL_ID);
  const st = snap_slot(k, file, index);
  if (st >= 0) {
    // One event per page: later writers wait for the same resolution.
    const old = Atomics.or(i32, st + US_STATE, US_PENDING);
    if ((old & US_PENDING) !== 0) return;
    // Saved but not yet unprotected: this write met the protection between the handler's save
    // and its unprotect. QEMU would see the page saved and only unprotect; here the writer waits
    // for that unprotect without a second event (userfaultfd_must_wait's answer). A write that
    // faults after the unprotect finished is what "saved twice" reports.
    if ((old & (US_SAVED | US_UNPROTECTED)) === US_SAVED) {
      Atomics.and(i32, st + US_STATE, ~US_PENDING);
      return;
    }
  }
  const lock = U(k, U_LOCK);
  spin_lock(k, lock, LockClass.UffdLock);
  const head = Atomics.load(i32, U(k, U_HEAD));
  const tail = Atomics.load(i32, U(k, U_TAIL));
  if (tail - head < k.layout.uffdRingCap) {
    const e = k.layout.uffdRing + (tail & (k.layout.uffdRingCap - 1)) * UE_WORDS;
    Atomics.store(i32, e + UE_FILE, file);
    Atomics.store(i32, e + UE_FILE_ID, fileId);
    Atomics.store(i32, e + UE_INDEX, index);
    Atomics.store(i32, e + UE_TASK, k.task);
    Atomics.store(i32, e + UE_FLAVOUR, pending.kind);
    Atomics.store(i32, e + UE_VPN_HI, Math.floor(vmf.vpn / 2 ** 32));
    Atomics.store(i32, e + UE_VPN_LO, vmf.vpn % 2 ** 32 | 0);
    Atomics.store(i32, e + UE_MM, vmf.task_mm);
    Atomics.store(i32, U(k, U_TAIL), tail + 1);
    k.stats[ST_UFFD_EVENTS]++;
  }
  spin_unlock(k, lock);
  Atomics.add(i32, U(k, U_EVENTS), 1);
  Atomics.notify(i32, U(k, U_EVENTS));
}

/** Has the fault this CPU waits for been resolved (marker or flag gone, or the page/table gone)? */
export function uffd_resolved(k: Kernel): boolean {
  const i32 = k.i32;
  if (pending.kind === 0) return true;
  if (Atomics.load(i32, pending.genOff) !== pending.gen) return true;
  return (Atomics.load(i32, pending.word) & pending.mask) === 0;
}

/**
 * handle_userfault's wait, with mmap_lock already dropped: until the handler resolved the page.
 * Bounded (waitStep: interrupts taken, deadline -> watchdog, a machine stop throws).
 */
export function userfault_wait(k: Kernel): void {
  const i32 = k.i32;
  const w = U(k, U_WAKE);
  const since = performance.now();
  for (let iter = 0; ; iter++) {
    const seq = Atomics.load(i32, w);
    if (uffd_resolved(k)) break;
    k.waitStep(w, seq, iter, since, LockClass.Userfault, LockMode.Read, -1);
  }
  k.waitDone();
  pending.kind = 0;
  k.stats[ST_UFFD_WAKEUPS]++;
}

// ---------------------------------------------------------------------------------------------
// The snapshot's side array.

/** The side-array slot of page `index` of `file` if that is the snapshotted file, else -1. */
function snap_slot(k: Kernel, file: number, index: number): number {
  if (file < 0 || index < 0 || index >= k.layout.uffdPages) return -1;
  const i32 = k.i32;
  if (Atomics.load(i32, U(k, U_SNAP_FILE)) !== file + 1) return -1;
  if (Atomics.load(i32, U(k, U_SNAP_FILE_GEN)) !== Atomics.load(i32, fileBase(k, file) + R_GEN)) return -1;
  return k.layout.uffdSnap + index * US_WORDS;
}

function set_snap_file(k: Kernel, file: number): void {
  const i32 = k.i32;
  if (Atomics.compareExchange(i32, U(k, U_SNAP_FILE), 0, file + 1) === 0) {
    Atomics.store(i32, U(k, U_SNAP_FILE_GEN), Atomics.load(i32, fileBase(k, file) + R_GEN));
  }
}

/** Records the payload sums of write-protected file pages (after the flush). */
function record(k: Kernel, frames: number[]): void {
  const i32 = k.i32;
  for (const f of frames) {
    const fb = frameBase(k, f);
    if (Atomics.load(i32, fb + R_STATE) !== FRAME_FILE) continue;
    const file = Atomics.load(i32, fb + F_OWNER);
    set_snap_file(k, file);
    const st = snap_slot(k, file, Atomics.load(i32, fb + F_INDEX));
    if (st < 0) continue;
    Atomics.store(i32, st + US_SUM, frame_sum(k, f));
    Atomics.store(i32, st + US_STATE, US_RECORDED);
  }
}

/** The handler saves page `index` of `file` (QEMU writes it to the migration stream). */
function save_page(k: Kernel, file: number, index: number, task: number): void {
  const i32 = k.i32;
  const st = snap_slot(k, file, index);
  if (st < 0) return;
  const state = Atomics.load(i32, st + US_STATE);
  if ((state & US_RECORDED) === 0) return;
  const f = filemap_get_frame(k, file, index);
  const sum = f >= 0 ? frame_sum(k, f) : 0;
  const id = Atomics.load(i32, fileBase(k, file) + FL_ID);
  if ((state & US_SAVED) !== 0) report_violation(i32, k.layout, Violation.Snapshot, k.cpu, 1, id, index, task);
  else if (sum !== Atomics.load(i32, st + US_SUM)) report_violation(i32, k.layout, Violation.Snapshot, k.cpu, 2, id, index, task, Atomics.load(i32, st + US_SUM), sum);
  Atomics.store(i32, st + US_STATE, (state | US_SAVED) & ~US_PENDING);
}

// ---------------------------------------------------------------------------------------------
// Flavour 1: registration and write-protection of a process's range.

function may_register(k: Kernel, v: number): boolean {
  const f = vma_flags(k, v);
  const file = vma_file(k, v);
  if (file < 0) return (f & VM_SHARED) === 0; // anonymous private
  return (f & VM_SHARED) !== 0 && Atomics.load(k.i32, fileBase(k, file) + FL_KIND) === FILE_SHMEM;
}

function add_mm(k: Kernel, mm: number): boolean {
  const i32 = k.i32;
  const lock = U(k, U_LOCK);
  spin_lock(k, lock, LockClass.UffdLock);
  try {
    const n = Atomics.load(i32, U(k, U_NMM));
    const gen = Atomics.load(i32, k.mmBase(mm) + R_GEN);
    for (let i = 0; i < n; i++) {
      if (Atomics.load(i32, U(k, U_MMS + 2 * i)) === mm && Atomics.load(i32, U(k, U_MMS + 2 * i + 1)) === gen) return true;
    }
    if (n >= MAX_UFFD_MMS) return false;
    Atomics.store(i32, U(k, U_MMS + 2 * n), mm);
    Atomics.store(i32, U(k, U_MMS + 2 * n + 1), gen);
    Atomics.store(i32, U(k, U_NMM), n + 1);
    return true;
  } finally {
    spin_unlock(k, lock);
  }
}

/**
 * UFFDIO_REGISTER (MODE_WP) on [addr, addr + len) of the caller: EINVAL for an unaligned or
 * empty range or a mapping uffd-wp does not take (only shmem MAP_SHARED and anonymous private
 * here), or a part of a VM_SHARED_PT VMA whose model cannot give it up; ENOMEM for a hole. The
 * VMAs are split at the edges. A model hook runs first (pt-hint unshares: hugetlb's
 * uffd_disable_huge_pmd_share).
 */
export function sys_uffd_register(k: Kernel, addr: number, len: number): number {
  k.stats[ST_UFFD_SYSCALLS]++;
  if (addr % PAGE_SIZE !== 0 || len <= 0) return -EINVAL;
  const end = addr + page_align(len);
  if (end > TASK_SIZE) return -EINVAL;
  const mm = Atomics.load(k.i32, k.taskOff + T_MM);
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_write_lock(k, lock);
  try {
    let at = addr;
    for (let v = find_vma(k, mm, addr); at < end; v = vma_next(k, v)) {
      if (v < 0 || vma_start(k, v) > at) return -ENOMEM;
      if (!may_register(k, v)) return -EINVAL;
      const partial = vma_start(k, v) < addr || vma_end(k, v) > end;
      if ((vma_flags(k, v) & VM_SHARED_PT) !== 0 && !k.model.uffd_register && partial) return -EINVAL;
      at = vma_end(k, v);
    }
    if (!add_mm(k, mm)) return -ENOMEM;
    for (let v = find_vma(k, mm, addr); v >= 0 && vma_start(k, v) < end; v = vma_next(k, v)) {
      if ((vma_flags(k, v) & VM_SHARED_PT) !== 0 && k.model.uffd_register) k.model.uffd_register(k, v);
      v = split_vma_range(k, mm, v, addr, end);
      if (v < 0) return v;
      vma_start_write(k, v); // userfaultfd_register: vma_modify_flags_uffd
      vma_write_checks(k, v, AssertSite.UserfaultfdRegister);
      Atomics.or(k.i32, vmaBase(k, v) + V_FLAGS, VM_UFFD_WP);
    }
    return 0;
  } finally {
    mmap_write_unlock(k, lock);
  }
}

/** The tables whose entries lost write permission, and their owners to flush. */
class WpGather {
  tables: number[] = [];
  frames: number[] = [];
  /** mms whose walk met a protected page (the rmap walk flushes each VMA's mm, as Linux flushes per VMA). */
  mms = new Set<number>();
  add(t: number): void {
    if (this.tables[this.tables.length - 1] !== t && !this.tables.includes(t)) this.tables.push(t);
  }
  /** flush_tlb_mm on every owner (a shared table's owner is the host, whose mask covers every sharer), the stale-TLB check told (wpseq_begin / wpseq_end). */
  flush(k: Kernel, mm: number): void {
    if (this.tables.length === 0) return;
    const mms = new Set<number>([mm, ...this.mms]);
    for (const t of this.tables) mms.add(Atomics.load(k.i32, ptpBase(k, t) + P_OWNER));
    for (const t of this.tables) wpseq_begin(k, t);
    for (const m of mms) if (m >= 0) flush_tlb_mm(k, m);
    for (const t of this.tables) wpseq_end(k, t);
  }
}

/**
 * change_protection with MM_CP_UFFD_WP / MM_CP_UFFD_WP_RESOLVE over [start, end) of `mm`'s
 * tables (shared ones included: a marker is the table's), for a VMA with `vm_flags`. Protecting
 * sets the marker and clears the write bit; resolving clears the marker and gives the write bit
 * back where the VMA allows it in place (shared, or an anonymous page). Caller holds mmap_lock.
 */
function change_uffd_wp(k: Kernel, mm: number, start: number, end: number, vm_flags: number, protect: boolean, g: WpGather): void {
  const i32 = k.i32;
  mmap_assert_locked(k, mm, AssertSite.ChangeUffdWp); // mwriteprotect_range: under mmap_lock
  walk_pte_tables(k, mm, start, end, null, (t, vpn, n) => {
    pte_assert_locked(k, t, AssertSite.ChangeUffdWp);
    let narrowed = false;
    for (let i = 0; i < n; i++) {
      const idx = pte_index(vpn + i);
      const off = entry_off(k, t, idx);
      const e = Atomics.load(i32, off);
      if ((e & _PAGE_PRESENT) === 0) continue;
      const mw = ptpBase(k, t) + P_UFFD_WP + (idx >>> 5);
      const bit = 1 << (idx & 31);
      const marked = (Atomics.load(i32, mw) & bit) !== 0;
      if (protect) {
        if (marked && (e & _PAGE_RW) === 0) continue;
        guard_pte(k, t, AssertSite.ChangeUffdWp); // the marker lives beside the PTE, under its lock
        Atomics.or(i32, mw, bit);
        if ((e & _PAGE_RW) !== 0) {
          Atomics.store(i32, off, e & ~_PAGE_RW);
          narrowed = true;
        }
        g.frames.push(pte_pfn(e));
      } else {
        if (!marked) continue;
        guard_pte(k, t, AssertSite.ChangeUffdWp);
        Atomics.and(i32, mw, ~bit);
        // MM_CP_TRY_CHANGE_WRITABLE's can_change_pte_writable: a private anonymous page only if
        // this mapping alone holds it (PageAnonExclusive): after fork both sides map it
        // read-only until a write fault copies it.
        const fb = frameBase(k, pte_pfn(e));
        const exclusiveAnon = Atomics.load(i32, fb + R_STATE) === FRAME_ANON && Atomics.load(i32, fb + F_MAPCOUNT) === 1;
        if ((vm_flags & VM_WRITE) !== 0 && ((vm_flags & VM_SHARED) !== 0 || exclusiveAnon)) Atomics.store(i32, off, e | _PAGE_RW | _PAGE_DIRTY);
      }
      k.stats[ST_UFFD_ENTRY_WRITES]++;
    }
    if (narrowed) g.add(t);
  });
}

/**
 * UFFDIO_WRITEPROTECT on [addr, addr + len) of the caller: every present PTE gets (or loses)
 * its marker. EINVAL for an unaligned or empty range or one not wholly registered. Protecting
 * flushes every CPU that may cache the entries, then records the pages' sums for the snapshot.
 */
export function sys_uffd_wp(k: Kernel, addr: number, len: number, protect: boolean): number {
  k.stats[ST_UFFD_SYSCALLS]++;
  if (addr % PAGE_SIZE !== 0 || len <= 0) return -EINVAL;
  const end = addr + page_align(len);
  const mm = Atomics.load(k.i32, k.taskOff + T_MM);
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_read_lock(k, lock);
  try {
    let at = addr;
    for (let v = find_vma(k, mm, addr); at < end; v = vma_next(k, v)) {
      if (v < 0 || vma_start(k, v) > at || (vma_flags(k, v) & VM_UFFD_WP) === 0) return -EINVAL;
      at = vma_end(k, v);
    }
    // cow-pte: markers and write bits go into this mm's own tables (Lin's "mm/userfaultfd:
    // Support COW PTE"): the COW-shared ones the range meets are copied first.
    if (protect && break_cow_pte_range(k, mm, addr, end) < 0) return -ENOMEM;
    if (protect) Atomics.store(k.i32, U(k, U_ACTIVE), 1);
    const g = new WpGather();
    for (let v = find_vma(k, mm, addr); v >= 0 && vma_start(k, v) < end; v = vma_next(k, v)) {
      change_uffd_wp(k, mm, Math.max(addr, vma_start(k, v)), Math.min(end, vma_end(k, v)), vma_flags(k, v), protect, g);
    }
    g.flush(k, mm);
    if (protect) record(k, g.frames);
    else wake(k);
    return 0;
  } finally {
    mmap_read_unlock(k, lock);
  }
}

function wake(k: Kernel): void {
  Atomics.add(k.i32, U(k, U_WAKE), 1);
  Atomics.notify(k.i32, U(k, U_WAKE));
}

function mm_alive(k: Kernel, mm: number, gen: number): boolean {
  const b = k.mmBase(mm);
  return Atomics.load(k.i32, b + R_GEN) === gen && Atomics.load(k.i32, b + R_STATE) !== 0;
}

/**
 * QEMU's UFFDIO_WRITEPROTECT(unprotect) of one page on one registered process's uffd: the
 * registered VMAs of `mm` mapping page `index` of `file` (or, for anonymous memory, `vpn` of the
 * writer's own mm), under that mm's mmap_lock for read.
 */
function unprotect_in_mm(k: Kernel, mm: number, file: number, index: number, vpn: number): void {
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_read_lock(k, lock);
  const g = new WpGather();
  try {
    for (let v = Atomics.load(k.i32, k.mmBase(mm) + 10 /* M_VMA_HEAD */); v >= 0; v = vma_next(k, v)) {
      const f = vma_flags(k, v);
      if ((f & VM_UFFD_WP) === 0) continue;
      let a = -1;
      if (file < 0) {
        if (vma_file(k, v) < 0 && vpn * PAGE_SIZE >= vma_start(k, v) && vpn * PAGE_SIZE < vma_end(k, v)) a = vpn * PAGE_SIZE;
      } else if (vma_file(k, v) === file) {
        const pg = vma_pgoff(k, v);
        const pages = (vma_end(k, v) - vma_start(k, v)) / PAGE_SIZE;
        if (index >= pg && index < pg + pages) a = vma_start(k, v) + (index - pg) * PAGE_SIZE;
      }
      if (a >= 0) change_uffd_wp(k, mm, a, a + PAGE_SIZE, f, false, g);
    }
  } finally {
    mmap_read_unlock(k, lock);
  }
  k.stats[ST_UFFD_SYSCALLS]++;
}

// ---------------------------------------------------------------------------------------------
// Flavour 2: the file registered and write-protected in the page cache.

function registered_file(k: Kernel): number {
  const i32 = k.i32;
  const f = Atomics.load(i32, U(k, U_FILE)) - 1;
  if (f < 0 || Atomics.load(i32, U(k, U_FILE_GEN)) !== Atomics.load(i32, fileBase(k, f) + R_GEN)) return -1;
  return f;
}

/** Registers the shmem file behind `fd` for file-level uffd-wp: EBADF, or EINVAL for another kind of file. */
export function sys_uffd_register_file(k: Kernel, fd: number): number {
  k.stats[ST_UFFD_SYSCALLS]++;
  const f = fdget(k, fd);
  if (f < 0) return -EBADF;
  if (Atomics.load(k.i32, fileBase(k, f) + FL_KIND) !== FILE_SHMEM) return -EINVAL;
  Atomics.store(k.i32, U(k, U_FILE_GEN), Atomics.load(k.i32, fileBase(k, f) + R_GEN));
  Atomics.store(k.i32, U(k, U_FILE), f + 1);
  return 0;
}

function file_pages(k: Kernel, f: number): number {
  const b = fileBase(k, f);
  return Math.ceil((Atomics.load(k.i32, b + 3) * 2 ** 32 + (Atomics.load(k.i32, b + 4) >>> 0)) / PAGE_SIZE); // FL_SIZE_HI/LO
}

/**
 * Write-protects (or releases) every cached page of the registered file behind `fd`: the flag in
 * each frame, and — protecting — the write bit of every PTE mapping those pages, found through
 * i_mmap (under i_mmap_rwsem for read, each table under its PTE lock, as page_mkclean walks),
 * then a flush of each table's owner mm. EINVAL when the file is not the registered one.
 */
export function sys_uffd_wp_file(k: Kernel, fd: number, protect: boolean): number {
  k.stats[ST_UFFD_SYSCALLS]++;
  const i32 = k.i32;
  const f = fdget(k, fd);
  if (f < 0) return -EBADF;
  if (registered_file(k) !== f) return -EINVAL;
  if (protect) {
    Atomics.store(i32, U(k, U_ACTIVE), 1);
    set_snap_file(k, f);
  }
  const frames: number[] = [];
  const n = file_pages(k, f);
  for (let i = 0; i < n; i++) {
    const fr = filemap_get_frame(k, f, i);
    if (fr < 0) continue;
    const o = frameBase(k, fr) + F_UFFD_WP;
    if (Atomics.exchange(i32, o, protect ? 1 : 0) !== (protect ? 1 : 0)) k.stats[ST_UFFD_ENTRY_WRITES]++;
    frames.push(fr);
  }
  if (!protect) {
    wake(k);
    return 0;
  }
  const g = new WpGather();
  const sem = fileBase(k, f) + FL_IMMAP_RWSEM;
  down_read(k, sem, LockClass.IMmapRwsem);
  try {
    for (let v = Atomics.load(i32, fileBase(k, f) + FL_IMMAP_HEAD); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) {
      const mm = Atomics.load(i32, vmaBase(k, v) + V_MM);
      wrprotect_vma(k, mm, v, f, g);
    }
  } finally {
    up_read(k, sem);
  }
  g.flush(k, k.mm);
  record(k, frames);
  return 0;
}

/** Clears the write bit of every PTE of VMA `v` (of `mm`) that maps a flagged page of `file`. */
function wrprotect_vma(k: Kernel, mm: number, v: number, file: number, g: WpGather): void {
  const i32 = k.i32;
  i_mmap_assert_locked(k, file, AssertSite.WrprotectVma, mm); // an rmap walk (rmap_walk_file: i_mmap_lock_read)
  walk_pte_tables(k, mm, vma_start(k, v), vma_end(k, v), null, (t, vpn, n) => {
    pte_assert_locked(k, t, AssertSite.WrprotectVma);
    let narrowed = false;
    for (let i = 0; i < n; i++) {
      const off = entry_off(k, t, pte_index(vpn + i));
      const e = Atomics.load(i32, off);
      if ((e & _PAGE_PRESENT) === 0) continue;
      if ((e & _PAGE_RW) === 0) {
        if (Atomics.load(i32, ptpBase(k, t) + P_OWNER) !== mm) g.mms.add(mm); // a shared table another walk narrowed
        continue;
      }
      const fb = frameBase(k, pte_pfn(e));
      if (Atomics.load(i32, fb + F_UFFD_WP) === 0 || Atomics.load(i32, fb + F_OWNER) !== file || Atomics.load(i32, fb + R_STATE) !== FRAME_FILE) continue;
      g.mms.add(mm);
      guard_pte(k, t, AssertSite.WrprotectVma);
      Atomics.store(i32, off, e & ~_PAGE_RW);
      k.stats[ST_UFFD_ENTRY_WRITES]++;
      narrowed = true;
    }
    if (narrowed) g.add(t);
  });
}

// ---------------------------------------------------------------------------------------------
// The handler (QEMU's background-snapshot loop) and the end of the snapshot.

const ev = { file: -1, fileId: 0, index: 0, task: 0, flavour: 0, vpn: 0, mm: -1 };

/** read(2) on the uffd: pops one event into `ev`; false when the ring is empty. */
function pop_event(k: Kernel): boolean {
  const i32 = k.i32;
  const lock = U(k, U_LOCK);
  spin_lock(k, lock, LockClass.UffdLock);
  try {
    const head = Atomics.load(i32, U(k, U_HEAD));
    if (head === Atomics.load(i32, U(k, U_TAIL))) return false;
    const e = k.layout.uffdRing + (head & (k.layout.uffdRingCap - 1)) * UE_WORDS;
    ev.file = Atomics.load(i32, e + UE_FILE);
    ev.fileId = Atomics.load(i32, e + UE_FILE_ID);
    ev.index = Atomics.load(i32, e + UE_INDEX);
    ev.task = Atomics.load(i32, e + UE_TASK);
    ev.flavour = Atomics.load(i32, e + UE_FLAVOUR);
    ev.vpn = Atomics.load(i32, e + UE_VPN_HI) * 2 ** 32 + (Atomics.load(i32, e + UE_VPN_LO) >>> 0);
    ev.mm = Atomics.load(i32, e + UE_MM);
    Atomics.store(i32, U(k, U_HEAD), head + 1);
    return true;
  } finally {
    spin_unlock(k, lock);
  }
}

/** Save the event's page, then resolve it (flavour 1: unprotect in every registered mm; 2: clear the flag) and wake. */
function resolve_event(k: Kernel): void {
  const i32 = k.i32;
  if (ev.file >= 0) save_page(k, ev.file, ev.index, ev.task);
  if (ev.flavour === UFFD_FLAVOUR_FILE) {
    const fr = ev.file >= 0 ? filemap_get_frame(k, ev.file, ev.index) : -1;
    if (fr >= 0 && Atomics.exchange(i32, frameBase(k, fr) + F_UFFD_WP, 0) !== 0) k.stats[ST_UFFD_ENTRY_WRITES]++;
    k.stats[ST_UFFD_SYSCALLS]++;
  } else if (ev.file < 0) {
    unprotect_in_mm(k, ev.mm, -1, -1, ev.vpn);
  } else {
    const n = Atomics.load(i32, U(k, U_NMM));
    for (let i = 0; i < n; i++) {
      const mm = Atomics.load(i32, U(k, U_MMS + 2 * i));
      if (mm_alive(k, mm, Atomics.load(i32, U(k, U_MMS + 2 * i + 1)))) unprotect_in_mm(k, mm, ev.file, ev.index, 0);
    }
  }
  const st = ev.file >= 0 ? snap_slot(k, ev.file, ev.index) : -1;
  if (st >= 0) Atomics.or(i32, st + US_STATE, US_UNPROTECTED);
  wake(k);
}

/**
 * uffd_handle: QEMU's loop. Pops and resolves events until `writers` tasks have arrived at
 * barrier `barrier` and no event is left (then returns the events handled), or, with no barrier
 * (-1), until `count` events were handled. Waits between events with the CPU's waitStep: its
 * deadline runs from the machine's last progress, so a stuck writer ends in the watchdog.
 */
export function sys_uffd_handle(k: Kernel, barrier: number, writers: number, count: number): number {
  const i32 = k.i32;
  const arrived = barrier >= 0 ? k.layout.barriers + barrier * BARRIER_WORDS + B_ARRIVED : -1;
  let handled = 0;
  let since = performance.now();
  let progress = Atomics.load(i32, G_PROGRESS);
  for (let iter = 0; ; iter++) {
    k.checkStop();
    const seq = Atomics.load(i32, U(k, U_EVENTS));
    if (pop_event(k)) {
      resolve_event(k);
      handled++;
      since = performance.now();
      iter = 0;
      if (barrier < 0 && handled >= count) break;
      continue;
    }
    if (barrier >= 0 && Atomics.load(i32, arrived) >= writers) break;
    if (barrier < 0 && handled >= count) break;
    const p = Atomics.load(i32, G_PROGRESS);
    if (p !== progress) {
      progress = p;
      since = performance.now();
    }
    k.waitStep(U(k, U_EVENTS), seq, iter, since, LockClass.Userfault, LockMode.Write, -1);
  }
  k.waitDone();
  return handled;
}

/**
 * uffd_snapshot_end: the check (every page whose payload changed since it was protected must
 * have been saved), then the unregistration (QEMU's step 3): every registered mm loses its
 * markers and VM_UFFD_WP (under its mmap_lock for write), the file its flags, and waiters wake.
 */
export function sys_uffd_snapshot_end(k: Kernel): number {
  k.stats[ST_UFFD_SYSCALLS]++;
  const i32 = k.i32;
  const sf = Atomics.load(i32, U(k, U_SNAP_FILE)) - 1;
  if (sf >= 0 && Atomics.load(i32, U(k, U_SNAP_FILE_GEN)) === Atomics.load(i32, fileBase(k, sf) + R_GEN)) {
    const id = Atomics.load(i32, fileBase(k, sf) + FL_ID);
    for (let i = 0; i < k.layout.uffdPages; i++) {
      const st = k.layout.uffdSnap + i * US_WORDS;
      const state = Atomics.load(i32, st + US_STATE);
      if ((state & US_RECORDED) === 0) continue;
      const fr = filemap_get_frame(k, sf, i);
      const sum = fr >= 0 ? frame_sum(k, fr) : 0;
      if ((state & US_SAVED) === 0 && sum !== Atomics.load(i32, st + US_SUM)) {
        report_violation(i32, k.layout, Violation.Snapshot, k.cpu, 3, id, i, -1, Atomics.load(i32, st + US_SUM), sum);
      }
      Atomics.store(i32, st + US_STATE, 0);
    }
  }
  Atomics.store(i32, U(k, U_SNAP_FILE), 0);
  // Unregister: the file's flags, then each mm's markers and VM_UFFD_WP.
  const rf = registered_file(k);
  if (rf >= 0) {
    for (let i = 0, n = file_pages(k, rf); i < n; i++) {
      const fr = filemap_get_frame(k, rf, i);
      if (fr >= 0 && Atomics.exchange(i32, frameBase(k, fr) + F_UFFD_WP, 0) !== 0) k.stats[ST_UFFD_ENTRY_WRITES]++;
    }
    Atomics.store(i32, U(k, U_FILE), 0);
  }
  const n = Atomics.load(i32, U(k, U_NMM));
  for (let i = 0; i < n; i++) {
    const mm = Atomics.load(i32, U(k, U_MMS + 2 * i));
    if (!mm_alive(k, mm, Atomics.load(i32, U(k, U_MMS + 2 * i + 1)))) continue;
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    mmap_write_lock(k, lock);
    const g = new WpGather();
    for (let v = Atomics.load(i32, k.mmBase(mm) + 10 /* M_VMA_HEAD */); v >= 0; v = vma_next(k, v)) {
      const f = vma_flags(k, v);
      if ((f & VM_UFFD_WP) === 0) continue;
      change_uffd_wp(k, mm, vma_start(k, v), vma_end(k, v), f, false, g);
      vma_start_write(k, v);
      vma_write_checks(k, v, AssertSite.UserfaultfdRegister); // userfaultfd_clear_vma
      Atomics.and(i32, vmaBase(k, v) + V_FLAGS, ~VM_UFFD_WP);
    }
    mmap_write_unlock(k, lock);
    k.stats[ST_UFFD_SYSCALLS]++;
  }
  Atomics.store(i32, U(k, U_NMM), 0);
  wake(k);
  return 0;
}
