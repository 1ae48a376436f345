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
}

const us = (ms: number) => Math.round(ms * 1000 * 100) / 100;

/** Rows for every class and mode that was acquired at least once (`wait`/`hold`: merged histograms by slot). */
export function lockStatRows(s: ArrayLike<number>, wait: readonly (LockHistogram | null)[] = [], hold: readonly (LockHistogram | null)[] = []): LockClassStats[] {
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
    }
  }
  return rows;
}
