/**
 * Lock protocols and sharing models through the library API (`npm run bench:locks`, not part of
 * `npm run bench`): every figure here is a scenario run exactly as `ptlab run` would run it
 * (parseRunOptions + runScenario), so the numbers are the ones a user of the CLI sees.
 *
 *   A. fault-storm: faults/s against threads (1, 2, 4, 8 threads of one mm on 2 simulated CPUs),
 *      for each --mmap-lock {rwsem, qrwlock} x --fault-lock {mmap, per-vma}. The rate is the
 *      scenario's measured phase (the storm, barrier 1 to 2: report.phase), not the whole run.
 *      The two fault locks are interleaved run by run, so per-vma/mmap compares runs made side by
 *      side. Target (the per-VMA lock issue): per-vma >= 1.5 x mmap with 2 threads.
 *   B. sga: faults/s against processes (1, 2, 4, 8 on 2 simulated CPUs) for every sharing model,
 *      with the page-table memory at the barrier where every process has the segment mapped.
 *      sga's rate is over its measured phase (the touches, barrier 1 to 2), set-up left out.
 *   C. sga-1500: machine memory (the SharedArrayBuffer) per simulated process, at --scale 1/1000
 *      and at the default 1/100, none and map-shared-pt, one run each. Targets for the 1/100 runs:
 *      under 60 s, under 2 GiB of machine memory.
 *
 * Output: one JSON object on one line (first), then tables for people. A cell whose run fails
 * (a worker error, a checker's violation, a rejected option) is reported with its error, never
 * dropped; the other cells go on. No timing assertions: targets are reported, never enforced.
 *
 * Threads above the host's cores are marked oversubscribed. Every run here uses 2 simulated CPUs
 * (2 worker threads), so more than 2 tasks also means ptlab's run queue time-slices them, between
 * ops, on those 2 CPUs (time_sliced in the JSON).
 */
import Table from 'cli-table3';
import { parseRunOptions } from '../src/cli/options.js';
import { runScenario, type RunReport } from '../src/cli/run.js';
import { cores, GiB, LOCK_STAT_TIMING, recordsCsv, round, type BenchRecord } from './common.js';
import { bytes } from '../src/cli/render.js';
import { progressBar } from '../src/cli/shard.js';

/** Runs per cell; the median is kept (odd, so the median is a run that happened). */
const RUNS = 3;
/** Simulated CPUs of every run in A and B. */
const CPUS = 2;
const THREADS = [1, 2, 4, 8];
const MMAP_LOCKS = ['rwsem', 'qrwlock'] as const;
const FAULT_LOCKS = ['mmap', 'per-vma'] as const;
const MODELS = ['none', 'map-shared-pt', 'mshare', 'pt-hint', 'container-fd', 'address-space'];
/** The per-VMA lock issue's target: per-vma faults/s >= 1.5 x mmap_lock's, fault-storm, 2 threads. */
const PER_VMA_TARGET = { threads: 2, atLeast: 1.5 };
/** sga-1500 at the default scale: targets for its run time and machine memory. */
const SGA1500_SECONDS_TARGET = 60;
const SGA1500_BYTES_TARGET = 2 * GiB;

/** What every JSON result carries, so that a figure read alone says where it came from. */
const META = { cores: cores(), node: process.version, date: new Date().toISOString() };

/** What a cell is (its bench, model, threads and settings), whether or not its runs worked. */
interface CellId {
  bench: string;
  model: string;
  threads: number;
  cores: number;
  [extra: string]: unknown;
}
/** A cell none of whose figures can be trusted: one of its runs failed. */
type Failed = CellId & { error: string };
type Cell = BenchRecord | Failed;

const failed = (c: Cell): c is Failed => 'error' in c;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/**
 * One scenario run with CLI-style options. Throws when the options are refused or the run is
 * broken (a worker error, a timeout, a checker's violation all show up as violations): a rate
 * from a broken run would mean nothing.
 */
