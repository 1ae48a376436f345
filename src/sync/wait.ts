/**
 * The per-CPU side of every lock: the held-lock stack (lockdep's held_locks), lock_stat
 * accounting, and the one bounded wait that every blocking loop in ptlab goes through.
 *
 * No wait is unbounded: a waiter that passes its deadline stops the machine with a watchdog
 * report (who waits for what, who holds it) instead of hanging. While it waits, a CPU keeps
 * taking "interrupts" (TLB shootdown requests), as a real CPU does while it spins: otherwise a
 * CPU spinning on a lock held by a CPU that waits for its flush ack would deadlock.
 */
import {
  C_HELD, C_HELD_N, C_WAIT_CLASS, C_WAIT_MODE, C_WAIT_WORD, CPU_WORDS, G_STOP, G_STOP_CLASS,
  G_STOP_CPU, G_STOP_HOLDER, G_STOP_MODE, G_STOP_WORD, LOCKDEP_CLASSES, MAX_HELD, StopReason, type Layout,
} from '../shm/layout.js';
import { type LockClass, LOCK_CLASS_COUNT, LockMode } from './lockdep.js';
import { type LockHistogram, newLockHistogram, recordMs } from './lock_hist.js';
import type { Scheduler } from './schedpoint.js';
import { TraceKind, type Tracer } from './tracer.js';
import {
  LOCKSTAT_POINTS, type LockPointTables, LS_ACQ, LS_CON, LS_FIELDS, LS_HOLD_MAX, LS_HOLD_MIN, LS_HOLD_TOTAL, LS_WAIT_MAX, LS_WAIT_MIN,
  LS_WAIT_TOTAL, newLockStats,
} from './lock_stat.js';

/**
 * Frames of the lock layer itself, skipped when a lock_stat point names its site: the site is the
 * first function outside it — what lockdep's _RET_IP_ names, the caller of down_read() or
 * spin_lock() (mmap_read_lock, pte_lock and the plugin wrappers are inline wrappers of those).
 * esbuild may suffix a name with digits when two modules define it (qrwlock's wake -> wake2).
 */
const LOCK_FRAME = /^(?:acquired|contended|contendedRelease|released|lockSite|down_(?:read|write)\w*|up_(?:read|write)|queued_\w+|spin_(?:lock|unlock|trylock)\w*|mmap_(?:read|write)_(?:lock|unlock)\w*|host_mmap_\w+|pte_lock|plugin_(?:read|write)_\w+|wake|wait_lock|wait_unlock|sleep|sleepStep|waitStep)\d*$/;
/**
 * Frames captured for a site: the lock layer is at most this deep above its caller (a lock
 * plugin's wait, with the plugin's own helpers under its wrapper, gets more).
 */
const SITE_FRAMES = 6;
const PLUGIN_SITE_FRAMES = 10;
/** A lock plugin's wrapper (sync/lock_plugin.ts): the plugin's own functions are below it, the site above. */
const PLUGIN_FRAME = /^plugin_(?:read|write)_lock\d*$/;

/**
 * The first frame outside the lock layer (Error.prepareStackTrace's structured frames: no text
 * formatting); with a plugin's wrapper on the stack, the first one above it (the plugin's own
 * functions, whatever their names, are part of the lock).
 */
function pickSite(_e: Error, frames: NodeJS.CallSite[]): string {
  let from = 0;
  for (let i = 0; i < frames.length; i++) if (PLUGIN_FRAME.test(frames[i].getFunctionName() ?? '')) from = i + 1;
  for (let i = from; i < frames.length; i++) {
    const name = frames[i].getFunctionName() ?? frames[i].getMethodName();
    if (name !== null && !LOCK_FRAME.test(name)) return name;
  }
  return '(lock layer)';
}

/**
 * The ptlab function that called into the lock layer (lockdep's `ip`, named). Only on a
 * contended path with lock_stat timing on: capturing a stack allocates and costs microseconds,
 * which the fast path (every uncontended acquisition) never pays.
 */
