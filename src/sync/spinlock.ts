/**
 * spinlock_t: one word, 0 when free, else the owner CPU + 1, with SPIN_SLEEPER set by a waiter
 * that went to sleep (so the unlocker knows to notify). Used for the split page-table lock
 * (ptlock), mm->page_table_lock, xa_lock and the pool locks.
 */
import { type LockClass, LockMode } from './lockdep.js';
import { SchedPoint } from './schedpoint.js';
import { type LockCpu } from './wait.js';

const SPIN_SLEEPER = 1 << 30;

export function spin_lock(c: LockCpu, word: number, cls: LockClass): void {
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockAcquire);
  const i32 = c.i32;
  if (Atomics.compareExchange(i32, word, 0, c.ownerTag) === 0) {
    c.acquired(word, cls, LockMode.Write, -1);
    return;
  }
  spin_lock_slow(c, word, cls);
}

function spin_lock_slow(c: LockCpu, word: number, cls: LockClass): void {
  const i32 = c.i32;
  c.contended(cls, LockMode.Write);
  const since = performance.now();
  for (let iter = 0; ; iter++) {
    const v = Atomics.load(i32, word);
    if (v === 0) {
      if (Atomics.compareExchange(i32, word, 0, c.ownerTag) === 0) break;
      continue;
    }
    if (iter >= c.spinLimit && (v & SPIN_SLEEPER) === 0) {
      // Going to sleep: mark the word so that spin_unlock notifies.
      if (Atomics.compareExchange(i32, word, v, v | SPIN_SLEEPER) !== v) continue;
      c.waitStep(word, v | SPIN_SLEEPER, iter, since, cls, LockMode.Write, (v & ~SPIN_SLEEPER) - 1);
    } else {
      c.waitStep(word, v, iter, since, cls, LockMode.Write, (v & ~SPIN_SLEEPER) - 1);
    }
  }
  c.waitDone();
  c.acquired(word, cls, LockMode.Write, since);
}

export function spin_trylock(c: LockCpu, word: number, cls: LockClass): boolean {
  if (Atomics.compareExchange(c.i32, word, 0, c.ownerTag) !== 0) return false;
  c.acquired(word, cls, LockMode.Write, -1, true);
  return true;
}

export function spin_unlock(c: LockCpu, word: number): void {
  c.released(word);
  if ((Atomics.exchange(c.i32, word, 0) & SPIN_SLEEPER) !== 0) {
    Atomics.notify(c.i32, word);
    c.contendedRelease(); // a sleeper waited for this hold: lock_stat's contending point
  }
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockRelease);
}

/** The CPU holding the lock (0-based), or -1. */
export function spin_owner(i32: Int32Array, word: number): number {
  const v = Atomics.load(i32, word);
  return v === 0 ? -1 : (v & ~SPIN_SLEEPER) - 1;
}
