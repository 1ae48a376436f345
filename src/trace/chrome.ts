/**
 * The Chrome trace event format (`{"traceEvents": [...]}`), which Perfetto and chrome://tracing
 * open: one track (tid) per CPU with its slices nested — syscalls, the faults inside them, lock
 * holds and shootdowns inside those — instants at schedule points and taken IPIs, flows from each
 * shootdown request to the flush on the CPU that took it, and a counter of page-table pages.
 */
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
  args?: Record<string, unknown>;
}

const CAT = ['', 'syscall', 'fault', 'lock', 'shootdown', 'ipi', 'sched', 'memory'];

function sliceName(kind: number, arg: number, opNames: readonly string[]): string {
  switch (kind) {
    case TraceKind.Syscall: return opNames[arg] ?? `op ${arg}`;
    case TraceKind.Fault: return `fault 0x${arg.toString(16)}`;
    case TraceKind.Lock: return LOCK_CLASS_NAMES[arg] ?? `lock ${arg}`;
    case TraceKind.Shootdown: return 'TLB shootdown';
    default: return CAT[kind] ?? String(kind);
  }
}

/** `cpus[c]` is CPU c's flat event list (TraceRing.events). */
export function toChromeTrace(cpus: number[][], opNames: readonly string[], title: string): { traceEvents: ChromeEvent[]; displayTimeUnit: string } {
  const ev: ChromeEvent[] = [{ name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: title } }];
  cpus.forEach((events, tid) => {
    ev.push({ name: 'thread_name', ph: 'M', ts: 0, pid: 1, tid, args: { name: `cpu${tid}` } });
    const open: string[] = [];
    for (let i = 0; i < events.length; i += EVENT_WORDS) {
      const kind = events[i];
      const ph = events[i + 1];
      const ts = events[i + 2];
      const arg = events[i + 3];
      switch (ph) {
        case PH_BEGIN: {
          const name = sliceName(kind, arg, opNames);
          open.push(name);
          ev.push({ name, ph: 'B', ts, pid: 1, tid, cat: CAT[kind] });
          break;
        }
        case PH_END: {
          const name = open.pop();
          if (name === undefined) break; // an end whose begin was cut from the trace
          ev.push({ name, ph: 'E', ts, pid: 1, tid, cat: CAT[kind], args: kind === TraceKind.Syscall ? { outcome: arg } : undefined });
          break;
        }
        case PH_INSTANT:
          ev.push({
            name: kind === TraceKind.Point ? `point ${SCHED_POINT_NAMES[arg] ?? arg}` : 'TLB flush (IPI taken)',
            ph: 'i', s: 't', ts, pid: 1, tid, cat: CAT[kind],
          });
          break;
        case PH_FLOW_OUT:
          ev.push({ name: 'shootdown', ph: 's', ts, pid: 1, tid, cat: 'shootdown', id: arg });
          break;
        case PH_FLOW_IN:
          ev.push({ name: 'shootdown', ph: 'f', bp: 'e', ts, pid: 1, tid, cat: 'shootdown', id: arg });
          break;
        case PH_COUNTER:
          ev.push({ name: 'page-table pages', ph: 'C', ts, pid: 1, tid, args: { pages: arg } });
          break;
      }
    }
    // Close what the run left open (a stop in the middle), so every slice nests.
    const last = events.length >= EVENT_WORDS ? events[events.length - EVENT_WORDS + 2] : 0;
    while (open.length > 0) ev.push({ name: open.pop()!, ph: 'E', ts: last, pid: 1, tid });
  });
  return { traceEvents: ev, displayTimeUnit: 'ns' };
}
