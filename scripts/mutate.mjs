#!/usr/bin/env node
// npm run mutate -- [--only NAME,...] [--json] [--runs N] [--keep]
//
// The mutation score: each mutants/NN-name.patch is a small patch to ptlab's kernel in the shape
// of a known Linux mm bug class. Each is applied to a scratch copy of the tree, built, and run
// through a fixed budget — the scenario catalog in free mode (--debug) under every model it applies to,
// the example scenario files (examples/kernel's programs included: each asserts what the real
// kernel answered), then `explore` on every race (and -vs-) scenario — stopping at the
// first run a checker fails. The unit tests play no part: only what a user's runs would catch.
// The unmutated tree runs the same budget first; a failure there is a false kill and ends it.
//
// --json prints {total, killed, score, baseline, budget, mutants: [{name, class, linux,
// killed_by, runs, by, message, seconds}]}; otherwise a table. Exit 0 when the budget ran (the
// score is the answer), 1 when the unmutated tree failed its own budget, 2 on bad input.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import Table from 'cli-table3';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MUTANTS = join(root, 'mutants');
/** What a scratch copy needs to build and run (dist/ptkernel is copied so cc is not run again). */
const COPY = ['src', 'workers', 'bench', 'scripts', 'bin', 'examples', 'native', 'package.json', 'tsconfig.json'];
/** Any one command of the budget: a stuck run is a kill by 'timeout' (ptlab's own watchdog should come first). */
const COMMAND_TIMEOUT_MS = 180_000;

const positive = (name) => (v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError(`${name} must be a whole number from 1 to 100000`);
  return n;
};
const program = new Command('mutate')
  .description('apply each mutant in mutants/ to a scratch copy and run the scenario catalog and explore against it')
  .option('--only <names>', 'comma-separated mutant names (NN-name or name)')
  .option('--runs <n>', 'explore runs per race scenario and model', positive('--runs'), 50)
  .option('--json', 'one JSON object on stdout')
  .option('--keep', 'keep the scratch copies (their paths go to stderr)')
  .option('--skip-baseline', 'do not run the budget on the unmutated tree first (no false-kill check)')
  .showHelpAfterError(false)
  .exitOverride();
let opts;
try {
  program.parse(process.argv);
  opts = program.opts();
} catch (e) {
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
  process.stderr.write(`mutate: ${String(e.message).replace(/^error: /, '').split('\n')[0]}\n`);
  process.exit(2);
}

/** A patch's header (text before the first `diff --git`): `Class:` and `Linux:` lines. */
function readMutant(file) {
  const text = readFileSync(join(MUTANTS, file), 'utf8');
  const head = text.slice(0, Math.max(0, text.indexOf('diff --git')));
  const field = (k) => (head.match(new RegExp(`^${k}:\\s*(.*)$`, 'mi')) ?? [])[1]?.trim() ?? '';
  return { file, name: file.replace(/\.patch$/, ''), class: field('Class'), linux: field('Linux') };
}

let mutants = existsSync(MUTANTS) ? readdirSync(MUTANTS).filter((f) => f.endsWith('.patch')).sort().map(readMutant) : [];
if (opts.only) {
  const want = opts.only.split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of want) {
    if (!mutants.some((m) => m.name === w || m.name.replace(/^\d+-/, '') === w)) {
      process.stderr.write(`mutate: --only: no mutant named '${w}' in mutants/\n`);
      process.exit(2);
    }
  }
  mutants = mutants.filter((m) => want.some((w) => m.name === w || m.name.replace(/^\d+-/, '') === w));
}
if (mutants.length === 0) {
  process.stderr.write('mutate: mutants/ holds no .patch files\n');
  process.exit(2);
}

const say = (s) => process.stderr.write(s + '\n');

/** Runs `node bin/ptlab.mjs ...args` in `dir`: {code, json, stderr, timedOut}. */
function ptlab(dir, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(dir, 'bin/ptlab.mjs'), ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      let json = null;
      try {
        json = JSON.parse(out);
      } catch {
        // (no JSON: a one-line refusal)
      }
      resolve({ code, json, stderr: err });
    });
  });
}

const BATCH_MARK = '@@ptlab-batch ';

/**
 * Runs `targets` (argument arrays; --json is added) in `dir` through `ptlab batch` — one process
 * for many commands — calling `each(i, {code, json, stderr, timedOut})` after each; `each`
 * returning true stops there. A command that ends the process (a refusal exits 2, a crash) is
 * reported with the process's status and the batch goes on from the next one in a new process;
 * one that gives no answer within COMMAND_TIMEOUT_MS is killed and reported as timed out.
 */
