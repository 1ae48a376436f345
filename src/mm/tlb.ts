/**
 * TLB shootdown (arch/x86/mm/tlb.c: flush_tlb_mm_range, native_flush_tlb_multi). A change that
 * removes or narrows a translation bumps the mm's tlb_gen, flushes this CPU, and interrupts every
 * other CPU in the flush mask — mm_cpumask, plus for a shared table every sharer's CPUs, which
 * the model supplies — then waits (with a deadline) until each has flushed and acked. A CPU takes
 * the interrupt at its next MMU access or inside any wait loop (Kernel.pollInterrupts), and never
 * between a page walk and the TLB fill that uses it, as a real CPU cannot be interrupted inside
 * one instruction.
 */
import { C_IPI_DONE, C_IPI_REQ, C_WAIT_WORD, CPU_WORDS, M_COUNT, M_CPUMASK, M_TLB_GEN, MAX_CPUS } from '../shm/layout.js';
import { mmdrop } from './fork.js';
import { LockClass, LockMode } from '../sync/lockdep.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { TraceKind } from '../sync/tracer.js';
import { ST_IPIS_SENT, ST_SHOOTDOWNS, type Kernel } from './percpu.js';

const sent = new Int32Array(MAX_CPUS);

/** flush_tlb_mm: every CPU that may cache `mm`'s translations flushes before this returns. */
export function flush_tlb_mm(k: Kernel, mm: number): void {
  // The entries changed; no CPU has been told yet (a caller that dropped its lock first opened this window).
  if (k.sched !== null) k.sched.point(k, SchedPoint.TlbBeforeFlush);
  Atomics.add(k.i32, k.mmBase(mm) + M_TLB_GEN, 1);
  flush_tlb_mask(k, k.model.flush_mask(k, mm));
}

/** on_each_cpu_mask(flush): flush here if in `mask`, IPI the others and wait for every ack. */
export function flush_tlb_mask(k: Kernel, mask: number): void {
  const i32 = k.i32;
  if ((mask & k.cpuBit) !== 0) k.local_flush_tlb();
  let others = mask & ~k.cpuBit;
  if (others === 0) return;
  k.stats[ST_SHOOTDOWNS]++;
  if (k.tracer !== null) k.tracer.begin(TraceKind.Shootdown, others);
  const cpus = k.layout.config.cpus;
  for (let c = 0; c < cpus; c++) {
    if ((others & (1 << c)) === 0) continue;
    const base = k.layout.cpu + c * CPU_WORDS;
    sent[c] = Atomics.add(i32, base + C_IPI_REQ, 1) + 1;
    k.stats[ST_IPIS_SENT]++;
    if (k.tracer !== null) k.tracer.flow(true, ipi_flow_id(c, sent[c]));
    // Wake the target if it sleeps in a wait loop, so it takes the interrupt now.
    const w = Atomics.load(i32, base + C_WAIT_WORD);
    if (w >= 0) Atomics.notify(i32, w);
  }
  const since = performance.now();
  for (let c = 0; c < cpus; c++) {
    if ((others & (1 << c)) === 0) continue;
    const doneOff = k.layout.cpu + c * CPU_WORDS + C_IPI_DONE;
    for (let iter = 0; ; iter++) {
      const d = Atomics.load(i32, doneOff);
      if (d - sent[c] >= 0) break;
      k.waitStep(doneOff, d, iter, since, LockClass.TlbShootdown, LockMode.Write, c);
    }
    others &= ~(1 << c);
  }
  k.waitDone();
  if (k.tracer !== null) k.tracer.end(TraceKind.Shootdown, mask);
}

/** A shootdown's flow arrow, from the request to CPU `cpu` (its `req`-th) to that CPU's flush. */
export function ipi_flow_id(cpu: number, req: number): number {
  return (req & 0xfffff) * 64 + cpu;
}

/**
 * switch_mm_irqs_off: leave the old mm's cpumask, flush, join the new one (-1: no mm). The CPU
 * holds an mm_count reference on the mm it has loaded (mmgrab, as for a lazy-TLB mm), so an mm
 * whose task exited on another CPU is not freed, and its record not reused, while this CPU still
 * has it loaded. The model hears of the switch so that CPUs running a guest also receive the host
 * mm's shootdowns.
 */
export function switch_mm(k: Kernel, next: number): void {
  const i32 = k.i32;
  const prev = k.mm;
  if (next >= 0) Atomics.add(i32, k.mmBase(next) + M_COUNT, 1); // mmgrab
  // Flushed while still in prev's cpumask: the TLB's pending ledgers reach their frames before
  // any shootdown may skip this CPU and free them.
  k.local_flush_tlb();
  if (prev >= 0) {
    Atomics.and(i32, k.mmBase(prev) + M_CPUMASK, ~k.cpuBit);
    k.model.switch_mm(k, prev, false);
  }
  k.mm = next;
  k.mmOff = next >= 0 ? k.mmBase(next) : -1;
  if (next >= 0) {
    Atomics.or(i32, k.mmOff + M_CPUMASK, k.cpuBit);
    k.model.switch_mm(k, next, true);
  }
  if (prev >= 0) mmdrop(k, prev);
}
