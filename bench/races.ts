/**
 * The race catalog's figures (`npm run bench:races`, long: not part of `npm run bench`): for each
 * race and each strategy, the runs `explore` needs to the first failure over 20 seeds (median;
 * a seed that finds nothing in MAX_RUNS counts as MAX_RUNS + 1 and the record says how many did),
 * runs per second (of the fixed variant, MAX_RUNS runs on one pool of workers: the failing runs
 * stop too early to measure a rate), and the switches of the first failure's schedule before and after shrinking.
 * Targets: PCT finds each race in at most 100 runs (median); a fixed variant survives.
 *
 *   npm run bench:races -- [scenario...] [--seeds N] [--runs N] [--jobs N] [--shard i/n|auto --out FILE] [--csv]
 *   npm run bench:races -- --merge FILE...
 *
 * The work is a list of tasks — one explore per race, strategy and seed, one fixed-variant hunt
 * per race and strategy, then one shrink per race and strategy (of the lowest seed's failure) —
 * each decided by its inputs alone: --jobs N runs N at once, --shard i/n the tasks t with
 * t % n === i, and --merge gives exactly the unsharded records and table (runs/s aside: a rate).
 */
import { median } from 'simple-statistics';
import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { explore, type ExploreResult } from '../src/cli/explore.js';
import { parseRunOptions, UsageError } from '../src/cli/options.js';
import { inLanes, parseShard, progressBar, readShardSet, type Shard, shardTasks } from '../src/cli/shard.js';
import { shrink } from '../src/cli/shrink.js';
import { PTLAB_VERSION } from '../src/cli/version.js';
import { decodeToken } from '../src/sched/token.js';
import { cores } from './common.js';

interface Race {
  name: string;
  scenario: string;
  model: string;
  bug: string;
  opts: Record<string, string>;
}

