/**
 * `ptlab explore` and `ptlab replay`: find a race on purpose, and run it again exactly.
 *
 * explore runs a scenario in controlled mode (src/sched) again and again, run i with a seed of
 * its own drawn from --seed, until a checker fails or --runs pass; the failing run becomes a
 * replay token. replay runs a token once: the same decisions, so the same events and the same
 * violation.
 */
import { SchedMode } from '../sched/strategy.js';
import { checkScheduleCpus, decodeSchedule, decodeToken, encodeToken, packScenarioFile, scenarioPath, type ReplayToken } from '../sched/token.js';
import { PTLAB_VERSION } from './version.js';
import { parseRunOptions, type RunOptions, UsageError } from './options.js';
import { readShardSet } from './shard.js';
import type { Piscina } from 'piscina';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createCpuPool } from '../proc/orchestrator.js';
import { runScenario, scenarioOptions, type RunReport } from './run.js';

export interface ExploreResult {
  ok: boolean;
  scenario: string;
  model: string;
  strategy: string;
  depth: number;
  runs: number;
  seconds: number;
  runs_per_s: number;
  token?: string;
  violations: RunReport['violations'];
  decisions?: number;
  cores: number;
}

/** Run i's seed: a fixed mix of the explore seed and i (splitmix-style), so run i replays alone. */
export function runSeed(seed: number, i: number): number {
  let z = (seed + Math.imul(i + 1, 0x9e3779b9)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const modeOf = (s: ReplayToken['strategy']): SchedMode => (s === 'pct' ? SchedMode.Pct : s === 'random' ? SchedMode.Random : SchedMode.Replay);

/**
 * A token's run options, checked as the CLI checks its own (one line naming the field, as the
 * token's), and its schedule against the machine's CPUs.
 */
export function tokenRunOptions(t: ReplayToken): RunOptions {
  let o: RunOptions;
  try {
    o = parseRunOptions(scenarioPath(t), { ...t.opts, model: t.model, bug: t.bug });
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`the replay token's options: ${e.message}`);
    throw e;
  }
  checkScheduleCpus(t, scenarioOptions(scenarioPath(t), o).cpus);
  return o;
}

/** Versions already warned about (once per process). */
const warned = new Set<string>();

export async function runToken(t: ReplayToken, keepLog = false, pool?: Piscina, onTrace?: (cpus: number[][]) => void): Promise<RunReport> {
  const o = tokenRunOptions(t);
  if (t.version !== undefined && t.version !== PTLAB_VERSION && !warned.has(t.version)) {
    warned.add(t.version);
    process.stderr.write(`ptlab: warning: this token was made by ptlab ${t.version}; this is ${PTLAB_VERSION}: the replay may differ\n`);
  }
  return runScenario(scenarioPath(t), o, {
    sched: { mode: modeOf(t.strategy), seed: t.seed, depth: t.depth, steps: t.steps, schedule: t.schedule === undefined ? undefined : decodeSchedule(t.schedule) },
    keepLog,
    pool,
    onTrace,
  });
}

/**
 * `mix`: the runs alternate — even-numbered ones the random walk, odd ones PCT — for a race whose
 * window one strategy reaches and the other does not.
 */
export type ExploreStrategy = 'random' | 'pct' | 'mix';

export interface ExploreOptions {
  strategy: ExploreStrategy;
  depth: number;
  runs: number;
  seed: number;
  /** The options as given (kept in each token). */
  raw: Record<string, unknown>;
  onRun?: (done: number) => void;
  /** Controlled runs at once, each on its own machine and worker pool (default 1). */
  jobs?: number;
  /** This invocation's slice of the run numbers: run i belongs to shard i % count. */
  shard?: { index: number; count: number };
  /** A checkpoint file: written as runs complete; with `resume`, read first to skip what it holds. */
  checkpoint?: string;
  resume?: boolean;
}

/** What a shard (or a checkpoint) records: enough for `ptlab merge` to give the unsharded answer. */
export interface ExploreShard {
  kind: 'ptlab-explore-shard';
  version: string;
  /** The hunt: every input that decides the answer (a merge refuses shards of different hunts). */
  hunt: { scenario: string; model: string; bug?: string; strategy: string; depth: number; runs: number; seed: number; opts: Record<string, unknown>; steps: number };
  shard: { index: number; count: number };
  /** Runs of this shard done without a failure, counted from its first: its runs below `next`. */
  next: number;
  /** This shard's lowest failing run, if any. */
  failure: { run: number; token: string; violations: RunReport['violations']; decisions?: number } | null;
  /** The token of the hunt's last run (runs - 1), when this shard holds it (a passing hunt's token). */
  lastToken?: string;
  executed: number;
  seconds: number;
  cores: number;
}

/**
 * Runs the hunt's runs that belong to this shard, `jobs` at once, in order of their numbers: a
 * run is started only below the lowest failure found so far, and the answer is the lowest
 * failing run (each run is decided by its number alone), so it does not depend on `jobs`.
 */
export async function exploreShard(scenario: string, o: RunOptions, e: ExploreOptions): Promise<ExploreShard> {
  const t0 = performance.now();
  const shard = e.shard ?? { index: 0, count: 1 };
  // PCT needs k, the steps a run takes: measure one run (random walk) first.
  let steps = 1000;
  if (e.strategy !== 'random') {
    const probe = await runScenario(scenario, o, { sched: { mode: SchedMode.Random, seed: e.seed, depth: 1, steps } });
    steps = Math.max(1, probe.schedule?.decisions ?? steps);
  }
  // The token carries the scenario file itself and ptlab's version: a whole bug report.
  const file = packScenarioFile(scenario);
  const base: Omit<ReplayToken, 'seed' | 'strategy'> = {
    scenario, model: o.model, bug: o.bug, opts: e.raw, depth: e.depth, steps, ...(file !== undefined ? { file } : {}), version: PTLAB_VERSION,
  };
  const strategyOf = (i: number): 'random' | 'pct' => (e.strategy === 'mix' ? (i % 2 === 0 ? 'random' : 'pct') : e.strategy);
  const tokenOf = (i: number): ReplayToken => ({ ...base, strategy: strategyOf(i), seed: runSeed(e.seed, i) });
  const hunt = { scenario, model: o.model, ...(o.bug ? { bug: o.bug } : {}), strategy: e.strategy, depth: e.depth, runs: e.runs, seed: e.seed, opts: e.raw, steps };
  // This shard's run numbers, in order.
  const mine: number[] = [];
  for (let i = shard.index; i < e.runs; i += shard.count) mine.push(i);
  let out: ExploreShard = {
    kind: 'ptlab-explore-shard', version: PTLAB_VERSION, hunt, shard, next: 0, failure: null,
    ...(mine.length > 0 && mine[mine.length - 1] === e.runs - 1 ? { lastToken: encodeToken(tokenOf(e.runs - 1)) } : {}),
    executed: 0, seconds: 0, cores: 0,
  };
  if (e.checkpoint !== undefined && e.resume === true) out = resumeFrom(e.checkpoint, out);
  let failAt = out.failure?.run ?? Infinity;
  let next = out.next; // index into `mine` of the next run to start
  const done = new Set<number>();
  let prefix = out.next; // runs of `mine` below this all finished (the checkpoint's `next`)
  const jobs = Math.max(1, e.jobs ?? 1);
  const cpus = scenarioOptions(scenario, o).cpus;
  const lane = async (): Promise<void> => {
    const pool = createCpuPool(cpus);
    try {
      for (;;) {
        if (next >= mine.length || mine[next] > failAt) return;
        const k = next++;
        const i = mine[k];
        const t = tokenOf(i);
        const r = await runToken(t, false, pool);
        out.executed++;
        out.cores = r.cores;
        if (!r.ok && i < failAt) {
          failAt = i;
          out.failure = { run: i, token: encodeToken(t), violations: r.violations, decisions: r.schedule?.decisions };
        }
        done.add(k);
        while (done.has(prefix)) done.delete(prefix++);
        out.next = prefix;
        e.onRun?.(out.executed);
        if (e.checkpoint !== undefined) writeCheckpoint(e.checkpoint, { ...out, seconds: round((performance.now() - t0) / 1000) });
      }
    } finally {
      await pool.destroy();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, Math.max(1, mine.length)) }, lane));
  out.seconds = round((performance.now() - t0) / 1000);
  if (e.checkpoint !== undefined) writeCheckpoint(e.checkpoint, out);
  return out;
}

