/**
 * A simulated CPU: the loop one worker thread runs. It pops runnable tasks, switches to their mm,
 * and interprets their programs op by op (a task switches only between ops, never inside kernel
 * work), until every task has exited or the machine stops. Nothing here knows about threads:
 * the worker entry calls runCpu.
 */
import { current_pte, STALE_TLB_VIOLATION, switch_mm, tlb_audit, tlb_audit_all } from '../mm/tlb.js';
import {
  B_ARRIVED, B_COUNT, F_HDR, M_FLAGS, M_MMAP_LOCK, MMF_COW_PTE, B_GEN, B_RELEASE_US, T_ARRIVE_FAULTS, T_ARRIVE_US, T_FAULTS, T_PREV_ARRIVE_FAULTS, BARRIER_WORDS, PL_INUSE, FL_ID, T_UNTRACKED_STORES, G_LIVE_TASKS, G_PROGRESS, G_RQ_COUNT, G_STOP, MAX_FDS,
  MAX_SLOTS, StopReason, T_ANON_STORES, T_BARRIER, T_BARRIER_GEN, T_EXIT, T_FD, T_FILE_STORES, T_KILLED,
  T_LAST_ERRNO, T_MM, T_MM_GEN, T_OPS, T_PC, T_SIG_ADDR_HI, T_SIG_ADDR_LO, T_SIG_CODE, T_SIGNALS, T_SLOT,
  T_STATE, TASK_BLOCKED, T_FD_MODE, T_SLOT_FILE, T_SLOT_SEQ, M_LOCK_SEQ, T_SLOT_PAGES, G_OP_SEQ, G_UNMET, G_NEXT_PID, T_PID, T_PARENT, T_WAIT_FOR, T_REAPED, TASK_NEW, TASK_EXITED, TASK_RUNNABLE, TASK_RUNNING, type MachineConfig,
} from '../shm/layout.js';
import { attachMachine } from '../shm/machine.js';
import { LockClass, LockMode } from '../sync/lockdep.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { TraceKind } from '../sync/tracer.js';
import { MachineStop } from '../sync/wait.js';
import { fileBase } from '../mm/filemap.js';
import { mm_alloc, mm_gen, mmget, mmput } from '../mm/fork.js';
import { find_vma_speculative, mmap_read_lock, mmap_read_unlock } from '../mm/mmap_lock.js';
import { find_vma, vma_end, vma_file, vma_flags, vma_start, VM_SHARED } from '../mm/vma.js';
import { PoolId, report_violation, Violation } from '../mm/mmdebug.js';
import { pool_check } from '../mm/slab.js';
import type { ModelOps } from '../mm/model_ops.js';
import { ACCESS_OK, ACCESS_OOM, ACCESS_SIGSEGV, ACCESS_STOP, mmu_load, mmu_store, mmuResult, SI_KERNEL } from '../mm/mmu.js';
import { Kernel, TLB_ENTRIES, ST_FORKS, ST_FORK_MS, ST_ACCESS_FAULTS, ST_ACCESS_MS, ST_ACCESSES, ST_CTX_SWITCHES, ST_FAULTS, ST_LOADS, ST_STORES, ST_SYSCALLS } from '../mm/percpu.js';
import {
  addrName, type CompiledOp, compilePrograms, ERRNO_NAMES, EXPECT_ANY, OP_NAMES, OpCode, type OpResult, outcomeName, type Program, SI_CODE_NAMES, SI_CODES, SIGNAL_NAMES,
} from './program.js';
import { dup_mmap } from '../mm/fork.js';
import { fdget } from '../mm/fdtable.js';
import { get_file, is_model_file } from '../mm/shmem.js';
import { ECHILD, ENOMEM } from '../mm/errno.js';
import { rq_pop, rq_push } from './runqueue.js';
import {
  sys_uffd_handle, sys_uffd_register, sys_uffd_register_file, sys_uffd_snapshot_end, sys_uffd_wp, sys_uffd_wp_file,
} from '../mm/userfaultfd.js';
import { sys_fault_remote, sys_gup_fast } from '../mm/gup.js';
import { compact_scan_pgtables } from '../mm/compaction.js';
import { names_release_all } from '../mm/namei.js';
import { encodeLockHistograms } from '../sync/lock_hist.js';
import type { LockPointTables } from '../sync/lock_stat.js';
import {
  sys_close, sys_ftruncate, sys_ioctl, sys_madvise, sys_memfd_create, sys_mmap, sys_mprotect, sys_munmap, sys_open,
  sys_mshare, sys_mshare_unlink, sys_shm_open, sys_shm_unlink, sys_unlink, sys_pread, sys_pwrite, sys_mlock, sys_munlock, sys_msync, sys_mincore, sys_mremap, sys_reclaim, sys_migrate, sys_prctl_set_cow_pte,
} from './syscalls.js';

/** pread's first word read (a CPU-local out parameter: no allocation per op). */
const preadOut = { value: 0 };

export interface CpuParams {
  sab: SharedArrayBuffer;
  config: MachineConfig;
  cpu: number;
  programs: Program[];
  model: string;
  bug: string;
  deadlineMs: number;
  lockStatTiming: boolean;
  /** rwsem, qrwlock or a lock plugin's key: the worker loads the plugin (workers/cpu.ts). */
  mmapLock?: string;
  hostLock?: string;
  faultLock?: 'mmap' | 'per-vma';
  ptl?: 'split' | 'mm';
  tlbFlush?: 'ipi' | 'broadcast';
  unshareFlush?: 'per-unshare' | 'batched';
  /** Lockset checks on (mm/guarded.ts). */
  lockset?: boolean;
  /** Spin before sleeping in lock waits (false when threads outnumber cores). */
  spin: boolean;
  /** Ops a task runs before it yields to a queued one. */
  slice: number;
  /**
   * A scenario's phase for lock_stat: this CPU clears its lock_stat when it first runs a task past
   * barrier `lockStatFrom`, and keeps what it has when it first runs one past `lockStatTo`; -1 never.
   */
  lockStatFrom?: number;
  lockStatTo?: number;
  /** Controlled mode: the worker installs a scheduler (its state is in machine memory). */
  controlled?: boolean;
  /**
   * Run each task until it blocks or exits, one run queue, no time slice (diff-kernel's
   * deterministic order, which native/ptkernel.c follows on the real kernel).
   */
  cooperative?: boolean;
  /** Record a trace (src/trace): events come back in CpuResult.trace. */
  trace?: boolean;
  /** The run's start, performance.timeOrigin + now (ms): trace timestamps and barrier times count from it. */
  traceOrigin?: number;
}

