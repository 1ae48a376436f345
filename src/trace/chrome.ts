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
 * were found.
 */
export function toChromeTrace(cpus: number[][], opNames: readonly string[], title: string, violations: readonly TraceViolation[] = []): { traceEvents: ChromeEvent[]; displayTimeUnit: string } {
  const ev: ChromeEvent[] = [
    { name: 'process_name', ph: 'M', ts: 0, pid: CPU_PID, tid: 0, args: { name: `CPUs: ${title}` } },
    { name: 'process_sort_index', ph: 'M', ts: 0, pid: CPU_PID, tid: 0, args: { sort_index: 1000 } },
  ];
  const mmNamed = new Set<number>();
  const taskNamed = new Set<number>();
  cpus.forEach((events, cpu) => {
    ev.push({ name: 'thread_name', ph: 'M', ts: 0, pid: CPU_PID, tid: cpu, args: { name: `cpu${cpu}` } });
    const open: { name: string; cat: string }[] = [];
    // The task this CPU runs (its track: pid, tid), and the slices open on that track.
    let tpid = -1;
    let ttid = -1;
    let topen = 0;
    const both = (e: ChromeEvent) => {
      ev.push(e);
      if (tpid >= 0) ev.push({ ...e, pid: tpid, tid: ttid });
    };
    const leaveTask = (ts: number) => {
      // Close what the task left open on its own track (a slice the CPU keeps open runs on it).
      for (let i = open.length - topen; i < open.length; i++) ev.push({ name: open[i].name, ph: 'E', ts, pid: tpid, tid: ttid });
      topen = 0;
    };
    let last = 0;
    for (let i = 0; i < events.length; i += EVENT_WORDS) {
      const kind = events[i];
      const ph = events[i + 1];
      const ts = events[i + 2];
      const arg = events[i + 3];
      last = ts;
      switch (ph) {
        case PH_BEGIN: {
          const name = sliceName(kind, arg, opNames);
          open.push({ name, cat: CAT[kind] });
          if (tpid >= 0) topen++;
          both({ name, ph: 'B', ts, pid: CPU_PID, tid: cpu, cat: CAT[kind], args: sliceArgs(kind, arg) });
          break;
        }
        case PH_END: {
          const o = open.pop();
          if (o === undefined) break; // an end whose begin was cut from the trace
          const args = kind === TraceKind.Syscall ? { outcome: outcomeName(arg) } : undefined;
          if (topen > 0) {
            topen--;
            both({ name: o.name, ph: 'E', ts, pid: CPU_PID, tid: cpu, cat: o.cat, args });
          } else ev.push({ name: o.name, ph: 'E', ts, pid: CPU_PID, tid: cpu, cat: o.cat, args });
          break;
        }
        case PH_INSTANT:
          if (kind === TraceKind.Task) {
            if (tpid >= 0) leaveTask(ts);
            const task = Math.floor(arg / 65536);
            const mm = arg % 65536;
            tpid = MM_PID_BASE + mm;
            ttid = task;
            if (!mmNamed.has(mm)) {
              mmNamed.add(mm);
              ev.push({ name: 'process_name', ph: 'M', ts: 0, pid: tpid, tid: 0, args: { name: `mm ${mm}` } });
            }
            if (!taskNamed.has(tpid * 65536 + task)) {
              taskNamed.add(tpid * 65536 + task);
              ev.push({ name: 'thread_name', ph: 'M', ts: 0, pid: tpid, tid: task, args: { name: `process ${task}` } });
            }
            ev.push({ name: `runs process ${task} (mm ${mm})`, ph: 'i', s: 't', ts, pid: CPU_PID, tid: cpu, cat: 'sched' });
          } else if (kind === TraceKind.Ipi) {
            // The flush an IPI caused, as a short slice: the flow's end (the next event, at the
            // next tick) binds to it (bp "e": the enclosing slice).
            const next = i + EVENT_WORDS < events.length && events[i + EVENT_WORDS + 1] === PH_FLOW_IN ? events[i + EVENT_WORDS + 2] : ts;
            both({ name: 'TLB flush (IPI taken)', ph: 'X', ts, dur: next - ts + 1, pid: CPU_PID, tid: cpu, cat: 'ipi' });
          } else {
            ev.push({ name: `point ${SCHED_POINT_NAMES[arg] ?? arg}`, ph: 'i', s: 't', ts, pid: CPU_PID, tid: cpu, cat: CAT[kind] });
          }
          break;
        case PH_FLOW_OUT:
          both({ name: 'shootdown', ph: 's', ts, pid: CPU_PID, tid: cpu, cat: 'shootdown', id: arg });
          break;
        case PH_FLOW_IN:
          both({ name: 'shootdown', ph: 'f', bp: 'e', ts, pid: CPU_PID, tid: cpu, cat: 'shootdown', id: arg });
          break;
        case PH_COUNTER:
          ev.push({ name: 'page-table pages', ph: 'C', ts, pid: CPU_PID, tid: cpu, args: { pages: arg } });
          break;
      }
    }
    // The violations this CPU found: marked where it stopped.
    for (const v of violations) {
      if (v.cpu !== cpu) continue;
      both({ name: `violation: ${v.checker}`, ph: 'i', s: 't', ts: last, pid: CPU_PID, tid: cpu, cat: 'violation', args: { checker: v.checker, message: v.message } });
    }
    // Close what the run left open (a stop in the middle), so every slice nests.
    if (tpid >= 0) leaveTask(last);
    while (open.length > 0) ev.push({ name: open.pop()!.name, ph: 'E', ts: last, pid: CPU_PID, tid: cpu });
  });
  // Violations found at the end of the run (leaks, counters): one instant on the CPU track 0.
  for (const v of violations) {
    if (v.cpu !== undefined && v.cpu < cpus.length) continue;
    ev.push({ name: `violation: ${v.checker}`, ph: 'i', s: 'g', ts: 0, pid: CPU_PID, tid: 0, cat: 'violation', args: { checker: v.checker, message: v.message } });
  }
  return { traceEvents: ev, displayTimeUnit: 'ns' };
}