function lockSite(frames = SITE_FRAMES): string {
  const limit = Error.stackTraceLimit;
  const prepare = Error.prepareStackTrace;
  Error.stackTraceLimit = frames;
  Error.prepareStackTrace = pickSite;
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, lockSite);
  const site = holder.stack as string;
  Error.prepareStackTrace = prepare;
  Error.stackTraceLimit = limit;
  return site;
}

/**
 * lock_point (kernel/locking/lockdep.c): the index of `site` in a slot's LOCKSTAT_POINTS table,
 * the first free one taking it; LOCKSTAT_POINTS when the table is full (not counted, as Linux).
 */
function lock_point(sites: (string | null)[], counts: Float64Array, slot: number, site: string): void {
  const b = slot * LOCKSTAT_POINTS;
  for (let i = 0; i < LOCKSTAT_POINTS; i++) {
    const s = sites[b + i];
    if (s === null) sites[b + i] = site;
    else if (s !== site) continue;
    counts[b + i]++;
    return;
  }
}

/** Thrown out of kernel code when the machine stops (watchdog, a fatal error elsewhere). */
export class MachineStop extends Error {
  constructor(readonly reason: StopReason, message: string) {
    super(message);
  }
}

/** Sleep slice of a blocked waiter: it wakes at least this often to take interrupts. */
export const WAIT_SLICE_MS = 1;

export interface LockCpuOptions {
  /** Spins before sleeping; 0 when threads outnumber cores (never spin then). */
  spinLimit: number;
  /** Deadline of every wait, in milliseconds. */
  deadlineMs: number;
  /** Measure wait and hold times (two clock reads per acquisition), as CONFIG_LOCK_STAT does. */
  lockStatTiming: boolean;
}

export class LockCpu {
  readonly cpuBase: number;
  readonly lockStats = newLockStats();
  /** lock_stat's wait and hold times per class and mode (slot cls * 2 + mode), for p50/p99. */
  readonly waitHist: (LockHistogram | null)[] = new Array<LockHistogram | null>(LOCK_CLASS_COUNT * 2).fill(null);
  readonly holdHist: (LockHistogram | null)[] = new Array<LockHistogram | null>(LOCK_CLASS_COUNT * 2).fill(null);
  spinLimit: number;
  deadlineMs: number;
  lockStatTiming: boolean;
  // held_locks: CPU-local; published to machine memory only when the machine stops.
  readonly heldWord = new Int32Array(MAX_HELD);
  readonly heldClass = new Int32Array(MAX_HELD);
  readonly heldMode = new Int32Array(MAX_HELD);
  readonly heldSince = new Float64Array(MAX_HELD);
  heldDepth = 0;
  /**
   * lock_stat's point tables per slot (class * 2 + mode), LOCKSTAT_POINTS sites each: where this
   * CPU waited (contention points) and where it released a lock a waiter was announced on
   * (contending points). CPU-local, merged by the orchestrator; filled only with lock_stat timing.
   */
  readonly contentionSites: (string | null)[] = new Array<string | null>(LOCK_CLASS_COUNT * 2 * LOCKSTAT_POINTS).fill(null);
  readonly contentionCounts = new Float64Array(LOCK_CLASS_COUNT * 2 * LOCKSTAT_POINTS);
  readonly contendingSites: (string | null)[] = new Array<string | null>(LOCK_CLASS_COUNT * 2 * LOCKSTAT_POINTS).fill(null);
  readonly contendingCounts = new Float64Array(LOCK_CLASS_COUNT * 2 * LOCKSTAT_POINTS);
  /** The slot of the lock released last (released()), for contendedRelease; -1 when unknown. */
  private releasedSlot = -1;
  /**
   * Lock plugins (sync/lock_plugin.ts): the MMF_LOCK_PLUGIN slot this CPU's new mms get for their
   * mmap_lock (0: none, the rwsem or qrwlock), and a host mm's; then, while a plugin's lock
   * function runs, its class and mode and the clock at its first wait (-1: none yet).
   */
  mmapLockPlugin = 0;
  hostLockPlugin = 0;
  pluginSince = -1;
  pluginClass: LockClass = 0 as LockClass;
  pluginMode: LockMode = LockMode.Write;
  /** rwsem handoffs this CPU claimed (RWSEM_FLAG_HANDOFF after RWSEM_WAIT_TIMEOUT). */
  handoffs = 0;
  private waitPublished = false;
  /** Controlled mode's scheduler, or null in free mode. */
  sched: Scheduler | null = null;
  /** The trace recorder, or null when not tracing. */
  tracer: Tracer | null = null;