export interface CpuResult {
  cpu: number;
  stats: number[];
  lockStats: number[];
  /** lock_stat's wait and hold histograms per class and mode, encoded (sync/lock_hist.ts). */
  lockHist: { wait: (string | null)[]; hold: (string | null)[] };
  /** lock_stat's contention and contending points (sync/lock_stat.ts LockPointTables). */
  lockPoints?: LockPointTables;
  seconds: number;
  stopped: boolean;
  error?: string;
  /** The CPU's trace events (flat: kind, phase, ts, arg per event) when tracing. */
  trace?: number[];
  /** What each op this CPU ran did (at most OP_RESULTS_CAP), with its machine-wide sequence number. */
  opResults: SeqResult[];
  /** The ops whose outcome or assertions were not met (every one: none stops the run). */
  unmet: UnmetExpectation[];
  /** Each fork op's latency here, µs (the first FORK_SAMPLES_CAP). */
  forkUs: number[];
}

const FORK_SAMPLES_CAP = 100_000;

export type SeqResult = OpResult & { seq: number };
export interface UnmetExpectation {
  seq: number;
  proc: number;
  index: number;
  /** The op as the program wrote it. */
  text: string;
  /** What was expected and what happened. */
  why: string;
}

/** Op results a CPU keeps for the report (the rest are counted, not kept). */
export const OP_RESULTS_CAP = 20_000;
/** Unmet expectations a CPU keeps (the rest are counted). */
export const UNMET_CAP = 200;

/** Called when every live task waits at one barrier: nothing moves in machine memory. */
export type QuiescentHook = (k: Kernel) => void;

/**
 * Called after every op with its outcome (0, errno, -signal) and, for a load, the value read:
 * what a program observes. For tests and tools on the CPU's own thread; not on the hot path.
 */
export type OpObserver = (task: number, pc: number, outcome: number, value: number) => void;

const TWO32 = 2 ** 32;
const RUN_EXITED = 0;
const RUN_BLOCKED = 1;
const RUN_YIELD = 2;

export class Cpu {
  readonly k: Kernel;
  readonly programs: CompiledOp[][];
  private readonly slice: number;
  /** Per task: the pc just past its barrier `lockStatFrom` / `lockStatTo` (Infinity when it has none). */
  private readonly lockStatFromPc: number[];
  private readonly lockStatToPc: number[];
  private lockStatCleared = false;
  /** lock_stat as the phase ended on this CPU (what run() reports), or null. */
  private lockStatKept: Pick<CpuResult, 'lockStats' | 'lockHist' | 'lockPoints'> | null = null;
  /**
   * With no more processes than CPUs, each process has its own CPU (task i on CPU i), as a
   * machine with idle CPUs would run them; otherwise CPUs share one run queue.
   */
  private readonly pinned: boolean;

  /** The programs' own processes (tasks past them start only when a fork starts them). */
  private readonly initial: number;
  private readonly opResults: SeqResult[] = [];
  private readonly forkUs: number[] = [];
  private readonly unmetList: UnmetExpectation[] = [];
  /** What the last op returned beyond its outcome (op_results' ret, value, status). */
  private lastRet: number | string | undefined = undefined;
  private lastValue: number | undefined = undefined;
  private lastStatus: number | string | undefined = undefined;
  /** The stale-TLB audit's slots (tlb_audit), and the task whose mm this CPU last ran (named in a finding). */
  private readonly auditSlots = new Int32Array(TLB_ENTRIES);
  private lastTask = -1;

  constructor(readonly p: CpuParams, model: ModelOps, private readonly quiescent: QuiescentHook | null, private readonly observe: OpObserver | null = null) {
    const m = attachMachine(p.sab, p.config);
    this.k = new Kernel(m.i32, m.layout, p.cpu, {
      spinLimit: p.spin ? 2000 : 0,
      deadlineMs: p.deadlineMs,
      lockStatTiming: p.lockStatTiming,
      bug: p.bug,
      mmapQrwlock: p.mmapLock === 'qrwlock',
      hostQrwlock: (p.hostLock ?? p.mmapLock) === 'qrwlock',
      perVmaLock: p.faultLock === 'per-vma',
      ptlMm: p.ptl === 'mm',
      tlbBroadcast: p.tlbFlush === 'broadcast',
      unshareBatched: p.unshareFlush !== 'per-unshare',
      lockset: p.lockset === true,
    });
    this.k.model = model;
    if (quiescent !== null) this.k.onAudit = (k) => this.tlbAudit(k);
    const compiled = compilePrograms(p.programs, MAX_SLOTS);
    this.programs = compiled.tasks;
    this.initial = compiled.initial;
    this.slice = p.cooperative ? Infinity : p.slice;
    const pastBarrier = (id: number) => this.programs.map((ops) => {
      const i = id < 0 ? -1 : ops.findIndex((op) => op.code === OpCode.Barrier && op.a === id);
      return i < 0 ? Infinity : i + 1;
    });
    this.lockStatFromPc = pastBarrier(p.lockStatFrom ?? -1);
    this.lockStatToPc = pastBarrier(p.lockStatTo ?? -1);
    this.pinned = this.initial <= p.config.cpus && this.programs.length === this.initial && !p.cooperative;
  }

  run(): CpuResult {
    const k = this.k;
    const i32 = k.i32;
    const t0 = performance.now();
    let stopped = false;
    let error: string | undefined;
    try {
      if (k.sched !== null) k.sched.start(k);
      let idleSince = -1;
      let idleProgress = 0;
      for (;;) {
        k.checkStop();
        if (Atomics.load(i32, G_LIVE_TASKS) === 0) break;
        const t = this.pinned ? this.ownTask() : rq_pop(k);
        if (t < 0) {
          // Idle: take interrupts, and fail (watchdog) if the whole machine stops progressing.
          const progress = Atomics.load(i32, G_PROGRESS);
          if (idleSince < 0 || progress !== idleProgress) {
            idleSince = performance.now();
            idleProgress = progress;
          }
          if (this.pinned && k.cpu < this.programs.length) {
            const st = k.taskBase(k.cpu) + T_STATE;
            k.waitStep(st, Atomics.load(i32, st), k.spinLimit, idleSince, LockClass.Idle, LockMode.Read, -1);
          } else {
            // Wait for the count to move from what made this CPU idle (not from 0: a push may
            // already be under way).
            k.waitStep(G_RQ_COUNT, Atomics.load(i32, G_RQ_COUNT), k.spinLimit, idleSince, LockClass.Idle, LockMode.Read, -1);
          }
          continue;
        }
        idleSince = -1;
        k.waitDone();
        this.runTask(t);
      }
      if (k.mm >= 0) switch_mm(k, -1); // drop the lazily loaded mm
      if (k.sched !== null) k.sched.done(k);
    } catch (e) {
      if (e instanceof MachineStop) stopped = true;
      else {
        error = e instanceof Error ? `${e.message}\n${e.stack}` : String(e);
        Atomics.compareExchange(i32, G_STOP, StopReason.None, StopReason.Fatal);
        k.publishHeld();
      }
    }
    const now = this.lockStatNow(); // frees the histograms either way
    return {
      cpu: k.cpu, stats: Array.from(k.stats), ...(this.lockStatKept ?? now), seconds: (performance.now() - t0) / 1000, stopped, error,
      opResults: this.opResults, unmet: this.unmetList, forkUs: this.forkUs,
    };
  }

