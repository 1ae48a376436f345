/**
 * Controlled mode: one CPU runs at a time — the one in G_TURN. At every schedule point the
 * running CPU asks the strategy (strategy.ts) which of the CPUs that can run goes next, hands the
 * turn over with Atomics.notify, and waits (in slices, with a deadline) until it is its turn again.
 * A CPU that cannot go on (a lock held elsewhere, a flush ack not yet given, nothing to run) says
 * on what word it waits and is not enabled until that word changes — or until an IPI is pending
 * for it, which it must take for the others to go on. The same seed thus gives the same
 * interleaving, event for event: nothing between two points depends on time.
 */
import {
  C_IPI_DONE, C_IPI_REQ, C_SCHED_EXPECT, C_SCHED_STATE, C_SCHED_WORD, CPU_WORDS, G_LIVE_TASKS,
  G_SCHED_DEADLOCK, G_STOP, G_TURN, StopReason, type Layout,
} from '../shm/layout.js';
import { LockClass, LockMode } from '../sync/lockdep.js';
import { FIRST_WINDOW_POINT, SchedPoint, type Scheduler } from '../sync/schedpoint.js';
import type { LockCpu } from '../sync/wait.js';
import { TraceKind } from '../sync/tracer.js';
import { WAIT_SLICE_MS } from '../sync/wait.js';
import { pick } from './strategy.js';

export const SCHED_RUNNABLE = 0;
export const SCHED_WAITING = 1;
export const SCHED_DONE = 2;

export class ControlledScheduler implements Scheduler {
  private readonly enabled: number[] = [];

  constructor(private readonly i32: Int32Array, private readonly l: Layout, private readonly deadlineMs: number) {}

  /** Before a CPU runs anything: its first turn. */
  start(c: LockCpu): void {
    this.waitTurn(c);
  }

  point(c: LockCpu, at: SchedPoint): void {
    if (c.tracer !== null) c.tracer.instant(TraceKind.Point, at);
    const window = at >= FIRST_WINDOW_POINT;
    this.decide(c, window);
    // An interrupt comes between any two instructions where interrupts are on: a CPU stopped in
    // a window takes a pending shootdown IPI there (flush_tlb_func) and stays where it was — the
    // CPU that waited for its ack may run on — rather than having to leave its window to ack
    // at its next wait or MMU access. Not inside the page walk (one instruction: the walk and its
    // TLB fill are atomic to interrupts), the hardware's window points.
    if (at === SchedPoint.MmuWalkLoad || at === SchedPoint.MmuBeforeFill) return;
    const b = c.cpuBase;
    for (let done = Atomics.load(this.i32, b + C_IPI_DONE); Atomics.load(this.i32, b + C_IPI_REQ) !== done;) {
      c.pollInterrupts();
      const now = Atomics.load(this.i32, b + C_IPI_DONE);
      if (now === done) break; // interrupts off (gup_fast): the IPI waits for local_irq_restore
      done = now;
      this.decide(c, window);
    }
  }

  wait(c: LockCpu, word: number, expected: number): void {
    const b = c.cpuBase;
    Atomics.store(this.i32, b + C_SCHED_WORD, word);
    Atomics.store(this.i32, b + C_SCHED_EXPECT, expected);
    Atomics.store(this.i32, b + C_SCHED_STATE, SCHED_WAITING);
    this.decide(c, false);
    Atomics.store(this.i32, b + C_SCHED_STATE, SCHED_RUNNABLE);
  }

  done(c: LockCpu): void {
    Atomics.store(this.i32, c.cpuBase + C_SCHED_STATE, SCHED_DONE);
    this.decide(c, false);
  }

  private canRun(cpu: number): boolean {
    const i32 = this.i32;
    const b = this.l.cpu + cpu * CPU_WORDS;
    const st = Atomics.load(i32, b + C_SCHED_STATE);
    if (st === SCHED_DONE) return false;
    if (st === SCHED_RUNNABLE) return true;
    if (Atomics.load(i32, G_LIVE_TASKS) === 0) return true; // everyone may now see the end
    if (Atomics.load(i32, b + C_IPI_REQ) !== Atomics.load(i32, b + C_IPI_DONE)) return true;
    return Atomics.load(i32, Atomics.load(i32, b + C_SCHED_WORD)) !== Atomics.load(i32, b + C_SCHED_EXPECT);
  }

  private decide(c: LockCpu, window: boolean): void {
    const i32 = this.i32;
    const en = this.enabled;
    en.length = 0;
    for (let cpu = 0; cpu < this.l.config.cpus; cpu++) if (this.canRun(cpu)) en.push(cpu);
    if (en.length === 0) {
      if (Atomics.load(i32, c.cpuBase + C_SCHED_STATE) === SCHED_DONE) return; // the last CPU leaves
      // Every CPU waits for another: a deadlock of the simulated kernel, reported, never a hang.
      Atomics.store(i32, G_SCHED_DEADLOCK, 1);
      c.watchdog(Atomics.load(i32, c.cpuBase + C_SCHED_WORD), LockClass.SchedTurn, LockMode.Write, -1);
    }
    const next = pick(i32, this.l, en, c.cpu, window);
    if (next === c.cpu) return;
    Atomics.store(i32, G_TURN, next);
    Atomics.notify(i32, G_TURN);
    if (Atomics.load(i32, c.cpuBase + C_SCHED_STATE) === SCHED_DONE) return;
    this.waitTurn(c);
  }

  private waitTurn(c: LockCpu): void {
    const i32 = this.i32;
    const since = performance.now();
    for (;;) {
      const t = Atomics.load(i32, G_TURN);
      if (t === c.cpu) return;
      if (Atomics.load(i32, G_STOP) !== StopReason.None) c.stopNow(Atomics.load(i32, G_STOP));
      if (performance.now() - since > this.deadlineMs) c.watchdog(G_TURN, LockClass.SchedTurn, LockMode.Write, t);
      Atomics.wait(i32, G_TURN, t, WAIT_SLICE_MS);
    }
  }
}
