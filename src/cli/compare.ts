/**
 * `ptlab compare`: the same scenario, options and seed under each model, one after the other,
 * and one table of what differs — faults by kind, faults per second (over the scenario's phase
 * when it has one), page-table bytes (host and guests apart), TLB shootdowns, lock contention,
 * mmap_lock waits and the fault path's read-side waits (count, p50 / p99 from lock_stat's
 * histograms), and fairness (max/min of the tasks' faults/s, locktorture's ??? when max/2 > min).
 * Each model runs under each combination of --mmap-lock, --fault-lock and --ptl given.
 */
import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import { median } from 'simple-statistics';
import { ASCII_TABLE, bytes, count, shortName } from './render.js';
import type { LockClassStats } from '../sync/lock_stat.js';
import { runScenario, type RunReport } from './run.js';
import { type RunOptions, UsageError } from './options.js';
import { inLanes, readShardSet, type Shard, shardTasks } from './shard.js';
import { PTLAB_VERSION } from './version.js';

export interface CompareReport {
  scenario: string;
  seed: number;
  cores: number;
  runs: RunReport[];
  /** --repeat: the runs of each point (runs[i] is the median one of points[i]). */
  repeats?: number;
  /** Per run (same order): faults/s of every repeat. */
  rates?: number[][];
}

const n = (x: number) => x.toLocaleString('en-US');

/** The run's configuration apart from the sweep's task count: model, locks, CPUs, size. */
const configKey = (r: RunReport) => [r.model, r.mmap_lock, r.host_lock, r.fault_lock, r.ptl, r.cpus, r.size].join('/');

/**
 * will-it-scale's `linear`: the rate the smallest task count of the same configuration would give
 * if it scaled perfectly, at this run's task count (its rate x procs / its procs).
 */
function linear(c: CompareReport, r: RunReport): number {
  const same = c.runs.filter((x) => configKey(x) === configKey(r));
  const base = same.reduce((a, b) => (b.procs < a.procs ? b : a));
  return Math.round((base.faults_per_s * r.procs) / base.procs);
}

/** Page-table bytes against `none`'s at the same point (same procs, CPUs, size, locks). */
function baseline(c: CompareReport, r: RunReport): number | undefined {
  if (new Set(c.runs.map((x) => x.model)).size < 2) return undefined;
  const key = (x: RunReport) => [x.mmap_lock, x.host_lock, x.fault_lock, x.ptl, x.cpus, x.size, x.procs].join('/');
  return c.runs.find((x) => x.model === 'none' && key(x) === key(r))?.pgtables_bytes.total;
}

const varies = (c: CompareReport, f: (r: RunReport) => unknown) => new Set(c.runs.map(f)).size > 1;

/** Spread of a point's repeats: (max - min) / median of faults/s, in percent. */
function spread(rates: number[] | undefined): string {
  if (!rates || rates.length < 2) return '-';
  const m = median(rates);
  return m > 0 ? `${(((Math.max(...rates) - Math.min(...rates)) / m) * 100).toFixed(0)}%` : '-';
}

/**
 * The table: by default the columns that fit a 120-column terminal (run, the swept values,
 * faults/s with will-it-scale's linear column when the task count is swept, page tables and the
 * ratio to none, shootdowns, contentions, mmap_lock's p99 wait); `wide` adds the fault kinds,
 * host/guest split, both wait columns with counts and fairness.
 */
