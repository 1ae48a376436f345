/**
 * lock_stat's histograms (src/sync/lock_hist.ts): what two CPUs record, encoded and merged in the
 * orchestrator, gives the percentiles of all the values together, to HdrHistogram's two digits.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeLockHistograms, mergeLockHistograms, newLockHistogram, percentileUs, recordMs, type LockHistogram } from '../../src/sync/lock_hist.js';

function exactPercentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

describe('lock_hist', () => {
  it('two CPUs\' histograms merged give the percentiles of every value, within 1%', () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: 0.0001, max: 50, noNaN: true }), { minLength: 1, maxLength: 200 }),
      fc.array(fc.double({ min: 0.0001, max: 50, noNaN: true }), { minLength: 0, maxLength: 200 }),
      (a, b) => {
        const cpu0 = newLockHistogram(false);
        const cpu1 = b.length > 0 ? newLockHistogram(false) : null;
        for (const ms of a) recordMs(cpu0, ms);
        for (const ms of b) recordMs(cpu1!, ms);
        const merged: (LockHistogram | null)[] = [null, null];
        mergeLockHistograms(merged, encodeLockHistograms([cpu0, null]));
        mergeLockHistograms(merged, encodeLockHistograms([cpu1, null]));
        expect(merged[1]).toBeNull();
        const all = [...a, ...b].map((ms) => Math.max(1, Math.round(ms * 1e6)) / 1000).sort((x, y) => x - y);
        for (const p of [50, 99]) {
          const want = exactPercentile(all, p);
          expect(Math.abs(percentileUs(merged[0], p) - want)).toBeLessThanOrEqual(want * 0.01 + 0.01);
        }
      },
    ), { numRuns: 50 });
  });

  it('an absent or empty histogram has percentile 0', () => {
    expect(percentileUs(null, 99)).toBe(0);
    expect(percentileUs(newLockHistogram(false), 50)).toBe(0);
  });
});
