/**
 * Beyond one machine, for sweeps: compare (and run given lists) at --jobs N gives the rows --jobs 1
 * gives; shards merged give the unsharded report (rows in grid order, medians over the repeats
 * computed after the merge); merge refuses shards of another command, other options, another
 * version, and names a missing one. Throughput differs run to run, so the comparisons are of the
 * deterministic fields: the rows' points, page-table bytes, the checkers' verdicts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { type CompareReport, type CompareShard, mergeSweep, sweepOf, sweepShard } from '../../src/cli/compare.js';
import { parseRunOptions } from '../../src/cli/options.js';
import type { RunReport } from '../../src/cli/run.js';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-sweep-'));
const small = { size: '4M', ops: '1', lockStat: false };

function ptlab(...args: string[]) {
  return ptlabEnv({}, ...args);
}

function ptlabEnv(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** What does not depend on timing: the point, the verdict, the page tables (none and map-shared-pt build them the same way every run). */
const fixedFields = (r: RunReport) => [r.model, r.procs, r.cpus, r.size, r.ok, r.violations.map((v) => v.checker), r.pgtables_bytes.total, r.pgtables_bytes.host];
const rows = (c: CompareReport) => c.runs.map(fixedFields);

describe('compare sweeps across jobs and shards', () => {
  const points = [['none', '1'], ['none', '2'], ['map-shared-pt', '2']].map(([model, procs]) => parseRunOptions('sga', { ...small, model, procs }));
  const sweep = sweepOf('compare', 'sga', points, 2);

  it('--jobs 2 and 3 shards merged give the rows of --jobs 1, in grid order, each point with all its repeats', { timeout: 240_000 }, async () => {
    const one = mergeSweep([await sweepShard(sweep, { jobs: 1 })]);
    expect(one.runs.map((r) => [r.model, r.procs])).toEqual([['none', 1], ['none', 2], ['map-shared-pt', 2]]);
    expect(one.repeats).toBe(2);
    expect(one.rates?.map((x) => x.length)).toEqual([2, 2, 2]);
    const two = mergeSweep([await sweepShard(sweep, { jobs: 2 })]);
    expect(rows(two)).toEqual(rows(one));
    const shards: CompareShard[] = [];
    for (let i = 0; i < 3; i++) shards.push(await sweepShard(sweep, { jobs: 1, shard: { index: i, count: 3 } }));
    // Task t = point x 2 + repeat belongs to shard t % 3: 6 tasks as 2 + 2 + 2.
    expect(shards.map((s) => s.results.length)).toEqual([2, 2, 2]);
    expect(shards[1].results.map((r) => [r.point, r.repeat])).toEqual([[0, 1], [2, 0]]);
    const merged = mergeSweep([shards[2], shards[0], shards[1]]);
    expect(rows(merged)).toEqual(rows(one));
    expect(merged.rates?.every((x) => x.length === 2 && x[0] <= x[1])).toBe(true);
    // The median run of each point is one of its repeats, chosen after the merge.
    merged.runs.forEach((r, p) => expect(merged.rates?.[p]).toContain(r.faults_per_s));
    expect(() => mergeSweep([shards[0], shards[1]])).toThrow(/point 1 has 1 of 2 runs/);
  });
});

