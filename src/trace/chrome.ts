/**
 * The Chrome trace event format (`{"traceEvents": [...]}`), which Perfetto and chrome://tracing
 * open. Two views of one run, as ftrace and perf give them:
 * - per process (pid 2 + mm: one "process" per address space, named `mm N`; one track per task
 *   in it, named `process T`): the task's syscalls, the faults inside them, lock holds and
 *   shootdowns inside those — what each actor did;
 * - per CPU (pid 1, one track per CPU, `cpuN`): the same slices in the order the CPU ran them, plus
 *   instants at schedule points, the IPIs a CPU took (each a short `TLB flush` slice, so that the
 *   flow from the shootdown request binds to a slice at both ends), a counter of page-table pages,
 *   and the violation, an instant on the CPU that found it (and on the task it was running).
 * Slices are named by kind (`fault`, the syscall's name, the lock class, `TLB shootdown`); the
 * fault's address and the syscall's outcome (an errno or signal name) go in args.
 *
 * Slices are complete events (ph X), not B/E pairs: Chrome DevTools' trace engine pairs B with E
 * on one stack for the whole trace, so the B/E of two CPUs interleaved in time were mismatched
 * (test/trace/validate.test.ts loads every trace in that engine and checks it against the
 * format's own rules).
 */
import { outcomeName } from '../proc/program.js';
import { LOCK_CLASS_NAMES } from '../sync/lockdep.js';
import { SCHED_POINT_NAMES } from '../sync/schedpoint.js';
import { TraceKind } from '../sync/tracer.js';
import { EVENT_WORDS, PH_BEGIN, PH_COUNTER, PH_END, PH_FLOW_IN, PH_FLOW_OUT, PH_INSTANT } from './ring.js';

export interface ChromeEvent {
  name: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  cat?: string;
  id?: number;
  bp?: string;
  s?: string;
  dur?: number;
  args?: Record<string, unknown>;
}

/** A violation to mark: its checker and message, and the CPU that found it. */
export interface TraceViolation {
  checker: string;
  message: string;
  cpu?: number;
}

const CAT = ['', 'syscall', 'fault', 'lock', 'shootdown', 'ipi', 'sched', 'memory', 'sched'];
const CPU_PID = 1;
const MM_PID_BASE = 2;
/** Added to a flow's id for its copy between process tracks (IPI flow ids are below 2^26). */
const TASK_FLOW = 2 ** 26;

/** A slice open on a CPU: its complete event on the CPU track and its copy on the task's track (until the task leaves). */
interface Open {
  cpu: ChromeEvent;
  task: ChromeEvent | undefined;
}

function sliceName(kind: number, arg: number, opNames: readonly string[]): string {
  switch (kind) {
    case TraceKind.Syscall: return opNames[arg] ?? `op ${arg}`;
    case TraceKind.Fault: return 'fault';
    case TraceKind.Lock: return LOCK_CLASS_NAMES[arg] ?? `lock ${arg}`;
    case TraceKind.Shootdown: return 'TLB shootdown';
    default: return CAT[kind] ?? String(kind);
  }
}

function sliceArgs(kind: number, arg: number): Record<string, unknown> | undefined {
  return kind === TraceKind.Fault ? { address: `0x${arg.toString(16)}` } : undefined;
}

/**
 * `cpus[c]` is CPU c's flat event list (TraceRing.events); `violations` are marked where they
 * were found. The events come out sorted by time, metadata first; every slice nests on its track
 * and every flow (an IPI: from a one-tick `IPI sent` slice in the shootdown to the `TLB flush`
 * slice it caused) has both ends, each at the start of the slice it binds to — where the v1 rules
 * (the enclosing slice) and the DevTools engine's (the slice starting at the same time, same
 * category) agree. The process tracks have the same arrows under their own ids.
 */