/** Every catalog race with its planted bug (the fixed variant is the same without --bug). */
export const RACES: Race[] = [
  { name: 'exit vs fault on a shared table', scenario: 'exit-vs-fault', model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', opts: {} },
  { name: 'mprotect vs fault, shootdown forgets a sharer', scenario: 'mprotect-vs-fault', model: 'map-shared-pt', bug: 'shootdown-forgets-sharers', opts: { procs: '2', cpus: '2', ops: '4', size: '2M' } },
  { name: 'a hot TLB when the shootdown forgets a sharer', scenario: 'race-stale-tlb', model: 'map-shared-pt', bug: 'shootdown-forgets-sharers', opts: {} },
  { name: 'address-space revoke vs DMA in flight', scenario: 'race-revoke', model: 'address-space', bug: 'revoke-forgets-mappers', opts: {} },
  { name: 'pt-hint unshare without its flush (CVE-2021-4002)', scenario: 'race-unshare-flush', model: 'pt-hint', bug: 'unshare-defers-flush', opts: {} },
  { name: 'pt-hint split re-shared by a fault (CVE-2025-38084)', scenario: 'race-split-reshare', model: 'pt-hint', bug: 'split-unshares-early', opts: {} },
  { name: 'mshare lockless peek vs host unmap', scenario: 'race-mshare-peek', model: 'mshare', bug: 'peek-without-host-lock', opts: {} },
  { name: 'mshare v1 attach drops mmap_lock vs remap', scenario: 'race-mshare-attach', model: 'mshare', bug: 'attach-drops-mmap-lock', opts: {} },
  { name: 'mshare v1 retry releases current->mm (remote fault)', scenario: 'race-mshare-retry', model: 'mshare', bug: 'retry-unlocks-current-mm', opts: {} },
  { name: 'munmap detaches a VMA without vma_start_write (per-VMA locks)', scenario: 'race-vma-lock', model: 'none', bug: 'munmap-skips-vma-write-lock', opts: {} },
  { name: 'pt-hint MADV_DONTNEED unshare without its flush (CVE-2021-4002)', scenario: 'race-dontneed-unshare', model: 'pt-hint', bug: 'unshare-defers-flush', opts: {} },
  { name: 'pt-hint sharing read from a refcount (CVE-2024-57883)', scenario: 'race-share-count', model: 'pt-hint', bug: 'share-count-from-refcount', opts: {} },
  { name: 'pt-hint unshare without the GUP-fast sync (CVE-2025-38085)', scenario: 'race-gup-fast-unshare', model: 'pt-hint', bug: 'unshare-skips-gup-sync', opts: {} },
  { name: 'pt-hint fault vs MADV_DONTNEED unshare without the vma_lock (2022)', scenario: 'race-fault-unshare', model: 'pt-hint', bug: 'fault-without-vma-lock', opts: {} },
  { name: 'mshare v3 MADV_DONTNEED on the shared table without the host lock', scenario: 'race-mshare-dontneed', model: 'mshare', bug: 'v3-dontneed-without-host-lock', opts: {} },
  { name: 'pt-hint reclaim (try_to_unmap) flushes one sharer of a shared PTE table', scenario: 'race-reclaim-sharer', model: 'pt-hint', bug: 'reclaim-flushes-one-sharer', opts: {} },
  { name: 'migration copies the page before the TLB flush (a store after the copy is lost)', scenario: 'race-migrate-store', model: 'pt-hint', bug: 'migrate-copy-before-flush', opts: {} },
  { name: 'cow-pte COW break that does not look again after allocating its copy', scenario: 'race-cow-break', model: 'cow-pte', bug: 'cow-break-no-recheck', opts: {} },
];

const SEEDS = 20;
const MAX_RUNS = 100;
const STRATEGIES = ['pct', 'random'] as const;
const SHRINK_BUDGET = 200;


/** What decides the answer: the races (by scenario), the seeds and the runs per seed. */
export interface RacesConfig { races: string[]; seeds: number; maxRuns: number }

type Task =
  | { kind: 'seed'; race: number; strategy: 'pct' | 'random'; seed: number }
  | { kind: 'fixed'; race: number; strategy: 'pct' | 'random' }
  | { kind: 'shrink'; race: number; strategy: 'pct' | 'random' };

type TaskResult =
  | { kind: 'seed'; runs: number; found: boolean }
  | { kind: 'fixed'; ok: boolean; runs_per_s: number }
  | { kind: 'shrink'; from: number; to: number } | { kind: 'shrink'; from: null; to: null };

/** One shard of the catalog's tasks (the whole catalog: shard 0/1), for --merge. */
export interface RacesShard {
  kind: 'ptlab-races-shard';
  version: string;
  config: RacesConfig;
  shard: Shard;
  results: { task: number; result: TaskResult }[];
  seconds: number;
  cores: number;
}

export interface RaceRecord {
  bench: 'race'; race: string; scenario: string; model: string; bug: string; strategy: string;
  seeds: number; found: number; median_runs_to_failure: number; runs_to_failure: number[]; runs_per_s: number; fixed_ok: boolean;
  shrunk_decisions: number | null; failing_run_decisions: number | null; cores: number; meets_target: boolean | null;
}

const racesOf = (c: RacesConfig) => c.races.map((s) => RACES.find((r) => r.scenario === s)!);

/** Every task, in order: per race and strategy its seeds and its fixed variant; then the shrinks. */
function tasksOf(c: RacesConfig): Task[] {
  const out: Task[] = [];
  racesOf(c).forEach((_, race) => {
    for (const strategy of STRATEGIES) {
      for (let seed = 1; seed <= c.seeds; seed++) out.push({ kind: 'seed', race, strategy, seed });
      out.push({ kind: 'fixed', race, strategy });
    }
  });
  racesOf(c).forEach((_, race) => {
    for (const strategy of STRATEGIES) out.push({ kind: 'shrink', race, strategy });
  });
  return out;
}

/**
 * Runs this shard's tasks, `jobs` at once. A shrink needs the lowest seed that found its race:
 * it explores the seeds from 1 until one fails (reusing those this process ran already), so a
 * shard needs no other shard's results.
 */
export async function racesShard(c: RacesConfig, o: { jobs?: number; shard?: Shard; onTask?: (done: number) => void } = {}): Promise<RacesShard> {
  const t0 = performance.now();
  const races = racesOf(c);
  const shard = o.shard ?? { index: 0, count: 1 };
  const all = tasksOf(c);
  const mine = shardTasks(all.length, shard);
  const hunts = new Map<string, Promise<ExploreResult>>();
  const hunt = (race: number, strategy: 'pct' | 'random', seed: number): Promise<ExploreResult> => {
    const key = `${race}/${strategy}/${seed}`;
    let p = hunts.get(key);
    if (p === undefined) {
      const r = races[race];
      const opts = parseRunOptions(r.scenario, { ...r.opts, model: r.model, bug: r.bug, lockStat: false });
      p = explore(r.scenario, opts, { strategy, depth: 3, runs: c.maxRuns, seed, raw: { ...r.opts, lockStat: false } });
      hunts.set(key, p);
    }
    return p;
  };
  const run = async (t: Task): Promise<TaskResult> => {
    const r = races[t.race];
    if (t.kind === 'seed') {
      const e = await hunt(t.race, t.strategy, t.seed);
      return { kind: 'seed', runs: e.ok ? c.maxRuns + 1 : e.runs, found: !e.ok };
    }
    if (t.kind === 'fixed') {
      const opts = parseRunOptions(r.scenario, { ...r.opts, model: r.model, lockStat: false });
      const e = await explore(r.scenario, opts, { strategy: t.strategy, depth: 3, runs: c.maxRuns, seed: 1, raw: { ...r.opts, lockStat: false } });
      return { kind: 'fixed', ok: e.ok, runs_per_s: e.runs_per_s };
    }
    for (let seed = 1; seed <= c.seeds; seed++) {
      const e = await hunt(t.race, t.strategy, seed);
      if (!e.ok && e.token !== undefined) {
        const s = await shrink(decodeToken(e.token), SHRINK_BUDGET);
        return { kind: 'shrink', from: s.from, to: s.to };
      }
    }
    return { kind: 'shrink', from: null, to: null };
  };
  const results = await inLanes(mine, o.jobs ?? 1, (t) => run(all[t]), o.onTask);
  return {
    kind: 'ptlab-races-shard', version: PTLAB_VERSION, config: c, shard,
    results: mine.map((task, k) => ({ task, result: results[k] })),
    seconds: Math.round(performance.now() - t0) / 1000, cores: cores(),
  };
}

/** The records from every shard (one shard: the unsharded bench), in the catalog's order. */
export function mergeRaces(shards: RacesShard[]): RaceRecord[] {
  const c = shards[0].config;
  const all = tasksOf(c);
  const got = new Array<TaskResult | undefined>(all.length);
  for (const s of shards) for (const r of s.results) got[r.task] = r.result;
  const missing = got.findIndex((r) => r === undefined);
  if (missing >= 0) throw new UsageError(`merge: task ${missing} has no result (a shard is unfinished)`);
  const n = Math.max(...shards.map((s) => s.cores));
  const recs: RaceRecord[] = [];
  racesOf(c).forEach((race, i) => {
    for (const strategy of STRATEGIES) {
      const of = <K extends TaskResult['kind']>(kind: K) => all.map((t, k) => [t, got[k]!] as const)
        .filter(([t]) => t.race === i && t.strategy === strategy && t.kind === kind).map(([, r]) => r as Extract<TaskResult, { kind: K }>);
      const seeds = of('seed');
      const fixed = of('fixed')[0];
      const shrunk = of('shrink')[0];
      const runs = seeds.map((s) => s.runs);
      recs.push({
        bench: 'race', race: race.name, scenario: race.scenario, model: race.model, bug: race.bug, strategy,
        seeds: c.seeds, found: seeds.filter((s) => s.found).length, median_runs_to_failure: median(runs), runs_to_failure: runs,
        runs_per_s: fixed.runs_per_s, fixed_ok: fixed.ok, shrunk_decisions: shrunk.to, failing_run_decisions: shrunk.from, cores: n,
        meets_target: strategy === 'pct' ? median(runs) <= Math.min(100, c.maxRuns) : null,
      });
    }
  });
  return recs;
}

/** --merge: the shards of one bench:races, every index once, one ptlab version. */
export function mergeRacesFiles(files: string[]): { config: RacesConfig; records: RaceRecord[] } {
  const shards = readShardSet<RacesShard>(files, 'ptlab-races-shard', (s) => s.config, 'bench:races (races, --seeds or --runs)');
  return { config: shards[0].config, records: mergeRaces(shards) };
}

/** The JSON lines and the table, as the bench has always printed them; or, with csv, one CSV row per race and strategy. */
export function renderRaces(recs: RaceRecord[], c: Pick<RacesConfig, 'seeds' | 'maxRuns'>, csv = false): string {
  if (csv) return stringify(recs.map(({ runs_to_failure, ...r }) => ({ ...r, runs_to_failure: runs_to_failure.join(' ') })), { header: true });
  const t = new Table({ head: ['race', 'strategy', 'found', 'median runs to failure', 'runs/s (fixed)', 'shrunk switches'], style: { head: [], border: [], compact: true } });
  for (const r of recs) {
    t.push([r.race, r.strategy, `${r.found}/${r.seeds}`, String(r.median_runs_to_failure), `${r.runs_per_s}${r.fixed_ok ? '' : ' (FIXED VARIANT FAILED)'}`,
      r.failing_run_decisions !== null ? `${r.failing_run_decisions} -> ${r.shrunk_decisions}` : '-']);
  }
  const n = recs[0]?.cores ?? cores();
  return recs.map((r) => `${JSON.stringify(r)}\n`).join('') +
    `\nthe race catalog on ${n} cores (${c.seeds} seeds, at most ${c.maxRuns} runs each; not found counts as ${c.maxRuns + 1})\n${t.toString()}\n`;
}

async function main(): Promise<void> {
  const { values: v, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      seeds: { type: 'string' }, runs: { type: 'string' }, jobs: { type: 'string' }, shard: { type: 'string' }, out: { type: 'string' },
      csv: { type: 'boolean' }, merge: { type: 'boolean' },
    },
  });
  const nat = (x: string | undefined, what: string, dflt: number) => {
    if (x === undefined) return dflt;
    if (!/^\d+$/.test(x) || Number(x) < 1) throw new UsageError(`${what} must be a positive integer`);
    return Number(x);
  };
  if (v.merge) {
    const m = mergeRacesFiles(positionals);
    process.stdout.write(renderRaces(m.records, m.config, v.csv === true));
    return;
  }
  // `npm run bench:races -- <scenario>...` measures only those races.
  for (const p of positionals) if (!RACES.some((r) => r.scenario === p)) throw new UsageError(`no race '${p}' in the catalog: ${RACES.map((r) => r.scenario).join(', ')}`);
  const config: RacesConfig = {
    races: RACES.filter((r) => positionals.length === 0 || positionals.includes(r.scenario)).map((r) => r.scenario),
    seeds: nat(v.seeds, '--seeds', SEEDS), maxRuns: nat(v.runs, '--runs', MAX_RUNS),
  };
  const shard = v.shard === undefined ? undefined : parseShard(v.shard, process.env);
  const jobs = nat(v.jobs, '--jobs', 1);
  const total = shardTasks(tasksOf(config).length, shard).length;
  const bar = progressBar('bench:races', total, v.csv !== true);
  let s: RacesShard;
  try {
    s = await racesShard(config, { jobs, shard, onTask: (d) => bar.update(d) });
  } finally {
    bar.stop();
  }
  if (v.out !== undefined) writeFileSync(v.out, JSON.stringify(s) + '\n');
  if (shard !== undefined && shard.count > 1) {
    process.stdout.write(`shard ${shard.index}/${shard.count}: ${s.results.length} of ${tasksOf(config).length} task(s) in ${s.seconds} s` +
      `${v.out !== undefined ? `; written to ${v.out} (npm run bench:races -- --merge FILE... gives the table)` : ''}\n`);
    return;
  }
  process.stdout.write(renderRaces(mergeRaces([s]), config, v.csv === true));
}

// Run as a program (dist/races.mjs), not when a test imports the module.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await main();
  } catch (e) {
    const parseError = typeof (e as { code?: unknown }).code === 'string' && (e as { code: string }).code.startsWith('ERR_PARSE_ARGS');
    if (!(e instanceof UsageError) && !parseError) throw e;
    process.stderr.write(`bench:races: ${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