  /** Pinned: this CPU's own task, if it is runnable (claimed by moving it to RUNNING), else -1. */
  private ownTask(): number {
    const t = this.k.cpu;
    if (t >= this.initial) return -1;
    const st = this.k.taskBase(t) + T_STATE;
    return Atomics.compareExchange(this.k.i32, st, TASK_RUNNABLE, TASK_RUNNING) === TASK_RUNNABLE ? t : -1;
  }

  /** Clears this CPU's lock_stat once task `t` is past the phase's opening barrier; keeps it once past the closing one. */
  private phaseStarted(t: number): void {
    if (this.lockStatKept !== null) return;
    const pc = Atomics.load(this.k.i32, this.k.taskBase(t) + T_PC);
    if (!this.lockStatCleared && pc >= this.lockStatFromPc[t]) {
      this.lockStatCleared = true;
      this.k.clearLockStats();
    }
    if (pc >= this.lockStatToPc[t]) this.lockStatKept = this.lockStatNow();
  }

  /** This CPU's lock_stat for the orchestrator (the histograms encoded, and freed). */
  private lockStatNow(): Pick<CpuResult, 'lockStats' | 'lockHist' | 'lockPoints'> {
    const k = this.k;
    return { lockStats: Array.from(k.lockStats), lockHist: { wait: encodeLockHistograms(k.waitHist), hold: encodeLockHistograms(k.holdHist) }, lockPoints: k.lockPoints() };
  }

  private runTask(t: number): void {
    const k = this.k;
    const i32 = k.i32;
    const to = k.taskBase(t);
    this.phaseStarted(t);
    k.task = t;
    k.taskOff = to;
    this.lastTask = t;
    Atomics.store(i32, to + T_STATE, TASK_RUNNING);
    let mm = Atomics.load(i32, to + T_MM);
    if (mm < 0) {
      // The task's first run: its (exec'd) address space.
      mm = mm_alloc(k, t, 0);
      if (mm < 0) {
        this.exit(t, 9);
        return;
      }
      Atomics.store(i32, to + T_MM, mm);
      Atomics.store(i32, to + T_MM_GEN, mm_gen(k, mm));
    }
    else if (!pool_check(k, k.pools.mms, mm, Atomics.load(i32, to + T_MM_GEN), PoolId.Mms)) k.checkStop();
    if (k.mm !== mm) {
      switch_mm(k, mm);
      k.stats[ST_CTX_SWITCHES]++;
    }
    if (k.tracer !== null) k.tracer.instant(TraceKind.Task, t * 65536 + mm);
    const r = this.interpret(t);
    if (r === RUN_YIELD) {
      Atomics.store(i32, to + T_STATE, TASK_RUNNABLE);
      rq_push(k, t);
    }
    k.task = -1;
  }

  private interpret(t: number): number {
    const k = this.k;
    const i32 = k.i32;
    const to = k.taskOff;
    const ops = this.programs[t];
    for (let n = 0; ; n++) {
      const pc = Atomics.load(i32, to + T_PC);
      if (pc >= ops.length) {
        this.exit(t, 0);
        return RUN_EXITED;
      }
      if (!this.pinned && n >= this.slice && Atomics.load(i32, G_RQ_COUNT) > 0) return RUN_YIELD;
      k.checkStop();
      if (k.sched !== null) k.sched.point(k, SchedPoint.OpBoundary);
      const op = ops[pc];
      if (op.code === OpCode.Exit) {
        this.exit(t, 0, op.a);
        return RUN_EXITED;
      }
      if (op.code === OpCode.Barrier) {
        Atomics.store(i32, to + T_PC, pc + 1);
        Atomics.add(i32, to + T_OPS, 1);
        Atomics.add(i32, G_PROGRESS, 1);
        if (this.barrier(t, op)) return RUN_BLOCKED;
        this.phaseStarted(t);
        continue;
      }
      if (op.code === OpCode.Wait && this.waitBlocks(t, op)) return RUN_BLOCKED; // the child's exit wakes it; the op runs again
      if (k.tracer !== null) k.tracer.begin(TraceKind.Syscall, op.code);
      this.lastRet = this.lastValue = this.lastStatus = undefined;
      const outcome = this.execute(op);
      if (k.tracer !== null) {
        k.tracer.end(TraceKind.Syscall, outcome);
        k.tracer.counter(TraceKind.PtPages, Atomics.load(i32, k.ptps.hdr + PL_INUSE));
      }
      if (outcome === ACCESS_STOP_OUTCOME) k.checkStop();
      Atomics.store(i32, to + T_LAST_ERRNO, outcome);
      if (this.observe) this.observe(t, pc, outcome, op.code === OpCode.Load && outcome === 0 ? mmuResult.value : 0);
      if (outcome === -ACCESS_OOM) {
        // VM_FAULT_OOM with nothing to reclaim: the process is killed (pagefault_out_of_memory).
        // A result the report gives (memory.oom), not a broken expectation.
        this.exit(t, ACCESS_OOM);
        return RUN_EXITED;
      }
      this.recordResult(t, pc, op, outcome);
      Atomics.store(i32, to + T_PC, pc + 1);
      Atomics.add(i32, to + T_OPS, 1);
      Atomics.add(i32, G_PROGRESS, 1);
    }
  }

