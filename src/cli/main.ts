/**
 * `ptlab`: run scenarios under sharing models and report what the checkers found.
 * Exit status: 0 every checker passed; 1 a checker found a violation; 2 bad input.
 */
import { Command, CommanderError } from 'commander';
import { pino } from 'pino';
import { MODELS } from '../models/index.js';
import { SCENARIOS } from '../scenarios/index.js';
import { type CompareReport, renderCompare } from './compare.js';
import { parseRunOptions, UsageError } from './options.js';
import { renderRun } from './render.js';
import { runScenario } from './run.js';

const log = pino({ level: process.env.PTLAB_LOG ?? 'warn', base: undefined }, pino.destination({ fd: 2, sync: true }));

function fail(msg: string): never {
  process.stderr.write(`ptlab: ${msg}\n`);
  process.exit(2);
}

const program = new Command();
program.name('ptlab').description('A laboratory for Linux page-table sharing across processes').exitOverride();

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
    const lines = ['Scenarios:'];
    for (const s of scenarios) lines.push(`  ${s.name.padEnd(18)} ${s.summary}`, `  ${''.padEnd(18)} (${s.details})`);
    lines.push('', 'Models:');
    for (const m of models) {
      lines.push(`  ${m.name.padEnd(18)} ${m.seed}`, `  ${''.padEnd(18)} ${m.rules}`);
      for (const [b, d] of Object.entries(m.bugs)) lines.push(`  ${''.padEnd(18)} --bug ${b}: ${d}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  });

program
  .command('run')
  .description('run a scenario and check it')
  .argument('<scenario>', `one of: ${Object.keys(SCENARIOS).join(', ')}, or a scenario file (*.json)`)
  .option('--model <model>', `sharing model: ${Object.keys(MODELS).join(', ')}`, 'none')
  .option('--cpus <n>', 'simulated CPUs (worker threads); default min(2, cores)')
  .option('--procs <n>', 'processes')
  .option('--size <bytes>', 'size of the shared mapping (64M, 1G, ...)')
  .option('--ops <n>', 'operations per process after set-up')
  .option('--seed <n>', 'seed of the scenario\'s choices', '1')
  .option('--bug <name>', 'reintroduce a known bug of the model')
  .option('--mem <bytes>', 'simulated physical memory (default 512G, the seed machine)')
  .option('--deadline <ms>', 'watchdog deadline of every wait', '20000')
  .option('--no-lock-stat', 'do not time lock waits and holds')
  .option('--json', 'one JSON object on stdout')
  .action(async (scenario: string, raw: Record<string, unknown>) => {
    let o;
    try {
      o = parseRunOptions(scenario, raw);
    } catch (e) {
      if (e instanceof UsageError) fail(e.message);
      throw e;
    }
    log.info({ scenario, options: o }, 'run start');
    const r = await runScenario(scenario, o);
    log.info({ ok: r.ok, seconds: r.seconds, violations: r.violations.length }, 'run end');
    if (!r.ok) log.warn({ violations: r.violations.slice(0, 5), seed: r.seed }, 'checker found a violation');
    process.stdout.write((o.json ? JSON.stringify(r) : renderRun(r)) + '\n');
    process.exitCode = r.ok ? 0 : 1;
  });

program
  .command('compare')
  .description('run one scenario under several models, same options and seed, and compare them')
  .argument('<scenario>', `one of: ${Object.keys(SCENARIOS).join(', ')}, or a scenario file (*.json)`)
  .option('--models <list>', 'comma-separated models', Object.keys(MODELS).join(','))
  .option('--cpus <n>', 'simulated CPUs (worker threads); default min(2, cores)')
  .option('--procs <n>', 'processes')
  .option('--size <bytes>', 'size of the shared mapping (64M, 1G, ...)')
  .option('--ops <n>', 'operations per process after set-up')
  .option('--seed <n>', 'seed of the scenario\'s choices', '1')
  .option('--mem <bytes>', 'simulated physical memory (default 512G)')
  .option('--deadline <ms>', 'watchdog deadline of every wait', '20000')
  .option('--no-lock-stat', 'do not time lock waits and holds')
  .option('--json', 'one JSON object {runs: [...]} on stdout')
  .action(async (scenario: string, raw: Record<string, unknown>) => {
    const models = String(raw.models).split(',').map((m) => m.trim()).filter((m) => m !== '');
    let opts;
    try {
      if (models.length === 0) throw new UsageError('--models must name at least one model');
      opts = models.map((model) => parseRunOptions(scenario, { ...raw, models: undefined, model }));
    } catch (e) {
      if (e instanceof UsageError) fail(e.message.replace('--model ', '--models: each '));
      throw e;
    }
    const runs = [];
    for (const o of opts) {
      log.info({ scenario, model: o.model }, 'compare run');
      runs.push(await runScenario(scenario, o));
    }
    const report: CompareReport = { scenario, seed: runs[0].seed, cores: runs[0].cores, runs };
    process.stdout.write((raw.json ? JSON.stringify(report) : renderCompare(report)) + '\n');
    process.exitCode = runs.every((r) => r.ok) ? 0 : 1;
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0);
    process.exit(2); // commander already printed its one-line message
  }
  if (e instanceof UsageError) fail(e.message);
  process.stderr.write(`ptlab: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(3);
}