export function renderCompare(c: CompareReport, wide = false, command: 'compare' | 'run' = 'compare'): string {
  const out: string[] = [];
  const first = c.runs[0];
  const sweep = (['procs', 'cpus', 'size'] as const).filter((k) => varies(c, (r) => r[k]));
  const fixed = [
    sweep.includes('procs') ? '' : count(first.procs, 'process', 'processes'),
    sweep.includes('cpus') ? '' : count(first.cpus, 'CPU', 'CPUs'),
  ].filter((x) => x !== '').join(' on ');
  out.push(`ptlab ${command} ${c.scenario} --seed ${c.seed}${fixed ? `: ${fixed}` : ''} (${count(c.cores, 'core', 'cores')})` +
    (sweep.includes('size') || first.scenario.endsWith('.json') ? '' : `, ${bytes(first.size)} shared`) +
    (c.repeats && c.repeats > 1 ? `; median of ${c.repeats} runs per point` : ''));
  if (first.phase) out.push(`faults/s over ${first.phase.what}`);
  // Narrow: "vs none" only when models differ, fairness (max/min faults/s per task) only when measured.
  const models = varies(c, (r) => r.model);
  const fair = c.runs.some((r) => r.phase?.fairness);
  const head = ['run', ...sweep, 'ok', 'faults/s', ...(sweep.includes('procs') ? ['linear'] : []), ...(c.repeats && c.repeats > 1 ? ['spread'] : []),
    ...(wide ? ['faults', 'new page / from cache / PMD copied / wp'] : []), 'page tables', ...(wide ? ['host + guests'] : []), ...(wide || models ? ['vs none'] : []), 'shootdowns', 'contentions',
    ...(wide ? ['mmap_lock waits: n, p50 / p99 µs', 'fault-lock read waits: n, p50 / p99 µs', 'fairness: max/min faults/s per task'] : ['mmap_lock p99 us', ...(fair ? ['fairness'] : [])])];
  const t = new Table({ head, ...ASCII_TABLE });
  c.runs.forEach((r, i) => {
    const f = r.faults;
    const base = baseline(c, r);
    const mmapRows = r.locks.filter((l) => l.class === '&mm->mmap_lock');
    t.push([
      runLabel(c, r),
      ...sweep.map((k) => (k === 'size' ? bytes(r.size) : String(r[k]))),
      r.ok ? 'ok' : `FAIL (${r.violations.length})`,
      n(r.faults_per_s),
      ...(sweep.includes('procs') ? [n(linear(c, r))] : []),
      ...(c.repeats && c.repeats > 1 ? [spread(c.rates?.[i])] : []),
      ...(wide ? [n(f.total), `${n(f.page_allocated)} / ${n(f.pte_from_page_cache)} / ${n(f.shared_pmd_copied)} / ${n(f.write_protect)}`] : []),
      bytes(r.pgtables_bytes.total),
      ...(wide ? [`${bytes(r.pgtables_bytes.host)} + ${bytes(r.pgtables_bytes.guests)}`] : []),
      ...(wide || models ? [base ? (r.model === 'none' ? '1.0x' : ratioText(base / Math.max(1, r.pgtables_bytes.total))) : '-'] : []),
      n(r.tlb.shootdowns),
      n(r.locks.reduce((s, l) => s + l.contentions, 0)),
      ...(wide
        ? [waits(mmapRows), waits(r.locks.filter((l) => l.mode === 'R' && l.class === (r.fault_lock === 'per-vma' ? '&vma->vm_lock->lock' : '&mm->mmap_lock'))),
          r.phase?.fairness ? `${r.phase.fairness.max_over_min.toFixed(2)}${r.phase.fairness.unfair ? ' ???' : ''}` : '-']
        : [mmapRows.some((l) => l.contentions > 0) ? Math.max(...mmapRows.map((l) => l.waittime_p99)).toFixed(1) : '-',
          ...(fair ? [r.phase?.fairness ? `${r.phase.fairness.max_over_min.toFixed(2)}${r.phase.fairness.unfair ? ' ???' : ''}` : '-'] : [])]),
    ]);
  });
  out.push(t.toString());
  for (const r of c.runs) for (const v of r.violations.slice(0, 5)) out.push(`  ${runLabel(c, r)}: [${v.checker}] ${v.message}`.slice(0, wide ? Infinity : 120));
  return out.join('\n');
}

/** One CSV row per run (per sweep point), every figure the wide table shows, in plain units. */
export function compareCsv(c: CompareReport): string {
  const rows = c.runs.map((r, i) => {
    const mmapRows = r.locks.filter((l) => l.class === '&mm->mmap_lock');
    const base = baseline(c, r);
    return {
      scenario: c.scenario, seed: c.seed, cores: c.cores, model: r.model, mmap_lock: r.mmap_lock, host_lock: r.host_lock, fault_lock: r.fault_lock, ptl: r.ptl,
      procs: r.procs, cpus: r.cpus, size_bytes: r.size, ok: r.ok ? 1 : 0, violations: r.violations.length,
      faults: r.faults.total, faults_per_s: r.faults_per_s, linear_faults_per_s: linear(c, r),
      repeats: c.repeats ?? 1, faults_per_s_min: c.rates ? Math.min(...c.rates[i]) : r.faults_per_s, faults_per_s_max: c.rates ? Math.max(...c.rates[i]) : r.faults_per_s,
      page_allocated: r.faults.page_allocated, from_page_cache: r.faults.pte_from_page_cache, shared_pmd_copied: r.faults.shared_pmd_copied, write_protect: r.faults.write_protect,
      pgtables_bytes: r.pgtables_bytes.total, host_bytes: r.pgtables_bytes.host, guest_bytes: r.pgtables_bytes.guests,
      vs_none: base ? +(base / Math.max(1, r.pgtables_bytes.total)).toFixed(3) : '',
      shootdowns: r.tlb.shootdowns, contentions: r.locks.reduce((s, l) => s + l.contentions, 0),
      mmap_lock_waits: mmapRows.reduce((s, l) => s + l.contentions, 0),
      mmap_lock_wait_p50_us: mmapRows.length ? Math.max(...mmapRows.map((l) => l.waittime_p50)) : 0,
      mmap_lock_wait_p99_us: mmapRows.length ? Math.max(...mmapRows.map((l) => l.waittime_p99)) : 0,
      fairness_max_over_min: r.phase?.fairness ? r.phase.fairness.max_over_min : '',
    };
  });
  return stringify(rows, { header: true });
}

/** The run's name in the table: its model and whichever lock choices vary across the runs. */
function runLabel(c: CompareReport, r: RunReport): string {
  const parts = [shortName(r.model)];
  if (varies(c, (x) => x.mmap_lock)) parts.push(shortName(r.mmap_lock));
  if (c.runs.some((x) => x.host_lock !== x.mmap_lock)) parts.push(`host ${shortName(r.host_lock)}`);
  if (varies(c, (x) => x.fault_lock)) parts.push(r.fault_lock === 'per-vma' ? 'per-vma' : 'mmap-fault');
  if (varies(c, (x) => x.ptl)) parts.push(`ptl ${r.ptl}`);
  return parts.join(' / ');
}