async function runTargets(dir, targets, each) {
  let from = 0;
  while (from < targets.length) {
    const file = join(dir, `.batch-${process.pid}.json`);
    writeFileSync(file, JSON.stringify(targets.slice(from).map((a) => [...a, '--json'])));
    const r = await new Promise((resolve) => {
      const child = spawn(process.execPath, [join(dir, 'bin/ptlab.mjs'), 'batch', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let i = from;
      let stopped = false;
      let timedOut = false;
      let timer;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, COMMAND_TIMEOUT_MS);
      };
      arm();
      child.stderr.on('data', (d) => (err += d));
      child.stdout.on('data', (d) => {
        out += d;
        for (let at = out.indexOf(BATCH_MARK); at >= 0 && !stopped; at = out.indexOf(BATCH_MARK)) {
          const eol = out.indexOf('\n', at);
          if (eol < 0) break;
          const { code } = JSON.parse(out.slice(at + BATCH_MARK.length, eol));
          const text = out.slice(0, at).trim();
          out = out.slice(eol + 1);
          let json = null;
          try {
            json = JSON.parse(text.slice(text.lastIndexOf('\n{') + 1));
          } catch {
            // (no report)
          }
          const stop = each(i, { code, json, stderr: err, timedOut: false });
          err = '';
          i++;
          arm();
          if (stop) {
            stopped = true;
            child.kill('SIGKILL');
          }
        }
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ next: i, stopped, code, err, timedOut });
      });
    });
    if (r.stopped || r.next >= targets.length) return;
    // The process ended inside command r.next: that command's answer is the process's.
    if (each(r.next, { code: r.timedOut ? -1 : r.code, json: null, stderr: r.err, timedOut: r.timedOut })) return;
    from = r.next + 1;
  }
}

/**
 * The budget, from the unmutated tree's catalog: every scenario in free mode under every model
 * it applies to (sga-1500 only under the sharing models: under none it takes a minute), the
 * example files, then explore on the races. A target that refuses a model (exit 2) is left out.
 */
async function planBudget(dir) {
  const list = await ptlab(dir, ['list', '--json']);
  if (list.code !== 0 || !list.json) throw new Error(`ptlab list --json failed: ${list.stderr.split('\n')[0]}`);
  const models = list.json.models.map((m) => m.name);
  const free = [];
  const races = [];
  for (const s of list.json.scenarios.map((x) => x.name)) {
    for (const m of models) {
      if (s === 'sga-1500' && m === 'none') continue;
      free.push(['run', s, '--model', m]);
      if (/^race-|-vs-/.test(s)) races.push(['explore', s, '--model', m, '--runs', String(opts.runs)]);
    }
  }
  // The fault path under per-VMA locks (CONFIG_PER_VMA_LOCK): the scenarios with threads.
  for (const s of ['fault-storm', 'race-vma-lock']) free.push(['run', s, '--fault-lock', 'per-vma']);
  // An example file runs under each model it declares ("models"), else under the default.
  for (const f of readdirSync(join(dir, 'examples')).filter((f) => f.endsWith('.json')).sort()) {
    let declared = [];
    try {
      declared = JSON.parse(readFileSync(join(dir, 'examples', f), 'utf8')).models ?? [];
    } catch {
      // (a file ptlab itself will refuse: run once, as given)
    }
    if (declared.length === 0) free.push(['run', `examples/${f}`]);
    for (const m of declared) free.push(['run', `examples/${f}`, '--model', m]);
  }
  // The programs whose every answer the real kernel gave (examples/kernel, `ptlab diff-kernel`):
  // scenario files like any other, each asserting what Linux returned, read and faulted.
  const corpus = join(dir, 'examples/kernel');
  if (existsSync(corpus)) for (const f of readdirSync(corpus).filter((f) => f.endsWith('.json')).sort()) free.push(['run', `examples/kernel/${f}`]);
  // The free runs in the debug mode a developer hunting a bug would use (--debug: the lockset
  // checks, which controlled runs always make).
  for (const a of free) a.push('--debug');
  return { free, races };
}

const show = (args) => args.filter((a) => a !== '--json').join(' ');

/**
 * Runs the budget in `dir` until a checker fails. Returns {killed_by, runs, by, message} for the
 * first failure, or {killed_by: null, runs} when everything passed.
 */
async function runBudget(dir, targets) {
  let runs = 0;
  let kill = null;
  await runTargets(dir, targets, (i, r) => {
    const args = targets[i];
    runs += args[0] === 'explore' ? (r.json?.runs ?? opts.runs) : 1;
    // Exit 2 is a refusal (the scenario does not apply to the model): not a kill, whatever caused it.
    if (r.code === 0 || r.code === 2) return false;
    const v = r.json?.violations?.[0];
    if (r.timedOut) kill = { killed_by: 'timeout', by: show(args), message: `no answer in ${COMMAND_TIMEOUT_MS / 1000} s` };
    else if (v) kill = { killed_by: v.checker, by: show(args), message: v.message.slice(0, 300) };
    else kill = { killed_by: 'crash', by: show(args), message: (r.stderr.split('\n').find((l) => l.trim() && !l.startsWith('{')) ?? `exit ${r.code}`).slice(0, 300) };
    return true;
  });
  return kill ? { ...kill, runs } : { killed_by: null, runs };
}

