/**
 * VM_BUG_ON for a simulation (include/linux/mmdebug.h): a violation found while the machine runs
 * is written to the violation ring in machine memory and stops the machine (fail-stop), so the
 * report shows the first thing that went wrong, not its consequences. src/check renders them.
 */
import {
  G_STOP, G_VIOL_COUNT, StopReason, VIOLATION_SLOTS, VIOLATION_WORDS, type Layout,
} from '../shm/layout.js';

export const enum Violation {
  UafPageTable = 1, // a walk reached a freed (or reused) page-table page
  UafObject = 2, // a stale index of a pooled object was used (generation mismatch)
  DoubleFree = 3,
  StaleTlbWrite = 4, // a store hit a TLB entry whose write permission had been removed and flushed
  Refcount = 5, // refcount underflow / inc from zero
  Expectation = 6, // a scenario program's expected result did not happen
  BadTable = 7, // a walk reached a table of the wrong level
  Invariant = 8, // found by a quiescence check inside the run
  Snapshot = 9, // a uffd-wp background snapshot saved a page wrongly (or missed one)
}

export const enum PoolId {
  Frames = 0,
  Ptps = 1,
  Mms = 2,
  Vmas = 3,
  Files = 4,
  Xa = 5,
}
export const POOL_NAMES = ['frame', 'page-table page', 'mm_struct', 'vm_area_struct', 'file', 'xa_node'];

/** Records a violation (kind, cpu, then up to 6 words) and stops the machine. */
export function report_violation(i32: Int32Array, l: Layout, kind: Violation, cpu: number, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0): void {
  const n = Atomics.add(i32, G_VIOL_COUNT, 1);
  if (n < VIOLATION_SLOTS) {
    const o = l.violations + n * VIOLATION_WORDS;
    Atomics.store(i32, o + 1, cpu);
    Atomics.store(i32, o + 2, a);
    Atomics.store(i32, o + 3, b);
    Atomics.store(i32, o + 4, c);
    Atomics.store(i32, o + 5, d);
    Atomics.store(i32, o + 6, e);
    Atomics.store(i32, o + 7, f);
    Atomics.store(i32, o, kind); // last: a reader sees a complete record once kind is set
  }
  Atomics.compareExchange(i32, G_STOP, StopReason.None, StopReason.Fatal);
}

export interface RawViolation {
  kind: Violation;
  cpu: number;
  args: number[];
}

export function read_violations(i32: Int32Array, l: Layout): RawViolation[] {
  const n = Math.min(Atomics.load(i32, G_VIOL_COUNT), VIOLATION_SLOTS);
  const out: RawViolation[] = [];
  for (let k = 0; k < n; k++) {
    const o = l.violations + k * VIOLATION_WORDS;
    const kind = Atomics.load(i32, o);
    if (kind === 0) continue;
    out.push({ kind, cpu: Atomics.load(i32, o + 1), args: [2, 3, 4, 5, 6, 7].map((w) => Atomics.load(i32, o + w)) });
  }
  return out;
}