/**
 * Contended acquisitions of the given lock_stat rows, and their wait percentiles (the larger of
 * the rows' p50 and p99: with one row, exactly its own).
 */
function waits(rows: LockClassStats[]): string {
  const con = rows.reduce((s, l) => s + l.contentions, 0);
  if (con === 0) return '0';
  const p50 = Math.max(...rows.map((l) => l.waittime_p50));
  const p99 = Math.max(...rows.map((l) => l.waittime_p99));
  return `${n(con)}, ${p50.toFixed(1)} / ${p99.toFixed(1)}`;
}

/** Page-table bytes against the baseline's: "3.2x less", "1.5x more", or "same" (within 5%). */
function ratioText(x: number): string {
  if (x > 0.95 && x < 1.05) return 'same';
  return x >= 1 ? `${x.toFixed(1)}x less` : `${(1 / x).toFixed(1)}x more`;
}

/**
 * A sweep: the runs `compare` (and `run` given lists) makes — every point of the grid, in grid
 * order, `repeat` times. Its identity in a shard file: the command, the scenario, every point's
 * options and the repeat count (a merge refuses shards that differ in any of them).
 */
export interface Sweep {
  command: 'compare' | 'run';
  scenario: string;
  points: RunOptions[];
  repeat: number;
}

/** One shard of a sweep (the whole sweep: shard 0/1): its runs, for `ptlab merge`. */
export interface CompareShard {
  kind: 'ptlab-compare-shard';
  version: string;
  sweep: Sweep;
  shard: Shard;
  /** This shard's runs: task t = point x repeat + the repeat's index, t % count === index. */
  results: { point: number; repeat: number; report: RunReport }[];
  seconds: number;
}

/** A sweep's inputs as a shard records them (the output format, --json, is not one of them). */
export function sweepOf(command: Sweep['command'], scenario: string, points: RunOptions[], repeat: number): Sweep {
  return { command, scenario, points: points.map(({ json: _json, ...o }) => o), repeat };
}

/**
 * Runs this shard's runs of the sweep, `jobs` at once (each its own machine and worker pool;
 * parallel runs share the host's cores, so their faults/s are lower), started in task order.
 */
export async function sweepShard(s: Sweep, opts: { jobs?: number; shard?: Shard; onRun?: (done: number) => void } = {}): Promise<CompareShard> {
  const t0 = performance.now();
  const shard = opts.shard ?? { index: 0, count: 1 };
  const tasks = shardTasks(s.points.length * s.repeat, shard);
  const reports = await inLanes(tasks, opts.jobs ?? 1, (t) => runScenario(s.scenario, s.points[Math.floor(t / s.repeat)]), opts.onRun);
  return {
    kind: 'ptlab-compare-shard', version: PTLAB_VERSION, sweep: s, shard,
    results: tasks.map((t, k) => ({ point: Math.floor(t / s.repeat), repeat: t % s.repeat, report: reports[k] })),
    seconds: Math.round(performance.now() - t0) / 1000,
  };
}

/**
 * The sweep's report from all its shards (one shard: the unsharded sweep): rows in grid order;
 * each point's run is its first failing repeat, else the one with the median faults/s, and its
 * rates are every repeat's — computed here, after the merge, exactly as for one shard.
 */
export function mergeSweep(shards: CompareShard[]): CompareReport {
  const s = shards[0].sweep;
  const byPoint: RunReport[][] = s.points.map(() => new Array<RunReport>(s.repeat));
  for (const sh of shards) for (const r of sh.results) byPoint[r.point][r.repeat] = r.report;
  const runs: RunReport[] = [];
  const rates: number[][] = [];
  byPoint.forEach((reps, p) => {
    const have = reps.filter((r) => r !== undefined);
    if (have.length !== s.repeat) throw new UsageError(`merge: point ${p} has ${have.length} of ${s.repeat} runs (a shard is unfinished)`);
    const sorted = [...have].sort((a, b) => a.faults_per_s - b.faults_per_s);
    runs.push(sorted.find((r) => !r.ok) ?? sorted[Math.floor((sorted.length - 1) / 2)]);
    rates.push(sorted.map((r) => r.faults_per_s));
  });
  return { scenario: s.scenario, seed: runs[0].seed, cores: runs[0].cores, runs, ...(s.repeat > 1 ? { repeats: s.repeat, rates } : {}) };
}

/** `ptlab merge` of compare (or run) shards: the sweep and its report, or a UsageError naming what is wrong. */
export function mergeCompareFiles(files: string[]): { sweep: Sweep; report: CompareReport } {
  const shards = readShardSet<CompareShard>(files, 'ptlab-compare-shard', (x) => x.sweep, 'sweep (command, scenario, options or --repeat)');
  return { sweep: shards[0].sweep, report: mergeSweep(shards) };
}
