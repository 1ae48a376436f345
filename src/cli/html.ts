/**
 * `--html FILE`: one self-contained HTML page for a compare (or a run: a compare of one) — the
 * figures as charts, lock_stat as a sortable table, the violations. No network at view time:
 * Chart.js (chosen for bar and line charts with one small, well-kept, dependency-free file:
 * its UMD build is 210 KB) is inlined, and so is the data.
 *
 * Charts: page-table bytes per run — over the task count when --procs is swept, beside the x86-64
 * formula for unshared tables (each process: one PTE page per 2 MiB mapped + PMD + PUD + PGD,
 * the seed's headline) —; faults/s (with will-it-scale's linear line when swept); lock wait p50 /
 * p99 per lock class and run. The page marks itself when every chart rendered (data-rendered,
 * data-errors on <body>), which the headless-browser test reads.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { CompareReport } from './compare.js';
import type { RunReport } from './run.js';
import { shortName } from './render.js';

let chartJs: string | null = null;

/** Chart.js's UMD build, read from the installed package (inlined into every page). */
function chartLibrary(): string {
  if (chartJs === null) {
    const main = createRequire(import.meta.url).resolve('chart.js');
    chartJs = readFileSync(join(dirname(main), 'chart.umd.min.js'), 'utf8');
  }
  return chartJs;
}

/** JSON safe inside <script>: no "</script>", no HTML comment openers. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

const PAGE = 4096;
const PMD = 2 * 1024 * 1024;

function label(c: CompareReport, r: RunReport): string {
  const parts = [shortName(r.model)];
  const varies = (f: (x: RunReport) => unknown) => new Set(c.runs.map(f)).size > 1;
  if (varies((x) => x.mmap_lock)) parts.push(shortName(r.mmap_lock));
  if (varies((x) => x.fault_lock)) parts.push(r.fault_lock);
  if (varies((x) => x.ptl)) parts.push(`ptl ${r.ptl}`);
  if (varies((x) => x.cpus)) parts.push(`${r.cpus} CPUs`);
  if (varies((x) => x.size)) parts.push(`${r.size / 2 ** 20} MiB`);
  return parts.join(' / ');
}

/** The page's data: what the charts and the table show, computed here (the page only draws). */
function pageData(c: CompareReport) {
  const swept = new Set(c.runs.map((r) => r.procs)).size > 1;
  const series = new Map<string, RunReport[]>();
  for (const r of c.runs) {
    const key = swept ? label(c, r) : `${label(c, r)}${c.runs.filter((x) => label(c, x) === label(c, r)).length > 1 ? ` (${r.procs})` : ''}`;
    series.set(key, [...(series.get(key) ?? []), r]);
  }
  const procs = [...new Set(c.runs.map((r) => r.procs))].sort((a, b) => a - b);
  const size = c.runs[0].size;
  return {
    title: `ptlab compare ${c.scenario} --seed ${c.seed}`,
    subtitle: `${c.cores} cores; ${swept ? `processes ${procs.join(', ')}` : `${c.runs[0].procs} processes`} on ${c.runs[0].cpus} CPUs` +
      (c.scenario.endsWith('.json') ? '' : `, ${(size / 2 ** 20).toFixed(2)} MiB shared`) + `; made ${new Date().toISOString().slice(0, 10)}`,
    swept,
    procs,
    series: [...series.entries()].map(([name, runs]) => ({
      name,
      points: runs.map((r) => ({ procs: r.procs, pgtables: r.pgtables_bytes.total, faultsPerS: r.faults_per_s, ok: r.ok })),
    })),
    // x86-64 without sharing: every process maps `size` through its own PTE pages (one per 2 MiB) plus a PMD, PUD and PGD page.
    formula: c.scenario.endsWith('.json') ? null : { name: 'x86-64, unshared: procs x (size / 2 MiB + 3) x 4 KiB', points: procs.map((p) => ({ procs: p, pgtables: p * (Math.ceil(size / PMD) + 3) * PAGE })) },
    locks: c.runs.flatMap((r) => r.locks.map((l) => ({
      run: `${label(c, r)}${swept ? ` @${r.procs}` : ''}`, class: l.class, mode: l.mode, contentions: l.contentions, acquisitions: l.acquisitions,
      waitP50: l.waittime_p50, waitP99: l.waittime_p99, holdP50: l.holdtime_p50, holdP99: l.holdtime_p99,
    }))),
    violations: c.runs.flatMap((r) => r.violations.slice(0, 5).map((v) => ({ run: label(c, r), checker: v.checker, message: v.message }))),
    forks: c.runs.filter((r) => r.forks !== undefined && r.fork_latency_us !== undefined).map((r) => ({
      run: `${label(c, r)}${swept ? ` @${r.procs}` : ''}`, ipisPerFork: r.ipis_per_fork ?? 0, p50: r.fork_latency_us!.p50, p99: r.fork_latency_us!.p99,
    })),
    sga: c.runs.flatMap((r) => (r.scenario_report?.key === 'sga_1500' ? [sgaCurve(label(c, r), r)] : [])),
  };
}

