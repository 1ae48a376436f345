/**
 * explore across cores and shards: controlled runs/s of one passing hunt at --jobs 1, 2, ...
 * cores (each job its own machine and worker pool), and the check that 2 shards merged give the
 * unsharded answer (the same passing token). The hunt: race-split-reshare under pt-hint, fixed,
 * PCT at depth 3, a fixed seed.
 */
import { exploreShard, mergeShards } from '../src/cli/explore.js';
import { parseRunOptions } from '../src/cli/options.js';
import { cores, round, type BenchRecord } from './common.js';

export const EXPLORE_JOBS_DEFAULTS = { runs: 48, seed: 11 };

const options = () => parseRunOptions('race-split-reshare', { model: 'pt-hint', lockStat: false });
const hunt = (runs: number, seed: number) => ({ strategy: 'pct' as const, depth: 3, runs, seed, raw: { lockStat: false } });

export async function benchExploreJobs(o: { jobs: number; runs: number; seed: number }): Promise<BenchRecord> {
  const t0 = performance.now();
  const s = await exploreShard('race-split-reshare', options(), { ...hunt(o.runs, o.seed), jobs: o.jobs });
  const seconds = (performance.now() - t0) / 1000;
  return {
    bench: 'explore-jobs', model: 'pt-hint', threads: o.jobs, ops: s.executed, seconds: round(seconds, 3), rate_per_s: Math.round(s.executed / seconds),
    cores: cores(), what: `race-split-reshare, pct, ${o.runs} controlled runs, --jobs ${o.jobs}`, ok: s.failure === null,
  };
}

/** 2 shards merged against the unsharded hunt: the same answer and token (a check, not a rate). */
export async function benchShardedCheck(o: { runs: number; seed: number }): Promise<BenchRecord> {
  const t0 = performance.now();
  const whole = mergeShards([await exploreShard('race-split-reshare', options(), { ...hunt(o.runs, o.seed), jobs: 1 })]);
  const shards = [];
  for (let i = 0; i < 2; i++) shards.push(await exploreShard('race-split-reshare', options(), { ...hunt(o.runs, o.seed), jobs: 1, shard: { index: i, count: 2 } }));
  const merged = mergeShards(shards);
  const seconds = (performance.now() - t0) / 1000;
  const same = merged.ok === whole.ok && merged.runs === whole.runs && merged.token === whole.token;
  return {
    bench: 'explore-shards', model: 'pt-hint', threads: 1, ops: 3 * o.runs, seconds: round(seconds, 3), rate_per_s: Math.round((3 * o.runs) / seconds),
    cores: cores(), what: '2 shards merged vs the unsharded hunt', counts_check: same ? 'ok' : `differ: ${merged.token} vs ${whole.token}`,
  };
}
