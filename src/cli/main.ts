/**
 * `ptlab`: run scenarios under sharing models and report what the checkers found.
 * Exit status: 0 every checker passed; 1 a checker found a violation; 2 bad input.
 */
import Table from 'cli-table3';
import { availableParallelism } from 'node:os';
import { Command, CommanderError } from 'commander';
import { pino } from 'pino';
import { MODELS } from '../models/index.js';
import { SCENARIOS } from '../scenarios/index.js';
import { Presets, SingleBar } from 'cli-progress';
import { compareCsv, type CompareReport, mergeCompareFiles, mergeSweep, renderCompare, type Sweep, sweepOf, sweepShard } from './compare.js';
import { compareHtml } from './html.js';
import { reportHtml } from './report.js';
import { isPluginSpec, loadModelPlugin, PluginError } from '../models/plugin.js';
import { isLockPluginSpec, loadLockPlugin, LockPluginError } from '../sync/lock_plugin.js';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { PTLAB_VERSION } from './version.js';
import { z } from 'zod';
import { type ExploreResult, exploreShard, mergeShardFiles, mergeShards, replay, runToken, tokenRunOptions } from './explore.js';
import { parseShard, progressBar, shardKind, shardTasks } from './shard.js';
import { diffKernel, renderDiff } from './diff_kernel.js';
import { OP_NAMES } from '../proc/program.js';
import { toChromeTrace } from '../trace/chrome.js';
import { traceHtml } from './trace_html.js';
import { shrink } from './shrink.js';
import { decodeToken, TokenError } from '../sched/token.js';
import { intString, parseRunOptions, RUNS_MAX, seedString, UsageError } from './options.js';
import { renderRun } from './render.js';
import { runScenario } from './run.js';
import { checkTortureOptions, renderTorture, STAT_INTERVAL_DEFAULT, torture, TORTURE_BUGS, TORTURE_LOCKS, type TortureOptions } from './torture.js';

const log = pino({ level: process.env.PTLAB_LOG ?? 'warn', base: undefined }, pino.destination({ fd: 2, sync: true }));

/** A comma-separated option: its items, or a UsageError naming the option when there are none. */
function list(v: unknown, option: string): string[] {
  const items = String(v ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
  if (items.length === 0) throw new UsageError(`${option} must name at least one`);
  return items;
}

/** Bad input: one line on stderr naming the field, exit 2. */
function fail(msg: string): never {
  process.stderr.write(`ptlab: ${msg.replace(/\s+/g, ' ').trim()}\n`);
  process.exit(2);
}

/** An option through its zod schema (messages name the option); bad input ends here. */
function checked<T>(schema: z.ZodType<T>, v: unknown): T {
  const r = schema.safeParse(String(v));
  if (!r.success) fail(r.error.issues[0].message);
  return r.data;
}

/** Errors that are the user's input: a bad option, token, scenario file or output path. */
function isBadInput(e: unknown): e is Error {
  return e instanceof UsageError || e instanceof TokenError;
}

/**
 * Exit 3 is unreachable: an error no check anticipated is still one line, and the run failed
 * (exit 1); the stack goes to the log (PTLAB_LOG=debug).
 */
function internalError(e: unknown): never {
  if (isBadInput(e)) fail(e.message);
  log.debug({ err: e }, 'internal error');
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`ptlab: internal error (a ptlab bug, not your input): ${msg.replace(/\s+/g, ' ').slice(0, 300)}\n`);
  process.exit(1);
}
process.on('uncaughtException', internalError);
process.on('unhandledRejection', internalError);