async function runOnce(scenario: string, raw: Record<string, unknown>): Promise<RunReport> {
  const r = await runScenario(scenario, parseRunOptions(scenario, raw));
  if (!r.ok) throw new Error(`run broke a check: ${r.violations.map((v) => `${v.checker}: ${v.message}`).join('; ')}`);
  return r;
}

interface Bench {
  /** The cell's identity, reported as is if a run fails. */
  what: CellId;
  run: () => Promise<BenchRecord>;
}

/**
 * common.ts's medians(), except that a failing run does not end the benchmark: each bench runs
 * `n` times, interleaved (a, b, a, b...: a slow spell of the host hits both sides of a ratio
 * alike), and keeps its median run by rate with every run's rate beside it, or, if any of its
 * runs failed, the first failure.
 */
async function measure(n: number, benches: Bench[]): Promise<Cell[]> {
  const runs: Array<Array<BenchRecord | string>> = benches.map(() => []);
  for (let i = 0; i < n; i++) {
    for (let b = 0; b < benches.length; b++) {
      try {
        runs[b].push(await benches[b].run());
      } catch (e) {
        runs[b].push(message(e));
      }
      bar.update(++runsDone);
    }
  }
  return runs.map((rs, b): Cell => {
    const errors = rs.filter((r): r is string => typeof r === 'string');
    if (errors.length > 0) return { ...benches[b].what, error: `${errors.length} of ${n} runs failed; first: ${errors[0]}` };
    const ok = rs as BenchRecord[];
    const mid = [...ok].sort((x, y) => x.rate_per_s - y.rate_per_s)[Math.floor(n / 2)];
    return { ...mid, runs: n, rate_per_s_runs: ok.map((r) => r.rate_per_s) };
  });
}

/** Where a task count stands against the host's cores and the 2 simulated CPUs. */
// On a terminal a progress bar over every run (stderr); on a pipe, a line per phase instead.
const bar = progressBar('bench:locks', THREADS.length * (MMAP_LOCKS.length * FAULT_LOCKS.length + MODELS.length) * RUNS + 4, true, 0);
let runsDone = 0;
const phase = (line: string) => {
  if (!process.stderr.isTTY) process.stderr.write(`${line}\n`);
};

const placement = (tasks: number) => ({ oversubscribed: tasks > META.cores, time_sliced: tasks > CPUS });

// ---------------------------------------------------------------- A. fault-storm, lock protocols

const STORM = { size: '512M', ops: '1' };

function stormBench(threads: number, mmapLock: string, faultLock: string): Bench {
  const what = { bench: 'fault-storm', model: 'none', threads, cpus: CPUS, mmap_lock: mmapLock, fault_lock: faultLock, ...placement(threads), ...META };
  return {
    what,
    run: async () => {
      const r = await runOnce('fault-storm', { procs: String(threads), cpus: String(CPUS), ...STORM, mmapLock, faultLock, lockStat: LOCK_STAT_TIMING });
      if (!r.phase) throw new Error('fault-storm reported no measured phase');
      return {
        ...what,
        ops: r.phase.faults,
        seconds: r.phase.seconds,
        // report.faults_per_s is the phase's rate when the scenario has a phase.
        rate_per_s: r.faults_per_s,
        rate_is: `faults / seconds of ${r.phase.what}`,
        per_task_faults_per_s: r.phase.per_task_faults_per_s,
        max_over_min: r.phase.fairness?.max_over_min ?? null,
        unfair: r.phase.fairness?.unfair ?? null,
        vma_lock: r.vma_lock,
        run_seconds: r.seconds,
        lock_stat_timing: LOCK_STAT_TIMING,
      };
    },
  };
}

/** per-vma / mmap for one (mmap_lock, threads), as a ratio of medians and run by run. */
interface StormRatio {
  mmap_lock: string;
  threads: number;
  oversubscribed: boolean;
  time_sliced: boolean;
  per_vma_over_mmap: number | null;
  paired_runs_min?: number;
  paired_runs_max?: number;
  why?: string;
}

