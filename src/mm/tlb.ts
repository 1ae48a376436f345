/**
 * TLB shootdown (arch/x86/mm/tlb.c: flush_tlb_mm_range, native_flush_tlb_multi). A change that
 * removes or narrows a translation bumps the mm's tlb_gen, flushes this CPU, and interrupts every
 * other CPU in the flush mask — mm_cpumask, plus for a shared table every sharer's CPUs, which
 * the model supplies — then waits (with a deadline) until each has flushed and acked. A CPU takes
 * the interrupt at its next MMU access or inside any wait loop (Kernel.pollInterrupts), and never
 * between a page walk and the TLB fill that uses it, as a real CPU cannot be interrupted inside
 * one instruction.
 */
import {
  C_AUDIT_REQ, C_IPI_DONE, C_IPI_REQ, C_SYNC_REQ, C_WAIT_WORD, CPU_WORDS, F_HDR, M_COUNT, M_CPUMASK, M_PGD, M_TLB_GEN, MAX_CPUS, P_HDR, P_WPSEQ, PTP_WORDS, R_GEN, R_STATE,
  WPSEQ_ONE,
} from '../shm/layout.js';
import { mmdrop } from './fork.js';
import { LockClass, LockMode } from '../sync/lockdep.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { TraceKind } from '../sync/tracer.js';
import { ST_IPIS_SENT, ST_SHOOTDOWNS, ST_TABLE_SYNCS, TLB_ENTRIES, type Kernel } from './percpu.js';
import { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, entry_tag, index_at, PGD_LEVEL, PTE_LEVEL } from './pgtable.js';

const sent = new Int32Array(MAX_CPUS);

/** flush_tlb_mm: every CPU that may cache `mm`'s translations flushes before this returns. */
export function flush_tlb_mm(k: Kernel, mm: number): void {
  // The entries changed; no CPU has been told yet (a caller that dropped its lock first opened this window).
  if (k.sched !== null) k.sched.point(k, SchedPoint.TlbBeforeFlush);
  Atomics.add(k.i32, k.mmBase(mm) + M_TLB_GEN, 1);
  flush_tlb_mask(k, k.model.flush_mask(k, mm));
}

/**
 * A write-removing change to table `t`'s entries is about to be shot down: its sequence moves
 * and a shootdown is in flight, until wpseq_end once every ack is in (flush_tlb_mm_range has
 * returned). The order matters to the stale-TLB check (mmu.ts stale_tlb_write): a CPU that takes
 * this shootdown and then refills from the table reads the moved sequence, so a later change to
 * another entry cannot make that refill look stale; and a store through an entry filled before
 * the move is a missed shootdown only once no change is in flight, as a real CPU may store
 * through its TLB entry until the interrupt reaches it.
 */
export function wpseq_begin(k: Kernel, t: number): void {
  Atomics.add(k.i32, k.ptps.base + t * PTP_WORDS + P_WPSEQ, WPSEQ_ONE + 1);
}

/** The shootdown wpseq_begin announced for table `t` is over: every CPU it asked has flushed. */
export function wpseq_end(k: Kernel, t: number): void {
  Atomics.sub(k.i32, k.ptps.base + t * PTP_WORDS + P_WPSEQ, 1);
}

/** on_each_cpu_mask(flush): flush here if in `mask`, IPI the others and wait for every ack. */
export function flush_tlb_mask(k: Kernel, mask: number): void {
  if ((mask & k.cpuBit) !== 0) k.local_flush_tlb();
  send_ipis(k, mask & ~k.cpuBit, false);
}

/**
 * tlb_remove_table_sync_one (mm/mmu_gather.c): an IPI to every other CPU, waited for. A CPU in
 * a lockless page-table walk (gup_fast, interrupts off) answers only when its walk is over, so
 * after this returns no walker that started before it is still inside a table this caller
 * stopped mapping — what huge_pmd_unshare needs before the table can become another process's
 * ordinary table (CVE-2025-38085). It is an interrupt even under --tlb-flush broadcast.
 */
export function tlb_remove_table_sync_one(k: Kernel): void {
  const all = k.layout.config.cpus >= 31 ? 0x7fffffff : (1 << k.layout.config.cpus) - 1;
  k.stats[ST_TABLE_SYNCS]++;
  send_ipis(k, all & ~k.cpuBit, true);
}

