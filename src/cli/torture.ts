/**
 * `ptlab torture`: locktorture (kernel/locking/locktorture.c) for ptlab's locks. R reader and W
 * writer threads take one lock of machine memory for S seconds; each checks mutual exclusion
 * inside its critical section. The report is locktorture's: per-thread acquisitions, Total,
 * Max/Min, "???" when max/2 > min (unfair), and the exclusion failures ("!!!": the run fails).
 * More threads than cores is oversubscription: the waits then sleep rather than spin.
 */
import { availableParallelism } from 'node:os';
import Table from 'cli-table3';
import { ASCII_TABLE } from './render.js';
import { Piscina } from 'piscina';
import { createMachine } from '../shm/machine.js';
import { M_MMAP_LOCK, M_PAGE_TABLE_LOCK, MM_WORDS } from '../shm/layout.js';
import { LOCK_CLASS_NAMES, LockClass } from '../sync/lockdep.js';
import { lockPlugin } from '../sync/lock_plugin.js';
import { sizeMachine } from '../scenarios/common.js';
import { workerPath } from '../proc/orchestrator.js';
import {
  TP_ACQUIRED, TP_FAILS, TP_SLOTS, TS_FAILS, TS_STARTED, TS_LOCKDEP, TS_LOCKDEP_FROM, TS_LOCKDEP_TO, TS_STOP, TS_WORDS, type TortureParams, type TortureResult,
} from '../sync/locktorture.js';

interface TortureLock { protocol: 'rwsem' | 'qrwlock' | 'spinlock' | 'plugin'; cls: LockClass; word: number; readers: boolean; plugin?: string }

/** The locks torture can take: `<class>/<protocol>` (issue 6 adds protocols). */
export const TORTURE_LOCKS: Record<string, TortureLock> = {
  'mmap_lock/rwsem': { protocol: 'rwsem', cls: LockClass.MmapLock, word: M_MMAP_LOCK, readers: true },
  'mmap_lock/qrwlock': { protocol: 'qrwlock', cls: LockClass.MmapLock, word: M_MMAP_LOCK, readers: true },
  'page_table_lock/spinlock': { protocol: 'spinlock', cls: LockClass.PageTableLock, word: M_PAGE_TABLE_LOCK, readers: false },
};

export const TORTURE_BUGS = ['broken-rwsem', 'lock-inversion'];

/**
 * The lock `name` names: one of TORTURE_LOCKS, or `mmap_lock/<key>` for a lock plugin the CLI
 * loaded (sync/lock_plugin.ts) on an mm's mmap_lock word.
 */
function tortureLock(name: string): TortureLock | undefined {
  if (TORTURE_LOCKS[name] !== undefined) return TORTURE_LOCKS[name];
  const key = name.startsWith('mmap_lock/') ? name.slice('mmap_lock/'.length) : '';
  return lockPlugin(key) === undefined ? undefined : { protocol: 'plugin', cls: LockClass.MmapLock, word: M_MMAP_LOCK, readers: true, plugin: key };
}

export interface TortureOptions {
  lock: string;
  readers: number;
  writers: number;
  seconds: number;
  bug: string;
  deadlineMs: number;
  /**
   * locktorture's stat_interval: seconds between the lock_torture_stats thread's lines (0: no
   * periodic lines); the kernel's default is 60. Absent: 60.
   */
  statInterval?: number;
  /** Called with each interval's lines as they are made (the CLI prints them at once). */
  onStats?: (lines: string[]) => void;
}

/** locktorture's stat_interval default (module parameter), seconds. */
export const STAT_INTERVAL_DEFAULT = 60;

interface Side { total: number; max: number; min: number; unfair: boolean; fails: number; per_thread: number[] }

export interface TortureReport {
  lock: string;
  bug: string | null;
  readers: number;
  writers: number;
  seconds: number;
  cores: number;
  oversubscribed: boolean;
  writes: Side;
  reads: Side | null;
  /** rwsem handoffs claimed (waits past RWSEM_WAIT_TIMEOUT); 0 for the other protocols. */
  handoffs: number;
  /** lockdep's report of a lock-order cycle, or null. */
  lockdep: string | null;
  ok: boolean;
  stuck: boolean;
  /** No thread took the lock even once: the run tested nothing (and fails). */
  idle: boolean;
  /** Threads that had started when the clock started. */
  started: number;
  /** The periodic statistics (lock_torture_stats): each interval's time and its lines. */
  periodic: { seconds: number; lines: string[] }[];
}

/**
 * __torture_print_stats' line, byte for byte: "%s:  Total: %lld  Max/Min: %ld/%ld %s  Fail: %d %s"
 * with "Writes" or "Reads ", "???" when max / 2 > min (integer division, as the kernel's longs),
 * and "!!!" when a thread failed — so a line without either ends in a space, as the kernel's does.
 */