function writeCheckpoint(file: string, s: ExploreShard): void {
  // Written whole, then renamed: a job killed mid-write leaves the previous checkpoint.
  writeFileSync(`${file}.tmp`, JSON.stringify(s));
  renameSync(`${file}.tmp`, file);
}

/** --resume: the checkpoint must be of this very hunt and shard; its progress is taken over. */
function resumeFrom(file: string, fresh: ExploreShard): ExploreShard {
  if (!existsSync(file)) return fresh;
  let c: ExploreShard;
  try {
    c = JSON.parse(readFileSync(file, 'utf8')) as ExploreShard;
  } catch {
    throw new UsageError(`--checkpoint ${file}: not a ptlab checkpoint (unreadable JSON)`);
  }
  if (c.kind !== 'ptlab-explore-shard' || c.version !== fresh.version || JSON.stringify(c.hunt) !== JSON.stringify(fresh.hunt) || c.shard.index !== fresh.shard.index || c.shard.count !== fresh.shard.count) {
    throw new UsageError(`--checkpoint ${file}: it is of another hunt, shard or ptlab version; --resume continues only the same command`);
  }
  return { ...fresh, next: c.next, failure: c.failure, executed: c.executed };
}

/**
 * The hunt's answer from its shards (one shard: the unsharded run): the lowest failing run of any
 * shard — every shard ran its runs below that one, so no lower run failed —, else a pass with the
 * token of the hunt's last run.
 */