/** IPIs to the CPUs in `others` (not this one), then wait for each ack; `sync`: not a TLB flush (see above). */
function send_ipis(k: Kernel, others: number, sync: boolean): void {
  const i32 = k.i32;
  if (others === 0) return;
  const asked = others;
  if (!sync) k.stats[ST_SHOOTDOWNS]++;
  if (k.tracer !== null) k.tracer.begin(TraceKind.Shootdown, others);
  const cpus = k.layout.config.cpus;
  for (let c = 0; c < cpus; c++) {
    if ((others & (1 << c)) === 0) continue;
    const base = k.layout.cpu + c * CPU_WORDS;
    sent[c] = Atomics.add(i32, base + C_IPI_REQ, 1) + 1;
    if (sync) {
      // The latest sync request: a CPU with interrupts off takes broadcast invalidations before it, not it.
      for (let cur = Atomics.load(i32, base + C_SYNC_REQ); sent[c] - cur > 0; cur = Atomics.load(i32, base + C_SYNC_REQ)) {
        if (Atomics.compareExchange(i32, base + C_SYNC_REQ, cur, sent[c]) === cur) break;
      }
    }
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
  if (k.tracer !== null) k.tracer.end(TraceKind.Shootdown, asked);
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

/**
 * The invariant code (Violation.Invariant, first word) of a stale TLB entry found at quiescence:
 * src/check/invariants.ts names it 'stale-tlb'. Words: task, vpn (hi, lo), frame << 1 | writable,
 * the PTE now in the tables.
 */
export const STALE_TLB_VIOLATION = 20;

/**
 * The PTE that translates `vpn` in `mm`'s tables now, read as the hardware walker reads them
 * (lock-free), or 0 when an entry on the way is none or points at a freed or reused table. Reports
 * nothing: it runs beside other CPUs that may be changing the tables (tlb_audit). As the walker
 * does, an upper-level entry without R/W (cow-pte's write-protected PMD entries) takes R/W out of
 * the PTE returned.
 */
export function current_pte(k: Kernel, mm: number, vpn: number): number {
  const i32 = k.i32;
  const pbase = k.ptps.base;
  let t = Atomics.load(i32, k.mmBase(mm) + M_PGD);
  let rw = _PAGE_RW;
  for (let level = PGD_LEVEL; ; level--) {
    const e = Atomics.load(i32, pbase + t * PTP_WORDS + P_HDR + index_at(vpn, level));
    if (level === PTE_LEVEL) return e & (~_PAGE_RW | rw);
    if ((e & _PAGE_PRESENT) === 0) return 0;
    rw &= e;
    const nt = (e >>> 5) & 0x1fffff;
    const nb = pbase + nt * PTP_WORDS;
    if ((Atomics.load(i32, nb + R_GEN) & 63) !== entry_tag(e) || Atomics.load(i32, nb + R_STATE) !== level - 1) return 0;
    t = nt;
  }
}

/**
 * The stale-TLB audit of this CPU's TLB (CPU-local, so only the CPU itself can read it): the
 * slots whose entry grants more than the PTE now in the current mm's tables — the PTE is not
 * present or not user-accessible, maps another frame, or is read-only under a writable entry —
 * go into `out` (slot numbers); returns how many. A TLB may lag behind a PTE only between the
 * change and the shootdown that acknowledges it (flush_tlb_mm_range returns after every ack), so
 * at quiescence (tlb_audit_all) every slot found here is one a shootdown missed.
 */
export function tlb_audit(k: Kernel, out: Int32Array): number {
  if (k.mm < 0) return 0;
  let n = 0;
  for (let s = 0; s < TLB_ENTRIES; s++) {
    const vpn = k.tlbVpn[s];
    if (vpn !== vpn) continue; // NaN: an empty slot
    const pte = current_pte(k, k.mm, vpn);
    const frame = (k.tlbPay[s] - F_HDR - k.frames.base) / k.frames.stride;
    const ok = (pte & (_PAGE_PRESENT | _PAGE_USER)) === (_PAGE_PRESENT | _PAGE_USER) && pte >>> 5 === frame &&
      (k.tlbWrite[s] === 0 || (pte & _PAGE_RW) !== 0);
    if (!ok) out[n++] = s;
  }
  return n;
}

/**
 * At quiescence (every live task at one barrier: no CPU in kernel code, every shootdown
 * acknowledged), every CPU audits its own TLB against the tables: this CPU at once, the others
 * through an interrupt like a shootdown's (on_each_cpu), which they take in their idle wait and
 * answer after auditing, without flushing. Returns when every CPU has audited, so no task moves
 * (and no table changes) before each TLB was seen as it was at quiescence.
 */
export function tlb_audit_all(k: Kernel): void {
  const i32 = k.i32;
  k.onAudit?.(k);
  const cpus = k.layout.config.cpus;
  for (let c = 0; c < cpus; c++) {
    if (c === k.cpu) continue;
    const base = k.layout.cpu + c * CPU_WORDS;
    sent[c] = Atomics.add(i32, base + C_IPI_REQ, 1) + 1;
    Atomics.store(i32, base + C_AUDIT_REQ, sent[c]);
    const w = Atomics.load(i32, base + C_WAIT_WORD);
    if (w >= 0) Atomics.notify(i32, w);
  }
  const since = performance.now();
  for (let c = 0; c < cpus; c++) {
    if (c === k.cpu) continue;
    const doneOff = k.layout.cpu + c * CPU_WORDS + C_IPI_DONE;
    for (let iter = 0; ; iter++) {
      const d = Atomics.load(i32, doneOff);
      if (d - sent[c] >= 0) break;
      k.waitStep(doneOff, d, iter, since, LockClass.TlbShootdown, LockMode.Write, c);
    }
  }
  k.waitDone();
}