interface SgaJson {
  sga_bytes: number;
  budget_bytes: number;
  predicted: { per_process_bytes: number; clients_fit: number };
  oom: { first: { clients_worth: number; pt_pages: number } | null };
  clients_alive_at_end: number;
}

/**
 * sga-1500's memory over clients: the SGA plus each client's page tables — the unshared formula
 * (each client maps the whole SGA through its own tables) beside this run's measured tables per
 * client — the budget, and the measured points: where VM_FAULT_OOM first struck (everything
 * charged then) and the clients alive at the end.
 */
function sgaCurve(name: string, r: RunReport) {
  const j = r.scenario_report!.json as SgaJson;
  const alive = Math.max(1, j.clients_alive_at_end);
  const n = [0, r.procs];
  return {
    name,
    procs: r.procs,
    budget: j.budget_bytes,
    unshared: n.map((x) => ({ x, y: j.sga_bytes + x * j.predicted.per_process_bytes })),
    measured: n.map((x) => ({ x, y: j.sga_bytes + r.pgtables_bytes.host + x * (r.pgtables_bytes.guests / alive) })),
    oom: j.oom.first === null ? null : { x: j.oom.first.clients_worth, y: j.sga_bytes + j.oom.first.pt_pages * PAGE },
    end: { x: j.clients_alive_at_end, y: r.memory.peak_bytes },
  };
}

/**
 * Every page's script runs as pageScript(body): D is the page's data; chart(id, config) draws a
 * Chart.js chart into canvas #id and counts it when every dataset has points; the page then marks
 * <body> with data-rendered (charts drawn with data) and data-errors (errors thrown).
 */
export function pageScript(body: string): string {
  return String.raw`
(function () {
  var errors = 0;
  window.addEventListener('error', function () { errors++; document.body.dataset.errors = String(errors); });
  var D = JSON.parse(document.getElementById('ptlab-data').textContent);
  var made = 0;
  function chart(id, cfg) {
    var c = new Chart(document.getElementById(id), cfg);
    if (c.data.datasets.every(function (d) { return d.data.length > 0; })) made++;
    return c;
  }
  // A fresh options object per chart: Chart.js writes its resolved scales into the one it is given.
  function opts(o) { return Object.assign({ animation: false, responsive: false }, o || {}); }
  try {
` + body + String.raw`
  } catch (e) {
    errors++;
    document.body.dataset.failure = String(e && e.message);
  }
  document.body.dataset.rendered = String(made);
  document.body.dataset.errors = String(errors);
})();
`;
}

