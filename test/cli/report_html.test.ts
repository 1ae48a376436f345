/**
 * `ptlab report FILE... --html OUT`: saved results drawn on any machine — a run's --json (sga-1500's
 * memory over clients with the OOM point), a compare's --json (fork-storm's IPIs per fork), and
 * the race catalog's benchmark lines (test/fixtures: the raw stdout of a real `npm run bench:races`
 * run of two races on 2026-12-04; text lines are skipped). Each page is opened in headless
 * Chromium where one is installed: every chart it meant to draw drawn with data, no error.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromium, openInChromium } from '../helpers/chromium.js';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-report-'));
const RACES = 'test/fixtures/bench-races-2026-12-04.txt';

function ptlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const pageData = (f: string) => JSON.parse(/<script id="ptlab-data" type="application\/json">(.*?)<\/script>/s.exec(readFileSync(f, 'utf8'))![1]);

describe('ptlab report', () => {
  const sga = join(dir, 'sga1500.html');
  const fork = join(dir, 'fork.html');
  const races = join(dir, 'races.html');

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
  });

  it('bad input is one line and exit 2', () => {
    const none = ptlab('report', join(dir, 'no-such.json'), '--html', join(dir, 'x.html'));
    expect(none.code).toBe(2);
    expect(none.err.trim().split('\n')).toHaveLength(1);
    writeFileSync(join(dir, 'text.txt'), 'hello\n');
    expect(ptlab('report', join(dir, 'text.txt'), '--html', join(dir, 'x.html')).code).toBe(2);
    expect(ptlab('report', RACES).code).toBe(2); // --html is required
  });

  it.skipIf(chromium === undefined)(`renders in headless Chromium${chromium ? '' : ' (skipped: no chromium on this machine)'}`, () => {
    for (const [f, name, charts] of [[sga, 'sga-1500', 4], [fork, 'fork-storm', 4], [races, 'bench-races', 1]] as const) {
      const png = join(dir, `${name}.png`);
      const r = openInChromium(f, png, 2200);
      expect(r).toMatchObject({ rendered: charts, charts, errors: 0 });
      expect(r.png).toBeGreaterThan(20_000);
      console.log(`the ${name} report's screenshot: ${png}`);
    }
  });
});
