/**
 * Checks of a Chrome trace against the Trace Event Format document itself (the JSON object form),
 * independent of any viewer: every event well-formed; per track (pid, tid), in timestamp order,
 * B/E paired by name and every slice (B/E or X) nested in the ones around it, never a partial
 * overlap; process and thread names for every track used; flows (v1: ph s/t/f with an id) paired
 * and bound by the v1 rules — 's' to the slice enclosing it on its track, 'f' with bp "e" to the
 * enclosing slice, an 'f' without it to the next slice that starts on its track. Each check
 * returns a list of problems (empty when the trace is right), so a failure names the event.
 */

export interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  cat?: string;
  id?: number | string;
  bp?: string;
  s?: string;
  dur?: number;
  args?: Record<string, unknown>;
}

const PHASES = new Set(['B', 'E', 'X', 'i', 'I', 'C', 'M', 's', 't', 'f', 'b', 'e', 'n']);

/** A slice on one track: [start, end], from an X or a B/E pair. */
export interface Slice {
  name: string;
  cat?: string;
  start: number;
  end: number;
  depth: number;
}

const key = (e: { pid: number; tid: number }) => `${e.pid}/${e.tid}`;

/** The events in the order a viewer reads them: metadata aside, stably sorted by time. */
function timeOrdered(ev: readonly TraceEvent[]): TraceEvent[] {
  return ev.filter((e) => e.ph !== 'M').map((e, i) => [e, i] as const).sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]).map(([e]) => e);
}

/** Every track's slices with their depth, or problems where B/E do not pair or slices overlap. */
export function tracks(ev: readonly TraceEvent[]): { slices: Map<string, Slice[]>; problems: string[] } {
  const problems: string[] = [];
  const slices = new Map<string, Slice[]>();
  const open = new Map<string, TraceEvent[]>();
  const put = (k: string, s: Omit<Slice, 'depth'>) => {
    const l = slices.get(k) ?? [];
    slices.set(k, l);
    l.push({ ...s, depth: 0 });
  };
  for (const e of timeOrdered(ev)) {
    const k = key(e);
    if (e.ph === 'B') {
      const o = open.get(k) ?? [];
      open.set(k, o);
      o.push(e);
    } else if (e.ph === 'E') {
      const b = open.get(k)?.pop();
      if (b === undefined) problems.push(`track ${k}: E '${e.name}' at ${e.ts} with no open slice`);
      else if (b.name !== e.name) problems.push(`track ${k}: E '${e.name}' at ${e.ts} closes '${b.name}' (begun at ${b.ts})`);
      else put(k, { name: b.name, cat: b.cat, start: b.ts, end: e.ts });
    } else if (e.ph === 'X') put(k, { name: e.name, cat: e.cat, start: e.ts, end: e.ts + (e.dur ?? 0) });
  }
  for (const [k, o] of open) for (const b of o) problems.push(`track ${k}: B '${b.name}' at ${b.ts} never ends`);
  // Nesting: by start, the longer first; a slice must end by the end of the one it starts in.
  for (const [k, l] of slices) {
    l.sort((a, b) => a.start - b.start || b.end - a.end);
    const stack: Slice[] = [];
    for (const s of l) {
      while (stack.length > 0 && stack[stack.length - 1].end <= s.start) stack.pop();
      const top = stack[stack.length - 1];
      if (top !== undefined && s.end > top.end) problems.push(`track ${k}: '${s.name}' [${s.start}, ${s.end}] overlaps '${top.name}' [${top.start}, ${top.end}] without nesting in it`);
      s.depth = stack.length;
      stack.push(s);
    }
  }
  return { slices, problems };
}