export function mergeShards(shards: ExploreShard[]): ExploreResult {
  const h = shards[0].hunt;
  const fail = shards.map((s) => s.failure).filter((f) => f !== null).sort((a, b) => a!.run - b!.run)[0] ?? null;
  const seconds = Math.max(...shards.map((s) => s.seconds));
  const executed = shards.reduce((n, s) => n + s.executed, 0);
  const common = { scenario: h.scenario, model: h.model, strategy: h.strategy, depth: h.depth, seconds, runs_per_s: round(executed / Math.max(seconds, 1e-3)), cores: Math.max(...shards.map((s) => s.cores)) };
  if (fail !== null) return { ok: false, ...common, runs: fail.run + 1, token: fail.token, violations: fail.violations, decisions: fail.decisions };
  const last = shards.find((s) => s.lastToken !== undefined)?.lastToken;
  return { ok: true, ...common, runs: h.runs, violations: [], ...(last ? { token: last } : {}) };
}

export async function explore(scenario: string, o: RunOptions, e: ExploreOptions): Promise<ExploreResult> {
  return mergeShards([await exploreShard(scenario, o, e)]);
}

/**
 * `ptlab merge`: the shards of one hunt, every index of one count, one ptlab version: the answer
 * the unsharded hunt gives. UsageError for anything else (naming what is wrong).
 */
export function mergeShardFiles(files: string[]): ExploreResult {
  const shards = readShardSet<ExploreShard>(files, 'ptlab-explore-shard', (s) => s.hunt, 'hunt');
  const first = shards[0];
  // A shard that stopped early (a checkpoint, a killed job) must have reached the first failure.
  const failAt = Math.min(...shards.map((s) => s.failure?.run ?? Infinity));
  for (const [i, s] of shards.entries()) {
    const runsOfShard = Math.max(0, Math.ceil((first.hunt.runs - s.shard.index) / s.shard.count));
    const needed = Math.min(runsOfShard, Math.ceil((Math.min(failAt, first.hunt.runs) - s.shard.index) / s.shard.count));
    if (s.failure === null && s.next < needed) throw new UsageError(`merge: ${files[i]} (shard ${s.shard.index}/${s.shard.count}) is unfinished: ${s.next} of ${needed} runs done (--resume it)`);
  }
  return mergeShards(shards);
}

export function replay(token: string): Promise<RunReport> {
  return runToken(decodeToken(token));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
