/**
 * ptlab's traces validated twice: against the Trace Event Format document (./format.ts: every
 * event well-formed, slices nested on every track, names for every process and thread, v1 flows
 * paired and bound) and by a real parser of the format, the trace engine of Chrome DevTools'
 * performance panel (@paulirish/trace_engine, the package DevTools publishes for Node; Lighthouse
 * uses it). That engine is what opens a trace in chrome://inspect's Performance panel: it must
 * find every process and thread by its name, place every slice in its thread's tree (it drops a
 * slice that overlaps its parent without nesting), and bind every flow at both ends — it binds a
 * flow event to the slice that starts at the same time on the same track with the same category,
 * stricter than v1's enclosing slice, so ptlab's flow ends sit where both rules agree.
 */
import { describe, expect, it } from 'vitest';
import { explore, runToken } from '../../src/cli/explore.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { OP_NAMES } from '../../src/proc/program.js';
import { decodeToken, type ReplayToken } from '../../src/sched/token.js';
import { toChromeTrace } from '../../src/trace/chrome.js';
import { checkEvents, checkFlows, type TraceEvent, tracks } from './format.js';

/** What the test reads of the DevTools engine's model (its types reach into the DOM's). */
interface DevtoolsEvent { name: string; ph: string; ts: number; dur?: number; pid: number; tid: number; cat?: string }
interface DevtoolsModel {
  traceEvents: readonly DevtoolsEvent[];
  data: {
    Meta: { processNames: Map<number, { args: { name: string } }> };
    Renderer: {
      processes: Map<number, { threads: Map<number, { name: string | null; entries: DevtoolsEvent[] }> }>;
      entryToNode: Map<DevtoolsEvent, { depth: number }>;
    };
    Flows: { flows: DevtoolsEvent[][] };
  };
}

/** The DevTools engine run on the trace's events, as the Performance panel loads a file. */
async function devtools(events: readonly TraceEvent[]): Promise<DevtoolsModel> {
  // The engine reads window.DOMRect when it loads (layout shifts); Node has none.
  (globalThis as Record<string, unknown>).DOMRect ??= class {};
  const Trace = await import('@paulirish/trace_engine');
  const model = Trace.TraceModel.Model.createWithAllHandlers();
  // What the engine complains of (unpaired B/E, for one) goes to console.error: none may come.
  const errors: unknown[][] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => errors.push(a);
  try {
    await model.parse(structuredClone(events) as never);
  } finally {
    console.error = error;
  }
  expect(errors).toEqual([]);
  const parsed = model.parsedTrace(0);
  if (parsed === null) throw new Error('the DevTools trace engine parsed nothing');
  return parsed as unknown as DevtoolsModel;
}

async function traceOf(t: ReplayToken) {
  let cpus: number[][] = [];
  const r = await runToken(t, false, undefined, (c) => (cpus = c));
  const trace = JSON.parse(JSON.stringify(toChromeTrace(cpus, OP_NAMES, 'test', r.violations))) as { traceEvents: TraceEvent[] };
  return { r, ev: trace.traceEvents };
}