  constructor(readonly i32: Int32Array, readonly layout: Layout, readonly cpu: number, opts: LockCpuOptions) {
    this.cpuBase = layout.cpu + cpu * CPU_WORDS;
    this.spinLimit = opts.spinLimit;
    this.deadlineMs = opts.deadlineMs;
    this.lockStatTiming = opts.lockStatTiming;
  }

  /** Services pending interrupts (TLB flush requests); the mm's per-CPU context overrides it. */
  pollInterrupts(): void {}

  /** Owner value stored in lock words: never 0. */
  get ownerTag(): number {
    return this.cpu + 1;
  }

  /**
   * lockdep's report of a new dependency that closes a cycle in the class order graph: `to` was
   * taken holding `from`, and `path` (to, ..., from) had been seen before. Set by the kernel.
   */
  lockdepReport: ((from: number, to: number, path: number[]) => void) | null = null;
  /** The orders this CPU has already looked up in the machine's graph. */
  private readonly lockdepSeen = new Uint8Array(LOCKDEP_CLASSES * LOCKDEP_CLASSES);

  /**
   * Clears lock_stat (echo 0 > /proc/lock_stat), this CPU's share: counts, times, histograms.
   * Held locks stay held; their hold times then count from the clearing.
   */
  clearLockStats(): void {
    this.lockStats.set(newLockStats());
    for (const hs of [this.waitHist, this.holdHist]) {
      for (let i = 0; i < hs.length; i++) {
        hs[i]?.destroy();
        hs[i] = null;
      }
    }
    const now = this.lockStatTiming ? performance.now() : 0;
    for (let d = 0; d < Math.min(this.heldDepth, MAX_HELD); d++) this.heldSince[d] = now;
    this.contentionSites.fill(null);
    this.contendingSites.fill(null);
    this.contentionCounts.fill(0);
    this.contendingCounts.fill(0);
  }

  /** This CPU's point tables for the orchestrator (lock_stat.ts mergeLockPoints). */
  lockPoints(): LockPointTables {
    const side = (sites: (string | null)[], counts: Float64Array) => {
      const out: [number, string, number][] = [];
      for (let i = 0; i < sites.length; i++) if (sites[i] !== null && counts[i] > 0) out.push([Math.floor(i / LOCKSTAT_POINTS), sites[i]!, counts[i]]);
      return out;
    };
    return { contention: side(this.contentionSites, this.contentionCounts), contending: side(this.contendingSites, this.contendingCounts) };
  }

  /**
   * __lock_contended's contention_point: this CPU is about to wait for a lock of class `cls` in
   * `mode` (every slow path calls it first, before its wait clock starts, as LOCK_CONTENDED calls
   * lock_contended before the wait): counts the function that called into the lock layer. Only
   * with lock_stat timing; before the lock is held, so the capture lengthens no hold.
   */
  contended(cls: LockClass, mode: LockMode, plugin = false): void {
    if (this.lockStatTiming) lock_point(this.contentionSites, this.contentionCounts, cls * 2 + mode, lockSite(plugin ? PLUGIN_SITE_FRAMES : SITE_FRAMES));
  }

  /**
   * An unlock that saw a waiter announced on the lock (a sleeper, a waiting writer, a queued
   * ticket): counts the releasing function as a contending point of the class just released —
   * lockdep's lock->ip, the holder's site, which Linux records at every acquisition; ptlab names
   * it only here, so the fast path never captures a stack. lock_stat timing only.
   */
  contendedRelease(): void {
    if (!this.lockStatTiming || this.releasedSlot < 0) return;
    lock_point(this.contendingSites, this.contendingCounts, this.releasedSlot, lockSite());
  }

