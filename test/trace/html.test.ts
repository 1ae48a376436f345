/**
 * `ptlab trace TOKEN --html FILE`: one self-contained page (ECharts and the data inlined, nothing
 * fetched at view time) drawing the run as a timeline, opened in headless Chromium where one is
 * installed (as test/cli/html.test.ts does): the page marks <body> when it has drawn (slices,
 * IPI arrows and violation marks drawn, errors thrown), and a PNG screenshot is kept for people.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeToken } from '../../src/sched/token.js';
import { bodyMarks, chromium, dumpDom, screenshot } from '../helpers/chromium.js';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-trace-html-'));
const bin = resolve('bin/ptlab.mjs');

function ptlab(args: string[], cwd = process.cwd()) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000, cwd });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface Marks { rendered: number; errors: number; slices: number; flows: number; violations: number; canvas: boolean; status: string }

/** The page's own marks once its script ran, from the DOM Chromium dumps. */
function dumpMarks(url: string): Marks {
  const dom = dumpDom(url);
  const { mark } = bodyMarks(dom);
  return {
    rendered: mark('rendered'), errors: mark('errors'), slices: mark('slices'), flows: mark('flows'), violations: mark('violations'),
    canvas: /<div id="timeline"[^>]*>[\s\S]*?<canvas/.test(dom), status: /<span id="status"[^>]*>([^<]*)</.exec(dom)?.[1] ?? '',
  };
}

const shot = (url: string, png: string) => screenshot(url, png, 1400, 900);

interface PageData { rows: { label: string; group: string; depth: number }[]; slices: number[][]; flows: number[][]; violations: [number, number, string, string][]; end: number }
const pageData = (html: string) => JSON.parse(/<script id="ptlab-trace" type="application\/json">(.*?)<\/script>/s.exec(html)![1]) as PageData;

const passing = encodeToken({
  scenario: 'mprotect-vs-fault', model: 'map-shared-pt', opts: { procs: '2', cpus: '2', ops: '2', size: '2M', lockStat: false },
  strategy: 'pct', seed: 5, depth: 3, steps: 1000,
});

describe('trace --html', () => {
  const failHtml = join(dir, 'fail.html');
  const passHtml = join(dir, 'pass.html');
  let failing = '';

  it('a failing token: one self-contained page (exit 1, the run\'s verdict) with tasks grouped by mm, CPUs, slices and the violation; no JSON unless -o is given', () => {
    const e = ptlab(['explore', 'exit-vs-fault', '--model', 'map-shared-pt', '--bug', 'rfc-v2-free-shared-pmd', '--size', '4M', '--runs', '50', '--json']);
    expect(e.code).toBe(1);
    failing = JSON.parse(e.out).token;
    const t = ptlab(['trace', failing, '--html', failHtml], dir);
    expect(t.code).toBe(1);
    expect(t.out).toMatch(/written to .*fail\.html \(a timeline any browser opens offline\); the run failed: \[use-after-free\]/);
    expect(existsSync(join(dir, 'trace.json'))).toBe(false); // --html alone writes the page only
    const html = readFileSync(failHtml, 'utf8');
    // Nothing fetched at view time: no external script, stylesheet or URL of one; ECharts inlined.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/[^"' ]+\.(js|css)\b/);
    expect(html).toMatch(/Licensed to the Apache Software Foundation/);
    expect(html).toContain(`ptlab replay ${failing}`);
    const d = pageData(html);
    const groups = d.rows.map((r) => r.group);
    expect(groups.filter((g) => /^mm \d+$/.test(g)).length).toBeGreaterThanOrEqual(2);
    expect(d.rows.filter((r) => r.group === 'CPUs').map((r) => r.label)).toEqual(['cpu0', 'cpu1']);
    expect(groups.indexOf('CPUs')).toBe(groups.length - 2); // the tasks first, then the CPUs
    expect(d.slices.length).toBeGreaterThan(1000);
    expect(d.violations.length).toBeGreaterThanOrEqual(2); // on the CPU and on the task it ran
    expect(d.violations.every(([, ts, checker]) => checker === 'use-after-free' && ts <= d.end)).toBe(true);
    expect(d.violations.map(([row]) => d.rows[row].label)).toEqual(expect.arrayContaining([expect.stringMatching(/^cpu\d$/), expect.stringMatching(/^process \d+$/)]));
  });

  it('a passing token with -o and --html: both written from one run (exit 0), the IPIs as arrows; a path that cannot be written is exit 2 before any run', () => {
    const json = join(dir, 'pass.json');
    const t = ptlab(['trace', passing, '-o', json, '--html', passHtml]);
    expect(t.code).toBe(0);
    const d = pageData(readFileSync(passHtml, 'utf8'));
    const trace = JSON.parse(readFileSync(json, 'utf8')) as { traceEvents: { ph: string }[] };
    expect(d.slices.length).toBe(trace.traceEvents.filter((e) => e.ph === 'X').length);
    expect(d.flows.length).toBe(trace.traceEvents.filter((e) => e.ph === 's').length);
    expect(d.flows.length).toBeGreaterThan(0);
    expect(d.violations).toEqual([]);
    const bad = ptlab(['trace', passing, '--html', join(dir, 'no', 'such', 'dir.html')]);
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
  });

  it.skipIf(chromium === undefined)(`renders in headless Chromium: the canvas, every slice, the violation marked, no error; screenshots${chromium ? '' : ' (skipped: no chromium on this machine)'}`, () => {
    const fail = dumpMarks(`file://${failHtml}`);
    const d = pageData(readFileSync(failHtml, 'utf8'));
    expect(fail).toMatchObject({ rendered: 1, errors: 0, canvas: true, slices: d.slices.length, violations: d.violations.length });
    expect(fail.status).toMatch(/slices on \d+ rows/);
    const pass = dumpMarks(`file://${passHtml}`);
    expect(pass).toMatchObject({ rendered: 1, errors: 0, canvas: true, violations: 0 });
    expect(pass.flows).toBe(pageData(readFileSync(passHtml, 'utf8')).flows.length);
    for (const [url, name] of [[`file://${failHtml}#violation`, 'trace-failing-at-violation'], [`file://${failHtml}`, 'trace-failing'], [`file://${passHtml}`, 'trace-passing']] as const) {
      const png = join(dir, `${name}.png`);
      expect(shot(url, png)).toBeGreaterThan(20_000);
      console.log(`the ${name} view's screenshot: ${png}`);
    }
    // A page whose script fails says so: the marks are not set by default.
    const broken = join(dir, 'broken.html');
    writeFileSync(broken, readFileSync(passHtml, 'utf8').replace(/(<script id="ptlab-trace" type="application\/json">).*?(<\/script>)/s, '$1{not json$2'));
    const b = dumpMarks(`file://${broken}`);
    expect(b.rendered).toBe(0);
    expect(b.errors).toBeGreaterThan(0);
    expect(b.status).toMatch(/^error: /);
  }, 300_000); // seven browser starts: a budget, not a timing assertion
});
