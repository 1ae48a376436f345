/**
 * Per-CPU lock statistics in the columns of /proc/lock_stat (kernel/locking/lockdep.c,
 * CONFIG_LOCK_STAT). Each CPU writes only its own Float64Array (CPU-local, not machine memory);
 * the orchestrator merges them when the run ends.
 */
import { type LockHistogram, percentileUs } from './lock_hist.js';
import { LOCK_CLASS_COUNT, LOCK_CLASS_NAMES } from './lockdep.js';

export const LS_ACQ = 0;
export const LS_CON = 1;
export const LS_WAIT_TOTAL = 2;
export const LS_WAIT_MIN = 3;
export const LS_WAIT_MAX = 4;
export const LS_HOLD_TOTAL = 5;
export const LS_HOLD_MIN = 6;
export const LS_HOLD_MAX = 7;
export const LS_FIELDS = 8;
export const LS_SIZE = LOCK_CLASS_COUNT * 2 * LS_FIELDS;

export function newLockStats(): Float64Array {
  const s = new Float64Array(LS_SIZE);
  for (let i = 0; i < LOCK_CLASS_COUNT * 2; i++) {
    s[i * LS_FIELDS + LS_WAIT_MIN] = Infinity;
    s[i * LS_FIELDS + LS_HOLD_MIN] = Infinity;
  }
  return s;
}

export function mergeLockStats(into: Float64Array, from: ArrayLike<number>): void {
  for (let i = 0; i < LOCK_CLASS_COUNT * 2; i++) {
    const b = i * LS_FIELDS;
    into[b + LS_ACQ] += from[b + LS_ACQ];
    into[b + LS_CON] += from[b + LS_CON];
    into[b + LS_WAIT_TOTAL] += from[b + LS_WAIT_TOTAL];
    into[b + LS_HOLD_TOTAL] += from[b + LS_HOLD_TOTAL];
    into[b + LS_WAIT_MIN] = Math.min(into[b + LS_WAIT_MIN], from[b + LS_WAIT_MIN]);
    into[b + LS_HOLD_MIN] = Math.min(into[b + LS_HOLD_MIN], from[b + LS_HOLD_MIN]);
    into[b + LS_WAIT_MAX] = Math.max(into[b + LS_WAIT_MAX], from[b + LS_WAIT_MAX]);
    into[b + LS_HOLD_MAX] = Math.max(into[b + LS_HOLD_MAX], from[b + LS_HOLD_MAX]);
  }
}

export interface LockClassStats {
  class: string;
  mode: 'W' | 'R';
  acquisitions: number;
  contentions: number;
  /** Microseconds. Wait and hold times are measured only when lock_stat timing is on. */
  waittime_min: number;
  waittime_max: number;
  waittime_total: number;
  waittime_avg: number;
  holdtime_min: number;
  holdtime_max: number;
  holdtime_total: number;
  holdtime_avg: number;
  /** Percentiles of the contended waits and of the holds (HdrHistogram, sync/lock_hist.ts). */
  waittime_p50: number;
  waittime_p99: number;
  holdtime_p50: number;
  holdtime_p99: number;
  /**
   * lock_stat's contention points (lockdep.c __lock_contended: class->contention_point[]): the
   * ptlab functions whose waits for this class and mode were contended, with counts, at most
   * LOCKSTAT_POINTS, most counted first. Recorded only when lock_stat timing is on.
   */
  contention_points?: LockPoint[];
  /**
   * Contending points (class->contending_point[]: where the lock's holder took it when a waiter
   * came): here, the ptlab functions that released this class with a waiter announced on the
   * lock (a sleeper, a waiting writer, a queued ticket) — the holds that made others wait.
   */
  contending_points?: LockPoint[];
}

/** One call site of a lock_stat point table and how often it was counted. */
export interface LockPoint {
  site: string;
  count: number;
}

