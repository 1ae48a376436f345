/**
 * One run queue for the machine (kernel/sched/core.c, much simplified): runnable tasks in FIFO
 * order under rq->__lock. Idle CPUs wait on G_RQ_COUNT. A task's state is all in machine memory,
 * so whichever CPU pops it can run it.
 */
import { G_RQ_COUNT, G_RQ_HEAD, G_RQ_LOCK, G_RQ_TAIL } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { spin_lock, spin_unlock } from '../sync/spinlock.js';
import type { Kernel } from '../mm/percpu.js';

export function rq_push(k: Kernel, task: number): void {
  const i32 = k.i32;
  spin_lock(k, G_RQ_LOCK, LockClass.Runqueue);
  const tail = Atomics.load(i32, G_RQ_TAIL);
  Atomics.store(i32, k.layout.runqueue + (tail & (k.layout.runqueueCap - 1)), task);
  Atomics.store(i32, G_RQ_TAIL, tail + 1);
  Atomics.add(i32, G_RQ_COUNT, 1); // under the lock: the count never disagrees with head and tail
  spin_unlock(k, G_RQ_LOCK);
  Atomics.notify(i32, G_RQ_COUNT, 1);
}

/** The next runnable task, or -1. */
export function rq_pop(k: Kernel): number {
  const i32 = k.i32;
  if (Atomics.load(i32, G_RQ_COUNT) <= 0) return -1;
  spin_lock(k, G_RQ_LOCK, LockClass.Runqueue);
  const head = Atomics.load(i32, G_RQ_HEAD);
  if (head === Atomics.load(i32, G_RQ_TAIL)) {
    spin_unlock(k, G_RQ_LOCK);
    return -1;
  }
  const t = Atomics.load(i32, k.layout.runqueue + (head & (k.layout.runqueueCap - 1)));
  Atomics.store(i32, G_RQ_HEAD, head + 1);
  Atomics.sub(i32, G_RQ_COUNT, 1);
  spin_unlock(k, G_RQ_LOCK);
  return t;
}

/** Before the CPUs start: every task queued in order (plain writes are allowed then). */
export function rq_init(i32: Int32Array, runqueue: number, tasks: number): void {
  for (let t = 0; t < tasks; t++) i32[runqueue + t] = t;
  i32[G_RQ_HEAD] = 0;
  i32[G_RQ_TAIL] = tasks;
  i32[G_RQ_COUNT] = tasks;
}
