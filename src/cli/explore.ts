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
import type { Piscina } from 'piscina';
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
 * window one strategy reaches and the other does not, or that may be either kind: PCT keeps one
 * CPU stopped in a window for another's whole syscall (a fault after its lockless lookup while
 * the VMA is unmapped); the random walk places switches where PCT's few change points rarely land
 * (a writer's vma_start_write between a reader's check and its trylock). Each run's token names
 * the strategy it ran.
 */
export type ExploreStrategy = 'random' | 'pct' | 'mix';

export interface ExploreOptions {
  strategy: ExploreStrategy;
  depth: number;
  runs: number;
  seed: number;
  /** The raw run options (strings, as the CLI got them), kept in the token. */
  raw: Record<string, string | number | boolean>;
  onRun?: (i: number) => void;
}

export async function explore(scenario: string, o: RunOptions, e: ExploreOptions): Promise<ExploreResult> {
  const t0 = performance.now();
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
  let last: RunReport | undefined;
  let lastToken: ReplayToken | undefined;
  const pool = createCpuPool(scenarioOptions(scenario, o).cpus);
  try {
  for (let i = 0; i < e.runs; i++) {
    const t: ReplayToken = { ...base, strategy: strategyOf(i), seed: runSeed(e.seed, i) };
    const r = await runToken(t, false, pool);
    e.onRun?.(i + 1);
    last = r;
    lastToken = t;
    if (!r.ok) {
      const seconds = (performance.now() - t0) / 1000;
      return {
        ok: false, scenario, model: o.model, strategy: e.strategy, depth: e.depth, runs: i + 1, seconds: round(seconds),
        runs_per_s: round((i + 1) / seconds), token: encodeToken(t), violations: r.violations, decisions: r.schedule?.decisions, cores: r.cores,
      };
    }
  }
  } finally {
    await pool.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    ok: true, scenario, model: o.model, strategy: e.strategy, depth: e.depth, runs: e.runs, seconds: round(seconds),
    runs_per_s: round(e.runs / seconds), violations: [], cores: last?.cores ?? 0,
    // A pass has a token too: the last run's, so a passing schedule can be replayed and traced.
    ...(lastToken ? { token: encodeToken(lastToken) } : {}),
  };
}

export function replay(token: string): Promise<RunReport> {
  return runToken(decodeToken(token));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