  /**
   * Records an acquisition. `waitStart` is the clock at first contention, or -1. A trylock adds
   * no dependency (it cannot wait, so it cannot deadlock: lockdep's rule too).
   */
  acquired(word: number, cls: LockClass, mode: LockMode, waitStart: number, trylock = false): void {
    const b = (cls * 2 + mode) * LS_FIELDS;
    const s = this.lockStats;
    s[b + LS_ACQ]++;
    let now = 0;
    if (this.lockStatTiming) now = performance.now();
    if (waitStart >= 0) {
      s[b + LS_CON]++;
      if (this.lockStatTiming) {
        const w = now - waitStart;
        recordMs(this.waitHist[cls * 2 + mode] ??= newLockHistogram(), w);
        s[b + LS_WAIT_TOTAL] += w;
        if (w < s[b + LS_WAIT_MIN]) s[b + LS_WAIT_MIN] = w;
        if (w > s[b + LS_WAIT_MAX]) s[b + LS_WAIT_MAX] = w;
      }
    }
    if (this.tracer !== null) this.tracer.begin(TraceKind.Lock, cls);
    if (!trylock) for (let i = Math.min(this.heldDepth, MAX_HELD) - 1; i >= 0; i--) {
      const from = this.heldClass[i];
      // Same class nested (a host mm's mmap_lock inside the task's): mmap_read_lock_nested's subclass.
      // This CPU looks each order up once; after that it is a CPU-local byte (the hot path).
      const e = from * LOCKDEP_CLASSES + cls;
      if (from !== cls && this.lockdepSeen[e] === 0) {
        this.lockdepSeen[e] = 1;
        if (Atomics.load(this.i32, this.layout.lockdep + e) === 0) this.lockdepAdd(from, cls);
      }
    }
    const d = this.heldDepth++;
    if (d < MAX_HELD) {
      this.heldWord[d] = word;
      this.heldClass[d] = cls;
      this.heldMode[d] = mode;
      this.heldSince[d] = now;
    }
  }

  /** check_prevs_add: a dependency seen for the first time; a path back from `to` to `from` is a cycle. */
  private lockdepAdd(from: number, to: number): void {
    const g = this.layout.lockdep;
    if (Atomics.compareExchange(this.i32, g + from * LOCKDEP_CLASSES + to, 0, this.cpu + 1) !== 0) return;
    // Breadth-first from `to` over the edges seen so far (rare: once per new edge machine-wide).
    const prev = new Int32Array(LOCKDEP_CLASSES).fill(-1);
    const queue = [to];
    prev[to] = to;
    while (queue.length > 0) {
      const a = queue.shift()!;
      if (a === from) {
        const path = [from];
        for (let x = from; x !== to; x = prev[x]) path.unshift(prev[x]);
        this.lockdepReport?.(from, to, path);
        return;
      }
      for (let b = 0; b < LOCKDEP_CLASSES; b++) {
        if (prev[b] < 0 && Atomics.load(this.i32, g + a * LOCKDEP_CLASSES + b) !== 0) {
          prev[b] = a;
          queue.push(b);
        }
      }
    }
  }

  released(word: number): void {
    let d = this.heldDepth - 1;
    this.releasedSlot = -1;
    if (d >= MAX_HELD) {
      this.heldDepth--;
      return;
    }
    while (d >= 0 && this.heldWord[d] !== word) d--;
    if (d < 0) return; // released a lock this CPU did not record (tests that hand a lock over)
    this.releasedSlot = this.heldClass[d] * 2 + this.heldMode[d];
    if (this.tracer !== null) this.tracer.end(TraceKind.Lock, this.heldClass[d]);
    if (this.lockStatTiming) {
      const h = performance.now() - this.heldSince[d];
      const slot = this.heldClass[d] * 2 + this.heldMode[d];
      recordMs(this.holdHist[slot] ??= newLockHistogram(), h);
      const b = slot * LS_FIELDS;
      const s = this.lockStats;
      s[b + LS_HOLD_TOTAL] += h;
      if (h < s[b + LS_HOLD_MIN]) s[b + LS_HOLD_MIN] = h;
      if (h > s[b + LS_HOLD_MAX]) s[b + LS_HOLD_MAX] = h;
    }
    const last = --this.heldDepth;
    for (let i = d; i < last && i + 1 < MAX_HELD; i++) {
      this.heldWord[i] = this.heldWord[i + 1];
      this.heldClass[i] = this.heldClass[i + 1];
      this.heldMode[i] = this.heldMode[i + 1];
      this.heldSince[i] = this.heldSince[i + 1];
    }
  }