describe('the CLI: compare --shard/--out, run lists, ptlab merge', () => {
  const args = ['compare', 'sga', '--models', 'none,map-shared-pt', '--procs', '1,2', '--size', '4M', '--ops', '1', '--no-lock-stat'];

  it('shards merged print what the unsharded compare prints; nothing on stderr on a pipe', { timeout: 240_000 }, () => {
    const whole = ptlab(...args, '--json');
    expect([whole.code, whole.err]).toEqual([0, '']);
    for (const i of [0, 1]) {
      // Shard 1 as a GitHub Actions matrix job would run it: --shard auto from PTLAB_SHARD_INDEX/COUNT.
      const s = i === 0 ? ptlab(...args, '--shard', '0/2', '--out', join(dir, 'c0.json'))
        : ptlabEnv({ PTLAB_SHARD_INDEX: '1', PTLAB_SHARD_COUNT: '2' }, ...args, '--shard', 'auto', '--out', join(dir, 'c1.json'));
      expect([s.code, s.err]).toEqual([0, '']);
      expect(s.out).toMatch(new RegExp(`^shard ${i}/2: 2 of 4 run\\(s\\) \\(points x repeats\\), every checker passed; written to `));
    }
    const m = ptlab('merge', join(dir, 'c1.json'), join(dir, 'c0.json'), '--json');
    expect([m.code, m.err]).toEqual([0, '']);
    expect(rows(JSON.parse(m.out) as CompareReport)).toEqual(rows(JSON.parse(whole.out) as CompareReport));
    const table = ptlab('merge', join(dir, 'c0.json'), join(dir, 'c1.json'));
    expect(table.out.split('\n')[0]).toBe('ptlab compare sga --seed 1: 2 CPUs (2 cores), 4.00 MiB shared'.replace('2 cores', `${JSON.parse(whole.out).cores} cores`));
    expect(table.out).toMatch(/\| map-shared-pt \| 2 {5}\| ok \|/);
    const csv = parse(ptlab('merge', join(dir, 'c0.json'), join(dir, 'c1.json'), '--csv').out, { columns: true }) as Record<string, string>[];
    expect(csv.map((r) => [r.model, r.procs, r.pgtables_bytes])).toEqual((JSON.parse(whole.out) as CompareReport).runs.map((r) => [r.model, String(r.procs), String(r.pgtables_bytes.total)]));
    // The HTML report is the whole sweep's: from the merge, not from a shard.
    expect(ptlab('merge', join(dir, 'c0.json'), join(dir, 'c1.json'), '--html', join(dir, 'm.html')).code).toBe(0);
    expect(readFileSync(join(dir, 'm.html'), 'utf8')).toMatch(/^<!doctype html>/i);
    expect(ptlab(...args, '--shard', '0/2', '--html', join(dir, 'x.html')).err).toBe('ptlab: --html needs the whole sweep: run ptlab merge --html FILE on the shards\n');
  });

  it('merge refuses a missing shard (naming it), other options, another version, explore shards mixed in', { timeout: 240_000 }, () => {
    expect(ptlab('merge', join(dir, 'c0.json')).err).toBe('ptlab: merge: shard 1/2 missing\n');
    const other = ptlab(...args.map((a) => (a === '1,2' ? '1,3' : a)), '--shard', '1/2', '--out', join(dir, 'other.json'));
    expect(other.code).toBe(0);
    const r = ptlab('merge', join(dir, 'c0.json'), join(dir, 'other.json'));
    expect([r.code, r.err]).toEqual([2, `ptlab: merge: ${join(dir, 'other.json')} is a shard of another sweep (command, scenario, options or --repeat) than ${join(dir, 'c0.json')}\n`]);
    const old = JSON.parse(readFileSync(join(dir, 'c1.json'), 'utf8')) as CompareShard;
    writeFileSync(join(dir, 'old.json'), JSON.stringify({ ...old, version: '0.0.1' }));
    expect(ptlab('merge', join(dir, 'c0.json'), join(dir, 'old.json')).err).toMatch(/old\.json was written by ptlab 0\.0\.1, .*c0\.json by /);
    const ex = ptlab('explore', 'race-split-reshare', '--runs', '2', '--shard', '1/2', '--out', join(dir, 'ex.json'));
    expect(ex.code).toBe(0);
    const mix = ptlab('merge', join(dir, 'c0.json'), join(dir, 'ex.json'));
    expect([mix.code, mix.err]).toEqual([2, `ptlab: merge: ${join(dir, 'ex.json')} is a shard of ptlab explore, ${join(dir, 'c0.json')} of ptlab compare / run: they do not merge\n`]);
    expect(ptlab('merge', join(dir, 'ex.json'), join(dir, 'c0.json')).err).toMatch(/c0\.json is a shard of ptlab compare \/ run, .*ex\.json of ptlab explore/);
    const races = join(dir, 'races.json');
    writeFileSync(races, JSON.stringify({ kind: 'ptlab-races-shard', version: old.version, shard: { index: 0, count: 1 }, config: {}, results: [] }));
    expect(ptlab('merge', races).err).toBe(`ptlab: merge: ${races} is a shard of npm run bench:races: npm run bench:races -- --merge FILE... merges those\n`);
    // A run shard is not a compare shard of the same points either.
    const run = ptlab('run', 'sga', '--procs', '1,2', '--size', '4M', '--ops', '1', '--no-lock-stat', '--shard', '1/2', '--out', join(dir, 'run1.json'));
    expect(run.code).toBe(0);
    expect(ptlab('merge', join(dir, 'c0.json'), join(dir, 'run1.json')).code).toBe(2);
    expect(ptlab(...args, '--jobs', '0').err).toBe('ptlab: --jobs must be a positive integer (at most 256)\n');
    expect(ptlab(...args, '--shard', '2/2').err).toBe('ptlab: --shard must be i/n (0 <= i < n) or auto\n');
  });

  it('run takes lists: one report per point and the table (will-it-scale\'s linear column); --json {runs}; --csv; one value prints as before', { timeout: 240_000 }, () => {
    const base = ['run', 'sga', '--size', '4M', '--ops', '1', '--no-lock-stat'];
    const text = ptlab(...base, '--procs', '1,2');
    expect([text.code, text.err]).toEqual([0, '']);
    expect(text.out.match(/^ptlab run sga --model none --seed 1: \d+ process/gm)?.length).toBe(2);
    expect(text.out).toMatch(/ptlab run sga --seed 1: 2 CPUs \(\d+ cores\), 4\.00 MiB shared\n[^]*\| run {2}\| procs \| ok \| faults\/s \| linear \|/);
    const json = JSON.parse(ptlab(...base, '--procs', '1,2', '--repeat', '2', '--json').out) as CompareReport;
    expect([json.runs.map((r) => r.procs), json.repeats, json.runs.map((r) => r.pgtables_bytes.total)]).toEqual([[1, 2], 2, [20480, 40960]]);
    // One value: today's output, a single report.
    const one = JSON.parse(ptlab(...base, '--procs', '2', '--json').out) as RunReport;
    expect([one.procs, one.ok, 'runs' in one]).toEqual([2, true, false]);
    expect(ptlab(...base, '--procs', '2').out).toMatch(/^ptlab run sga --model none --seed 1: 2 processes[^]*OK: every checker passed \(seed 1\)\n$/);
    // Merged run shards print what the unsharded run sweep prints.
    const shards = [0, 1].map((i) => join(dir, `r${i}.json`));
    for (const [i, f] of shards.entries()) expect(ptlab(...base, '--procs', '1,2', '--shard', `${i}/2`, '--out', f).code).toBe(0);
    const merged = ptlab('merge', ...shards);
    expect(merged.out.match(/^ptlab run sga --model none --seed 1: \d+ process/gm)?.length).toBe(2);
    expect(merged.out).toMatch(/ptlab run sga --seed 1: 2 CPUs/);
    const csv = parse(ptlab('merge', ...shards, '--csv').out, { columns: true }) as Record<string, string>[];
    expect(csv.map((r) => [r.procs, r.ok, r.pgtables_bytes])).toEqual([['1', '1', '20480'], ['2', '1', '40960']]);
  });
});
