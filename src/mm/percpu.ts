/**
 * The per-CPU kernel context: what `current`, this_cpu and the CPU's TLB are in Linux. One per
 * worker thread; every mm function takes it first. It owns the CPU-local software TLB, the one
 * preallocated `struct vm_fault` reused by every fault, and the CPU's statistics (CPU-local
 * arrays, merged by the orchestrator when the run ends).
 */
import {
  C_AUDIT_REQ, C_IPI_DONE, C_IPI_REQ, C_SYNC_REQ, MM_WORDS, TASK_WORDS, type Layout,
} from '../shm/layout.js';
import { poolsOf, type PoolRef } from '../shm/machine.js';
import { TraceKind } from '../sync/tracer.js';
import { LockCpu, type LockCpuOptions } from '../sync/wait.js';
import type { ModelOps } from './model_ops.js';
import { report_violation, Violation } from './mmdebug.js';

// ---- per-CPU event counters (index into Kernel.stats) ----
export const ST_ACCESSES = 0;
export const ST_WALKS = 1;
export const ST_FAULTS = 2; // handle_mm_fault calls
export const ST_FAULT_MAP = 3; // PTE installed for a page already in the page cache (minor)
export const ST_FAULT_ALLOC = 4; // PTE installed for a newly allocated page (first touch)
export const ST_FAULT_WP = 5; // write fault that made a present PTE writable
export const ST_FAULT_SHARED_PMD = 6; // a guest PMD entry copied from a shared table
export const ST_FAULT_SPURIOUS = 7; // another CPU had already installed the entry
export const ST_FAULT_SIGSEGV = 8;
export const ST_FAULT_OOM = 9;
export const ST_FAULT_RETRY = 10;
export const ST_SHOOTDOWNS = 11; // flushes that had to interrupt other CPUs
export const ST_IPIS_SENT = 12;
export const ST_IPIS_TAKEN = 13;
export const ST_TLB_FLUSHES = 14; // local full flushes (IPI, own change, context switch)
export const ST_SYSCALLS = 15;
export const ST_CTX_SWITCHES = 16;
export const ST_LOADS = 17;
export const ST_STORES = 18;
export const ST_ACCESS_MS = 19; // wall time spent in load/store/touch ops (ms)
export const ST_ACCESS_FAULTS = 20; // faults taken inside those ops
export const ST_AS_GRANTS = 21; // address-space: AS_MMAP calls that mapped something
export const ST_AS_GRANT_MS = 22; // ... wall time inside them (ms)
export const ST_AS_REVOKES = 23; // address-space: AS_MUNMAP calls that succeeded
export const ST_AS_REVOKE_MS = 24; // ... wall time inside them, the shootdown wait included (ms)
export const ST_UFFD_SYSCALLS = 25; // uffd ioctls: register, write-protect / unprotect (the handler's too)
export const ST_UFFD_ENTRY_WRITES = 26; // PTEs (marker and write bit) and page-cache flags written by uffd-wp
export const ST_UFFD_WAKEUPS = 27; // faulting writers woken after their uffd-wp fault was resolved
export const ST_UFFD_EVENTS = 28; // uffd-wp fault events queued
// /proc/vmstat's vma_lock_* (CONFIG_PER_VMA_LOCK_STATS): faults done under a VMA's own lock,
// attempts that fell back to mmap_lock, and VMAs found detached after locking.
export const ST_VMA_LOCK_SUCCESS = 29;
export const ST_VMA_LOCK_ABORT = 30;
export const ST_VMA_LOCK_MISS = 31;
export const ST_FORKS = 32; // forks done (fork ops that succeeded)
export const ST_FORK_MS = 33; // wall time inside fork ops (copy_process, dup_mmap)
export const ST_TABLE_SYNCS = 34; // tlb_remove_table_sync_one broadcasts (a GUP-fast sync after an unshare)
export const ST_GUP_FAST = 35; // pages gup_fast took without a lock
export const ST_GUP_SLOW = 36; // gup_fast fallbacks to the slow path (a fault under mmap_lock)
// Reclaim through rmap (mm/vmscan.c shrink_folio_list -> mm/rmap.c try_to_unmap): page-cache
// pages left unmapped, PTEs cleared on the way, and of those the ones whose accessed bit was set
// (page_referenced's count: one per mapping that referenced the page — one per PTE, so a PTE
// table shared by N processes reports one reference where N unshared tables report N).
export const ST_RECLAIM_PAGES = 37;
export const ST_RECLAIM_PTES = 38;
export const ST_RECLAIM_ACCESSED = 39;
export const ST_COW_PTE_SHARED = 40; // cow-pte: PTE tables fork shared instead of copying
export const ST_COW_PTE_COPIED = 41; // ... COW breaks that copied a shared table
export const ST_COW_PTE_REUSED = 42; // ... COW breaks where the last user took the table back
// Page migration (mm/migrate.c): pages moved to a new frame, pages that could not be (locked by
// another migration, still mapped after try_to_migrate, no memory), and faults that met a
// migration entry and waited for the move to end (migration_entry_wait).
export const ST_MIGRATE_PAGES = 43;
export const ST_MIGRATE_FAILED = 44;
export const ST_MIGRATE_WAITS = 45;
export const ST_COUNT = 46;