export function toChromeTrace(cpus: number[][], opNames: readonly string[], title: string, violations: readonly TraceViolation[] = []): { traceEvents: ChromeEvent[]; displayTimeUnit: string } {
  const meta: ChromeEvent[] = [
    { name: 'process_name', ph: 'M', ts: 0, pid: CPU_PID, tid: 0, args: { name: `CPUs: ${title}` } },
    { name: 'process_sort_index', ph: 'M', ts: 0, pid: CPU_PID, tid: 0, args: { sort_index: 1000 } },
  ];
  const ev: ChromeEvent[] = [];
  const mmNamed = new Set<number>();
  const taskNamed = new Set<number>();
  /** Per CPU: its next event, the slices open on it, the task it runs (its track) and how many of the open slices that task began. */
  const st = cpus.map((events, cpu) => {
    meta.push({ name: 'thread_name', ph: 'M', ts: 0, pid: CPU_PID, tid: cpu, args: { name: `cpu${cpu}` } });
    return { events, i: 0, open: [] as Open[], task: -1, tpid: -1, ttid: -1, topen: 0, last: 0, flushTs: -1 };
  });
  type Cpu = (typeof st)[number];
  /** The CPU each task runs on (by the latest Task instant): a task that moved leaves the CPU it was on. */
  const runsOn = new Map<number, Cpu>();
  const leaveTask = (c: Cpu, ts: number) => {
    if (c.tpid < 0) return;
    // End what the task left open on its own track (a slice the CPU keeps open runs on it).
    for (let i = c.open.length - c.topen; i < c.open.length; i++) {
      const o = c.open[i];
      if (o.task !== undefined) o.task.dur = ts - o.task.ts;
      o.task = undefined;
    }
    if (runsOn.get(c.task) === c) runsOn.delete(c.task);
    c.topen = 0;
    c.tpid = c.ttid = c.task = -1;
  };
  const both = (c: Cpu, cpu: number, e: Omit<ChromeEvent, 'pid' | 'tid'>, taskCopy: Partial<ChromeEvent> = {}) => {
    ev.push({ ...e, pid: CPU_PID, tid: cpu });
    if (c.tpid >= 0) ev.push({ ...e, ...taskCopy, pid: c.tpid, tid: c.ttid });
  };
  // Every CPU's events in the order of their ticks (one machine-wide clock), so that a task that
  // moves between CPUs is on one track at a time.
  for (;;) {
    let cpu = -1;
    for (let c = 0; c < st.length; c++) if (st[c].i < st[c].events.length && (cpu < 0 || st[c].events[st[c].i + 2] < st[cpu].events[st[cpu].i + 2])) cpu = c;
    if (cpu < 0) break;
    const c = st[cpu];
    const events = c.events;
    const i = c.i;
    c.i += EVENT_WORDS;
    const kind = events[i];
    const ph = events[i + 1];
    const ts = events[i + 2];
    const arg = events[i + 3];
    c.last = ts;
    switch (ph) {
      case PH_BEGIN: {
        // A complete event (X), its duration set at its end.
        const x: ChromeEvent = { name: sliceName(kind, arg, opNames), ph: 'X', ts, dur: 0, pid: CPU_PID, tid: cpu, cat: CAT[kind], args: sliceArgs(kind, arg) };
        ev.push(x);
        let task: ChromeEvent | undefined;
        if (c.tpid >= 0) {
          c.topen++;
          ev.push((task = { ...x, pid: c.tpid, tid: c.ttid }));
        }
        c.open.push({ cpu: x, task });
        break;
      }
      case PH_END: {
        const o = c.open.pop();
        if (o === undefined) break; // an end whose begin was cut from the trace
        if (kind === TraceKind.Syscall) o.cpu.args = { ...o.cpu.args, outcome: outcomeName(arg) };
        o.cpu.dur = ts - o.cpu.ts;
        if (c.topen > 0) c.topen--;
        if (o.task !== undefined) {
          o.task.dur = ts - o.task.ts;
          o.task.args = o.cpu.args;
        }
        break;
      }
      case PH_INSTANT:
        if (kind === TraceKind.Task) {
          leaveTask(c, ts);
          const task = Math.floor(arg / 65536);
          const mm = arg % 65536;
          const was = runsOn.get(task);
          if (was !== undefined) leaveTask(was, ts);
          runsOn.set(task, c);
          c.task = task;
          c.tpid = MM_PID_BASE + mm;
          c.ttid = task;
          if (!mmNamed.has(mm)) {
            mmNamed.add(mm);
            meta.push({ name: 'process_name', ph: 'M', ts: 0, pid: c.tpid, tid: 0, args: { name: `mm ${mm}` } });
          }
          if (!taskNamed.has(c.tpid * 65536 + task)) {
            taskNamed.add(c.tpid * 65536 + task);
            meta.push({ name: 'thread_name', ph: 'M', ts: 0, pid: c.tpid, tid: task, args: { name: `process ${task}` } });
          }
          ev.push({ name: `runs process ${task} (mm ${mm})`, ph: 'i', s: 't', ts, pid: CPU_PID, tid: cpu, cat: 'sched' });
        } else if (kind === TraceKind.Ipi) {
          // The flush an IPI caused, as a short slice (to the flow's end, the next event): the
          // flow's end is put at its start, where every viewer binds it to this slice.
          const flowIn = i + EVENT_WORDS < events.length && events[i + EVENT_WORDS + 1] === PH_FLOW_IN;
          const next = flowIn ? events[i + EVENT_WORDS + 2] : ts;
          c.flushTs = flowIn ? ts : -1;
          both(c, cpu, { name: 'TLB flush (IPI taken)', ph: 'X', ts, dur: next - ts + 1, cat: 'ipi' });
        } else {
          ev.push({ name: `point ${SCHED_POINT_NAMES[arg] ?? arg}`, ph: 'i', s: 't', ts, pid: CPU_PID, tid: cpu, cat: CAT[kind] });
        }
        break;
      case PH_FLOW_OUT:
        // The request, as a one-tick slice in the shootdown that the flow's start binds to.
        both(c, cpu, { name: 'IPI sent', ph: 'X', ts, dur: 1, cat: 'ipi' });
        both(c, cpu, { name: 'shootdown', ph: 's', ts, cat: 'ipi', id: arg }, { id: arg + TASK_FLOW });
        break;
      case PH_FLOW_IN:
        if (c.flushTs < 0) break; // (always after its IPI's instant)
        both(c, cpu, { name: 'shootdown', ph: 'f', bp: 'e', ts: c.flushTs, cat: 'ipi', id: arg }, { id: arg + TASK_FLOW });
        c.flushTs = -1;
        break;
      case PH_COUNTER:
        ev.push({ name: 'page-table pages', ph: 'C', ts, pid: CPU_PID, tid: cpu, args: { pages: arg } });
        break;
    }
  }
  const end = Math.max(0, ...st.map((c) => c.last));
  st.forEach((c, cpu) => {
    // The violations this CPU found: marked where it stopped (on the task it ran too).
    for (const v of violations) {
      if (v.cpu !== cpu) continue;
      both(c, cpu, { name: `violation: ${v.checker}`, ph: 'i', s: 't', ts: c.last, cat: 'violation', args: { checker: v.checker, message: v.message } });
    }
    // End what the run left open (a stop in the middle) where it stopped.
    leaveTask(c, c.last);
    for (const o of c.open) o.cpu.dur = c.last - o.cpu.ts;
  });
  // Violations found at the end of the run (leaks, counters): one global instant at its end.
  for (const v of violations) {
    if (v.cpu !== undefined && v.cpu < cpus.length) continue;
    ev.push({ name: `violation: ${v.checker}`, ph: 'i', s: 'g', ts: end, pid: CPU_PID, tid: 0, cat: 'violation', args: { checker: v.checker, message: v.message } });
  }
  // A flow with one end only (a request that a later one's flush covered, a sync IPI that flushes
  // nothing, a track without a task at one end) is left out: viewers draw none and complain.
  const ends = new Map<number, number>();
  for (const e of ev) if (e.ph === 's' || e.ph === 'f') ends.set(e.id!, (ends.get(e.id!) ?? 0) | (e.ph === 's' ? 1 : 2));
  const kept = ev.filter((e) => (e.ph !== 's' && e.ph !== 'f') || ends.get(e.id!) === 3);
  // In time order (stable: a track's events at one tick keep theirs), the names first.
  const order = kept.map((e, i) => [e, i] as const).sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]).map(([e]) => e);
  return { traceEvents: [...meta, ...order], displayTimeUnit: 'ns' };
}
