/**
 * What tracing hooks into (src/trace implements it): slices that nest per CPU (syscalls, faults,
 * lock holds, shootdowns), instants (schedule points, IPIs taken), flows (a shootdown request to
 * each CPU's flush) and a counter. With no tracer installed each hook is one branch.
 */
export const enum TraceKind {
  Syscall = 1,
  Fault = 2,
  Lock = 3,
  Shootdown = 4,
  Ipi = 5,
  Point = 6,
  PtPages = 7,
  /** A task starts running on this CPU: arg = task * 65536 + its mm (the trace's process tracks). */
  Task = 8,
}

export interface Tracer {
  begin(kind: TraceKind, arg: number): void;
  end(kind: TraceKind, arg: number): void;
  instant(kind: TraceKind, arg: number): void;
  /** A flow arrow: `out` at its start (the shootdown request), else at its end (the flush). */
  flow(out: boolean, id: number): void;
  counter(kind: TraceKind, value: number): void;
}