export const TLB_ENTRIES = 256; // direct-mapped, like a small L1 dTLB
export const TLB_MASK = TLB_ENTRIES - 1;

export const FAULT_FLAG_WRITE = 1;
export const FAULT_FLAG_REMOTE = 0x80; // a fault on an mm other than current's (get_user_pages_remote)
export const FAULT_FLAG_VMA_LOCK = 0x1000; // the fault holds the VMA's lock, not mmap_lock (Linux's value)

/**
 * struct vm_fault: one per CPU, reused by every fault and passed down the handler chain
 * (handle_mm_fault -> __handle_mm_fault -> handle_pte_fault -> do_fault ...), so the fault path
 * allocates nothing.
 */
export class VmFault {
  /** The mm whose tables the fault fills (the host mm for a shared-table fault). */
  mm = -1;
  /** The faulting task's own mm. */
  task_mm = -1;
  vma = -1;
  /** vma's vm_flags and start, read once per fault. */
  vm_flags = 0;
  vm_start = 0;
  address = 0;
  vpn = 0;
  flags = 0;
  /** Word offset of the PMD entry and of the PTE, once found. */
  pmd = -1;
  pte = -1;
  pte_table = -1;
  orig_pte = 0;
  /**
   * The fault path released the faulting mm's mmap_lock itself (VM_FAULT_RETRY's contract in
   * Linux); the caller must not release it again. Only mshare v1's retry epilogue sets it.
   */
  unlocked = false;

  // The guest's view while a sharing model handles the fault in its host mm (enterHost/leaveHost).
  private hosted = false;
  private g_mm = -1;
  private g_vma = -1;
  private g_flags = 0;
  private g_start = 0;
  private g_address = 0;
  private g_vpn = 0;

  /**
   * The fault goes on in host mm `host`, at `haddr` in its VMA `hv` (flags `hflags`, start
   * `hstart`): the guest's mm, VMA and address are kept for leaveHost. No allocation: the fault
   * path's one vm_fault per CPU.
   */
  enterHost(host: number, hv: number, hflags: number, hstart: number, haddr: number): void {
    if (!this.hosted) {
      this.g_mm = this.mm;
      this.g_vma = this.vma;
      this.g_flags = this.vm_flags;
      this.g_start = this.vm_start;
      this.g_address = this.address;
      this.g_vpn = this.vpn;
      this.hosted = true;
    }
    this.mm = host;
    this.vma = hv;
    this.vm_flags = hflags;
    this.vm_start = hstart;
    this.address = haddr;
    this.vpn = Math.floor(haddr / 4096);
  }

  /** Back to the guest's view (nothing to do when not in the host). */
  leaveHost(): void {
    if (!this.hosted) return;
    this.hosted = false;
    this.mm = this.g_mm;
    this.vma = this.g_vma;
    this.vm_flags = this.g_flags;
    this.vm_start = this.g_start;
    this.address = this.g_address;
    this.vpn = this.g_vpn;
  }

  /** A new fault on `mm` (the faulting task's, or the remote one fixup_user_fault was given) at `vma`. */
  start(mm: number, vma: number, vm_flags: number, vm_start: number, address: number, flags: number): void {
    this.mm = mm;
    this.task_mm = mm;
    this.vma = vma;
    this.vm_flags = vm_flags;
    this.vm_start = vm_start;
    this.address = address;
    this.vpn = Math.floor(address / 4096);
    this.flags = flags;
    this.pmd = -1;
    this.pte = -1;
    this.pte_table = -1;
    this.unlocked = false;
    this.hosted = false;
  }
}