const SCRIPT = pageScript(String.raw`
  if (D.swept) {
    var pg = D.series.map(function (s) { return { label: s.name, data: s.points.map(function (p) { return { x: p.procs, y: p.pgtables / 1024 }; }) }; });
    if (D.formula) pg.push({ label: D.formula.name, borderDash: [6, 4], pointRadius: 0, data: D.formula.points.map(function (p) { return { x: p.procs, y: p.pgtables / 1024 }; }) });
    chart('pgtables', { type: 'line', data: { datasets: pg }, options: opts({ scales: { x: { type: 'linear', title: { display: true, text: 'processes' } }, y: { title: { display: true, text: 'page tables (KiB, x86-64)' } } } }) });
    var fr = [];
    D.series.forEach(function (s) {
      fr.push({ label: s.name, data: s.points.map(function (p) { return { x: p.procs, y: p.faultsPerS }; }) });
      var b = s.points[0];
      fr.push({ label: s.name + ' linear', borderDash: [3, 3], pointRadius: 0, data: s.points.map(function (p) { return { x: p.procs, y: b.faultsPerS * p.procs / b.procs }; }) });
    });
    chart('faults', { type: 'line', data: { datasets: fr }, options: opts({ scales: { x: { type: 'linear', title: { display: true, text: 'processes' } }, y: { title: { display: true, text: 'faults/s' } } } }) });
  } else {
    var names = D.series.map(function (s) { return s.name; });
    var pgd = [{ label: 'page tables (KiB, x86-64)', data: D.series.map(function (s) { return s.points[0].pgtables / 1024; }) }];
    if (D.formula) pgd.push({ label: D.formula.name, data: D.series.map(function () { return D.formula.points[0].pgtables / 1024; }) });
    chart('pgtables', { type: 'bar', data: { labels: names, datasets: pgd }, options: opts() });
    chart('faults', { type: 'bar', data: { labels: names, datasets: [{ label: 'faults/s', data: D.series.map(function (s) { return s.points[0].faultsPerS; }) }] }, options: opts() });
  }
  if (D.forks.length > 0) {
    chart('forks', { type: 'bar', data: { labels: D.forks.map(function (f) { return f.run; }), datasets: [{ label: 'IPIs per fork', data: D.forks.map(function (f) { return f.ipisPerFork; }) }] }, options: opts() });
  }
  D.sga.forEach(function (g, i) {
    var GiB = 1024 * 1024 * 1024, xy = function (p) { return { x: p.x, y: p.y / GiB }; };
    var ds = [
      { label: 'budget (simulated memory)', data: [{ x: 0, y: g.budget / GiB }, { x: g.procs, y: g.budget / GiB }], borderDash: [6, 4], pointRadius: 0 },
      { label: 'SGA + unshared tables (formula)', data: g.unshared.map(xy), borderDash: [3, 3], pointRadius: 0 },
      { label: 'SGA + ' + g.name + ' tables per client (measured)', data: g.measured.map(xy), pointRadius: 0 },
      { label: 'clients alive at the end (peak memory)', data: [xy(g.end)], showLine: false, pointRadius: 6 },
    ];
    if (g.oom) ds.push({ label: 'first VM_FAULT_OOM (charged then)', data: [xy(g.oom)], showLine: false, pointRadius: 8, pointStyle: 'crossRot' });
    chart('sga' + i, { type: 'line', data: { datasets: ds }, options: opts({ scales: { x: { type: 'linear', title: { display: true, text: 'clients (processes)' } }, y: { title: { display: true, text: 'GiB' } } } }) });
  });
  var contended = D.locks.filter(function (l) { return l.contentions > 0; });
  var lockRows = contended.length > 0 ? contended : D.locks.slice(0, 12);
  chart('waits', { type: 'bar', data: { labels: lockRows.map(function (l) { return l.run + ': ' + l.class + '-' + l.mode; }),
    datasets: [{ label: 'wait p50 (us)', data: lockRows.map(function (l) { return l.waitP50; }) }, { label: 'wait p99 (us)', data: lockRows.map(function (l) { return l.waitP99; }) }] },
    options: opts({ scales: { y: { type: 'logarithmic', title: { display: true, text: 'µs (log)' } } } }) });
  // lock_stat, sortable: click a column's head (contentions first, as /proc/lock_stat sorts).
  var cols = ['run', 'class', 'mode', 'contentions', 'acquisitions', 'waitP50', 'waitP99', 'holdP50', 'holdP99'];
  var rows = D.locks.slice().sort(function (a, b) { return b.contentions - a.contentions; });
  var tbody = document.querySelector('#lockstat tbody');
  function fill() {
    tbody.innerHTML = '';
    rows.forEach(function (r) {
      var tr = document.createElement('tr');
      cols.forEach(function (k) { var td = document.createElement('td'); td.textContent = typeof r[k] === 'number' ? r[k].toLocaleString('en-US') : r[k]; tr.appendChild(td); });
      tbody.appendChild(tr);
    });
  }
  document.querySelectorAll('#lockstat th').forEach(function (th, i) {
    th.addEventListener('click', function () {
      var k = cols[i], dir = th.dataset.dir === 'desc' ? 1 : -1;
      th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      rows.sort(function (a, b) { return (a[k] > b[k] ? 1 : a[k] < b[k] ? -1 : 0) * dir; });
      fill();
    });
  });
  fill();
`);

