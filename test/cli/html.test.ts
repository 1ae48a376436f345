/**
 * The HTML report (`--html FILE` on compare and run): one self-contained page — no network at view
 * time, Chart.js and the data inlined — with a chart per figure and lock_stat as a sortable table.
 * Where a Chromium is installed (Debian's `chromium`; .ci/run installs it), the page is opened in
 * it headless: every chart must have rendered with its data and no error may have been thrown
 * (the page marks both on <body>), and a PNG screenshot is saved for people to look at.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromium, openInChromium } from '../helpers/chromium.js';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-html-'));

function ptlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('the HTML report', () => {
  const sweep = join(dir, 'sweep.html');
  const single = join(dir, 'run.html');

  it('compare --procs 2,4 --html and run --html write self-contained pages with a chart per figure and the data inlined', () => {
    expect(ptlab('compare', 'sga', '--models', 'none,map-shared-pt', '--procs', '2,4', '--size', '8M', '--ops', '2', '--html', sweep).code).toBe(0);
    expect(ptlab('run', 'sga', '--procs', '4', '--size', '8M', '--ops', '2', '--html', single).code).toBe(0);
    for (const f of [sweep, single]) {
      const html = readFileSync(f, 'utf8');
      expect(html.match(/<canvas id="(pgtables|faults|waits)"/g)).toHaveLength(3);
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href="https?:|https?:\/\/[^"' ]+\.(js|css)\b/);
      expect(html).toMatch(/Chart\.js v4/); // the library, inlined
      const data = JSON.parse(/<script id="ptlab-data" type="application\/json">(.*?)<\/script>/s.exec(html)![1]);
      expect(data.series.length).toBeGreaterThan(0);
      expect(data.locks.length).toBeGreaterThan(0);
    }
    const data = JSON.parse(/<script id="ptlab-data" type="application\/json">(.*?)<\/script>/s.exec(readFileSync(sweep, 'utf8'))![1]);
    expect(data.swept).toBe(true);
    expect(data.series.map((s: { name: string; points: { procs: number }[] }) => `${s.name}:${s.points.map((p) => p.procs).join(',')}`)).toEqual(['none:2,4', 'map-shared-pt:2,4']);
    // The x86-64 formula for unshared tables: 8 MiB = 4 PTE pages + PMD + PUD + PGD per process; none is exactly on it.
    expect(data.formula.points).toEqual([{ procs: 2, pgtables: 2 * 7 * 4096 }, { procs: 4, pgtables: 4 * 7 * 4096 }]);
    expect(data.series[0].points.map((p: { pgtables: number }) => p.pgtables)).toEqual([2 * 7 * 4096, 4 * 7 * 4096]);
    expect(ptlab('compare', 'sga', '--html', join(dir, 'no', 'such', 'dir.html')).code).toBe(2);
  });

  it.skipIf(chromium === undefined)(`renders in headless Chromium: every chart with its data, no errors, a screenshot${chromium ? '' : ' (skipped: no chromium on this machine)'}`, () => {
    for (const [f, name] of [[sweep, 'compare-sweep'], [single, 'run']] as const) {
      const png = join(dir, `${name}.png`);
      const r = openInChromium(f, png);
      expect(r).toMatchObject({ rendered: 3, charts: 3, errors: 0 });
      expect(r.png).toBeGreaterThan(20_000);
      console.log(`the ${name} report's screenshot: ${png}`);
    }
  }, 240_000); // four Chromium launches: minutes on a loaded 2-core machine
});

describe('scenario files as people write them', () => {
  it('a barrier without an id is barrier 0; explore on the file gives a token that replays after the file is gone', () => {
    const f = join(dir, 'two.json');
    writeFileSync(f, JSON.stringify({ programs: [
      [{ op: 'shm_open', name: '/tok', create: true, as: 'f' }, { op: 'ftruncate', fd: 'f', size: 2097152 }, { op: 'mmap', len: 2097152, flags: ['MAP_SHARED'], fd: 'f', as: 'm' },
        { op: 'store', region: 'm', offset: 0, value: 1 }, { op: 'barrier' }, { op: 'shm_unlink', name: '/tok' }],
      [{ op: 'barrier' }],
    ] }));
    const e = ptlab('explore', f, '--runs', '3', '--json');
    expect(e.code).toBe(0);
    const { token } = JSON.parse(e.out);
    rmSync(f);
    expect(ptlab('replay', token).code).toBe(0);
  });
});