  /**
   * This task becomes a thread of `leader`'s process (clone with CLONE_VM): it takes a user of
   * the leader's mm (mmget), runs on it, and drops its own. File tables stay per task.
   */
  private joinMm(leader: number): number {
    const k = this.k;
    const i32 = k.i32;
    if (leader >= this.initial) return -22; // EINVAL: join_mm names the programs' processes
    const lb = k.taskBase(leader);
    const mm = Atomics.load(i32, lb + T_MM);
    if (mm < 0 || Atomics.load(i32, lb + T_STATE) === TASK_EXITED) return -11; // EAGAIN: no address space to share yet
    const own = Atomics.load(i32, k.taskOff + T_MM);
    if (own === mm) return 0;
    mmget(k, mm);
    Atomics.store(i32, k.taskOff + T_MM, mm);
    Atomics.store(i32, k.taskOff + T_MM_GEN, mm_gen(k, mm));
    switch_mm(k, mm);
    mmput(k, own);
    return 0;
  }

  /** An op's address expression: a region's address plus an offset, or a number. */
  private addrOf(op: CompiledOp): number {
    const a = op.addr;
    return a === null ? op.a : (a.slot >= 0 ? this.slotGet(a.slot) : 0) + a.off;
  }

  /**
   * fork (kernel_clone / copy_process): the op's child task gets a copy of this address space
   * (dup_mmap), of the file table (dup_fd: one more reference per open file) and of every name
   * the program has, the next proc number, and the run queue's tail. Returns the child's proc
   * number, or -errno (ENOMEM, EAGAIN).
   */
  private fork(op: CompiledOp): number {
    const k = this.k;
    const i32 = k.i32;
    const c = op.child;
    const cb = k.taskBase(c);
    if (c < 0 || Atomics.load(i32, cb + T_STATE) !== TASK_NEW) return -11; // EAGAIN: that child ran already
    // The child keeps a COW PTE opt-in (MMF_COW_PTE is in MMF_INIT_MASK's spirit: a prctl
    // setting of the process, inherited by what it forks).
    const mm = mm_alloc(k, c, Atomics.load(i32, k.mmBase(k.mm) + M_FLAGS) & MMF_COW_PTE);
    if (mm < 0) return -ENOMEM;
    const r = dup_mmap(k, k.mm, mm);
    if (r < 0) {
      mmput(k, mm);
      return r;
    }
    const pb = k.taskOff;
    Atomics.store(i32, cb + T_MM, mm);
    Atomics.store(i32, cb + T_MM_GEN, mm_gen(k, mm));
    Atomics.store(i32, cb + T_PC, 0);
    Atomics.store(i32, cb + T_PARENT, k.task + 1);
    Atomics.store(i32, cb + T_WAIT_FOR, 0);
    Atomics.store(i32, cb + T_REAPED, 0);
    for (let i = 0; i < MAX_FDS; i++) {
      const f = Atomics.load(i32, pb + T_FD + 2 * i);
      if (f >= 0) get_file(k, f);
      Atomics.store(i32, cb + T_FD + 2 * i + 1, Atomics.load(i32, pb + T_FD + 2 * i + 1));
      Atomics.store(i32, cb + T_FD_MODE + i, Atomics.load(i32, pb + T_FD_MODE + i));
      Atomics.store(i32, cb + T_FD + 2 * i, f);
    }
    for (let w = 0; w < 2 * MAX_SLOTS; w++) Atomics.store(i32, cb + T_SLOT + w, Atomics.load(i32, pb + T_SLOT + w));
    for (let w = 0; w < MAX_SLOTS; w++) {
      Atomics.store(i32, cb + T_SLOT_FILE + w, Atomics.load(i32, pb + T_SLOT_FILE + w));
      Atomics.store(i32, cb + T_SLOT_PAGES + w, Atomics.load(i32, pb + T_SLOT_PAGES + w));
      Atomics.store(i32, cb + T_SLOT_SEQ + w, -1); // the child's mm has its own mm_lock_seq: look again
    }
    const pid = Atomics.add(i32, G_NEXT_PID, 1);
    Atomics.store(i32, cb + T_PID, pid);
    this.lastRet = pid;
    Atomics.add(i32, G_LIVE_TASKS, 1);
    Atomics.store(i32, cb + T_STATE, TASK_RUNNABLE);
    rq_push(k, c);
    return pid;
  }

  /** The children `wait` may reap: -1 none; else each such task in turn (see waitBlocks, reap). */
  private childOf(t: number, op: CompiledOp, c: number): boolean {
    const i32 = this.k.i32;
    const cb = this.k.taskBase(c);
    if (Atomics.load(i32, cb + T_PARENT) !== t + 1 || Atomics.load(i32, cb + T_REAPED) !== 0 || Atomics.load(i32, cb + T_STATE) === TASK_NEW) return false;
    return op.slot < 0 || Atomics.load(i32, cb + T_PID) === this.slotGet(op.slot);
  }

  /**
   * wait4 before it runs: blocks (true) while a child it may reap lives and none has exited. The
   * task says what it waits for first, then looks again, so a child exiting in between wakes it.
   */
  private waitBlocks(t: number, op: CompiledOp): boolean {
    const k = this.k;
    const i32 = k.i32;
    const scan = (): number => { // 0 none, 1 one exited, 2 only living ones
      let live = false;
      for (let c = this.initial; c < this.programs.length; c++) {
        if (!this.childOf(t, op, c)) continue;
        if (Atomics.load(i32, k.taskBase(c) + T_STATE) === TASK_EXITED) return 1;
        live = true;
      }
      return live ? 2 : 0;
    };
    if (scan() !== 2) return false;
    const to = k.taskOff;
    Atomics.store(i32, to + T_WAIT_FOR, 1);
    Atomics.store(i32, to + T_STATE, TASK_BLOCKED);
    if (scan() !== 2 && Atomics.compareExchange(i32, to + T_STATE, TASK_BLOCKED, TASK_RUNNING) === TASK_BLOCKED) {
      Atomics.store(i32, to + T_WAIT_FOR, 0);
      return false;
    }
    return true; // an exiting child makes it runnable again (exit: wake_up_parent)
  }

  /** wait4 itself: reaps an exited child (ret: its proc number, status: its exit code or signal), or ECHILD. */
  private reap(op: CompiledOp): number {
    const k = this.k;
    const i32 = k.i32;
    for (let c = this.initial; c < this.programs.length; c++) {
      if (!this.childOf(k.task, op, c)) continue;
      const cb = k.taskBase(c);
      if (Atomics.load(i32, cb + T_STATE) !== TASK_EXITED) continue;
      Atomics.store(i32, cb + T_REAPED, 1);
      const killed = Atomics.load(i32, cb + T_KILLED);
      this.lastStatus = killed !== 0 ? (SIGNAL_NAMES[killed] ?? `signal ${killed}`) : Atomics.load(i32, cb + T_EXIT);
      const pid = Atomics.load(i32, cb + T_PID);
      this.lastRet = pid;
      return pid;
    }
    return -ECHILD;
  }

