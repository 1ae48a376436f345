/**
 * Object pools (the slab allocator's job): a free stack under a spinlock per pool, and a
 * generation number in every record that changes on free, so a stale index is detected
 * (use-after-free) instead of silently reaching a reused object.
 */
import { PL_ALLOCS, PL_INUSE, PL_LOCK, PL_PEAK, PL_TOP, R_GEN, R_STATE } from '../shm/layout.js';
import type { PoolRef } from '../shm/machine.js';
import { LockClass } from '../sync/lockdep.js';
import { spin_lock, spin_unlock } from '../sync/spinlock.js';
import { report_violation, Violation, type PoolId } from './mmdebug.js';
import type { Kernel } from './percpu.js';

/** Takes a free record and marks it with `state` (non-zero). Returns -1 when the pool is empty. */
export function pool_alloc(k: Kernel, p: PoolRef, cls: LockClass, state: number): number {
  const i32 = k.i32;
  spin_lock(k, p.hdr + PL_LOCK, cls);
  const top = Atomics.load(i32, p.hdr + PL_TOP);
  if (top === 0) {
    spin_unlock(k, p.hdr + PL_LOCK);
    return -1;
  }
  const idx = Atomics.load(i32, p.stack + top - 1);
  Atomics.store(i32, p.hdr + PL_TOP, top - 1);
  const inuse = Atomics.add(i32, p.hdr + PL_INUSE, 1) + 1;
  if (inuse > Atomics.load(i32, p.hdr + PL_PEAK)) Atomics.store(i32, p.hdr + PL_PEAK, inuse);
  Atomics.add(i32, p.hdr + PL_ALLOCS, 1);
  spin_unlock(k, p.hdr + PL_LOCK);
  Atomics.store(i32, p.base + idx * p.stride + R_STATE, state);
  return idx;
}

/**
 * Frees a record: state to 0, generation bumped, index pushed. Freeing a free record is a
 * double free: reported (and the machine stopped), the pool left as it was.
 */
export function pool_free(k: Kernel, p: PoolRef, cls: LockClass, idx: number, id: PoolId): boolean {
  const i32 = k.i32;
  const rec = p.base + idx * p.stride;
  if (Atomics.exchange(i32, rec + R_STATE, 0) === 0) {
    report_violation(i32, k.layout, Violation.DoubleFree, k.cpu, id, idx, Atomics.load(i32, rec + R_GEN));
    return false;
  }
  Atomics.add(i32, rec + R_GEN, 1);
  spin_lock(k, p.hdr + PL_LOCK, cls);
  const top = Atomics.load(i32, p.hdr + PL_TOP);
  Atomics.store(i32, p.stack + top, idx);
  Atomics.store(i32, p.hdr + PL_TOP, top + 1);
  Atomics.sub(i32, p.hdr + PL_INUSE, 1);
  spin_unlock(k, p.hdr + PL_LOCK);
  return true;
}

export function pool_gen(i32: Int32Array, p: PoolRef, idx: number): number {
  return Atomics.load(i32, p.base + idx * p.stride + R_GEN);
}

/** Is (idx, gen) still the live object it named? If not, reports a use-after-free. */
export function pool_check(k: Kernel, p: PoolRef, idx: number, gen: number, id: PoolId): boolean {
  const i32 = k.i32;
  const rec = p.base + idx * p.stride;
  const g = Atomics.load(i32, rec + R_GEN);
  if (g === gen && Atomics.load(i32, rec + R_STATE) !== 0) return true;
  report_violation(i32, k.layout, Violation.UafObject, k.cpu, id, idx, gen, g);
  return false;
}