/** Well-formed events and the names of every process and thread that has events. */
export function checkEvents(ev: readonly TraceEvent[]): string[] {
  const problems: string[] = [];
  const procNames = new Set<number>();
  const threadNames = new Set<string>();
  for (const e of ev) {
    if (typeof e.name !== 'string' || !PHASES.has(e.ph) || !Number.isFinite(e.ts) || e.ts < 0 || !Number.isInteger(e.pid) || !Number.isInteger(e.tid)) {
      problems.push(`malformed event ${JSON.stringify(e)}`);
      continue;
    }
    if (e.ph === 'X' && !(typeof e.dur === 'number' && e.dur >= 0)) problems.push(`X '${e.name}' at ${e.ts} without a duration`);
    if ((e.ph === 'i' || e.ph === 'I') && e.s !== undefined && !['g', 'p', 't'].includes(e.s)) problems.push(`instant '${e.name}' with scope ${e.s}`);
    if ((e.ph === 's' || e.ph === 't' || e.ph === 'f') && e.id === undefined) problems.push(`flow event '${e.name}' at ${e.ts} without an id`);
    if (e.ph === 'C' && (e.args === undefined || Object.values(e.args).some((v) => typeof v !== 'number'))) problems.push(`counter '${e.name}' at ${e.ts} without numeric args`);
    if (e.ph === 'M' && e.name === 'process_name' && typeof e.args?.name === 'string') procNames.add(e.pid);
    if (e.ph === 'M' && e.name === 'thread_name' && typeof e.args?.name === 'string') threadNames.add(key(e));
  }
  for (const e of ev) {
    if (e.ph === 'M' || (e.ph === 'i' && e.s === 'g')) continue;
    if (!procNames.has(e.pid)) problems.push(`pid ${e.pid} has events but no process_name`);
    if (!threadNames.has(key(e))) problems.push(`track ${key(e)} has events but no thread_name`);
    procNames.add(e.pid); // one problem per track is enough
    threadNames.add(key(e));
  }
  return problems;
}

/** A flow's two ends and the slices they bind to. */
export interface BoundFlow {
  id: string;
  start: TraceEvent;
  end: TraceEvent;
  from: Slice;
  to: Slice;
}

/** v1 flows: paired by (cat, name, id), one start and one finish each, bound by the v1 rules. */
export function checkFlows(ev: readonly TraceEvent[], slices: Map<string, Slice[]>): { flows: BoundFlow[]; problems: string[] } {
  const problems: string[] = [];
  const byId = new Map<string, TraceEvent[]>();
  for (const e of timeOrdered(ev)) {
    if (e.ph !== 's' && e.ph !== 't' && e.ph !== 'f') continue;
    const id = `${e.cat ?? ''}/${e.name}/${String(e.id)}`;
    byId.set(id, [...(byId.get(id) ?? []), e]);
  }
  // The innermost slice that encloses ts on the track (start <= ts < end, or an empty one at ts).
  const enclosing = (e: TraceEvent) => {
    let best: Slice | undefined;
    for (const s of slices.get(key(e)) ?? []) if (s.start <= e.ts && (e.ts < s.end || s.start === s.end) && (best === undefined || s.depth > best.depth)) best = s;
    return best;
  };
  const next = (e: TraceEvent) => (slices.get(key(e)) ?? []).filter((s) => s.start >= e.ts).sort((a, b) => a.start - b.start || a.depth - b.depth)[0];
  const flows: BoundFlow[] = [];
  for (const [id, l] of byId) {
    const phases = l.map((e) => e.ph).join('');
    if (!/^st*f$/.test(phases)) {
      problems.push(`flow ${id}: phases ${phases} (want one s, then one f)`);
      continue;
    }
    const start = l[0];
    const end = l[l.length - 1];
    const from = enclosing(start);
    const to = end.bp === 'e' ? enclosing(end) : next(end);
    if (from === undefined) problems.push(`flow ${id}: its start at ${start.ts} on ${key(start)} is in no slice`);
    if (to === undefined) problems.push(`flow ${id}: its finish at ${end.ts} on ${key(end)} binds to no slice (bp ${end.bp ?? 'none'})`);
    if (from !== undefined && to !== undefined) flows.push({ id, start, end, from, to });
  }
  return { flows, problems };
}