function stormRatio(mmapLock: string, threads: number, mmap: Cell, perVma: Cell): StormRatio {
  const r: StormRatio = { mmap_lock: mmapLock, threads, ...placement(threads), per_vma_over_mmap: null };
  if (failed(mmap) || failed(perVma)) {
    r.why = 'a cell failed';
    return r;
  }
  r.per_vma_over_mmap = round(perVma.rate_per_s / mmap.rate_per_s, 2);
  // Interleaved runs pair up (run i of one with run i of the other): the spread of those ratios.
  const a = perVma.rate_per_s_runs as number[];
  const b = mmap.rate_per_s_runs as number[];
  const pairs = a.map((x, i) => x / b[i]);
  r.paired_runs_min = round(Math.min(...pairs), 2);
  r.paired_runs_max = round(Math.max(...pairs), 2);
  return r;
}

const stormCells: Cell[] = [];
const stormRatios: StormRatio[] = [];
for (const threads of THREADS) {
  for (const mmapLock of MMAP_LOCKS) {
    phase(`fault-storm: ${threads} thread(s), --mmap-lock ${mmapLock}`);
    const [mmap, perVma] = await measure(RUNS, FAULT_LOCKS.map((f) => stormBench(threads, mmapLock, f)));
    stormCells.push(mmap, perVma);
    stormRatios.push(stormRatio(mmapLock, threads, mmap, perVma));
  }
}
// The target is judged on the exact ratio of medians, not the rounded one printed.
const stormTarget = MMAP_LOCKS.map((mmapLock) => {
  const rate = (f: string) => {
    const c = stormCells.find((x) => x.threads === PER_VMA_TARGET.threads && x.mmap_lock === mmapLock && x.fault_lock === f);
    return c && !failed(c) ? c.rate_per_s : null;
  };
  const mmap = rate('mmap');
  const perVma = rate('per-vma');
  const exact = mmap && perVma ? perVma / mmap : null;
  return { mmap_lock: mmapLock, threads: PER_VMA_TARGET.threads, per_vma_over_mmap: exact === null ? null : round(exact, 2), meets_target: exact === null ? null : exact >= PER_VMA_TARGET.atLeast };
});

// ---------------------------------------------------------------- B. sga, sharing models

const SGA = { size: '64M', ops: '4' };

function sgaBench(model: string, procs: number): Bench {
  const what = { bench: 'sga', model, threads: procs, procs, cpus: CPUS, ...placement(procs), ...META };
  return {
    what,
    run: async () => {
      const r = await runOnce('sga', { model, procs: String(procs), cpus: String(CPUS), ...SGA, lockStat: LOCK_STAT_TIMING });
      return {
        ...what,
        ops: r.phase ? r.phase.faults : r.faults.total,
        seconds: r.phase ? r.phase.seconds : r.seconds,
        // report.faults_per_s is the phase's rate when the scenario has a phase.
        rate_per_s: r.faults_per_s,
        rate_is: r.phase ? `faults / seconds of ${r.phase.what}` : 'faults / whole-run seconds',
        pgtables_bytes: r.pgtables_bytes.total,
        pgtables_measured_at: r.pgtables_bytes.measured_at,
        faults_shared_pmd_copied: r.faults.shared_pmd_copied,
        lock_stat_timing: LOCK_STAT_TIMING,
      };
    },
  };
}

// The models are interleaved at each process count: one slow spell of the host hits them alike.
const sgaCells: Cell[] = [];
for (const procs of THREADS) {
  phase(`sga: ${procs} process(es), ${MODELS.length} models`);
  sgaCells.push(...await measure(RUNS, MODELS.map((m) => sgaBench(m, procs))));
}

// ---------------------------------------------------------------- C. sga-1500, machine memory

interface MemoryCell {
  bench: 'sga-1500';
  model: string;
  scale: string;
  procs?: number;
  machine_bytes?: number;
  machine_bytes_per_process?: number;
  /** report.seconds: the machine's run, from starting the CPU workers to the last one's end. */
  seconds?: number;
  /** Around runScenario: building the programs and the machine, the run, the report. */
  wall_seconds?: number;
  oom_killed?: number;
  pgtables_bytes?: number;
  targets?: { seconds_under_60: boolean; machine_bytes_under_2GiB: boolean };
  error?: string;
  cores: number;
  node: string;
  date: string;
}