  private slotGet(s: number): number {
    const i32 = this.k.i32;
    const o = this.k.taskOff + T_SLOT + 2 * s;
    return Atomics.load(i32, o) * TWO32 + (Atomics.load(i32, o + 1) >>> 0);
  }

  private slotSet(s: number, v: number): void {
    const i32 = this.k.i32;
    const o = this.k.taskOff + T_SLOT + 2 * s;
    Atomics.store(i32, o, Math.floor(v / TWO32));
    Atomics.store(i32, o + 1, v % TWO32 | 0);
  }

  /**
   * Records what op `pc` of task `t` did (op_results) and checks every assertion it makes: an
   * unmet one is reported, and the run goes on.
   */
  private recordResult(t: number, pc: number, op: CompiledOp, outcome: number): void {
    const k = this.k;
    const i32 = k.i32;
    const seq = Atomics.add(i32, G_OP_SEQ, 1);
    const r: SeqResult = { seq, proc: Atomics.load(i32, k.taskOff + T_PID), index: pc, op: OP_NAMES[op.code] };
    if (this.lastRet !== undefined && outcome === 0) r.ret = this.lastRet;
    let sigAddr = 0;
    if (outcome > 0) r.errno = ERRNO_NAMES[outcome] ?? `errno ${outcome}`;
    else if (outcome < 0) {
      const sig = SIGNAL_NAMES[-outcome] ?? `signal ${-outcome}`;
      r.signal = sig;
      const code = Atomics.load(i32, k.taskOff + T_SIG_CODE);
      r.code = SI_CODE_NAMES[sig]?.[code] ?? String(code);
      sigAddr = Atomics.load(i32, k.taskOff + T_SIG_ADDR_HI) * TWO32 + (Atomics.load(i32, k.taskOff + T_SIG_ADDR_LO) >>> 0);
      r.at = code === SI_KERNEL || op.slot < 0 || op.slotName === '' ? addrName('', sigAddr) : addrName(op.slotName, sigAddr - this.slotGet(op.slot));
    }
    if (outcome === 0 && this.lastValue !== undefined) r.value = this.lastValue;
    if (outcome === 0 && this.lastStatus !== undefined) r.status = this.lastStatus;
    if (this.opResults.length < OP_RESULTS_CAP) this.opResults.push(r);
    // The assertions: the outcome (expect), then each of value, code, at, ret, status.
    const w = op.want;
    let why = '';
    if (op.expect !== EXPECT_ANY && outcome !== op.expect) why = `expected ${outcomeName(op.expect)}, got ${outcomeName(outcome)}`;
    else if (w !== null) {
      if (w.value !== undefined && r.value !== w.value) why = `expected value ${w.value}, got ${r.value ?? 'none'}`;
      else if (w.code !== undefined && Atomics.load(i32, k.taskOff + T_SIG_CODE) !== w.code || (w.code !== undefined && outcome >= 0)) why = `expected si_code ${r.signal ? '' : 'of a signal '}${Object.entries(SI_CODES).find(([, v]) => v === w.code)?.[0]}, got ${r.code ?? 'no signal'}`;
      else if (w.at !== undefined && (outcome >= 0 || sigAddr !== (w.at.slot >= 0 ? this.slotGet(w.at.slot) : 0) + w.at.off)) why = `expected si_addr ${addrName(w.at.name, w.at.off)}, got ${r.at ?? 'no signal'}`;
      else if (w.ret !== undefined && r.ret !== w.ret) why = `expected ret ${w.ret}, got ${r.ret ?? 'none'}`;
      else if (w.status !== undefined && r.status !== w.status) why = `expected status ${w.status}, got ${r.status ?? 'none'}`;
    }
    if (why !== '' && this.unmetList.length < UNMET_CAP) this.unmetList.push({ seq, proc: r.proc, index: pc, text: op.text, why });
    if (why !== '') Atomics.add(i32, G_UNMET, 1);
  }