/** Every check of the format and of the engine; the flows both found, for the caller's checks. */
async function validate(ev: TraceEvent[]) {
  expect(checkEvents(ev)).toEqual([]);
  const { slices, problems } = tracks(ev);
  expect(problems).toEqual([]);
  const f = checkFlows(ev, slices);
  expect(f.problems).toEqual([]);

  const m = await devtools(ev);
  const names = new Map(ev.filter((e) => e.ph === 'M').map((e) => [`${e.name} ${e.pid}/${e.name === 'thread_name' ? e.tid : ''}`, String(e.args?.name)]));
  // Every process by its name, every track as a thread of its process, with its name.
  for (const pid of new Set(ev.map((e) => e.pid))) expect(m.data.Meta.processNames.get(pid)?.args.name).toBe(names.get(`process_name ${pid}/`));
  const seen: string[] = [];
  for (const [pid, p] of m.data.Renderer.processes) {
    for (const [tid, th] of p.threads) {
      if (th.entries.length === 0) continue;
      seen.push(`${pid}/${tid}`);
      expect(th.name).toBe(names.get(`thread_name ${pid}/${tid}`));
      // Every slice in the thread's tree: none overlapped its parent without nesting.
      const dropped = th.entries.filter((e) => !m.data.Renderer.entryToNode.has(e));
      expect(dropped.map((e) => `${e.name}@${e.ts}+${e.dur}`)).toEqual([]);
      // As many as the trace has (B/E pairs and X) on that track.
      expect(th.entries.length).toBe(slices.get(`${pid}/${tid}`)?.length ?? 0);
    }
  }
  expect(seen.sort()).toEqual([...slices.keys()].sort());
  // Every flow bound at both ends, to the slices the v1 rules bind it to.
  const bound = m.data.Flows.flows.map((fl) => fl.map((e) => `${e.pid}/${e.tid} ${e.name}@${e.ts}`).join(' -> '));
  const v1 = f.flows.map((fl) => `${fl.start.pid}/${fl.start.tid} ${fl.from.name}@${fl.from.start} -> ${fl.end.pid}/${fl.end.tid} ${fl.to.name}@${fl.to.start}`);
  expect(bound.sort()).toEqual(v1.sort());
  return { m, flows: f.flows, slices };
}

const passing: ReplayToken = {
  scenario: 'mprotect-vs-fault', model: 'map-shared-pt', opts: { procs: '2', cpus: '2', ops: '2', size: '2M', lockStat: false },
  strategy: 'pct', seed: 5, depth: 3, steps: 1000,
};

describe('traces against the format and the DevTools trace engine', () => {
  it('a passing run with shootdowns: every track named and nested, every IPI a flow bound at both ends on the CPU tracks and the process tracks', async () => {
    const { r, ev } = await traceOf(passing);
    expect(r.ok).toBe(true);
    const { flows } = await validate(ev);
    const cpuFlows = flows.filter((f) => f.start.pid === 1);
    expect(cpuFlows.length).toBeGreaterThan(0);
    expect(cpuFlows.length).toBeLessThanOrEqual(r.tlb.ipis_sent);
    for (const f of cpuFlows) {
      expect(f.from.name).toBe('IPI sent');
      expect(f.to.name).toBe('TLB flush (IPI taken)');
      expect(f.end.tid).not.toBe(f.start.tid);
    }
    // The same arrows between the processes' tracks.
    expect(flows.some((f) => f.start.pid > 1 && f.end.pid > 1)).toBe(true);
  });

  it('a failing run: the same, and the violation an instant on the CPU that found it and on the task it ran', async () => {
    const o = parseRunOptions('exit-vs-fault', { model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', size: '4M', lockStat: false });
    const found = await explore('exit-vs-fault', o, { strategy: 'pct', depth: 3, runs: 50, seed: 1, raw: { lockStat: false } });
    expect(found.ok).toBe(false);
    const { r, ev } = await traceOf(decodeToken(found.token!));
    expect(r.ok).toBe(false);
    const { m } = await validate(ev);
    const v = r.violations[0];
    const marks = m.traceEvents.filter((e) => e.ph === 'i' && e.cat === 'violation');
    expect(marks.some((e) => e.pid === 1 && e.tid === v.cpu && e.name === `violation: ${v.checker}`)).toBe(true);
    expect(marks.some((e) => e.pid > 1)).toBe(true);
  });

  it.each([
    ['race-stale-tlb', { cpus: '3' }],
    ['fork-storm', { cpus: '3', procs: '3', ops: '1' }],
    ['race-unshare-flush', {}],
  ])('%s under explore: its traces are valid too', async (scenario, opts) => {
    const o = parseRunOptions(scenario, { lockStat: false, ...opts });
    const found = await explore(scenario, o, { strategy: 'pct', depth: 3, runs: 2, seed: 3, raw: { lockStat: false, ...opts } });
    const { ev } = await traceOf(decodeToken(found.token!));
    await validate(ev);
  }, 180_000); // a budget for a loaded machine, not a timing assertion
});
