/**
 * A CPU's trace recorder: fixed-size events (kind, phase, ts, arg) appended to a CPU-local array
 * and returned when the run ends. In controlled mode the clock is a machine-wide counter, one
 * tick per event — one CPU runs at a time, so the ticks order every CPU's events; in free mode it
 * is microseconds of wall time since the run began.
 */
import { G_TRACE_SEQ } from '../shm/layout.js';
import type { TraceKind, Tracer } from '../sync/tracer.js';

export const PH_BEGIN = 0;
export const PH_END = 1;
export const PH_INSTANT = 2;
export const PH_FLOW_OUT = 3;
export const PH_FLOW_IN = 4;
export const PH_COUNTER = 5;
export const EVENT_WORDS = 4;
const MAX_EVENTS = 400_000;

export class TraceRing implements Tracer {
  readonly events: number[] = [];

  /** `origin`: the run's start (performance.timeOrigin + now, ms) for free mode. */
  constructor(private readonly i32: Int32Array, private readonly controlled: boolean, private readonly origin: number) {}

  private ts(): number {
    if (this.controlled) return Atomics.add(this.i32, G_TRACE_SEQ, 1);
    return Math.round((performance.timeOrigin + performance.now() - this.origin) * 1000);
  }

  private push(kind: number, ph: number, arg: number): void {
    if (this.events.length >= MAX_EVENTS * EVENT_WORDS) return; // full: the trace is cut, never the run
    this.events.push(kind, ph, this.ts(), arg);
  }

  begin(kind: TraceKind, arg: number): void {
    this.push(kind, PH_BEGIN, arg);
  }
  end(kind: TraceKind, arg: number): void {
    this.push(kind, PH_END, arg);
  }
  instant(kind: TraceKind, arg: number): void {
    this.push(kind, PH_INSTANT, arg);
  }
  flow(out: boolean, id: number): void {
    this.push(0, out ? PH_FLOW_OUT : PH_FLOW_IN, id);
  }
  counter(kind: TraceKind, value: number): void {
    this.push(kind, PH_COUNTER, value);
  }
}