  /** Runs one op; returns its outcome: 0, a positive errno, or -signal. */
  private execute(op: CompiledOp): number {
    const k = this.k;
    k.stats[ST_SYSCALLS]++;
    switch (op.code) {
      case OpCode.MemfdCreate: return this.result(op, sys_memfd_create(k));
      case OpCode.ShmOpen: return this.result(op, sys_shm_open(k, op.str, (op.a & 1) !== 0, (op.a & 2) !== 0, op.b));
      case OpCode.ShmUnlink: return this.result(op, sys_shm_unlink(k, op.str));
      case OpCode.Ftruncate: return this.result(op, sys_ftruncate(k, this.slotGet(op.slot), op.a));
      case OpCode.Close: return this.result(op, sys_close(k, this.slotGet(op.slot)));
      case OpCode.Mmap: {
        const fd = op.slot >= 0 ? this.slotGet(op.slot) : -1;
        const r = sys_mmap(k, this.addrOf(op), op.b, op.c, op.d, fd, op.e);
        if (r >= 0) {
          // Where stores through the region go, from what was mapped (no lock: the fault path's
          // lock statistics stay the kernel's). Shared anonymous memory's file is looked up.
          const shared = (op.d & 3) !== 2;
          if (fd < 0 && shared) this.setRegionLedger(op.out, r);
          else {
            Atomics.store(k.i32, k.taskOff + T_SLOT_FILE + op.out, this.storeLedger(fd >= 0 ? fdget(k, fd) : -1, shared));
            Atomics.store(k.i32, k.taskOff + T_SLOT_PAGES + op.out, Math.min(2 ** 31 - 1, Math.ceil(op.b / 4096)));
            Atomics.store(k.i32, k.taskOff + T_SLOT_SEQ + op.out, Atomics.load(k.i32, k.mmOff + M_LOCK_SEQ));
          }
        }
        return this.result(op, r);
      }
      case OpCode.Open: return this.result(op, sys_open(k, op.str, (op.a & 1) !== 0, (op.a & 2) !== 0, op.b));
      case OpCode.Unlink: return this.result(op, sys_unlink(k, op.str));
      case OpCode.Ioctl: {
        const args: Record<string, number> = {};
        for (const [key, v] of op.args) args[key] = typeof v === 'number' ? v : this.slotGet(v.slot);
        return this.result(op, sys_ioctl(k, this.slotGet(op.slot), op.str, args));
      }
      case OpCode.Mshare: return this.result(op, sys_mshare(k, op.str, op.a, op.b, (op.c & 1) !== 0, (op.c & 2) !== 0));
      case OpCode.MshareUnlink: return this.result(op, sys_mshare_unlink(k, op.str));
      case OpCode.JoinMm: return this.result(op, this.joinMm(op.a));
      case OpCode.Let: {
        // A thread names an address its process mapped: stores through it are credited to what
        // the mapping there is now.
        const a = this.addrOf(op);
        this.setRegionLedger(op.out, a);
        return this.result(op, a);
      }
      case OpCode.FaultRemote: return this.result(op, op.a >= this.initial ? -3 : sys_fault_remote(k, op.a, op.b, op.write));
      case OpCode.Madvise: return this.result(op, sys_madvise(k, this.slotGet(op.slot) + op.a, op.b, op.str));
      case OpCode.GupFast: return this.result(op, sys_gup_fast(k, this.slotGet(op.slot) + op.a, op.write));
      case OpCode.Compact: return this.result(op, compact_scan_pgtables(k));
      case OpCode.UffdRegister: return this.result(op, sys_uffd_register(k, this.slotGet(op.slot) + op.a, op.b));
      case OpCode.UffdWp: return this.result(op, sys_uffd_wp(k, this.slotGet(op.slot) + op.a, op.b, op.write));
      case OpCode.UffdRegisterFile: return this.result(op, sys_uffd_register_file(k, this.slotGet(op.slot)));
      case OpCode.UffdWpFile: return this.result(op, sys_uffd_wp_file(k, this.slotGet(op.slot), op.write));
      case OpCode.UffdHandle: sys_uffd_handle(k, op.a, op.d, op.e); return 0;
      case OpCode.UffdSnapshotEnd: return this.result(op, sys_uffd_snapshot_end(k));
      case OpCode.Munmap: return this.result(op, sys_munmap(k, this.slotGet(op.slot) + op.a, op.b));
      case OpCode.Mprotect: return this.result(op, sys_mprotect(k, this.slotGet(op.slot) + op.a, op.b, op.c));
      case OpCode.Fork: {
        const t0 = performance.now();
        const r = this.fork(op);
        const ms = performance.now() - t0;
        k.stats[ST_FORK_MS] += ms;
        if (r >= 0) k.stats[ST_FORKS]++;
        if (r >= 0 && this.forkUs.length < FORK_SAMPLES_CAP) this.forkUs.push(ms * 1000);
        return this.result(op, r);
      }
      case OpCode.Wait: return this.result(op, this.reap(op));
      case OpCode.Pread: {
        const r = sys_pread(k, this.slotGet(op.slot), op.a, op.b, preadOut);
        if (r >= 0) {
          this.lastRet = r;
          if (r >= 4) this.lastValue = preadOut.value >>> 0;
        }
        return this.result(op, r);
      }
      case OpCode.Pwrite: {
        const r = sys_pwrite(k, this.slotGet(op.slot), op.a, op.b, op.d);
        if (r >= 0) this.lastRet = r;
        return this.result(op, r);
      }
      case OpCode.Mlock: return this.result(op, sys_mlock(k, this.slotGet(op.slot) + op.a, op.b, op.write));
      case OpCode.Munlock: return this.result(op, sys_munlock(k, this.slotGet(op.slot) + op.a, op.b));
      case OpCode.Msync: return this.result(op, sys_msync(k, this.slotGet(op.slot) + op.a, op.b, op.d));
      case OpCode.Reclaim: return this.result(op, sys_reclaim(k, this.slotGet(op.slot) + op.a, op.b));
      case OpCode.Migrate: return this.result(op, sys_migrate(k, this.slotGet(op.slot) + op.a, op.b));
      case OpCode.Prctl: return this.result(op, sys_prctl_set_cow_pte(k));
      case OpCode.Mincore: {
        const r = sys_mincore(k, this.slotGet(op.slot) + op.a, op.b);
        if (r >= 0) this.lastValue = r >>> 0;
        return this.result(op, r < 0 ? r : 0);
      }
      case OpCode.Mremap: {
        const old = this.slotGet(op.slot) + op.a;
        const newAddr = op.addr === null ? 0 : (op.addr.slot >= 0 ? this.slotGet(op.addr.slot) : 0) + op.addr.off;
        const r = sys_mremap(k, old, op.b, op.f, op.d, newAddr);
        if (r >= 0) this.setRegionLedger(op.out, r);
        if (r >= 0) {
          // The new address as the program can name it: against the old region, or new_addr's.
          if ((op.d & 2) !== 0 && op.addr !== null && op.addr.name !== '') this.lastRet = addrName(op.addr.name, r - this.slotGet(op.addr.slot));
          else if (r === old || (op.d & 2) !== 0) this.lastRet = addrName(op.slotName, r - this.slotGet(op.slot));
          else this.lastRet = 'moved';
        }
        return this.result(op, r);
      }
      case OpCode.Load: {
        const r = this.access(op, this.slotGet(op.slot) + op.a, 4096, 1, false, 0, op.slot);
        if (r === 0) this.lastValue = mmuResult.value >>> 0;
        return r;
      }
      case OpCode.Store: return this.access(op, this.slotGet(op.slot) + op.a, 4096, 1, true, op.d, op.slot);
      case OpCode.Touch: {
        const base = this.slotGet(op.slot) + op.a;
        const t0 = performance.now();
        const f0 = k.stats[ST_FAULTS];
        let r = 0;
        for (let p = 0; p < op.e && r === 0; p++) r = this.access(op, base, op.d, Math.ceil(op.b / op.d), op.write, op.c, op.slot);
        k.stats[ST_ACCESS_MS] += performance.now() - t0;
        k.stats[ST_ACCESS_FAULTS] += k.stats[ST_FAULTS] - f0;
        return r;
      }
      default: throw new Error(`op ${op.code} cannot be executed here`);
    }
  }

  /**
   * Where the lost-write check credits stores through a mapping of `file` (-1: none): the
   * shared file's FL_ID (a model file's backing file), 0 for private memory, -1 when a model
   * cannot name it.
   */
  private storeLedger(file: number, shared: boolean): number {
    const k = this.k;
    if (file < 0 || !shared) return 0;
    return is_model_file(k, file)
      ? k.model.backing_file_id?.(k, file) ?? -1
      : Atomics.load(k.i32, fileBase(k, file) + FL_ID);
  }