export function tortureStatsLine(write: boolean, counts: readonly number[], fails: readonly number[]): string {
  let sum = 0;
  let max = 0;
  let min = counts.length > 0 ? counts[0] : 0;
  let fail = false;
  for (let i = 0; i < counts.length; i++) {
    if (fails[i] > 0) fail = true;
    sum += counts[i];
    if (max < counts[i]) max = counts[i];
    if (min > counts[i]) min = counts[i];
  }
  return `${write ? 'Writes' : 'Reads '}:  Total: ${sum}  Max/Min: ${max}/${min} ${Math.floor(max / 2) > min ? '???' : ''}  Fail: ${fail ? 1 : 0} ${fail ? '!!!' : ''}`;
}

/** How long the worker threads may take to start (not a lock wait: --deadline does not bound it). */
const STARTUP_MS = 30_000;

/** Checks the options; returns a one-line message naming the bad one, or null. */
export function checkTortureOptions(o: TortureOptions): string | null {
  const l = tortureLock(o.lock);
  if (!l) return `--lock must be one of ${Object.keys(TORTURE_LOCKS).join(', ')}, or mmap_lock/<lock plugin>`;
  if (!Number.isInteger(o.readers) || o.readers < 0 || o.readers > 64) return '--readers must be an integer from 0 to 64';
  if (!l.readers && o.readers > 0) return `--readers: ${o.lock} has no readers`;
  if (!Number.isInteger(o.writers) || o.writers < 0 || o.writers > 64) return '--writers must be an integer from 0 to 64';
  if (o.readers + o.writers === 0) return '--readers and --writers: at least one thread';
  if (!(o.seconds > 0 && o.seconds <= 3600)) return '--seconds must be a number from 0 to 3600';
  if (o.statInterval !== undefined && !(o.statInterval >= 0 && o.statInterval <= 3600)) return '--stat-interval must be a number of seconds from 0 to 3600 (0: no periodic statistics)';
  if (o.bug !== '' && !TORTURE_BUGS.includes(o.bug)) return `--bug must be one of ${TORTURE_BUGS.join(', ')}`;
  if (o.bug === 'broken-rwsem' && l.protocol !== 'rwsem') return '--bug broken-rwsem needs an rwsem --lock';
  if (o.bug === 'lock-inversion' && (o.writers < 2 || l.cls === LockClass.PageTableLock)) return '--bug lock-inversion needs --writers 2 or more and a lock other than page_table_lock';
  return null;
}

function side(counts: number[], fails: number): Side {
  const max = Math.max(...counts);
  const min = Math.min(...counts);
  return { total: counts.reduce((a, b) => a + b, 0), max, min, unfair: max / 2 > min, fails, per_thread: counts };
}

