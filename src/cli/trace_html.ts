/**
 * `ptlab trace TOKEN --html FILE`: the traced run as one self-contained page — no network at view
 * time (these machines cannot reach ui.perfetto.dev), the timeline library and the data inlined.
 *
 * The library: Apache ECharts (Apache-2.0, a plain browser bundle, no Node at view time), its
 * custom series drawing the slices on a canvas. Chosen over vis-timeline (one DOM element per
 * item: a failing run has ~25,000 slices; no nesting depth within a row; arrows only through a
 * plug-in) and d3 (scales and axes, but the drawing, zoom and hit-testing would be ours): ECharts
 * draws tens of thousands of rectangles on canvas, and gives wheel/drag zoom and pan (dataZoom),
 * hover tooltips and markers. Its full build (1.1 MB, the one with custom series) is read from the
 * installed package and inlined, as html.ts inlines Chart.js.
 *
 * The page is drawn from the same Chrome trace the JSON has (src/trace/chrome.ts): one row per
 * task grouped under its mm, then one per CPU; slices at their nesting depth, coloured by kind,
 * name and args on hover (and in the panel on click); an arrow per IPI from the shootdown to the
 * flush; the violation a red line on the CPU and the task that found it. Schedule-point instants
 * and the page-table counter are left to the JSON. When it has drawn, the page marks <body>
 * (data-rendered, data-slices, data-flows, data-violations, data-errors), which the headless
 * test reads.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ChromeEvent } from '../trace/chrome.js';

let echartsJs: string | null = null;

/** ECharts' full browser build, read from the installed package (inlined into every page). */
function echartsLibrary(): string {
  if (echartsJs === null) {
    const pkg = createRequire(import.meta.url).resolve('echarts/package.json');
    echartsJs = readFileSync(join(dirname(pkg), 'dist', 'echarts.min.js'), 'utf8');
  }
  return echartsJs;
}

/** JSON safe inside <script>: no "</script>", no HTML comment openers. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export interface TraceHtmlInfo {
  title: string;
  token: string;
  ok: boolean;
  /** The first violation, as the CLI prints it. */
  verdict: string;
}

