/**
 * The queued rwlock of kernel/locking/qrwlock.c: fair where the rwsem prefers writers. Readers
 * and writers that cannot take the lock at once queue in FIFO order on wait_lock (a ticket lock
 * here; the kernel's is a queued spinlock, also FIFO), so a steady stream of readers cannot
 * starve a writer and a writer waiting its turn lets earlier readers finish.
 *
 * Words: [QR_CNTS, QR_NEXT, QR_OWNER, QR_SLEEPERS].
 *   QR_CNTS: readers << _QR_SHIFT, _QW_WAITING, the writer byte _QW_LOCKED (as lock->cnts).
 *   QR_NEXT / QR_OWNER: wait_lock's tickets.
 *   QR_SLEEPERS: CPUs asleep on QR_CNTS or QR_OWNER, so unlockers know to notify.
 * Every wait is bounded (LockCpu.waitStep: the watchdog deadline).
 */
import { type LockClass, LockMode } from './lockdep.js';
import { SchedPoint } from './schedpoint.js';
import { type LockCpu } from './wait.js';

export const QR_CNTS = 0;
export const QR_NEXT = 1;
export const QR_OWNER = 2;
export const QR_SLEEPERS = 3;
export const QRWLOCK_WORDS = 4;

const _QW_LOCKED = 0xff;
const _QW_WAITING = 0x100;
const _QW_WMASK = 0x1ff;
const _QR_BIAS = 1 << 9;

/** queued_read_lock */
export function queued_read_lock(c: LockCpu, lock: number, cls: LockClass): void {
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockAcquire);
  const cnts = Atomics.add(c.i32, lock + QR_CNTS, _QR_BIAS) + _QR_BIAS;
  if ((cnts & _QW_WMASK) === 0) {
    c.acquired(lock, cls, LockMode.Read, -1);
    return;
  }
  queued_read_lock_slowpath(c, lock, cls);
}

/** queued_read_lock_slowpath: give the bias back, queue, then wait for the writer to leave. */
function queued_read_lock_slowpath(c: LockCpu, lock: number, cls: LockClass): void {
  const i32 = c.i32;
  c.contended(cls, LockMode.Read);
  const since = performance.now();
  Atomics.sub(i32, lock + QR_CNTS, _QR_BIAS);
  wait_lock(c, lock, cls, LockMode.Read, since);
  Atomics.add(i32, lock + QR_CNTS, _QR_BIAS);
  // atomic_cond_read_acquire(&lock->cnts, !(VAL & _QW_LOCKED))
  for (let iter = 0; ; iter++) {
    const v = Atomics.load(i32, lock + QR_CNTS);
    if ((v & _QW_LOCKED) === 0) break;
    sleep(c, lock, lock + QR_CNTS, v, iter, since, cls, LockMode.Read);
  }
  wait_unlock(c, lock);
  c.waitDone();
  c.acquired(lock, cls, LockMode.Read, since);
}

/** queued_write_lock */
export function queued_write_lock(c: LockCpu, lock: number, cls: LockClass): void {
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockAcquire);
  if (Atomics.compareExchange(c.i32, lock + QR_CNTS, 0, _QW_LOCKED) === 0) {
    c.acquired(lock, cls, LockMode.Write, -1);
    return;
  }
  queued_write_lock_slowpath(c, lock, cls);
}

/** queued_write_lock_slowpath: queue, announce _QW_WAITING, wait for the readers to drain. */
function queued_write_lock_slowpath(c: LockCpu, lock: number, cls: LockClass): void {
  const i32 = c.i32;
  c.contended(cls, LockMode.Write);
  const since = performance.now();
  wait_lock(c, lock, cls, LockMode.Write, since);
  if (Atomics.compareExchange(i32, lock + QR_CNTS, 0, _QW_LOCKED) !== 0) {
    Atomics.or(i32, lock + QR_CNTS, _QW_WAITING);
    for (let iter = 0; ; iter++) {
      const v = Atomics.load(i32, lock + QR_CNTS);
      if (v === _QW_WAITING && Atomics.compareExchange(i32, lock + QR_CNTS, _QW_WAITING, _QW_LOCKED) === _QW_WAITING) break;
      if (v !== _QW_WAITING) sleep(c, lock, lock + QR_CNTS, v, iter, since, cls, LockMode.Write);
    }
  }
  wait_unlock(c, lock);
  c.waitDone();
  c.acquired(lock, cls, LockMode.Write, since);
}

/** queued_read_unlock */
export function queued_read_unlock(c: LockCpu, lock: number): void {
  c.released(lock);
  // A writer waits (_QW_WAITING) for this reader: lock_stat's contending point.
  if ((Atomics.sub(c.i32, lock + QR_CNTS, _QR_BIAS) & _QW_WMASK) !== 0) c.contendedRelease();
  wake(c.i32, lock);
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockRelease);
}

/** queued_write_unlock: clear the writer byte (smp_store_release(&lock->wlocked, 0)). */
export function queued_write_unlock(c: LockCpu, lock: number): void {
  c.released(lock);
  // Readers waiting for this writer hold their bias in cnts, a writer sets _QW_WAITING: lock_stat's contending point.
  if ((Atomics.and(c.i32, lock + QR_CNTS, ~_QW_LOCKED) & ~_QW_LOCKED) !== 0) c.contendedRelease();
  wake(c.i32, lock);
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockRelease);
}

/** wait_lock's ticket: FIFO among the CPUs that could not take the lock at once. */
function wait_lock(c: LockCpu, lock: number, cls: LockClass, mode: LockMode, since: number): void {
  const i32 = c.i32;
  const ticket = Atomics.add(i32, lock + QR_NEXT, 1);
  for (let iter = 0; ; iter++) {
    const owner = Atomics.load(i32, lock + QR_OWNER);
    if (owner === ticket) return;
    sleep(c, lock, lock + QR_OWNER, owner, iter, since, cls, mode);
  }
}

function wait_unlock(c: LockCpu, lock: number): void {
  Atomics.add(c.i32, lock + QR_OWNER, 1);
  wake(c.i32, lock);
}

function sleep(c: LockCpu, lock: number, word: number, v: number, iter: number, since: number, cls: LockClass, mode: LockMode): void {
  if (iter < c.spinLimit) {
    c.waitStep(word, v, iter, since, cls, mode, -1);
    return;
  }
  Atomics.add(c.i32, lock + QR_SLEEPERS, 1);
  try {
    c.waitStep(word, v, iter, since, cls, mode, -1);
  } finally {
    Atomics.sub(c.i32, lock + QR_SLEEPERS, 1);
  }
}

function wake(i32: Int32Array, lock: number): void {
  if (Atomics.load(i32, lock + QR_SLEEPERS) === 0) return;
  Atomics.notify(i32, lock + QR_CNTS);
  Atomics.notify(i32, lock + QR_OWNER);
}