export interface KernelOptions extends LockCpuOptions {
  /** A bug reintroduced on purpose (--bug), or ''. */
  bug: string;
  /** The mmap_lock protocol (--mmap-lock): the queued rwlock instead of the rwsem. */
  mmapQrwlock?: boolean;
  /** The host mms' mmap_lock protocol (--host-lock): the queued rwlock instead of the rwsem. */
  hostQrwlock?: boolean;
  /** --fault-lock per-vma: user faults try the VMA's own lock first (lock_vma_under_rcu). */
  perVmaLock?: boolean;
  /** --ptl mm: PTE tables are locked by their mm's page_table_lock, not their own ptlock. */
  ptlMm?: boolean;
  /** The lockset checks (guarded.ts): each guarded write checked against its declared lock. */
  lockset?: boolean;
  /** --tlb-flush broadcast: remote TLBs are invalidated without an interrupt (arm64 TLBI, x86 INVLPGB). */
  tlbBroadcast?: boolean;
  /** --unshare-flush batched: the GUP-fast sync after unsharing goes once per mmu_gather. */
  unshareBatched?: boolean;
}

export class Kernel extends LockCpu {
  readonly pools: ReturnType<typeof poolsOf>;
  readonly frames: PoolRef;
  readonly ptps: PoolRef;
  readonly stats = new Float64Array(ST_COUNT);
  readonly vmf = new VmFault();
  readonly bug: string;
  /** mmap_lock is a qrwlock (mm/mmap_lock.ts), not an rwsem. */
  readonly mmapQrwlock: boolean;
  /** A host mm's mmap_lock is a qrwlock (sharing models' host mms, made with MMF_HOST). */
  readonly hostQrwlock: boolean;
  /** Faults take the VMA's lock, not mmap_lock, when they can (CONFIG_PER_VMA_LOCK). */
  readonly perVmaLock: boolean;
  /** One page_table_lock per mm instead of split PTE locks (!USE_SPLIT_PTE_PTLOCKS). */
  readonly ptlMm: boolean;
  /** Check every guarded write against its lockset (mm/guarded.ts): explore, tests, --lockset. */
  readonly lockset: boolean;
  /** Remote TLB flushes need no interrupt (--tlb-flush broadcast): a CPU with interrupts off still loses its entries. */
  readonly tlbBroadcast: boolean;
  /** The GUP-fast sync after unsharing is batched per mmu_gather (--unshare-flush batched). */
  readonly unshareBatched: boolean;
  /** local_irq_save nesting: while above 0 this CPU takes no IPI (gup_fast's lockless walk). */
  irqsOff = 0;
  model!: ModelOps;

  // The software TLB (CPU-local hardware state). A slot is valid when tlbVpn[slot] === vpn.
  readonly tlbVpn = new Float64Array(TLB_ENTRIES).fill(NaN); // NaN: equal to no vpn, not even a negative address's
  /** Word offset of the frame's payload. */
  readonly tlbPay = new Int32Array(TLB_ENTRIES);
  /**
   * What stores through each TLB entry added since it was filled, not yet in the frame's ledger
   * (F_LEDGER): written back when the entry goes (tlb_writeback), which is always before the frame
   * can be freed (a shootdown flushes first). The store fast path stays one Atomics op.
   */
  readonly tlbLedger = new Int32Array(TLB_ENTRIES);
  readonly tlbWrite = new Uint8Array(TLB_ENTRIES);
  /** Word offset of the PTE the entry came from, and its table's P_WPSEQ at fill time. */
  readonly tlbPte = new Int32Array(TLB_ENTRIES);
  readonly tlbSeqOff = new Int32Array(TLB_ENTRIES);
  readonly tlbSeq = new Int32Array(TLB_ENTRIES);

  /** payloadWords - 1: which payload word an address's store adds into. */
  readonly payloadMask: number;
  readonly ipiReqOff: number;
  readonly ipiDoneOff: number;
  /** The last IPI request this CPU flushed for. */
  ipiDone = 0;
  /** Audits this CPU's TLB when a TLB-audit request comes (the CPU loop sets it; null: no audit). */
  onAudit: ((k: Kernel) => void) | null = null;

  /** Task running here (-1 idle), its mm, and the word offset of its task record. */
  task = -1;
  taskOff = -1;
  mm = -1;
  mmOff = -1;

  constructor(i32: Int32Array, layout: Layout, cpu: number, opts: KernelOptions) {
    super(i32, layout, cpu, opts);
    this.pools = poolsOf(layout);
    this.frames = this.pools.frames;
    this.ptps = this.pools.ptps;
    this.bug = opts.bug;
    this.mmapQrwlock = opts.mmapQrwlock === true;
    this.hostQrwlock = opts.hostQrwlock ?? this.mmapQrwlock;
    this.perVmaLock = opts.perVmaLock === true;
    this.ptlMm = opts.ptlMm === true;
    this.lockset = opts.lockset === true;
    this.tlbBroadcast = opts.tlbBroadcast === true;
    this.unshareBatched = opts.unshareBatched === true;
    // lockdep's "possible circular locking dependency": both chains go in the violation.
    this.lockdepReport = (from, to, path) =>
      report_violation(i32, layout, Violation.Invariant, cpu, 7, from, to, path.length, path[1], path[path.length - 2]);
    this.payloadMask = layout.config.payloadWords - 1;
    this.ipiReqOff = this.cpuBase + C_IPI_REQ;
    this.ipiDoneOff = this.cpuBase + C_IPI_DONE;
  }