  /** lockdep_assert_held: is `word` on this CPU's held stack? */
  holds(word: number): boolean {
    for (let d = Math.min(this.heldDepth, MAX_HELD) - 1; d >= 0; d--) if (this.heldWord[d] === word) return true;
    return false;
  }

  /** lockdep_assert_held_write: is `word` on this CPU's held stack in write (exclusive) mode? */
  holdsWrite(word: number): boolean {
    for (let d = Math.min(this.heldDepth, MAX_HELD) - 1; d >= 0; d--) if (this.heldWord[d] === word && this.heldMode[d] === 0) return true;
    return false;
  }

  /** Nothing can be asserted once the stack overflowed MAX_HELD (its deeper entries are not kept). */
  heldStackComplete(): boolean {
    return this.heldDepth <= MAX_HELD;
  }

  /** Throws MachineStop when another CPU stopped the machine. */
  checkStop(): void {
    const r = Atomics.load(this.i32, G_STOP);
    if (r !== StopReason.None) this.stopNow(r);
  }

  stopNow(reason: StopReason): never {
    this.publishHeld();
    throw new MachineStop(reason, `cpu${this.cpu} stopped: machine stop reason ${reason}`);
  }

  /**
   * One step of a bounded wait for `word` to change from `expected`. Spins first (taking
   * interrupts), then sleeps in WAIT_SLICE_MS slices until the deadline, which stops the machine
   * with a watchdog report. `since` is the clock when the wait began.
   */
  waitStep(word: number, expected: number, iter: number, since: number, cls: LockClass, mode: LockMode, holder: number): void {
    this.pollInterrupts();
    if (this.sched !== null) {
      // Controlled mode: no spinning, no sleeping — another CPU runs until this one can go on.
      this.checkStop();
      this.sched.wait(this, word, expected);
      return;
    }
    if (iter < this.spinLimit) return;
    this.checkStop();
    if (performance.now() - since > this.deadlineMs) this.watchdog(word, cls, mode, holder);
    const i32 = this.i32;
    if (!this.waitPublished) {
      Atomics.store(i32, this.cpuBase + C_WAIT_CLASS, cls);
      Atomics.store(i32, this.cpuBase + C_WAIT_MODE, mode);
      Atomics.store(i32, this.cpuBase + C_WAIT_WORD, word);
      this.waitPublished = true;
    }
    Atomics.wait(i32, word, expected, WAIT_SLICE_MS);
  }

  /** Ends a wait that may have published itself (call after the wait loop). */
  waitDone(): void {
    if (this.waitPublished) {
      Atomics.store(this.i32, this.cpuBase + C_WAIT_WORD, -1);
      this.waitPublished = false;
    }
  }

  /** Deadline passed: the first CPU to get here records who waits for what, then all stop. */
  watchdog(word: number, cls: LockClass, mode: LockMode, holder: number): never {
    const i32 = this.i32;
    if (Atomics.compareExchange(i32, G_STOP, StopReason.None, StopReason.Watchdog) === StopReason.None) {
      Atomics.store(i32, G_STOP_CPU, this.cpu);
      Atomics.store(i32, G_STOP_WORD, word);
      Atomics.store(i32, G_STOP_CLASS, cls);
      Atomics.store(i32, G_STOP_MODE, mode);
      Atomics.store(i32, G_STOP_HOLDER, holder);
    }
    this.stopNow(StopReason.Watchdog);
  }

  /** Writes the held-lock stack and the current wait to machine memory for the report. */
  publishHeld(): void {
    const i32 = this.i32;
    const n = Math.min(this.heldDepth, MAX_HELD);
    for (let d = 0; d < n; d++) {
      Atomics.store(i32, this.cpuBase + C_HELD + 2 * d, this.heldWord[d]);
      Atomics.store(i32, this.cpuBase + C_HELD + 2 * d + 1, this.heldClass[d] | (this.heldMode[d] << 16));
    }
    Atomics.store(i32, this.cpuBase + C_HELD_N, n);
  }
}

export { LockMode };