async function memoryRun(model: string, scale: string, judge: boolean): Promise<MemoryCell> {
  const cell: MemoryCell = { bench: 'sga-1500', model, scale, ...META };
  phase(`sga-1500: ${model} at scale ${scale}`);
  try {
    const t0 = performance.now();
    bar.update(++runsDone);
    const r = await runOnce('sga-1500', { model, scale, lockStat: LOCK_STAT_TIMING });
    Object.assign(cell, {
      procs: r.procs,
      machine_bytes: r.machine_bytes,
      machine_bytes_per_process: Math.round(r.machine_bytes / r.procs),
      seconds: r.seconds,
      wall_seconds: round((performance.now() - t0) / 1000, 3),
      oom_killed: r.processes.oom_killed,
      pgtables_bytes: r.pgtables_bytes.total,
    });
    if (judge) cell.targets = { seconds_under_60: r.seconds < SGA1500_SECONDS_TARGET, machine_bytes_under_2GiB: r.machine_bytes < SGA1500_BYTES_TARGET };
  } catch (e) {
    cell.error = message(e);
  }
  return cell;
}

const memoryCells = [
  await memoryRun('none', '1/1000', false),
  await memoryRun('map-shared-pt', '1/1000', false),
  await memoryRun('none', '1/100', true),
  await memoryRun('map-shared-pt', '1/100', true),
];
bar.stop();

// ---------------------------------------------------------------- output

// --csv: every cell as one CSV table (csv-stringify), nothing else.
if (process.argv.includes('--csv')) {
  await new Promise<void>((done) => process.stdout.write(recordsCsv([...stormCells, ...sgaCells, ...memoryCells] as unknown as Record<string, unknown>[]), () => done()));
  process.exit(0);
}

process.stdout.write(`${JSON.stringify({
  bench: 'locks',
  ...META,
  runs_per_cell: RUNS,
  lock_stat_timing: LOCK_STAT_TIMING,
  fault_storm: {
    options: { cpus: CPUS, ...STORM },
    cells: stormCells,
    per_vma_over_mmap: stormRatios,
    target: { what: `per-vma faults/s >= ${PER_VMA_TARGET.atLeast} x mmap faults/s, fault-storm, ${PER_VMA_TARGET.threads} threads`, results: stormTarget },
  },
  sga: { options: { cpus: CPUS, ...SGA }, cells: sgaCells },
  sga_1500: {
    cells: memoryCells,
    targets: { seconds_under: SGA1500_SECONDS_TARGET, machine_bytes_under: SGA1500_BYTES_TARGET, judged_on: 'none (the slower: it builds every client\'s tables, then OOM-kills) and map-shared-pt, at scale 1/100' },
  },
})}\n`);

const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 });
/** A rate as people read it: "1.23M/s", "456.7K/s" (Intl's compact notation). */
const rate = (r: number): string => `${compact.format(r)}/s`;

/** A cell's median rate with its runs' range, or its error. */
function rateCell(c: Cell | undefined): string {
  if (!c) return '-';
  if (failed(c)) return `ERROR: ${c.error}`;
  const all = c.rate_per_s_runs as number[];
  return `${rate(c.rate_per_s)}\n(${rate(Math.min(...all))} .. ${rate(Math.max(...all))})`;
}

const threadsLabel = (t: number) => (t > META.cores ? `${t} (oversubscribed)` : String(t));
const style = { head: [], border: [] };