  /**
   * Records where stores through region `slot` (mapped at `addr`) are credited: what the mm maps
   * at `addr` now, and how far (looked up once, under mmap_lock; stores outside it look again).
   */
  private setRegionLedger(slot: number, addr: number): void {
    const k = this.k;
    this.ledgerAt(addr);
    const pages = this.ledgerId === -1 && this.ledgerEnd === addr + 1 ? 0 : Math.min(2 ** 31 - 1, Math.floor((this.ledgerEnd - addr) / 4096));
    Atomics.store(k.i32, k.taskOff + T_SLOT_FILE + slot, this.ledgerId);
    Atomics.store(k.i32, k.taskOff + T_SLOT_PAGES + slot, pages);
    Atomics.store(k.i32, k.taskOff + T_SLOT_SEQ + slot, Atomics.load(k.i32, k.mmOff + M_LOCK_SEQ));
  }

  /** The mapping the last store's ledger came from: [ledgerStart, ledgerEnd) credits ledgerId. */
  private ledgerStart = 0;
  private ledgerEnd = 0;
  private ledgerId = -1;

  /**
   * Where stores at `addr` are credited: what the task's mm maps there now (the file a shared
   * mapping shares, private memory, or nothing: -1), looked up under mmap_lock for the VMA's range.
   * By address, not by the op's region: an offset may carry a store into another mapping.
   */
  private ledgerAt(addr: number): void {
    const k = this.k;
    let v = find_vma_speculative(k, k.mm, addr);
    let lock = -1;
    if (v === -2) {
      lock = k.mmOff + M_MMAP_LOCK;
      mmap_read_lock(k, lock);
      v = find_vma(k, k.mm, addr);
      if (v >= 0 && vma_start(k, v) > addr) v = -1;
    }
    if (v >= 0) {
      this.ledgerStart = vma_start(k, v);
      this.ledgerEnd = vma_end(k, v);
      this.ledgerId = this.storeLedger(vma_file(k, v), (vma_flags(k, v) & VM_SHARED) !== 0);
    } else {
      this.ledgerStart = addr;
      this.ledgerEnd = addr + 1;
      this.ledgerId = -1;
    }
    if (lock >= 0) mmap_read_unlock(k, lock);
  }

  private result(op: CompiledOp, r: number): number {
    if (r < 0) return -r;
    if (op.out >= 0) this.slotSet(op.out, r);
    return 0;
  }

  /**
   * `count` loads or stores from `addr`, `stride` apart. Stops at the first signal, which
   * becomes the outcome (si_addr and si_code saved in the task). Store sums are credited to the
   * file the region maps (or to the task's private memory) for the lost-write check.
   */
  private access(op: CompiledOp, addr: number, stride: number, count: number, write: boolean, value: number, slot: number): number {
    const k = this.k;
    const i32 = k.i32;
    let done = 0;
    let r = ACCESS_OK;
    if (write) {
      // Inside the region as it was mapped: its ledger; anywhere else: what is mapped there.
      if (slot >= 0) {
        // The mappings changed since the region's ledger was taken (mm_lock_seq moved: an mmap,
        // munmap, mremap... over it, by this task or another thread): take it again.
        if (Atomics.load(i32, k.taskOff + T_SLOT_SEQ + slot) !== Atomics.load(i32, k.mmOff + M_LOCK_SEQ)) this.setRegionLedger(slot, this.slotGet(slot));
        this.ledgerStart = this.slotGet(slot);
        this.ledgerEnd = this.ledgerStart + Atomics.load(i32, k.taskOff + T_SLOT_PAGES + slot) * 4096;
        this.ledgerId = Atomics.load(i32, k.taskOff + T_SLOT_FILE + slot);
      } else this.ledgerEnd = this.ledgerStart;
      let sum = 0;
      for (; done < count; done++) {
        const a = addr + done * stride;
        if (!(a >= this.ledgerStart && a < this.ledgerEnd)) {
          this.creditStores(this.ledgerId, sum);
          sum = 0;
          this.ledgerAt(a);
        }
        r = mmu_store(k, a, value);
        if (r !== ACCESS_OK) break;
        sum = (sum + value) | 0;
      }
      k.stats[ST_STORES] += done;
      this.creditStores(this.ledgerId, sum);
    } else {
      for (; done < count; done++) {
        r = mmu_load(k, addr + done * stride);
        if (r !== ACCESS_OK) break;
      }
      k.stats[ST_LOADS] += done;
    }
    k.stats[ST_ACCESSES] += done;
    if (r === ACCESS_OK) return 0;
    if (r === ACCESS_STOP) return ACCESS_STOP_OUTCOME;
    if (r === ACCESS_OOM) return -r;
    // A general-protection fault (a non-canonical address) reports si_addr 0.
    // The access is to the aligned word that holds the address: si_addr is that word's.
    const x = addr + done * stride;
    const at = r === ACCESS_SIGSEGV && mmuResult.si_code === SI_KERNEL ? 0 : x - (((x % 4) + 4) % 4);
    const to = k.taskOff;
    Atomics.add(i32, to + T_SIGNALS, 1);
    Atomics.store(i32, to + T_SIG_ADDR_HI, Math.floor(at / TWO32));
    Atomics.store(i32, to + T_SIG_ADDR_LO, at % TWO32 | 0);
    Atomics.store(i32, to + T_SIG_CODE, mmuResult.si_code);
    void op;
    return -r;
  }

  private creditStores(id: number, sum: number): void {
    if (sum === 0) return;
    const i32 = this.k.i32;
    const to = this.k.taskOff;
    if (id < 0) {
      Atomics.add(i32, to + T_UNTRACKED_STORES, sum);
      return;
    }
    if (id === 0) {
      Atomics.add(i32, to + T_ANON_STORES, sum);
      return;
    }
    for (let e = 0; e < MAX_FDS; e++) {
      const o = to + T_FILE_STORES + 3 * e;
      const cur = Atomics.load(i32, o);
      if (cur === id || cur === 0) {
        Atomics.store(i32, o, id);
        Atomics.add(i32, o + 2, sum);
        return;
      }
    }
    report_violation(i32, this.k.layout, Violation.Invariant, this.k.cpu, 5, this.k.task, id);
  }