/** LOCKSTAT_POINTS (include/linux/lockdep_types.h): call sites a class keeps. */
export const LOCKSTAT_POINTS = 4;

/**
 * A CPU's point tables, for the orchestrator: per slot (class * 2 + mode), [site, count] pairs —
 * `contention` where this CPU waited, `contending` where it released with waiters.
 */
export interface LockPointTables {
  contention: [number, string, number][];
  contending: [number, string, number][];
}

/**
 * Merges CPUs' point tables (orchestrator side): per slot, every site's counts summed. Each CPU
 * kept its first LOCKSTAT_POINTS sites per slot (lock_point); the report keeps the slot's
 * LOCKSTAT_POINTS most counted (the kernel's table is class-wide and first-come).
 */
export function mergeLockPoints(into: Map<number, Map<string, number>>[], from: LockPointTables): void {
  const sides = [from.contention, from.contending];
  for (let i = 0; i < 2; i++) {
    for (const [slot, site, count] of sides[i]) {
      let m = into[i].get(slot);
      if (m === undefined) into[i].set(slot, (m = new Map()));
      m.set(site, (m.get(site) ?? 0) + count);
    }
  }
}

export function newLockPointMerge(): Map<number, Map<string, number>>[] {
  return [new Map(), new Map()];
}

function topPoints(m: Map<string, number> | undefined): LockPoint[] | undefined {
  if (m === undefined) return undefined;
  return [...m].map(([site, count]) => ({ site, count })).sort((a, b) => b.count - a.count || (a.site < b.site ? -1 : 1)).slice(0, LOCKSTAT_POINTS);
}

const us = (ms: number) => Math.round(ms * 1000 * 100) / 100;

/** Rows for every class and mode that was acquired at least once (`wait`/`hold`: merged histograms by slot). */
export function lockStatRows(s: ArrayLike<number>, wait: readonly (LockHistogram | null)[] = [], hold: readonly (LockHistogram | null)[] = [],
  points: Map<number, Map<string, number>>[] = newLockPointMerge()): LockClassStats[] {
  const rows: LockClassStats[] = [];
  for (let c = 0; c < LOCK_CLASS_COUNT; c++) {
    for (let m = 0; m < 2; m++) {
      const b = (c * 2 + m) * LS_FIELDS;
      const acq = s[b + LS_ACQ];
      if (!acq) continue;
      const con = s[b + LS_CON];
      rows.push({
        class: LOCK_CLASS_NAMES[c],
        mode: m === 0 ? 'W' : 'R',
        acquisitions: acq,
        contentions: con,
        waittime_min: con ? us(s[b + LS_WAIT_MIN]) : 0,
        waittime_max: con ? us(s[b + LS_WAIT_MAX]) : 0,
        waittime_total: us(s[b + LS_WAIT_TOTAL]),
        waittime_avg: con ? us(s[b + LS_WAIT_TOTAL] / con) : 0,
        holdtime_min: Number.isFinite(s[b + LS_HOLD_MIN]) ? us(s[b + LS_HOLD_MIN]) : 0,
        holdtime_max: us(s[b + LS_HOLD_MAX]),
        holdtime_total: us(s[b + LS_HOLD_TOTAL]),
        holdtime_avg: us(s[b + LS_HOLD_TOTAL] / acq),
        waittime_p50: percentileUs(wait[c * 2 + m] ?? null, 50),
        waittime_p99: percentileUs(wait[c * 2 + m] ?? null, 99),
        holdtime_p50: percentileUs(hold[c * 2 + m] ?? null, 50),
        holdtime_p99: percentileUs(hold[c * 2 + m] ?? null, 99),
      });
      const contention = topPoints(points[0].get(c * 2 + m));
      const contending = topPoints(points[1].get(c * 2 + m));
      if (contention) rows[rows.length - 1].contention_points = contention;
      if (contending) rows[rows.length - 1].contending_points = contending;
    }
  }
  return rows;
}
