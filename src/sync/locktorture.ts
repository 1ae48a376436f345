/**
 * The torture worker (`ptlab torture`, after kernel/locking/locktorture.c): one thread that takes
 * one lock as a reader or a writer until told to stop, checking mutual exclusion inside every
 * critical section — a writer must be alone, a reader must see no writer — and counting its
 * acquisitions. Runs on dist/torture.mjs (workers/torture.ts).
 */
import { attachMachine } from '../shm/machine.js';
import type { MachineConfig } from '../shm/layout.js';
import { LockClass } from './lockdep.js';
import { down_read, down_write, down_write_broken, up_read, up_write } from './rwsem.js';
import { queued_read_lock, queued_read_unlock, queued_write_lock, queued_write_unlock } from './qrwlock.js';
import { spin_lock, spin_unlock } from './spinlock.js';
import { type LockProtocol, loadLockPlugin, lockPlugin, plugin_read_lock, plugin_read_unlock, plugin_write_lock, plugin_write_unlock } from './lock_plugin.js';
import { LockCpu, MachineStop } from './wait.js';

/** Words of the torture's own bookkeeping array (not machine memory: the harness's view). */
export const TS_STOP = 0;
export const TS_IN_READERS = 1;
export const TS_IN_WRITERS = 2;
export const TS_FAILS = 3;
export const TS_COUNTER = 4;
/** lockdep's cycle, if one was reported: count, then the new edge's classes and the chain's length. */
export const TS_LOCKDEP = 5;
export const TS_LOCKDEP_FROM = 6;
export const TS_LOCKDEP_TO = 7;
/** Threads that have started: the clock starts when all have. */
export const TS_STARTED = 8;
export const TS_WORDS = 16;

/**
 * Per-thread progress for lock_torture_stats (the periodic lines): Float64 slots
 * [thread * TP_SLOTS + TP_ACQUIRED] and [... + TP_FAILS], written by their thread alone with
 * plain stores and read while the run goes on — lock_stress_stats' n_lock_acquired and
 * n_lock_fail, which the kernel reads under data_race() as well.
 */
export const TP_ACQUIRED = 0;
export const TP_FAILS = 1;
export const TP_SLOTS = 2;

export interface TortureParams {
  sab: SharedArrayBuffer;
  config: MachineConfig;
  stats: SharedArrayBuffer;
  /** Float64Array(threads * TP_SLOTS): this thread's acquisitions and failures so far. */
  progress: SharedArrayBuffer;
  cpu: number;
  writer: boolean;
  protocol: 'rwsem' | 'qrwlock' | 'spinlock' | 'plugin';
  /** protocol 'plugin': the lock plugin's key (sync/lock_plugin.ts), loaded here as in a CPU worker. */
  plugin?: string;
  broken: boolean;
  /** Spins before sleeping: 0 when the threads outnumber the cores (never spin then). */
  spinLimit: number;
  /**
   * --bug lock-inversion: writers also take a second lock (page_table_lock), even-numbered ones
   * after the tortured lock, odd ones before it — under a gate lock, so it never deadlocks, but
   * the order is inverted and lockdep must say so.
   */
  inversion: boolean;
  /** Words of the inversion's gate and second lock (machine memory). */
  gateWord: number;
  secondWord: number;
  lockWord: number;
  cls: LockClass;
  deadlineMs: number;
}

export interface TortureResult {
  acquisitions: number;
  fails: number;
  /** rwsem handoffs this thread claimed (a wait past RWSEM_WAIT_TIMEOUT). */
  handoffs: number;
  stopped: boolean;
}

export default async function tortureThread(p: TortureParams): Promise<TortureResult> {
  const proto = p.protocol === 'plugin' ? lockPlugin(await loadLockPlugin(p.plugin!)) ?? null : null;
  return tortureLoop(p, proto);
}

function tortureLoop(p: TortureParams, proto: LockProtocol | null): TortureResult {
  const m = attachMachine(p.sab, p.config);
  const c = new LockCpu(m.i32, m.layout, p.cpu, { spinLimit: p.spinLimit, deadlineMs: p.deadlineMs, lockStatTiming: false });
  const s = new Int32Array(p.stats);
  const w = p.lockWord;
  c.lockdepReport = (from, to) => {
    if (Atomics.add(s, TS_LOCKDEP, 1) === 0) {
      Atomics.store(s, TS_LOCKDEP_FROM, from);
      Atomics.store(s, TS_LOCKDEP_TO, to);
    }
  };
  const invert = p.inversion && p.writer && p.cpu % 2 === 1;
  const second = p.inversion && p.writer;
  let acquisitions = 0;
  let fails = 0;
  const progress = new Float64Array(p.progress);
  const mine = p.cpu * TP_SLOTS;
  Atomics.add(s, TS_STARTED, 1);
  try {
    while (Atomics.load(s, TS_STOP) === 0) {
      if (second) {
        spin_lock(c, p.gateWord, LockClass.Test);
        if (invert) spin_lock(c, p.secondWord, LockClass.PageTableLock);
      }
      if (p.protocol === 'spinlock') spin_lock(c, w, p.cls);
      else if (proto !== null) {
        if (p.writer) plugin_write_lock(c, proto, w, p.cls);
        else plugin_read_lock(c, proto, w, p.cls);
      } else if (p.protocol === 'qrwlock') {
        if (p.writer) queued_write_lock(c, w, p.cls);
        else queued_read_lock(c, w, p.cls);
      } else if (!p.writer) down_read(c, w, p.cls);
      else if (p.broken) down_write_broken(c, w, p.cls);
      else down_write(c, w, p.cls);
      if (p.writer) {
        // Alone: no other writer, no reader; and a two-step increment loses nothing.
        if (Atomics.add(s, TS_IN_WRITERS, 1) !== 0 || Atomics.load(s, TS_IN_READERS) !== 0) fails++;
        Atomics.store(s, TS_COUNTER, Atomics.load(s, TS_COUNTER) + 1);
        Atomics.sub(s, TS_IN_WRITERS, 1);
        if (second && !invert) {
          // tortured lock -> page_table_lock (the inverted writers take them the other way round)
          spin_lock(c, p.secondWord, LockClass.PageTableLock);
          spin_unlock(c, p.secondWord);
        }
      } else {
        Atomics.add(s, TS_IN_READERS, 1);
        if (Atomics.load(s, TS_IN_WRITERS) !== 0) fails++;
        Atomics.sub(s, TS_IN_READERS, 1);
      }
      if (p.protocol === 'spinlock') spin_unlock(c, w);
      else if (proto !== null) {
        if (p.writer) plugin_write_unlock(c, proto, w);
        else plugin_read_unlock(c, proto, w);
      } else if (p.protocol === 'qrwlock') {
        if (p.writer) queued_write_unlock(c, w);
        else queued_read_unlock(c, w);
      } else if (p.writer) up_write(c, w);
      else up_read(c, w);
      if (second) {
        if (invert) spin_unlock(c, p.secondWord);
        spin_unlock(c, p.gateWord);
      }
      acquisitions++;
      progress[mine + TP_ACQUIRED] = acquisitions;
      progress[mine + TP_FAILS] = fails;
    }
  } catch (e) {
    if (!(e instanceof MachineStop)) throw e;
    return { acquisitions, fails, handoffs: c.handoffs, stopped: true };
  }
  if (fails > 0) Atomics.add(s, TS_FAILS, fails);
  return { acquisitions, fails, handoffs: c.handoffs, stopped: false };
}