/** The self-contained page for a compare report. */
export function compareHtml(c: CompareReport): string {
  const d = pageData(c);
  const violations = d.violations.length === 0
    ? '<p class="ok">Every checker passed in every run.</p>'
    : `<ul class="bad">${d.violations.map((v) => `<li>${esc(v.run)}: [${esc(v.checker)}] ${esc(v.message)}</li>`).join('')}</ul>`;
  return htmlPage({
    title: d.title,
    subtitle: d.subtitle,
    charts: 3 + (d.forks.length > 0 ? 1 : 0) + d.sga.length,
    data: d,
    script: SCRIPT,
    body: `<h2>Checkers</h2>${violations}
<h2>Page-table bytes${d.swept ? ' over the process count' : ' per run'}</h2><canvas id="pgtables" width="900" height="360"></canvas>
<h2>Faults per second${d.swept ? ' (dashed: linear from the smallest process count)' : ''}</h2><canvas id="faults" width="900" height="360"></canvas>
${d.forks.length > 0 ? '<h2>fork: IPIs per fork</h2><canvas id="forks" width="900" height="320"></canvas>' : ''}
${d.sga.map((g, i) => `<h2>sga-1500: memory over clients, ${esc(g.name)}</h2><canvas id="sga${i}" width="900" height="380"></canvas>`).join('\n')}
<h2>Lock waits of the contended classes (lock_stat p50 / p99, µs)</h2><canvas id="waits" width="900" height="420"></canvas>
<h2>lock_stat (click a column to sort)</h2>
<table id="lockstat"><thead><tr><th>run</th><th>class</th><th>mode</th><th>contentions</th><th>acquisitions</th><th>wait p50 µs</th><th>wait p99 µs</th><th>hold p50 µs</th><th>hold p99 µs</th></tr></thead><tbody></tbody></table>`,
  });
}

export interface HtmlPage {
  title: string;
  subtitle: string;
  /** Charts the page's script draws: <body data-charts>, beside data-rendered (those drawn with data). */
  charts: number;
  /** The page's data, as JSON in <script id="ptlab-data"> (the script reads it from there). */
  data: unknown;
  /** The page's script: it draws with chart() and sets data-rendered / data-errors on <body> (see SCRIPT). */
  script: string;
  body: string;
}

/** One self-contained page: the style, the data, Chart.js and the page's script inlined. */
export function htmlPage(p: HtmlPage): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(p.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0; } h2 { font-size: 16px; margin: 28px 0 8px; }
.sub { color: #666; } .ok { color: #1a7f37; } .bad { color: #b42318; }
canvas { border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 12px; } th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { cursor: pointer; background: #f6f6f6; } td:nth-child(-n+3) { text-align: left; }
</style></head>
<body data-rendered="0" data-errors="0" data-charts="${p.charts}">
<h1>${esc(p.title)}</h1><div class="sub">${esc(p.subtitle)}</div>
${p.body}
<script id="ptlab-data" type="application/json">${scriptJson(p.data)}</script>
<script>${chartLibrary().replace(/<\/script/gi, '<\\/script')}</script>
<script>${p.script}</script>
</body></html>
`;
}

export { esc };