function scratchCopy(patch) {
  const dir = mkdtempSync(join(tmpdir(), 'ptlab-mutant-'));
  for (const p of COPY) if (existsSync(join(root, p))) cpSync(join(root, p), join(dir, p), { recursive: true });
  for (const p of ['dist/ptkernel', 'dist/ptkernel.why']) if (existsSync(join(root, p))) cpSync(join(root, p), join(dir, p));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  if (patch) {
    const a = spawnSync('git', ['apply', '-p1', join(MUTANTS, patch)], { cwd: dir, encoding: 'utf8' });
    if (a.status !== 0) return { dir, error: `does not apply: ${(a.stderr || '').split('\n')[0]}` };
  }
  const b = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: dir, encoding: 'utf8' });
  if (b.status !== 0) return { dir, error: `does not build: ${(b.stderr || b.stdout || '').split('\n').find((l) => l.trim()) ?? ''}` };
  return { dir };
}

const t0 = performance.now();
const base = scratchCopy(null);
if (base.error) {
  say(`mutate: the unmutated tree ${base.error}`);
  process.exit(1);
}
const plan = await planBudget(base.dir);
let targets = [...plan.free, ...plan.races];
let baseline = { skipped: true };
if (!opts.skipBaseline) {
  // Which targets apply (exit 2: the scenario refuses that model), and none may fail: a failure
  // on the unmutated tree would be a false kill of every mutant.
  const kept = [];
  const bt = performance.now();
  let falseKill = null;
  await runTargets(base.dir, targets, (i, r) => {
    if (r.code === 2) return false;
    if (r.code !== 0) {
      const v = r.json?.violations?.[0];
      falseKill = `the unmutated tree fails \`ptlab ${show(targets[i])}\`: ${v ? `[${v.checker}] ${v.message}` : r.timedOut ? 'no answer' : r.stderr.split('\n')[0]}`;
      return true;
    }
    kept.push(targets[i]);
    return false;
  });
  if (falseKill) {
    say(`mutate: FALSE KILL: ${falseKill}`);
    if (!opts.keep) rmSync(base.dir, { recursive: true, force: true });
    process.exit(1);
  }
  targets = kept;
  baseline = { skipped: false, targets: kept.length, seconds: Math.round((performance.now() - bt) / 100) / 10 };
  say(`baseline: the unmutated tree passes all ${kept.length} targets (${baseline.seconds} s)`);
}
if (!opts.keep) rmSync(base.dir, { recursive: true, force: true });

const results = [];
for (const m of mutants) {
  const mt = performance.now();
  const s = scratchCopy(m.file);
  let r;
  if (s.error) r = { killed_by: null, runs: 0, error: s.error };
  else r = await runBudget(s.dir, targets);
  if (opts.keep) say(`  (scratch copy of ${m.name}: ${s.dir})`);
  else rmSync(s.dir, { recursive: true, force: true });
  const row = { name: m.name, class: m.class, linux: m.linux, killed_by: r.killed_by, runs: r.runs, by: r.by ?? null, message: r.message ?? r.error ?? null, seconds: Math.round((performance.now() - mt) / 100) / 10 };
  results.push(row);
  say(`${m.name}: ${r.error ? `NOT RUN (${r.error})` : r.killed_by ? `killed by ${r.killed_by} after ${r.runs} runs (${row.by})` : `SURVIVED ${r.runs} runs`} [${row.seconds} s]`);
}

const ran = results.filter((r) => !(r.runs === 0 && r.message && !r.killed_by));
const killed = results.filter((r) => r.killed_by).length;
const out = {
  total: results.length,
  killed,
  score: Math.round((killed / results.length) * 1000) / 1000,
  not_run: results.length - ran.length,
  baseline,
  budget: { targets: targets.length, explore_runs: opts.runs, command_timeout_s: COMMAND_TIMEOUT_MS / 1000 },
  seconds: Math.round((performance.now() - t0) / 1000),
  mutants: results,
};
if (opts.json) {
  process.stdout.write(JSON.stringify(out) + '\n');
} else {
  const t = new Table({ head: ['mutant', 'class', 'killed by', 'runs', 'found by'], wordWrap: true, colWidths: [36, 14, 24, 6, 44] });
  for (const r of results) t.push([r.name, r.class, r.killed_by ?? (r.runs === 0 ? 'NOT RUN' : 'survived'), r.runs, r.by ?? r.message ?? '']);
  process.stdout.write(t.toString() + '\n');
  process.stdout.write(`mutation score: ${killed}/${results.length} killed by scenarios and explore (${(out.score * 100).toFixed(0)}%), ${out.seconds} s\n`);
}