/** What the page draws, computed here (the page only draws). */
export function traceViewData(events: readonly ChromeEvent[]) {
  const procName = new Map<number, string>();
  const threadName = new Map<string, string>();
  for (const e of events) {
    if (e.ph !== 'M') continue;
    if (e.name === 'process_name') procName.set(e.pid, String(e.args?.name));
    if (e.name === 'thread_name') threadName.set(`${e.pid}/${e.tid}`, String(e.args?.name));
  }
  const tracks = new Set<string>();
  for (const e of events) if (e.ph === 'X' || e.ph === 'i') if (!(e.ph === 'i' && e.s === 'g')) tracks.add(`${e.pid}/${e.tid}`);
  // Rows: the tasks, grouped by their mm (pid order), then the CPUs (pid 1).
  const keys = [...tracks].map((k) => k.split('/').map(Number) as [number, number]);
  keys.sort((a, b) => (a[0] === 1 ? 1 : 0) - (b[0] === 1 ? 1 : 0) || a[0] - b[0] || a[1] - b[1]);
  const rowOf = new Map(keys.map(([pid, tid], i) => [`${pid}/${tid}`, i]));
  const rows = keys.map(([pid, tid]) => ({
    label: threadName.get(`${pid}/${tid}`) ?? `${pid}/${tid}`,
    group: pid === 1 ? 'CPUs' : (procName.get(pid) ?? `pid ${pid}`),
    depth: 1,
  }));
  const names: string[] = [];
  const nameIx = new Map<string, number>();
  const intern = (s: string) => {
    let i = nameIx.get(s);
    if (i === undefined) nameIx.set(s, (i = names.push(s) - 1));
    return i;
  };
  const cats: string[] = [];
  const catIx = (c: string) => (cats.includes(c) ? cats.indexOf(c) : cats.push(c) - 1);
  // Slices: [row, start, end, depth, cat, name, args (index into `args` or -1)].
  const slices: number[][] = [];
  const args: Record<string, unknown>[] = [];
  const open = new Map<number, number[]>(); // row -> ends of the slices open on it
  const sliceDepth = new Map<string, number>(); // `${row}@${ts}` -> the depth of the slice starting there (flow ends bind to it)
  let end = 0;
  for (const e of events) {
    if (e.ph !== 'X') continue;
    const row = rowOf.get(`${e.pid}/${e.tid}`);
    if (row === undefined) continue;
    const stack = open.get(row) ?? [];
    open.set(row, stack);
    const stop = e.ts + (e.dur ?? 0);
    while (stack.length > 0 && stack[stack.length - 1] <= e.ts) stack.pop();
    const depth = stack.length;
    stack.push(stop);
    rows[row].depth = Math.max(rows[row].depth, depth + 1);
    sliceDepth.set(`${row}@${e.ts}`, depth);
    end = Math.max(end, stop);
    slices.push([row, e.ts, stop, depth, catIx(e.cat ?? ''), intern(e.name), e.args === undefined ? -1 : args.push(e.args) - 1]);
  }
  // Flows: [row, ts, depth] at the start and at the end, bound to the slice starting there.
  const starts = new Map<string, [number, number, number]>();
  const flows: number[][] = [];
  for (const e of events) {
    if (e.ph !== 's' && e.ph !== 'f') continue;
    const row = rowOf.get(`${e.pid}/${e.tid}`);
    if (row === undefined) continue;
    const at: [number, number, number] = [row, e.ts, sliceDepth.get(`${row}@${e.ts}`) ?? 0];
    const id = `${e.cat}/${e.name}/${String(e.id)}`;
    if (e.ph === 's') starts.set(id, at);
    else {
      const s = starts.get(id);
      if (s !== undefined) flows.push([...s, ...at]);
    }
  }
  // Violations: [row (-1: the whole run), ts, checker, message].
  const violations: [number, number, string, string][] = [];
  for (const e of events) {
    if (e.ph !== 'i' || e.cat !== 'violation') continue;
    const row = e.s === 'g' ? -1 : (rowOf.get(`${e.pid}/${e.tid}`) ?? -1);
    violations.push([row, e.ts, String(e.args?.checker ?? e.name), String(e.args?.message ?? '')]);
    end = Math.max(end, e.ts + 1);
  }
  return { rows, cats, names, slices, args, flows, violations, end };
}

// Colours by kind (the trace's categories).
const COLOURS: Record<string, string> = {
  syscall: '#4e79a7', fault: '#f28e2b', lock: '#76b7b2', shootdown: '#b07aa1', ipi: '#e15759', sched: '#9c755f', memory: '#59a14f',
};