export async function torture(o: TortureOptions): Promise<TortureReport> {
  const l = tortureLock(o.lock)!;
  const threads = o.readers + o.writers;
  const config = sizeMachine({ cpus: threads, procs: 1, sharedBytes: 4096, privateBytes: 0, files: 1, vmasPerProc: 1, mem: 2 ** 30 });
  const m = createMachine(config);
  const stats = new SharedArrayBuffer(TS_WORDS * 4);
  const s = new Int32Array(stats);
  const progress = new SharedArrayBuffer(threads * TP_SLOTS * 8);
  const prog = new Float64Array(progress);
  const lockWord = m.layout.mms + l.word; // mm 0's lock (no mm runs: the lock alone is tortured)
  const pool = new Piscina({ filename: workerPath('torture.mjs'), minThreads: threads, maxThreads: threads, idleTimeout: Infinity });
  const runs: Promise<TortureResult>[] = [];
  const spinLimit = threads > availableParallelism() ? 0 : 2000; // as the CPU workers: never spin when oversubscribed
  for (let t = 0; t < threads; t++) {
    const writer = t >= o.readers;
    const p: TortureParams = {
      sab: m.sab, config, stats, progress, cpu: t, writer, protocol: l.protocol, plugin: l.plugin, broken: o.bug === 'broken-rwsem', spinLimit, lockWord, cls: l.cls, deadlineMs: o.deadlineMs,
      inversion: o.bug === 'lock-inversion', gateWord: m.layout.mms + M_MMAP_LOCK + MM_WORDS, secondWord: m.layout.mms + M_PAGE_TABLE_LOCK + MM_WORDS, // mm 1's
    };
    runs.push(pool.run(p));
  }
  // The clock starts when every thread runs (worker start-up is not torture time, nor a lock
  // wait: its bound is not --deadline, which may be a few ms); bounded all the same.
  const t0 = performance.now();
  while (Atomics.load(s, TS_STARTED) < threads && performance.now() - t0 < STARTUP_MS) await new Promise((r) => setTimeout(r, 5));
  const started = Atomics.load(s, TS_STARTED);
  // lock_torture_stats: every stat_interval seconds, lock_torture_stats_print's lines (Writes,
  // then Reads if the lock has readers), from the counts so far. Only inside the run: the final
  // summary (lock_torture_cleanup's print) is the report's.
  const begin = performance.now();
  const end = begin + o.seconds * 1000;
  const interval = (o.statInterval ?? STAT_INTERVAL_DEFAULT) * 1000;
  const periodic: TortureReport['periodic'] = [];
  const slots = (from: number, to: number, slot: number) => Array.from({ length: to - from }, (_, i) => prog[(from + i) * TP_SLOTS + slot]);
  for (let k = 1; interval > 0 && begin + k * interval < end; k++) {
    await new Promise((r) => setTimeout(r, Math.max(0, begin + k * interval - performance.now())));
    const lines: string[] = [];
    if (o.writers > 0) lines.push(tortureStatsLine(true, slots(o.readers, threads, TP_ACQUIRED), slots(o.readers, threads, TP_FAILS)));
    if (o.readers > 0) lines.push(tortureStatsLine(false, slots(0, o.readers, TP_ACQUIRED), slots(0, o.readers, TP_FAILS)));
    periodic.push({ seconds: Math.round(k * interval) / 1000, lines });
    o.onStats?.(lines);
  }
  await new Promise((r) => setTimeout(r, Math.max(0, end - performance.now())));
  Atomics.store(s, TS_STOP, 1);
  const results = await Promise.all(runs);
  await pool.destroy();
  const reads = results.slice(0, o.readers);
  const writes = results.slice(o.readers);
  const cores = availableParallelism();
  const stuck = results.some((r) => r.stopped);
  // A run in which no thread took the lock tested nothing: it cannot pass.
  const idle = results.every((r) => r.acquisitions === 0);
  const rf = reads.reduce((a, r) => a + r.fails, 0);
  const wf = writes.reduce((a, r) => a + r.fails, 0);
  return {
    lock: o.lock, bug: o.bug || null, readers: o.readers, writers: o.writers, seconds: o.seconds, cores, oversubscribed: threads > cores,
    writes: side(writes.length ? writes.map((r) => r.acquisitions) : [0], wf),
    reads: o.readers ? side(reads.map((r) => r.acquisitions), rf) : null,
    handoffs: results.reduce((a, r) => a + r.handoffs, 0),
    lockdep: Atomics.load(s, TS_LOCKDEP) === 0 ? null
      : `possible circular locking dependency: ${LOCK_CLASS_NAMES[Atomics.load(s, TS_LOCKDEP_TO)]} taken while holding ${LOCK_CLASS_NAMES[Atomics.load(s, TS_LOCKDEP_FROM)]}, ` +
        `and the other order was seen before`,
    ok: !stuck && !idle && Atomics.load(s, TS_FAILS) === 0 && Atomics.load(s, TS_LOCKDEP) === 0,
    stuck,
    idle,
    started,
    periodic,
  };
}

/** locktorture's summary lines, and a per-thread table. */
export function renderTorture(r: TortureReport): string {
  const line = (name: string, x: Side) =>
    // __torture_print_stats: "Fail: %d" is 0 or 1 (any failure), "???" or nothing, "!!!" or nothing.
    `${name}:  Total: ${x.total}  Max/Min: ${x.max}/${x.min} ${x.unfair ? '???' : ''}  Fail: ${x.fails > 0 ? 1 : 0} ${x.fails ? '!!!' : ''}`.trimEnd();
  const out = [
    `ptlab torture --lock ${r.lock}${r.bug ? ` --bug ${r.bug}` : ''}: ${r.readers} reader(s), ${r.writers} writer(s), ${r.seconds} s on ${r.cores} cores` +
      (r.oversubscribed ? ' (oversubscribed: more threads than cores)' : ''),
  ];
  if (r.writers) out.push(line('Writes', r.writes));
  if (r.reads) out.push(line('Reads ', r.reads));
  if (r.handoffs > 0) out.push(`Handoffs: ${r.handoffs} (waiters past RWSEM_WAIT_TIMEOUT took the lock's next turn)`);
  const t = new Table({ head: ['thread', 'role', 'acquisitions'], ...ASCII_TABLE });
  (r.reads?.per_thread ?? []).forEach((n, i) => t.push([String(i), 'reader', n.toLocaleString('en-US')]));
  if (r.writers) r.writes.per_thread.forEach((n, i) => t.push([String(r.readers + i), 'writer', n.toLocaleString('en-US')]));
  out.push(t.toString());
  if (r.lockdep) out.push(`lockdep: ${r.lockdep}`);
  if (r.stuck) out.push('FAILED: a thread hit the watchdog deadline (see the wait report)');
  else if (r.idle) out.push(`FAILED: no thread took the lock in ${r.seconds} s (${r.started} of ${r.readers + r.writers} started): the run tested nothing`);
  else if (r.lockdep) out.push('FAILED: lockdep found a lock-order cycle');
  else if (!r.ok) out.push('FAILED: mutual exclusion broke (a writer ran with another holder inside)');
  else out.push('OK: mutual exclusion held');
  return out.join('\n');
}
