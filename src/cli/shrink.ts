/**
 * Shrinking a failing schedule: replay the failure with its switches written out (where the
 * strategy departed from the default of letting the running CPU go on), then find fewer switches
 * that still fail with the same checker — first the shortest failing prefix (binary search),
 * then switches removed in chunks of halving size (delta debugging's ddmin, one pass per size)
 * until nothing more can go or the attempt budget is spent.
 */
import type { Piscina } from 'piscina';
import { createCpuPool } from '../proc/orchestrator.js';
import { encodeSchedule, encodeToken, type ReplayToken, scenarioPath } from '../sched/token.js';
import { runToken, tokenRunOptions } from './explore.js';
import { UsageError } from './options.js';
import { scenarioOptions } from './run.js';

export interface ShrinkResult {
  token: string;
  checker: string;
  /** Switches in the failing run's schedule, and in the shrunk one. */
  from: number;
  to: number;
  tries: number;
  seconds: number;
}

export async function shrink(t: ReplayToken, budget = 400): Promise<ShrinkResult> {
  const t0 = performance.now();
  const o = tokenRunOptions(t);
  const pool: Piscina = createCpuPool(scenarioOptions(scenarioPath(t), o).cpus);
  try {
    const first = await runToken(t, true, pool);
    if (first.ok) throw new UsageError('the token does not fail: nothing to shrink (ptlab replay runs it)');
    const checker = first.violations[0].checker;
    let tries = 0;
    const fails = async (s: number[]): Promise<boolean> => {
      tries++;
      const r = await runToken({ ...t, strategy: 'replay', schedule: encodeSchedule(s) }, false, pool);
      return !r.ok && r.violations[0].checker === checker;
    };
    // Work on whole pairs: unit i is (decision, cpu) = log[2i], log[2i + 1].
    const log = first.schedule?.log ?? [];
    let sched: number[] = Array.from({ length: log.length >> 1 }, (_, i) => i);
    const pairs = (units: number[]) => units.flatMap((i) => [log[2 * i], log[2 * i + 1]]);
    const from = sched.length;
    const failsUnits = (units: number[]) => fails(pairs(units));
    if (!(await failsUnits(sched))) throw new UsageError('the failure does not replay from its switches: nothing to shrink');
    // The shortest failing prefix.
    let lo = 0;
    let hi = sched.length;
    while (lo < hi && tries < budget) {
      const mid = (lo + hi) >>> 1;
      if (await failsUnits(sched.slice(0, mid))) hi = mid;
      else lo = mid + 1;
    }
    sched = sched.slice(0, hi);
    // ddmin-style: remove chunks, halving their size.
    for (let size = Math.max(1, sched.length >>> 1); size >= 1 && tries < budget; size >>>= 1) {
      for (let at = sched.length - size; at >= 0 && tries < budget; at -= size) {
        const cand = sched.slice(0, at).concat(sched.slice(at + size));
        if (await failsUnits(cand)) sched = cand;
      }
      if (size === 1) break;
    }
    const token = encodeToken({ ...t, strategy: 'replay', schedule: encodeSchedule(pairs(sched)) });
    return { token, checker, from, to: sched.length, tries, seconds: Math.round(performance.now() - t0) / 1000 };
  } finally {
    await pool.destroy();
  }
}