  /** Microseconds since the run started (the orchestrator's clock, shared by every CPU). */
  private clockUs(): number {
    return Math.round((performance.timeOrigin + performance.now() - (this.p.traceOrigin ?? 0)) * 1000);
  }

  /**
   * Arrive at a barrier. The last of `count` (0: every live task) releases the others; when they
   * are all the machine's live tasks, nothing moves, and the quiescent hook runs first.
   * Returns true when the task blocked.
   */
  private barrier(t: number, op: CompiledOp): boolean {
    const k = this.k;
    const i32 = k.i32;
    const b = k.layout.barriers + op.a * BARRIER_WORDS;
    const gen = Atomics.load(i32, b + B_GEN);
    const to = k.taskOff;
    Atomics.store(i32, to + T_BARRIER, op.a + 1);
    Atomics.store(i32, to + T_BARRIER_GEN, gen);
    Atomics.store(i32, to + T_ARRIVE_US, this.clockUs());
    Atomics.store(i32, to + T_PREV_ARRIVE_FAULTS, Atomics.load(i32, to + T_ARRIVE_FAULTS));
    Atomics.store(i32, to + T_ARRIVE_FAULTS, Atomics.load(i32, to + T_FAULTS));
    Atomics.store(i32, to + T_STATE, TASK_BLOCKED);
    Atomics.store(i32, b + B_COUNT, op.d);
    Atomics.add(i32, b + B_ARRIVED, 1);
    if (!this.releaseIfComplete(op.a, gen, t)) return true;
    Atomics.store(i32, to + T_STATE, TASK_RUNNING);
    Atomics.store(i32, to + T_BARRIER, 0);
    return false;
  }

  /**
   * The stale-TLB check on this CPU (its TLB is CPU-local: no other thread can read it), run when
   * a quiescent barrier asks every CPU to audit (tlb_audit_all): each entry that grants more than
   * the PTE now in its mm's tables is one a shootdown missed — a 'stale-tlb' finding, whether or
   * not anything is ever stored through it.
   */
  private tlbAudit(k: Kernel): void {
    const n = tlb_audit(k, this.auditSlots);
    for (let i = 0; i < n; i++) {
      const s = this.auditSlots[i];
      const vpn = k.tlbVpn[s];
      const frame = (k.tlbPay[s] - F_HDR - k.frames.base) / k.frames.stride;
      report_violation(k.i32, k.layout, Violation.Invariant, k.cpu, STALE_TLB_VIOLATION, this.lastTask,
        Math.floor(vpn / 2 ** 20), (vpn % 2 ** 20) * 4096 | 0, frame * 2 + k.tlbWrite[s], current_pte(k, k.mm, vpn));
    }
  }

  /**
   * Releases barrier `id` (generation `gen`) if everyone it waits for has arrived: the task that
   * completes it, or an exiting task that was the last one missing. Returns true if this call
   * released it.
   */
  private releaseIfComplete(id: number, gen: number, self: number): boolean {
    const k = this.k;
    const i32 = k.i32;
    const b = k.layout.barriers + id * BARRIER_WORDS;
    const arrived = Atomics.load(i32, b + B_ARRIVED);
    const live = Atomics.load(i32, G_LIVE_TASKS);
    const count = Atomics.load(i32, b + B_COUNT) || live;
    if (arrived === 0 || arrived < count || Atomics.load(i32, b + B_GEN) !== gen) return false;
    if (Atomics.compareExchange(i32, b + B_ARRIVED, arrived, 0) !== arrived) return false;
    if (arrived === live && this.quiescent) {
      this.quiescent(k);
      tlb_audit_all(k); // every CPU's TLB against the tables, before any task moves on
    }
    Atomics.store(i32, b + B_RELEASE_US, this.clockUs());
    Atomics.add(i32, b + B_GEN, 1);
    const tasks = k.layout.config.tasks;
    for (let o = 0; o < tasks; o++) {
      if (o === self) continue;
      const ob = k.taskBase(o);
      if (Atomics.load(i32, ob + T_BARRIER) === id + 1 && Atomics.load(i32, ob + T_BARRIER_GEN) === gen &&
        Atomics.compareExchange(i32, ob + T_STATE, TASK_BLOCKED, TASK_RUNNABLE) === TASK_BLOCKED) {
        Atomics.store(i32, ob + T_BARRIER, 0);
        if (this.pinned) Atomics.notify(i32, ob + T_STATE);
        else rq_push(k, o);
      }
    }
    return true;
  }

  /** do_exit: close every fd, leave the mm (the last user tears it down), wake idle CPUs at the end. */
  exit(t: number, killedBy: number, code = 0): void {
    const k = this.k;
    const i32 = k.i32;
    const to = k.taskBase(t);
    for (let i = 0; i < MAX_FDS; i++) if (Atomics.load(i32, to + T_FD + 2 * i) >= 0) sys_close(k, 3 + i);
    const mm = Atomics.load(i32, to + T_MM);
    if (k.mm === mm) switch_mm(k, -1);
    if (mm >= 0) mmput(k, mm);
    Atomics.store(i32, to + T_EXIT, code);
    Atomics.store(i32, to + T_KILLED, killedBy);
    Atomics.store(i32, to + T_STATE, TASK_EXITED);
    // wake_up_parent: a parent blocked in wait looks again.
    const parent = Atomics.load(i32, to + T_PARENT) - 1;
    if (parent >= 0) {
      const pb = k.taskBase(parent);
      if (Atomics.load(i32, pb + T_WAIT_FOR) !== 0 && Atomics.compareExchange(i32, pb + T_STATE, TASK_BLOCKED, TASK_RUNNABLE) === TASK_BLOCKED) {
        Atomics.store(i32, pb + T_WAIT_FOR, 0);
        if (this.pinned) Atomics.notify(i32, pb + T_STATE);
        else rq_push(k, parent);
      }
    }
    Atomics.add(i32, G_PROGRESS, 1);
    if (Atomics.sub(i32, G_LIVE_TASKS, 1) === 1) {
      names_release_all(k); // the last task out unmounts: what names still hold is theirs, not a leak
      Atomics.notify(i32, G_RQ_COUNT);
    }
    // A barrier that waited for every live task may have been waiting only for this one.
    for (let id = 0; id < k.layout.config.barriers; id++) {
      this.releaseIfComplete(id, Atomics.load(i32, k.layout.barriers + id * BARRIER_WORDS + B_GEN), t);
    }
  }
}

/** An outcome meaning "the machine stopped inside this op" (never a real errno). */
const ACCESS_STOP_OUTCOME = 0x7ffffffe;