  mmBase(mm: number): number {
    return this.layout.mms + mm * MM_WORDS;
  }

  taskBase(t: number): number {
    return this.layout.tasks + t * TASK_WORDS;
  }

  get cpuBit(): number {
    return 1 << this.cpu;
  }

  /** Takes a pending TLB shootdown IPI: flush, then ack (flush_tlb_func). */
  override pollInterrupts(): void {
    const r = Atomics.load(this.i32, this.ipiReqOff);
    if (r === this.ipiDone) return;
    if (this.irqsOff === 0) {
      this.takeIpi(r);
      return;
    }
    // Interrupts off (gup_fast): no IPI is taken until local_irq_restore. A broadcast TLB
    // invalidation needs no interrupt, so under --tlb-flush broadcast the flushes land anyway —
    // up to the first pending sync IPI (tlb_remove_table_sync_one), which must wait.
    if (!this.tlbBroadcast) return;
    const sync = Atomics.load(this.i32, this.cpuBase + C_SYNC_REQ);
    const upto = sync - this.ipiDone > 0 && r - sync >= 0 ? sync - 1 : r;
    if (upto !== this.ipiDone) this.takeIpi(upto);
  }

  /** local_irq_save / local_irq_restore around a lockless walk; the restore takes what waited. */
  local_irq_save(): void {
    this.irqsOff++;
  }
  local_irq_restore(): void {
    if (--this.irqsOff === 0) this.pollInterrupts();
  }

  takeIpi(r: number): void {
    if (this.onAudit !== null && Atomics.load(this.i32, this.cpuBase + C_AUDIT_REQ) === r) {
      // A TLB-audit request (tlb_audit_all at quiescence): look at the TLB as it is, then ack;
      // no flush when it is the only request pending.
      this.onAudit(this);
      if (r - this.ipiDone === 1) {
        this.ipiDone = r;
        Atomics.store(this.i32, this.ipiDoneOff, r);
        Atomics.notify(this.i32, this.ipiDoneOff);
        return;
      }
    }
    if (r - this.ipiDone === 1 && Atomics.load(this.i32, this.cpuBase + C_SYNC_REQ) === r) {
      // Only a sync IPI pending (tlb_remove_table_sync_one's tlb_remove_table_smp_sync does
      // nothing): being interrupted is the point; the TLB is not flushed.
      this.ipiDone = r;
      Atomics.store(this.i32, this.ipiDoneOff, r);
      Atomics.notify(this.i32, this.ipiDoneOff);
      return;
    }
    if (this.tracer !== null) {
      this.tracer.instant(TraceKind.Ipi, r);
      this.tracer.flow(false, (r & 0xfffff) * 64 + this.cpu); // tlb.ts ipi_flow_id
    }
    this.local_flush_tlb();
    this.stats[ST_IPIS_TAKEN]++;
    this.ipiDone = r;
    Atomics.store(this.i32, this.ipiDoneOff, r);
    Atomics.notify(this.i32, this.ipiDoneOff);
  }

  /** Flushes every entry of this CPU's TLB (no PCID: ptlab flushes whole TLBs). */
  local_flush_tlb(): void {
    this.tlb_writeback();
    this.tlbVpn.fill(NaN);
    this.stats[ST_TLB_FLUSHES]++;
  }

  /** The TLB's pending ledger sums into their frames (F_LEDGER = the data's word offset - 1). */
  tlb_writeback(): void {
    const l = this.tlbLedger;
    for (let s = 0; s < l.length; s++) {
      if (l[s] !== 0) {
        if (this.tlbVpn[s] === this.tlbVpn[s]) Atomics.add(this.i32, this.tlbPay[s] - 1, l[s]);
        l[s] = 0;
      }
    }
  }

  /** Slot `s` is about to hold another page: its pending ledger goes to its frame first. */
  tlb_slot_writeback(s: number): void {
    if (this.tlbLedger[s] !== 0) {
      if (this.tlbVpn[s] === this.tlbVpn[s]) Atomics.add(this.i32, this.tlbPay[s] - 1, this.tlbLedger[s]);
      this.tlbLedger[s] = 0;
    }
  }
}