// A: one row per (threads, mmap_lock), both fault locks side by side with their ratio.
const a = new Table({
  head: ['threads', 'mmap-lock', 'fault-lock mmap', 'fault-lock per-vma', 'per-vma / mmap (run by run)', 'max/min per task (mmap, per-vma)'],
  style,
  colAligns: ['right', 'left', 'right', 'right', 'right', 'right'],
});
for (const r of stormRatios) {
  const cell = (f: string) => stormCells.find((c) => c.threads === r.threads && c.mmap_lock === r.mmap_lock && c.fault_lock === f);
  const [mmap, perVma] = [cell('mmap'), cell('per-vma')];
  const fair = (c: Cell | undefined) => (c && !failed(c) ? String(c.max_over_min) : '-');
  a.push([
    threadsLabel(r.threads), r.mmap_lock, rateCell(mmap), rateCell(perVma),
    r.per_vma_over_mmap === null ? `n/a (${r.why})` : `${r.per_vma_over_mmap.toFixed(2)}x (${r.paired_runs_min?.toFixed(2)}..${r.paired_runs_max?.toFixed(2)})`,
    `${fair(mmap)}, ${fair(perVma)}`,
  ]);
}

// B: a model per row, a process count per column: faults/s, and the page tables at the barrier.
const b = new Table({ head: ['model', ...THREADS.map((p) => `${threadsLabel(p)} procs`)], style, colAligns: ['left', ...THREADS.map(() => 'right' as const)] });
for (const model of MODELS) {
  b.push([model, ...THREADS.map((p) => {
    const c = sgaCells.find((x) => x.model === model && x.threads === p);
    return c && !failed(c) ? `${rateCell(c)}\n${c.ops} faults, ${c.seconds} s\npgtables ${bytes(c.pgtables_bytes as number)}` : rateCell(c);
  })]);
}

// C: machine memory per simulated process.
const c = new Table({
  head: ['model', 'scale', 'procs', 'machine memory', 'per process', 'seconds (run / wall)', 'OOM-killed', 'targets (< 60 s, < 2 GiB)'],
  style,
  colAligns: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
});
for (const m of memoryCells) {
  if (m.error !== undefined) {
    c.push([m.model, m.scale, '', `ERROR: ${m.error}`, '', '', '', '']);
    continue;
  }
  const t = m.targets;
  c.push([
    m.model, m.scale, m.procs, bytes(m.machine_bytes!), `${m.machine_bytes_per_process!.toLocaleString('en-US')} B`, `${m.seconds} / ${m.wall_seconds}`, m.oom_killed,
    t ? `${t.seconds_under_60 ? 'met' : 'MISSED'}, ${t.machine_bytes_under_2GiB ? 'met' : 'MISSED'}` : '(not judged)',
  ]);
}

const lines = [
  '',
  `ptlab lock protocols on ${META.cores} cores, node ${META.node}, ${META.date}; median of ${RUNS} runs, ${CPUS} simulated CPUs`,
  '',
  `A. fault-storm (--size ${STORM.size} --ops ${STORM.ops}): faults/s over the storm phase, median (min .. max)`,
  a.toString(),
  `oversubscribed: more threads than the host's ${META.cores} cores; any count above ${CPUS} is also time-sliced by ptlab's run queue on the ${CPUS} simulated CPUs.`,
  ...stormTarget.map((t) => `target (per-vma >= ${PER_VMA_TARGET.atLeast}x mmap, ${t.threads} threads, --mmap-lock ${t.mmap_lock}): ` +
    (t.per_vma_over_mmap === null ? 'n/a (a cell failed)' : `${t.per_vma_over_mmap.toFixed(2)}x  ${t.meets_target ? 'meets target' : 'BELOW target'}`)),
  '',
  `B. sga (--size ${SGA.size} --ops ${SGA.ops}): faults/s over the touches (barrier 1 to 2), median (min .. max); pgtables_bytes.total at the barrier`,
  b.toString(),
  'The models do different numbers of faults for the same work (a sharing model\'s guest faults once per PMD, not once per page): compare faults/s within a model.',
  '',
  'C. sga-1500: machine memory (the SharedArrayBuffer) per simulated process, one run each',
  c.toString(),
  '',
  `lock_stat timing: ${LOCK_STAT_TIMING ? 'on' : 'off'} in every run.`,
];
process.stdout.write(`${lines.join('\n')}\n`);