/** Opens `path` for writing before a long run, so that an unwritable path fails first (exit 2). */
/** An explore answer (explore's own, or merged shards'): JSON, or the header and the verdict; the exit status. */
function printExplore(r: ExploreResult, json: boolean, header: string): void {
  if (json) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    const lines = [header];
    if (r.ok) lines.push(`OK: no checker failed in ${r.runs} runs`, `last run: ptlab replay ${r.token} (ptlab trace TOKEN draws it)`);
    else {
      lines.push(`FAILED on run ${r.runs}:`);
      for (const v of r.violations.slice(0, 5)) lines.push(`  [${v.checker}] ${v.message}`);
      lines.push(`replay: ptlab replay ${r.token}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  }
  process.exitCode = r.ok ? 0 : 1;
}

/** --shard i/n|auto (auto: from the batch engine's environment), or undefined; bad input exits 2. */
function shardOption(raw: Record<string, unknown>): { index: number; count: number } | undefined {
  try {
    return raw.shard === undefined ? undefined : parseShard(String(raw.shard), process.env);
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
}

/** A token's run again with tracing on: its Chrome trace, the run's report, a title and the verdict in words. */
async function tracedRun(token: string, t: ReturnType<typeof decodeToken>) {
  let cpus: number[][] = [];
  const r = await runToken(t, false, undefined, (c) => (cpus = c));
  const title = `ptlab ${t.scenario} --model ${t.model}${t.bug ? ` --bug ${t.bug}` : ''}`;
  const trace = toChromeTrace(cpus, OP_NAMES, title, r.violations);
  const verdict = r.ok ? 'passed every checker' : `failed: [${r.violations[0].checker}] ${r.violations[0].message}`;
  return { r, cpus, trace, title, verdict, html: () => traceHtml(trace.traceEvents, { title, token, ok: r.ok, verdict: `the run ${verdict}` }) };
}

/** A --model that names a plugin (a path or a package): loaded and registered; its key replaces it. */
async function useModel(spec: unknown): Promise<unknown> {
  if (typeof spec !== 'string' || !isPluginSpec(spec)) return spec;
  try {
    return await loadModelPlugin(spec);
  } catch (e) {
    if (e instanceof PluginError) fail(e.message);
    throw e;
  }
}

/**
 * --mmap-lock / --host-lock values that name lock plugins (a path or a package; in a list, each
 * item): loaded and checked (a plugin that cannot be used is bad input), each replaced by its key.
 */
async function useLocks(raw: Record<string, unknown>): Promise<void> {
  for (const [k, option] of [['mmapLock', '--mmap-lock'], ['hostLock', '--host-lock']] as const) {
    if (typeof raw[k] !== 'string') continue;
    const items: string[] = [];
    for (const item of String(raw[k]).split(',')) {
      const spec = item.trim();
      try {
        items.push(isLockPluginSpec(spec) ? await loadLockPlugin(spec, option) : spec);
      } catch (e) {
        if (e instanceof LockPluginError) fail(e.message);
        throw e;
      }
    }
    raw[k] = items.join(',');
  }
}

/** --html FILE: the self-contained report page (opened first, so a bad path is bad input before any run). */
function writeOutput(fd: number, path: string, html: string, option = '--html'): void {
  try {
    writeSync(fd, html);
    closeSync(fd);
  } catch (e) {
    fail(`${option} ${path}: writing failed (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function openOutput(path: string, option: string): number {
  try {
    return openSync(path, 'w');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    fail(`${option} ${path}: cannot be written (${code})`);
  }
}

const program = new Command();
program.name('ptlab').description('A laboratory for Linux page-table sharing across processes').exitOverride()
  .version(PTLAB_VERSION, '-V, --version', 'ptlab\'s version')
  // Bad input is one line: commander's "(Did you mean --models?)" joins its error's line.
  .configureOutput({ outputError: (str, write) => write(`${str.replace(/\s*\n\s*/g, ' ').trim()}\n`) });

program
  .command('list')
  .description('the scenarios and sharing models')
  .option('--json', 'one JSON object on stdout')
  .action((o: { json?: boolean }) => {
    const scenarios = Object.values(SCENARIOS).map((s) => ({ name: s.name, summary: s.summary, details: s.details, defaults: s.defaults }));
    const models = Object.values(MODELS).map((m) => ({ name: m.name, seed: m.seed, rules: m.rules, bugs: m.bugs }));
    if (o.json) {
      process.stdout.write(JSON.stringify({ scenarios, models }) + '\n');
      return;
    }
    // Two columns, the text wrapped to the terminal (100 columns when not a terminal): cli-table3
    // with no borders, so no line runs past the screen.
    const width = Math.max(60, Math.min(process.stdout.columns ?? 100, 160));
    const none = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: ' ', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' ' };
    const table = () => new Table({ chars: none, style: { head: [], border: [], 'padding-left': 1, 'padding-right': 0 }, colWidths: [21, width - 24], wordWrap: true });
    const st = table();
    for (const s of scenarios) st.push([s.name, `${s.summary}\n(${s.details})`]);
    const mt = table();
    for (const m of models) mt.push([m.name, [m.seed, m.rules, ...Object.entries(m.bugs).map(([b, d]) => `--bug ${b}: ${d}`)].join('\n')]);
    const text = ['Scenarios:', st.toString(), '', 'Models:', mt.toString()].join('\n');
    process.stdout.write(text.split('\n').map((l) => l.trimEnd()).join('\n') + '\n');
  });

/** --debug turns on the debug checks: the lockset checks (--lockset). */
function debugOptions(raw: Record<string, unknown>): Record<string, unknown> {
  const { debug, ...rest } = raw;
  return debug === true ? { ...rest, lockset: true } : rest;
}

/** The workload options `run` and `compare` share: the machine, the scenario's sizes, its seed. */
function workloadOptions(c: Command): Command {
  return c
    .option('--cpus <n>', 'simulated CPUs (worker threads); default min(2, cores)')
    .option('--procs <n>', 'processes')
    .option('--size <bytes>', 'size of the shared mapping (64M, 1G, ...)')
    .option('--ops <n>', 'operations per process after set-up')
    .option('--seed <n>', 'seed of the scenario\'s choices', '1')
    .option('--mem <bytes>', 'simulated physical memory (default 512G, the seed machine)')
    .option('--scale <fraction>', 'a scaled scenario\'s size and memory (sga-1500; default 1/100)')
    .option('--deadline <ms>', 'watchdog deadline of every wait', '20000')
    .option('--page-data <bytes>', 'page data kept per 4 KiB page: full, or a power of two of bytes (default: full unless the machine is too big)')
    .option('--no-lock-stat', 'do not time lock waits and holds');
}

/** A sweep's output, as its command prints it: compare's table (or CSV, JSON); run's reports, then the table. */
function printSweep(command: Sweep['command'], report: CompareReport, f: Record<string, unknown>): void {
  const table = () => renderCompare(report, f.wide === true, command) + '\n';
  process.stdout.write(f.json ? JSON.stringify(report) + '\n' : f.csv ? compareCsv(report)
    : command === 'run' ? report.runs.map((r) => renderRun(r) + '\n\n').join('') + table() : table());
  process.exitCode = report.runs.every((r) => r.ok) ? 0 : 1;
}

/**
 * compare, and run given lists: the sweep's runs (--jobs at once, --shard's slice), its --out
 * shard, its output. A shard of several prints one line (or, with --json, the shard itself).
 */
async function runSweep(sweep: Sweep, raw: Record<string, unknown>): Promise<void> {
  const jobs = raw.jobs === undefined ? 1 : checked(intString('--jobs', 1, 256), raw.jobs);
  const shard = shardOption(raw);
  const sharded = shard !== undefined && shard.count > 1;
  if (sharded && raw.html !== undefined) fail('--html needs the whole sweep: run ptlab merge --html FILE on the shards');
  const outFd = raw.out === undefined ? -1 : openOutput(String(raw.out), '--out');
  const htmlFd = raw.html === undefined ? -1 : openOutput(String(raw.html), '--html');
  const total = sweep.points.length * sweep.repeat;
  const bar = progressBar(`${sweep.command} ${sweep.scenario}`, shardTasks(total, shard).length, !raw.json && !raw.csv);
  let sh;
  try {
    sh = await sweepShard(sweep, { jobs, shard, onRun: (d) => bar.update(d) });
  } finally {
    bar.stop();
  }
  if (outFd >= 0) writeOutput(outFd, String(raw.out), JSON.stringify(sh) + '\n', '--out');
  if (sharded) {
    const failed = sh.results.filter((r) => !r.report.ok).length;
    process.stdout.write(raw.json ? JSON.stringify(sh) + '\n' : `shard ${shard!.index}/${shard!.count}: ${sh.results.length} of ${total} run(s) (points x repeats), ` +
      `${failed > 0 ? `${failed} failed a checker` : 'every checker passed'}${raw.out !== undefined ? `; written to ${String(raw.out)} (ptlab merge gives the sweep's table)` : ''}\n`);
    process.exitCode = failed > 0 ? 1 : 0;
    return;
  }
  const report = mergeSweep([sh]);
  if (htmlFd >= 0) writeOutput(htmlFd, String(raw.html), compareHtml(report));
  printSweep(sweep.command, report, raw);
}

/** `run` given lists: its grid (--size, then --cpus, then --procs, as compare's) as a sweep. */
function runPoints(scenario: string, raw: Record<string, unknown>): Sweep {
  const repeat = checked(intString('--repeat', 1, 100), raw.repeat);
  const axis = (k: 'procs' | 'cpus' | 'size') => (raw[k] === undefined ? [undefined] : list(raw[k], `--${k}`));
  try {
    const points = axis('size').flatMap((size) => axis('cpus').flatMap((cpus) => axis('procs').map((procs) =>
      parseRunOptions(scenario, { ...debugOptions(raw), html: undefined, size, cpus, procs }))));
    return sweepOf('run', scenario, points, repeat);
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
}

/** The sweep options compare and run share: --repeat, --jobs, --shard, --out, --csv. */
function sweepOptions(c: Command, jobsHelp: string): Command {
  return c
    .option('--repeat <n>', 'runs per point: the table shows each point\'s median faults/s and its spread', '1')
    .option('--jobs <n>', jobsHelp)
    .option('--shard <i/n>', 'run only shard i of n of the points x repeats (task t = point x repeat + its repeat; shard t mod n); auto: from Slurm, Kubernetes, GitLab or PTLAB_SHARD_INDEX/COUNT')
    .option('--out <file>', 'write this shard\'s runs for ptlab merge (which prints the unsharded table)')
    .option('--csv', 'one CSV row per point on stdout');
}

const SWEEP_HELP = '\n--procs, --cpus and --size take comma-separated lists (--procs 1,2,4) and sweep them, one row\n' +
  'per point, with will-it-scale\'s linear column (the smallest task count\'s rate, scaled). --jobs N runs N\n' +
  'points (or repeats) at once, each on its own machine: parallel runs share the host\'s cores and slow\n' +
  'each other, so faults/s fall; rows, their order, page-table bytes and verdicts do not depend on N.\n' +
  '--shard i/n with --out FILE runs a slice; ptlab merge FILE... prints the whole table.';

workloadOptions(program
  .command('run')
  .description('run a scenario and check it')
  .argument('<scenario>', `one of: ${Object.keys(SCENARIOS).join(', ')}, or a scenario file (*.json)`)
  .option('--model <model>', `sharing model: ${Object.keys(MODELS).join(', ')} (default: none, or the scenario's only model)`)
  .option('--bug <name>', 'reintroduce a known bug of the model')
  .option('--mmap-lock <protocol>', 'mmap_lock protocol: rwsem (as Linux), qrwlock (fair, queued) or a lock plugin (./my_lock.mjs)', 'rwsem')
  .option('--host-lock <protocol>', 'a sharing model\'s host mm\'s mmap_lock: rwsem, qrwlock or a lock plugin (default: --mmap-lock\'s)')
  .option('--fault-lock <lock>', 'the fault path\'s lock: mmap (mmap_lock) or per-vma (the VMA\'s own lock first, Linux 6.4+) (default: mmap, or the scenario\'s)')
  .option('--ptl <locks>', 'PTE-table locks: split (one per table, x86-64\'s) or mm (the mm\'s page_table_lock)', 'split')
  .option('--tlb-flush <how>', 'remote TLB flushes: ipi (x86: an interrupt each CPU takes, so a CPU with interrupts off delays it) or broadcast (arm64 TLBI, x86 INVLPGB: no interrupt) (default: ipi, or the scenario\'s)')
  .option('--unshare-flush <how>', 'the GUP-fast sync after a shared page table is unshared: per-unshare (an IPI broadcast per table, the 2025 fix) or batched (one per mmu_gather, only when a table stopped being shared; Linux since Dec 2025)', 'batched'))
  .option('--lockset', 'check each kernel write against the lock that guards it (lockdep __guarded_by); slower')
  .option('--debug', 'the debug checks: --lockset')
  .option('--html <file>', 'also write a self-contained HTML report with charts (no network needed to view it)')
  .option('--wide', 'lock_stat in /proc/lock_stat\'s own widths, every column (the default fits 120 columns)')
  .option('--json', 'one JSON object on stdout (a sweep: {runs: [...]})');
sweepOptions(program.commands[program.commands.length - 1], 'runs at once, each on its own machine (default 1): see below')
  .addHelpText('after', SWEEP_HELP + '\nA sweep (a list, --repeat, --csv, --jobs, --shard or --out) prints each point\'s report, then the table.')
  .action(async (scenario: string, raw: Record<string, unknown>) => {
    let o;
    raw.model = await useModel(raw.model);
    await useLocks(raw);
    if (['procs', 'cpus', 'size'].some((k) => String(raw[k] ?? '').includes(',')) || String(raw.repeat) !== '1' ||
      ['csv', 'jobs', 'shard', 'out'].some((k) => raw[k] !== undefined)) return runSweep(runPoints(scenario, raw), raw);
    try {
      o = parseRunOptions(scenario, { ...debugOptions(raw), html: undefined });
    } catch (e) {
      if (e instanceof UsageError) fail(e.message);
      throw e;
    }
    log.info({ scenario, options: o }, 'run start');
    const htmlFd = raw.html === undefined ? -1 : openOutput(String(raw.html), '--html');
    const r = await runScenario(scenario, o, undefined, !o.json);
    if (htmlFd >= 0) writeOutput(htmlFd, String(raw.html), compareHtml({ scenario, seed: r.seed, cores: r.cores, runs: [r] }));
    log.info({ ok: r.ok, seconds: r.seconds, violations: r.violations.length }, 'run end');
    if (!r.ok) log.info({ violations: r.violations.slice(0, 5), seed: r.seed }, 'checker found a violation'); // the report says it: no raw log line on the terminal
    process.stdout.write((o.json ? JSON.stringify(r) : renderRun(r, raw.wide === true)) + '\n');
    process.exitCode = r.ok ? 0 : 1;
  });

workloadOptions(program
  .command('compare')
  .description('run one scenario under several models, same options and seed, and compare them')
  .argument('<scenario>', `one of: ${Object.keys(SCENARIOS).join(', ')}, or a scenario file (*.json)`)
  .option('--models <list>', 'comma-separated models (default: every model the scenario applies to)')
  .option('--mmap-lock <list>', 'comma-separated mmap_lock protocols (rwsem, qrwlock, ./my_lock.mjs): each model runs under each', 'rwsem')
  .option('--host-lock <list>', 'comma-separated host-mm lock protocols (rwsem, qrwlock, ./my_lock.mjs) (default: each run\'s --mmap-lock)')
  .option('--fault-lock <list>', 'comma-separated fault-path locks (mmap, per-vma): each of the above runs under each', 'mmap')
  .option('--ptl <list>', 'comma-separated PTE-table locks (split, mm): each of the above runs under each', 'split'))
  .option('--lockset', 'check each kernel write against the lock that guards it (lockdep __guarded_by); slower')
  .option('--debug', 'the debug checks: --lockset')
  .option('--wide', 'every column (the default table fits 120 columns)')
  .option('--html <file>', 'also write a self-contained HTML report with charts (no network needed to view it)')
  .option('--json', 'one JSON object {runs: [...]} on stdout');
sweepOptions(program.commands[program.commands.length - 1], 'grid points x repeats run at once, each on its own machine (default 1: compare measures throughput, ' +
  'and parallel points share the cores and slow each other; the rows, their order, page-table bytes and verdicts do not depend on N)')
  .addHelpText('after', SWEEP_HELP + '\nEvery model, under every lock choice given, runs at every point.')
  .action(async (scenario: string, raw: Record<string, unknown>) => {
    let opts;
    let repeat = 1;
    if (raw.models !== undefined) raw.models = (await Promise.all(String(raw.models).split(',').map((m) => useModel(m.trim())))).join(',');
    await useLocks(raw);
    try {
      repeat = checked(intString('--repeat', 1, 100), raw.repeat);
      const points = (k: 'procs' | 'cpus' | 'size') => (raw[k] === undefined ? [undefined] : list(raw[k], `--${k}`));
      const only = SCENARIOS[scenario]?.models?.only;
      const models = list(raw.models === undefined ? (only ?? Object.keys(MODELS)).join(',') : raw.models, '--models');
      const protocols = list(raw.mmapLock, '--mmap-lock');
      const faultLocks = list(raw.faultLock, '--fault-lock');
      const ptls = list(raw.ptl, '--ptl');
      const hostLocks = raw.hostLock === undefined ? [undefined] : list(raw.hostLock, '--host-lock');
      const sweep = points('size').flatMap((size) => points('cpus').flatMap((cpus) => points('procs').map((procs) => ({ size, cpus, procs }))));
      opts = models.flatMap((model) => protocols.flatMap((mmapLock) => hostLocks.flatMap((hostLock) => faultLocks.flatMap((faultLock) => ptls.flatMap((ptl) =>
        sweep.map((pt) => parseRunOptions(scenario, { ...debugOptions(raw), models: undefined, repeat: undefined, wide: undefined, csv: undefined, html: undefined, out: undefined, model, mmapLock, hostLock, faultLock, ptl, ...pt })))))));
    } catch (e) {
      if (e instanceof UsageError) fail(e.message.replace('--model ', '--models: each '));
      throw e;
    }
    // --repeat: each point's runs, same seed; the one with the median faults/s stands for it (src/cli/compare.ts mergeSweep).
    log.info({ scenario, points: opts.length, repeat }, 'compare sweep');
    await runSweep(sweepOf('compare', scenario, opts, repeat), raw);
  });

program
  .command('explore')
  .description('run a scenario in controlled mode until a checker fails; print the replay token')
  .argument('<scenario>', 'a scenario name or file')
  .option('--model <model>', 'sharing model (default: none, or the scenario\'s only model)')
  .option('--bug <name>', 'reintroduce a known bug of the model')
  .option('--strategy <s>', 'random (random walk), pct (Burckhardt et al., ASPLOS 2010) or mix (the two by turns) (default: pct, or the scenario\'s own)')
  .option('--depth <d>', 'PCT bug depth: d - 1 priority change points', '3')
  .option('--runs <n>', 'runs at most', '100')
  .option('--seed <n>', 'seed of the runs\' seeds', '1')
  .option('--cpus <n>', 'simulated CPUs (default min(2, cores))')
  .option('--procs <n>', 'processes')
  .option('--size <bytes>', 'size of the shared mapping')
  .option('--ops <n>', 'operations per process after set-up')
  .option('--deadline <ms>', 'watchdog deadline of every wait', '20000')
  .option('--mmap-lock <protocol>', 'mmap_lock protocol: rwsem, qrwlock or a lock plugin (./my_lock.mjs)')
  .option('--host-lock <protocol>', 'a host mm\'s mmap_lock: rwsem, qrwlock or a lock plugin')
  .option('--fault-lock <lock>', 'the fault path\'s lock: mmap or per-vma (default: mmap, or the scenario\'s)')
  .option('--ptl <locks>', 'PTE-table locks: split or mm')
  .option('--tlb-flush <how>', 'remote TLB flushes: ipi or broadcast (default: ipi, or the scenario\'s)')
  .option('--unshare-flush <how>', 'GUP-fast sync after an unshare: per-unshare or batched')
  .option('--jobs <n>', 'controlled runs at once, each on its own machine (default: half the cores, at least 1); the answer does not depend on it')
  .option('--shard <i/n>', 'run only shard i of n (runs i, i+n, ...); auto: from Slurm, Kubernetes, GitLab or PTLAB_SHARD_INDEX/COUNT')
  .option('--out <file>', 'write this shard\'s result for ptlab merge')
  .option('--checkpoint <file>', 'keep progress in FILE as runs complete')
  .option('--resume', 'continue from --checkpoint FILE (the same command)')
  .option('--html <file>', 'also write the timeline of the failing run (or, when every run passed, the last) as one self-contained page')
  .option('--json', 'one JSON object on stdout')
  .action(async (scenario: string, raw: Record<string, unknown>) => {
    raw.model = await useModel(raw.model);
    await useLocks(raw);
    // A controlled run hands the turn from CPU to CPU by futex wake-ups: one of its threads runs at
    // a time, and each handoff wants a free core to wake on. With every core busy a woken CPU waits
    // for a scheduler slice, so a job per core ran slower here than one job (npm run bench's
    // explore-jobs rows: --jobs 2 / --jobs 1 = 0.80x on 2 cores): half the cores by default.
    const jobs = raw.jobs === undefined ? Math.max(1, Math.floor(availableParallelism() / 2)) : checked(intString('--jobs', 1, 256), raw.jobs);
    const shard = shardOption(raw);
    if (raw.resume === true && raw.checkpoint === undefined) fail('--resume needs --checkpoint FILE');
    if (raw.html !== undefined && shard !== undefined && shard.count > 1) fail('--html needs the whole hunt: run ptlab trace --html on the merged token');
    const outFd = raw.out === undefined ? -1 : openOutput(String(raw.out), '--out');
    const htmlFd = raw.html === undefined ? -1 : openOutput(String(raw.html), '--html');
    const hint = SCENARIOS[scenario]?.explore;
    const strategy = raw.strategy === undefined ? (hint?.strategy ?? 'pct') : String(raw.strategy);
    if (strategy !== 'random' && strategy !== 'pct' && strategy !== 'mix') fail('--strategy must be random, pct or mix');
    const depth = checked(intString('--depth', 1, 16), raw.depth);
    const runs = checked(intString('--runs', 1, RUNS_MAX), raw.runs);
    const seed = checked(seedString('--seed'), raw.seed);
    const kept: Record<string, string> = {};
    for (const k of ['cpus', 'procs', 'size', 'ops', 'deadline', 'mmapLock', 'hostLock', 'faultLock', 'ptl', 'tlbFlush', 'unshareFlush']) {
      if (raw[k] !== undefined) kept[k] = String(raw[k]);
      else if (hint?.opts?.[k] !== undefined) kept[k] = hint.opts[k];
    }
    let o;
    try {
      o = parseRunOptions(scenario, { ...kept, model: raw.model, bug: raw.bug, lockStat: false });
    } catch (e) {
      if (e instanceof UsageError) fail(e.message);
      throw e;
    }
    const bar = raw.json || !process.stderr.isTTY ? null : new SingleBar({ format: 'explore {bar} {value}/{total} runs', hideCursor: true }, Presets.shades_classic);
    bar?.start(runs, 0);
    let r;
    try {
      const sh = await exploreShard(scenario, o, {
        strategy, depth, runs, seed, raw: { ...kept, lockStat: false }, onRun: (i) => bar?.update(i), jobs, shard,
        ...(raw.checkpoint !== undefined ? { checkpoint: String(raw.checkpoint), resume: raw.resume === true } : {}),
      });
      if (outFd >= 0) writeOutput(outFd, String(raw.out), JSON.stringify(sh) + '\n', '--out');
      r = mergeShards([sh]);
      if (shard !== undefined && shard.count > 1 && !raw.json) {
        bar?.stop();
        process.stdout.write(`shard ${shard.index}/${shard.count}: ${sh.executed} run(s), ${sh.failure ? `first failure at run ${sh.failure.run}` : 'no failure'}` +
          `${raw.out !== undefined ? `; written to ${String(raw.out)} (ptlab merge gives the hunt's answer)` : ''}\n`);
        process.exitCode = sh.failure ? 1 : 0;
        return;
      }
    } catch (e) {
      if (e instanceof UsageError) fail(e.message);
      throw e;
    }
    bar?.stop();
    // The hunt's answer as a timeline: its token traced (a replay is event for event the same run).
    if (htmlFd >= 0 && r.token) writeOutput(htmlFd, String(raw.html), (await tracedRun(r.token, decodeToken(r.token))).html());
    printExplore(r, raw.json === true, `ptlab explore ${scenario} --model ${o.model}${o.bug ? ` --bug ${o.bug}` : ''} --strategy ${strategy}${strategy !== 'random' ? ` --depth ${depth}` : ''}: ` +
      `${r.runs} run(s) in ${r.seconds} s (${r.runs_per_s} runs/s, ${r.cores} cores)`);
  });

program
  .command('replay')
  .description('run a replay token again: the same decisions, the same events, the same violation')
  .argument('<token>', 'a token printed by ptlab explore')
  .option('--json', 'one JSON object on stdout')
  .action(async (token: string, raw: Record<string, unknown>) => {
    await useModel(decodeToken(token).model);
    await useLocks({ ...decodeToken(token).opts });
    const r = await replay(token);
    // A replay is replayed by its token, never by --seed (that would be a free-mode run).
    process.stdout.write((raw.json ? JSON.stringify(r) : renderRun(r) + (r.ok ? '' : `\nreplay: ptlab replay ${token}`)) + '\n');
    process.exitCode = r.ok ? 0 : 1;
  });

program
  .command('trace')
  .description('run a replay token with tracing on and write the Chrome trace JSON that Perfetto opens, or (--html) an offline timeline page')
  .argument('<token>', 'a token printed by ptlab explore or shrink')
  .option('-o, --output <file>', 'where to write the JSON (with --html: only when given)', 'trace.json')
  .option('--html <file>', 'write the run as one self-contained HTML timeline (no network to view it)')
  .action(async (token: string, raw: Record<string, unknown>, cmd: Command) => {
    const t = decodeToken(token);
    await useModel(t.model);
    await useLocks({ ...t.opts });
    tokenRunOptions(t); // every check before the output is touched
    const json = raw.html === undefined || cmd.getOptionValueSource('output') !== 'default';
    const fd = json ? openOutput(String(raw.output), '-o') : -1;
    const hfd = raw.html === undefined ? -1 : openOutput(String(raw.html), '--html');
    const { r, cpus, trace, verdict, html } = await tracedRun(token, t);
    const write = (f: number, text: string, option: string, path: string) => {
      try {
        writeSync(f, text);
        closeSync(f);
      } catch (e) {
        fail(`${option} ${path}: writing failed (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    };
    if (fd >= 0) write(fd, JSON.stringify(trace), '-o', String(raw.output));
    if (hfd >= 0) write(hfd, html(), '--html', String(raw.html));
    const mms = new Set(trace.traceEvents.filter((e) => e.pid > 1).map((e) => e.pid)).size;
    const where = [fd >= 0 ? `${String(raw.output)} (open it in https://ui.perfetto.dev or chrome://tracing)` : '', hfd >= 0 ? `${String(raw.html)} (a timeline any browser opens offline)` : ''].filter((w) => w !== '').join(' and ');
    process.stdout.write(`${trace.traceEvents.length} events on ${cpus.length} CPU tracks and ${mms} address spaces' process tracks written to ${where}; the run ${verdict}\n`);
    // The trace is written either way; the exit status is the traced run's verdict, as replay's.
    process.exitCode = r.ok ? 0 : 1;
  });

program
  .command('shrink')
  .description('shorten a failing token\'s schedule while it fails with the same checker; print the new token')
  .argument('<token>', 'a token printed by ptlab explore')
  .option('--budget <n>', 'replays to try at most', '400')
  .option('--json', 'one JSON object on stdout')
  .action(async (token: string, raw: Record<string, unknown>) => {
    const budget = checked(intString('--budget', 1, 1_000_000), raw.budget);
    const t = decodeToken(token);
    await useModel(t.model);
    await useLocks({ ...t.opts });
    const r = await shrink(t, budget);
    if (raw.json) process.stdout.write(JSON.stringify(r) + '\n');
    else process.stdout.write(`shrunk ${r.from} decisions to ${r.to} in ${r.tries} replays (${r.seconds} s), still failing [${r.checker}]:\nptlab replay ${r.token}\n`);
  });

program
  .command('merge')
  .description('merge the shards of one explore hunt, compare sweep or run sweep (--shard i/n --out FILE): what the unsharded command prints')
  .argument('<files...>', 'every shard\'s --out file')
  .option('--json', 'one JSON object on stdout, as the command\'s --json')
  .option('--csv', 'compare and run shards: CSV, as the command\'s --csv')
  .option('--wide', 'compare and run shards: every column')
  .option('--html <file>', 'compare and run shards: also write the HTML report')
  .action((files: string[], raw: Record<string, unknown>) => {
    let r;
    try {
      if (shardKind(files[0]) === 'ptlab-compare-shard') {
        const m = mergeCompareFiles(files);
        const htmlFd = raw.html === undefined ? -1 : openOutput(String(raw.html), '--html');
        if (htmlFd >= 0) writeOutput(htmlFd, String(raw.html), compareHtml(m.report));
        printSweep(m.sweep.command, m.report, raw);
        return;
      }
      r = mergeShardFiles(files);
    } catch (e) {
      if (e instanceof UsageError) fail(e.message);
      throw e;
    }
    printExplore(r, raw.json === true, `ptlab merge: ${files.length} shard(s) of explore ${r.scenario} --model ${r.model} --strategy ${r.strategy}`);
  });

program
  .command('report')
  .description('draw saved results as one self-contained HTML page: a run\'s or compare\'s --json, or benchmark JSON lines (npm run bench, bench:races, bench:locks)')
  .argument('<files...>', 'JSON files: run --json, compare --json, or a benchmark\'s stdout')
  .requiredOption('--html <file>', 'where to write the page (no network needed to view it)')
  .action((files: string[], raw: Record<string, unknown>) => {
    let html: string;
    try {
      html = reportHtml(files);
    } catch (e) {
      if (e instanceof UsageError) fail(e.message);
      throw e;
    }
    writeOutput(openOutput(String(raw.html), '--html'), String(raw.html), html);
    process.stdout.write(`${String(raw.html)} written (${(html.length / 1024).toFixed(0)} KiB, self-contained)\n`);
  });

program
  .command('diff-kernel')
  .description('run a scenario file on ptlab and on this machine\'s Linux (native/ptkernel.c) and compare every op\'s result')
  .argument('<file>', 'a scenario file (*.json)')
  .option('--model <model>', 'sharing model (default: none, or the file\'s)')
  .option('--json', 'one JSON object on stdout')
  .action(async (file: string, raw: Record<string, unknown>) => {
    const r = await diffKernel(file, raw.model === undefined ? undefined : String(raw.model));
    process.stdout.write((raw.json ? JSON.stringify(r) : renderDiff(r)) + '\n');
    process.exitCode = r.ok ? 0 : 1;
  });

program
  .command('torture')
  .description('locktorture for ptlab\'s locks: readers and writers hammer one lock, mutual exclusion checked')
  .option('--lock <class/protocol>', `the lock: ${Object.keys(TORTURE_LOCKS).join(', ')}, or mmap_lock/./my_lock.mjs (a lock plugin)`, 'mmap_lock/rwsem')
  .option('--readers <n>', 'reader threads', '1')
  .option('--writers <n>', 'writer threads', '1')
  .option('--seconds <s>', 'how long', '2')
  .option('--bug <name>', `a planted broken lock: ${TORTURE_BUGS.join(', ')}`)
  .option('--deadline <ms>', 'watchdog deadline of every wait', '20000')
  .option('--stat-interval <s>', 'seconds between locktorture\'s periodic Writes/Reads lines (0: none)', String(STAT_INTERVAL_DEFAULT))
  .option('--json', 'one JSON object on stdout')
  .action(async (raw: Record<string, unknown>) => {
    const num = (k: string) => (/^\d+(\.\d+)?$/.test(String(raw[k])) ? Number(raw[k]) : NaN);
    const o: TortureOptions = {
      lock: String(raw.lock), readers: num('readers'), writers: num('writers'), seconds: num('seconds'),
      bug: raw.bug === undefined ? '' : String(raw.bug), deadlineMs: num('deadline'), statInterval: num('statInterval'),
      // lock_torture_stats prints as the run goes (JSON: in the report's `periodic`).
      onStats: raw.json ? undefined : (lines) => process.stdout.write(lines.join('\n') + '\n'),
    };
    // --lock mmap_lock/./my_lock.mjs: a lock plugin (sync/lock_plugin.ts) on an mm's mmap_lock word.
    const spec = o.lock.startsWith('mmap_lock/') ? o.lock.slice('mmap_lock/'.length) : '';
    if (!(o.lock in TORTURE_LOCKS) && isLockPluginSpec(spec)) {
      try {
        o.lock = `mmap_lock/${await loadLockPlugin(spec, '--lock')}`;
      } catch (e) {
        if (e instanceof LockPluginError) fail(e.message);
        throw e;
      }
    }
    const bad = checkTortureOptions(o) ?? (o.deadlineMs >= 10 ? null : '--deadline must be at least 10 ms');
    if (bad) fail(bad);
    const r = await torture(o);
    process.stdout.write((raw.json ? JSON.stringify(r) : renderTorture(r)) + '\n');
    process.exitCode = r.ok ? 0 : 1;
  });

/** What `ptlab batch` writes after each command's own output: its exit status. */
const BATCH_MARK = '@@ptlab-batch ';

// `ptlab batch FILE` (for npm run mutate): the commands in FILE (a JSON array of argument
// arrays, e.g. [["run", "sga", "--json"], ...]) one after another in this process, each one's
// output followed by a line `@@ptlab-batch {"code":N}` — its exit status. It saves a process
// start per command; a command that exits the process (bad input) ends the batch there.
program
  .command('batch', { hidden: true })
  .argument('<file>', 'a JSON array of ptlab argument arrays')
  .action(async (file: string) => {
    let list: string[][];
    try {
      list = z.array(z.array(z.string())).parse(JSON.parse(readFileSync(file, 'utf8')));
    } catch {
      fail(`batch ${file}: not a JSON array of argument arrays`);
    }
    for (const argv of list) {
      process.exitCode = 0;
      try {
        await program.parseAsync(['node', 'ptlab', ...argv]);
      } catch (e) {
        if (!(e instanceof CommanderError)) throw e;
        process.exitCode = e.exitCode === 0 ? 0 : 2;
      }
      process.stdout.write(`\n${BATCH_MARK}${JSON.stringify({ code: process.exitCode ?? 0 })}\n`);
    }
    process.exitCode = 0;
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0);
    process.exit(2); // commander already printed its one-line message
  }
  internalError(e);
}
