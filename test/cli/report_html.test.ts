/**
 * `ptlab report FILE... --html OUT`: saved results drawn on any machine — a run's --json (sga-1500's
 * memory over clients with the OOM point), a compare's --json (fork-storm's IPIs per fork), and
 * the race catalog's benchmark lines (test/fixtures: the raw stdout of a real `npm run bench:races`
 * run of two races on 2026-12-04; text lines are skipped), and `npm run bench`'s (rates, explore's
 * runs/s over --jobs, the ratios). Each page is opened in headless
 * Chromium where one is installed: every chart it meant to draw drawn with data, no error. And
 * `explore --html`: the hunt's failing run as a timeline (src/cli/trace_html.ts), the violation on it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromium, openInChromium } from '../helpers/chromium.js';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-report-'));
const RACES = 'test/fixtures/bench-races-2026-12-04.txt';
/** The raw stdout of a real `npm run bench` on 2026-12-04 (2 cores, loaded: a test suite ran beside it). */
const BENCH = 'test/fixtures/bench-2026-12-04.txt';

function ptlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const pageData = (f: string) => JSON.parse(/<script id="ptlab-data" type="application\/json">(.*?)<\/script>/s.exec(readFileSync(f, 'utf8'))![1]);

describe('ptlab report', () => {
  const sga = join(dir, 'sga1500.html');
  const fork = join(dir, 'fork.html');
  const races = join(dir, 'races.html');
  const bench = join(dir, 'bench.html');

  it('draws sga-1500 (memory over clients, the OOM point), fork-storm (IPIs per fork) and bench:races lines', () => {
    const run = ptlab('run', 'sga-1500', '--scale', '1/1000', '--json');
    expect(run.code).toBe(0);
    writeFileSync(join(dir, 'sga.json'), run.out);
    expect(ptlab('report', join(dir, 'sga.json'), '--html', sga).code).toBe(0);
    const s = pageData(sga).sga[0];
    const r = JSON.parse(run.out);
    expect(s.oom.x).toBe(r.scenario_report.json.oom.first.clients_worth);
    expect(s.end.x).toBe(r.scenario_report.json.clients_alive_at_end);
    // The OOM struck where the SGA plus the unshared formula's tables crossed the budget.
    expect(s.oom.x).toBeGreaterThanOrEqual(r.scenario_report.json.predicted.clients_fit);
    expect(s.oom.x).toBeLessThan(r.scenario_report.json.predicted.clients_fit + 1);

    const cmp = ptlab('compare', 'fork-storm', '--models', 'none,cow-pte', '--json');
    expect(cmp.code).toBe(0);
    writeFileSync(join(dir, 'fork.json'), cmp.out);
    expect(ptlab('report', join(dir, 'fork.json'), '--html', fork).code).toBe(0);
    const forks = pageData(fork).forks as { run: string; ipisPerFork: number }[];
    expect(forks.map((f) => f.run)).toEqual(['none', 'cow-pte']);
    expect(forks.map((f) => f.ipisPerFork)).toEqual(JSON.parse(cmp.out).runs.map((x: { ipis_per_fork: number }) => x.ipis_per_fork));

    expect(ptlab('report', RACES, '--html', races).code).toBe(0);
    const d = pageData(races);
    const lines = readFileSync(RACES, 'utf8').split('\n').filter((l) => l.startsWith('{'));
    expect(d.races).toHaveLength(lines.length);
    expect(d.races.map((x: { median: number }) => x.median)).toEqual(lines.map((l) => JSON.parse(l).median_runs_to_failure));

    expect(ptlab('report', BENCH, '--html', bench).code).toBe(0);
    const b = pageData(bench);
    const recs = readFileSync(BENCH, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(b.rates).toHaveLength(recs.filter((r) => typeof r.rate_per_s === 'number' && !r.skipped && r.rate_per_s > 0).length);
    expect(b.jobs.map((j: { jobs: number }) => j.jobs)).toEqual(recs.filter((r) => r.bench === 'explore-jobs').map((r) => r.threads).sort());
    expect(b.ratios.length).toBe(recs.filter((r) => typeof r.ratio === 'string').length);
  }, 300_000);

  const hunt = join(dir, 'explore.html');
  it('explore --html: the failing run as a timeline, the violation on it', () => {
    const e = ptlab('explore', 'exit-vs-fault', '--model', 'map-shared-pt', '--bug', 'rfc-v2-free-shared-pmd', '--size', '4M', '--runs', '50', '--html', hunt);
    expect(e.code).toBe(1);
    const html = readFileSync(hunt, 'utf8');
    expect(html).toMatch(/use-after-free/);
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(ptlab('explore', 'exit-vs-fault', '--runs', '2', '--shard', '0/2', '--html', join(dir, 'y.html')).code).toBe(2);
  }, 180_000);

  it('bad input is one line and exit 2', () => {
    const none = ptlab('report', join(dir, 'no-such.json'), '--html', join(dir, 'x.html'));
    expect(none.code).toBe(2);
    expect(none.err.trim().split('\n')).toHaveLength(1);
    writeFileSync(join(dir, 'text.txt'), 'hello\n');
    expect(ptlab('report', join(dir, 'text.txt'), '--html', join(dir, 'x.html')).code).toBe(2);
    expect(ptlab('report', RACES).code).toBe(2); // --html is required
  });

  it.skipIf(chromium === undefined)(`renders in headless Chromium${chromium ? '' : ' (skipped: no chromium on this machine)'}`, () => {
    for (const [f, name, charts] of [[sga, 'sga-1500', 4], [fork, 'fork-storm', 4], [races, 'bench-races', 1], [bench, 'bench', 2]] as const) {
      const png = join(dir, `${name}.png`);
      const r = openInChromium(f, png, 2200);
      expect(r).toMatchObject({ rendered: charts, charts, errors: 0 });
      expect(r.png).toBeGreaterThan(20_000);
      console.log(`the ${name} report's screenshot: ${png}`);
    }
    const png = join(dir, 'explore.png');
    const t = openInChromium(hunt, png, 900);
    expect(t.attrs).toMatchObject({ rendered: 1, errors: 0 });
    expect(t.attrs.violations).toBeGreaterThanOrEqual(1); // on the CPU that found it and on its process
    expect(t.png).toBeGreaterThan(20_000);
    console.log(`explore --html's screenshot: ${png}`);
  }, 300_000); // eight Chromium launches: minutes on a loaded 2-core machine
});
