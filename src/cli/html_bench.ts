/**
 * The HTML page of the benchmarks' JSON lines (`npm run bench`, `npm run bench:races`,
 * `npm run bench:locks` print one JSON object per line; `ptlab report FILE --html OUT` or the
 * benchmarks' own `--html OUT` turn them into this page): rates per benchmark, explore's runs/s
 * over --jobs with the linear line, the race catalog's runs to the first failure per race and
 * strategy (log scale, PCT's target of 100), the ratios each against its target.
 */
import { esc, htmlPage, pageScript } from './html.js';

/** A benchmark's JSON line: a rate record ({bench, rate_per_s, ...}), a race record ({bench: 'race'}) or a ratio ({ratio}). */
export type BenchLine = Record<string, unknown>;

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));

/** What a rate record measured, in a few words: its bench, model and threads, and what else sets it apart. */
function rateLabel(r: BenchLine): string {
  const parts = [str(r.bench), str(r.model)];
  for (const k of ['access', 'mmap_lock', 'fault_lock', 'mapped_mib']) if (r[k] !== undefined) parts.push(`${k === 'mapped_mib' ? `${str(r[k])} MiB` : str(r[k])}`);
  if (r.scheduler !== undefined) parts.push(String(r.scheduler).startsWith('none') ? 'no scheduler' : 'no-op scheduler');
  parts.push(`${num(r.threads)} thr`);
  return parts.filter((p) => p !== '').join(' / ');
}

function benchData(lines: BenchLine[]) {
  const rates = lines.filter((l) => typeof l.bench === 'string' && l.bench !== 'race' && typeof l.rate_per_s === 'number' && !l.skipped && num(l.rate_per_s) > 0);
  const jobs = rates.filter((l) => l.bench === 'explore-jobs').map((l) => ({ jobs: num(l.threads), rate: num(l.rate_per_s) })).sort((a, b) => a.jobs - b.jobs);
  const races = lines.filter((l) => l.bench === 'race').map((l) => ({
    race: str(l.scenario), strategy: str(l.strategy), model: str(l.model), bug: str(l.bug), found: `${num(l.found)}/${num(l.seeds)}`,
    median: num(l.median_runs_to_failure), runsPerS: num(l.runs_per_s), fixedOk: l.fixed_ok === true,
  }));
  const ratios = lines.filter((l) => typeof l.ratio === 'string').map((l) => ({ ratio: str(l.ratio), value: l.value === null ? null : num(l.value), target: str(l.target), meets: l.meets_target ?? null }));
  const cores = lines.map((l) => num(l.cores)).find((c) => c > 0) ?? 0;
  return { rates: rates.map((r) => ({ label: rateLabel(r), rate: num(r.rate_per_s) })), jobs, races, ratios, cores };
}

const SCRIPT = pageScript(String.raw`
  var log = function (t) { return { type: 'logarithmic', title: { display: true, text: t } }; };
  if (D.rates.length > 0) {
    chart('rates', { type: 'bar', data: { labels: D.rates.map(function (r) { return r.label; }), datasets: [{ label: 'operations per second (median run)', data: D.rates.map(function (r) { return r.rate; }) }] },
      options: opts({ indexAxis: 'y', scales: { x: log('per second (log)') } }) });
  }
  if (D.jobs.length > 0) {
    var one = D.jobs[0];
    chart('jobs', { type: 'line', data: { datasets: [
      { label: 'explore: controlled runs/s', data: D.jobs.map(function (j) { return { x: j.jobs, y: j.rate }; }) },
      { label: 'linear from --jobs ' + one.jobs, borderDash: [3, 3], pointRadius: 0, data: D.jobs.map(function (j) { return { x: j.jobs, y: one.rate * j.jobs / one.jobs }; }) },
    ] }, options: opts({ scales: { x: { type: 'linear', title: { display: true, text: '--jobs (' + D.cores + ' cores)' } }, y: { title: { display: true, text: 'runs/s' } } } }) });
  }
  if (D.races.length > 0) {
    var names = [];
    D.races.forEach(function (r) { if (names.indexOf(r.race) < 0) names.push(r.race); });
    var strategies = [];
    D.races.forEach(function (r) { if (strategies.indexOf(r.strategy) < 0) strategies.push(r.strategy); });
    var sets = strategies.map(function (s) {
      return { label: s + ': median runs to the first failure', data: names.map(function (n) { var r = D.races.find(function (x) { return x.race === n && x.strategy === s; }); return r ? r.median : null; }) };
    });
    sets.push({ type: 'line', label: 'target: 100 runs', borderDash: [6, 4], pointRadius: 0, data: names.map(function () { return 100; }) });
    chart('races', { type: 'bar', data: { labels: names, datasets: sets }, options: opts({ indexAxis: 'x', scales: { y: log('runs (log)') } }) });
  }
`);

/** The self-contained page for benchmark JSON lines. */
export function benchHtml(lines: BenchLine[], title = 'ptlab benchmarks'): string {
  const d = benchData(lines);
  const charts = (d.rates.length > 0 ? 1 : 0) + (d.jobs.length > 0 ? 1 : 0) + (d.races.length > 0 ? 1 : 0);
  const table = (head: string[], rows: string[][]) =>
    `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  const body = [
    d.rates.length > 0 ? `<h2>Rates (median of interleaved runs)</h2><canvas id="rates" width="1000" height="${Math.max(240, 26 * d.rates.length + 60)}"></canvas>` : '',
    d.jobs.length > 0 ? '<h2>explore across cores: runs/s over --jobs (dashed: linear)</h2><canvas id="jobs" width="900" height="340"></canvas>' : '',
    d.races.length > 0
      ? `<h2>The race catalog: runs to the first failure, per race and strategy (a race not found counts as runs + 1)</h2><canvas id="races" width="1100" height="460"></canvas>` +
        table(['race', 'strategy', 'model', 'bug', 'found', 'median runs to failure', 'runs/s (fixed)', 'fixed variant'],
          d.races.map((r) => [r.race, r.strategy, r.model, r.bug, r.found, String(r.median), String(r.runsPerS), r.fixedOk ? 'survived' : 'FAILED']))
      : '',
    d.ratios.length > 0
      ? '<h2>Ratios against their targets</h2>' + table(['ratio', 'value', 'target', 'meets'], d.ratios.map((r) => [r.ratio, r.value === null ? '-' : String(r.value), r.target, r.meets === null ? '-' : r.meets ? 'yes' : 'NO']))
      : '',
  ].filter((x) => x !== '').join('\n');
  return htmlPage({ title, subtitle: `${d.cores} cores; made ${new Date().toISOString().slice(0, 10)}`, charts, data: d, script: SCRIPT, body });
}

/** Reads JSON lines (a benchmark's stdout: JSON lines among text lines, which are skipped). */
export function parseJsonLines(text: string): BenchLine[] {
  const out: BenchLine[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const v = JSON.parse(t) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(v as BenchLine);
    } catch {
      // a text line that starts with a brace: not a record
    }
  }
  return out;
}