const PAGE_SCRIPT = String.raw`
(function () {
  var body = document.body;
  var status = document.getElementById('status');
  var errors = 0;
  function fail(msg) {
    errors++;
    body.setAttribute('data-errors', String(errors));
    status.textContent = 'error: ' + msg;
    status.className = 'error';
  }
  window.addEventListener('error', function (e) { fail(e.message || String(e)); });
  try {
    var D = JSON.parse(document.getElementById('ptlab-trace').textContent);
    var colours = JSON.parse(document.getElementById('ptlab-colours').textContent);
    var el = document.getElementById('timeline');
    el.style.height = Math.max(320, D.rows.reduce(function (h, r) { return h + 26 + 12 * r.depth; }, 0) + 110) + 'px';
    var chart = echarts.init(el, null, { renderer: 'canvas' });
    var drawn = { slices: 0, flows: 0, violations: 0 };
    function colour(cat) { return colours[D.cats[cat]] || '#888'; }
    function lane(api, row, depth) {
      var c = api.coord([0, row]);
      var band = api.size([0, 1])[1];
      var h = band * 0.86 / D.rows[row].depth;
      return { top: c[1] - band * 0.43 + depth * h, h: h };
    }
    function sliceItem(params, api) {
      var s = D.slices[params.dataIndex];
      var a = api.coord([s[1], s[0]]);
      var b = api.coord([s[2], s[0]]);
      var l = lane(api, s[0], s[3]);
      var r = echarts.graphic.clipRectByRect({ x: a[0], y: l.top, width: Math.max(b[0] - a[0], 1), height: Math.max(l.h - 1, 1) }, params.coordSys);
      if (!r) return null;
      drawn.slices++;
      var children = [{ type: 'rect', shape: r, style: { fill: colour(s[4]) } }];
      if (r.width > 48 && l.h >= 10) {
        var name = D.names[s[5]];
        var fit = Math.floor((r.width - 4) / 6);
        children.push({ type: 'text', silent: true, style: { text: name.length > fit ? name.slice(0, Math.max(fit - 1, 1)) + '…' : name, x: r.x + 2, y: r.y + r.height / 2, verticalAlign: 'middle', fill: '#fff', font: Math.min(11, Math.floor(l.h - 2)) + 'px sans-serif' } });
      }
      return { type: 'group', children: children };
    }
    function flowItem(params, api) {
      var f = D.flows[params.dataIndex];
      var la = lane(api, f[0], f[2]);
      var lb = lane(api, f[3], f[5]);
      var a = api.coord([f[1], f[0]]);
      var b = api.coord([f[4], f[3]]);
      var y1 = la.top + la.h / 2;
      var y2 = lb.top + lb.h / 2;
      var cs = params.coordSys;
      if (Math.max(a[0], b[0]) < cs.x || Math.min(a[0], b[0]) > cs.x + cs.width) return null;
      drawn.flows++;
      var ang = Math.atan2(y2 - y1, b[0] - a[0]);
      var head = [[b[0], y2], [b[0] - 8 * Math.cos(ang - 0.4), y2 - 8 * Math.sin(ang - 0.4)], [b[0] - 8 * Math.cos(ang + 0.4), y2 - 8 * Math.sin(ang + 0.4)]];
      return { type: 'group', children: [
        { type: 'line', shape: { x1: a[0], y1: y1, x2: b[0], y2: y2 }, style: { stroke: '#222', lineWidth: 1.2 } },
        { type: 'polygon', shape: { points: head }, style: { fill: '#222' } },
      ] };
    }
    function violationItem(params, api) {
      var v = D.violations[params.dataIndex];
      var x = api.coord([v[1], 0])[0];
      var cs = params.coordSys;
      if (x < cs.x - 1 || x > cs.x + cs.width + 1) return null;
      drawn.violations++;
      var y0 = cs.y, y1 = cs.y + cs.height;
      if (v[0] >= 0) {
        var c = api.coord([v[1], v[0]]);
        var band = api.size([0, 1])[1];
        y0 = c[1] - band / 2; y1 = c[1] + band / 2;
      }
      return { type: 'group', children: [
        { type: 'line', shape: { x1: x, y1: y0, x2: x, y2: y1 }, style: { stroke: '#d00', lineWidth: 3 } },
        { type: 'polygon', shape: { points: [[x, y0 + 2], [x - 7, y0 - 9], [x + 7, y0 - 9]] }, style: { fill: '#d00' } },
      ] };
    }
    function fmtArgs(i) {
      if (i < 0) return '';
      var a = D.args[i];
      return Object.keys(a).map(function (k) { return esc(k) + ': ' + esc(String(a[k])); }).join('<br>');
    }
    function esc(s) { return s.replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; }); }
    function describe(p) {
      if (p.seriesIndex === 0) {
        var s = D.slices[p.dataIndex];
        var r = D.rows[s[0]];
        return '<b>' + esc(D.names[s[5]]) + '</b> (' + esc(D.cats[s[4]]) + ')<br>' + esc(r.group) + ' / ' + esc(r.label) +
          '<br>ticks ' + s[1] + ' to ' + s[2] + ' (' + (s[2] - s[1]) + ')' + (s[6] >= 0 ? '<br>' + fmtArgs(s[6]) : '');
      }
      if (p.seriesIndex === 1) {
        var f = D.flows[p.dataIndex];
        return '<b>IPI</b> ' + esc(D.rows[f[0]].label) + ' @' + f[1] + ' → ' + esc(D.rows[f[3]].label) + ' @' + f[4];
      }
      var v = D.violations[p.dataIndex];
      return '<b>violation: ' + esc(v[2]) + '</b> @' + v[1] + '<br>' + esc(v[3]);
    }
    var labels = D.rows.map(function (r, i) { return (i === 0 || D.rows[i - 1].group !== r.group ? r.group + ' ▸ ' : '') + r.label; });
    chart.setOption({
      animation: false,
      grid: { left: 190, right: 30, top: 30, bottom: 70 },
      tooltip: { trigger: 'item', confine: true, formatter: describe },
      xAxis: { type: 'value', min: 0, max: D.end, name: 'tick', nameLocation: 'middle', nameGap: 24, axisLabel: { hideOverlap: true } },
      yAxis: { type: 'category', data: labels, inverse: true, splitArea: { show: true }, axisLabel: { fontSize: 11 } },
      dataZoom: [
        { type: 'inside', xAxisIndex: 0, filterMode: 'weakFilter' },
        { type: 'slider', xAxisIndex: 0, filterMode: 'weakFilter', height: 18, bottom: 8 },
      ],
      series: [
        { type: 'custom', name: 'slices', renderItem: sliceItem, encode: { x: [1, 2], y: 0 }, data: D.slices, progressive: 0 },
        { type: 'custom', name: 'flows', renderItem: flowItem, encode: { x: [1, 4], y: [0, 3] }, data: D.flows, z: 5 },
        { type: 'custom', name: 'violations', renderItem: violationItem, encode: { x: 1, y: 0 }, data: D.violations.map(function (v) { return [Math.max(v[0], 0), v[1]]; }), z: 10 },
      ],
    });
    chart.on('click', function (p) { document.getElementById('detail').innerHTML = describe(p); });
    // Drawn: what the last rendering drew (setOption renders at once, progressive off; the paint
    // is forced here rather than left to the next animation frame, which a headless dump never runs).
    function mark() {
      body.setAttribute('data-rendered', '1');
      body.setAttribute('data-slices', String(drawn.slices));
      body.setAttribute('data-flows', String(drawn.flows));
      body.setAttribute('data-violations', String(drawn.violations));
      body.setAttribute('data-errors', String(errors));
      if (errors === 0) status.textContent = D.slices.length + ' slices on ' + D.rows.length + ' rows, ' + D.flows.length + ' IPI arrows, ' + D.violations.length + ' violation marks';
      drawn = { slices: 0, flows: 0, violations: 0 };
    }
    chart.getZr().flush();
    mark();
    chart.on('finished', mark);
    // Zoom and pan by buttons (the wheel zooms, a drag pans, the slider below does both).
    var win = [0, 100];
    chart.on('datazoom', function () { var z = chart.getOption().dataZoom[0]; win = [z.start, z.end]; });
    function zoomTo(a, b) {
      var w = Math.max(b - a, 0.001);
      if (a < 0) { a = 0; b = w; }
      if (b > 100) { b = 100; a = Math.max(0, 100 - w); }
      win = [a, b];
      // Drawn at the next animation frame ('finished' marks the page again).
      chart.setOption({ dataZoom: [{ start: a, end: b }, { start: a, end: b }] });
    }
    function act(id, f) { document.getElementById(id).addEventListener('click', f); }
    act('zoom-in', function () { var c = (win[0] + win[1]) / 2, w = (win[1] - win[0]) / 4; zoomTo(c - w, c + w); });
    act('zoom-out', function () { var c = (win[0] + win[1]) / 2, w = win[1] - win[0]; zoomTo(c - w, c + w); });
    act('pan-left', function () { var w = win[1] - win[0]; zoomTo(win[0] - w / 2, win[1] - w / 2); });
    act('pan-right', function () { var w = win[1] - win[0]; zoomTo(win[0] + w / 2, win[1] + w / 2); });
    act('reset', function () { zoomTo(0, 100); });
    var goto = document.getElementById('goto-violation');
    if (D.violations.length === 0) goto.disabled = true;
    act('goto-violation', function () {
      var at = 100 * D.violations[0][1] / Math.max(D.end, 1);
      var w = Math.max(100 * 400 / Math.max(D.end, 1), 0.05);
      zoomTo(at - w * 0.8, at + w * 0.2);
    });
    // A link can open the page zoomed: #violation, or #ticks=FROM-TO.
    function fromHash() {
      var m = /^#ticks=(\d+)-(\d+)$/.exec(location.hash);
      if (location.hash === '#violation' && D.violations.length > 0) document.getElementById('goto-violation').click();
      else if (m) zoomTo(100 * Number(m[1]) / Math.max(D.end, 1), 100 * Number(m[2]) / Math.max(D.end, 1));
    }
    fromHash();
    window.addEventListener('hashchange', fromHash);
    window.addEventListener('resize', function () { chart.resize(); });
  } catch (e) {
    fail(e && e.message ? e.message : String(e));
  }
})();
`;

/** The page: header, legend, buttons, the timeline and a detail panel; ECharts and the data inlined. */
export function traceHtml(events: readonly ChromeEvent[], info: TraceHtmlInfo): string {
  const data = traceViewData(events);
  const legend = data.cats.filter((c) => c !== '').map((c) => `<span class="key"><i style="background:${COLOURS[c] ?? '#888'}"></i>${esc(c)}</span>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px}
.verdict{margin:4px 0 8px;font-weight:600}.verdict.fail{color:#c00}.verdict.ok{color:#080}
code{font-size:12px;word-break:break-all;color:#555}
.bar{display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin:8px 0}
.key{display:inline-flex;align-items:center;gap:4px;margin-right:10px;font-size:12px}.key i{width:12px;height:12px;display:inline-block;border-radius:2px}
button{font:13px system-ui,sans-serif;padding:3px 9px}
#timeline{width:100%;min-height:320px;border:1px solid #ddd}
#status{font-size:12px;color:#555}#status.error{color:#c00;font-weight:600}
#detail{margin-top:8px;font-size:13px;min-height:3em;padding:6px;border:1px solid #eee;background:#fafafa}
</style></head>
<body data-rendered="0" data-errors="0">
<h1>${esc(info.title)}</h1>
<div class="verdict ${info.ok ? 'ok' : 'fail'}">${esc(info.verdict)}</div>
<div><code>ptlab replay ${esc(info.token)}</code></div>
<div class="bar">${legend}<span class="key"><i style="background:#222;height:2px"></i>IPI (shootdown → flush)</span><span class="key"><i style="background:#d00;width:3px"></i>violation</span></div>
<div class="bar"><button id="zoom-in">zoom in</button><button id="zoom-out">zoom out</button><button id="pan-left">◀ pan</button><button id="pan-right">pan ▶</button><button id="reset">whole run</button><button id="goto-violation">go to the violation</button>
<span id="status">drawing…</span></div>
<div id="timeline"></div>
<div id="detail">Click a slice for its name and args; hover for the same. The wheel zooms, a drag pans; time is the controlled run's clock, one tick per traced event.</div>
<script id="ptlab-trace" type="application/json">${scriptJson(data)}</script>
<script id="ptlab-colours" type="application/json">${scriptJson(COLOURS)}</script>
<script>${echartsLibrary().replace(/<\/script/gi, '<\\/script')}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
