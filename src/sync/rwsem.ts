/**
 * rw_semaphore for mmap_lock and i_mmap_rwsem (after kernel/locking/rwsem.c, simplified):
 * writer-preferring — a waiting writer sets RWSEM_FLAG_WAITERS' cousin RWSEM_WRITER_WAITING so
 * that new readers queue behind it; sleepers are counted so that unlock notifies only when
 * someone sleeps. Optimistic spinning, handoff and the qrwlock alternative arrive with the lock
 * lab (issue 6).
 *
 * Words: [RW_COUNT, RW_OWNER, RW_SLEEPERS].
 *   RW_COUNT: readers in the low bits, RWSEM_WRITER_LOCKED, RWSEM_WRITER_WAITING.
 *   RW_OWNER: the writer CPU + 1 (like sem->owner), 0 when no writer holds it.
 */
import { type LockClass, LockMode } from './lockdep.js';
import { SchedPoint } from './schedpoint.js';
import { type LockCpu } from './wait.js';

export const RW_COUNT = 0;
export const RW_OWNER = 1;
export const RW_SLEEPERS = 2;
export const RWSEM_WORDS = 3;

const RWSEM_READER_MASK = (1 << 28) - 1;
const RWSEM_WRITER_WAITING = 1 << 28;
const RWSEM_WRITER_LOCKED = 1 << 29;

export function down_read(c: LockCpu, sem: number, cls: LockClass): void {
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockAcquire);
  const i32 = c.i32;
  const v = Atomics.load(i32, sem);
  if ((v & (RWSEM_WRITER_LOCKED | RWSEM_WRITER_WAITING)) === 0 && Atomics.compareExchange(i32, sem, v, v + 1) === v) {
    c.acquired(sem, cls, LockMode.Read, -1);
    return;
  }
  down_read_slow(c, sem, cls);
}

function down_read_slow(c: LockCpu, sem: number, cls: LockClass): void {
  const i32 = c.i32;
  const since = performance.now();
  for (let iter = 0; ; iter++) {
    const v = Atomics.load(i32, sem);
    if ((v & (RWSEM_WRITER_LOCKED | RWSEM_WRITER_WAITING)) === 0) {
      if (Atomics.compareExchange(i32, sem, v, v + 1) === v) break;
      continue;
    }
    sleepStep(c, sem, v, iter, since, cls, LockMode.Read);
  }
  c.waitDone();
  c.acquired(sem, cls, LockMode.Read, since);
}

export function down_read_trylock(c: LockCpu, sem: number, cls: LockClass): boolean {
  const i32 = c.i32;
  for (;;) {
    const v = Atomics.load(i32, sem);
    if ((v & (RWSEM_WRITER_LOCKED | RWSEM_WRITER_WAITING)) !== 0) return false;
    if (Atomics.compareExchange(i32, sem, v, v + 1) === v) break;
  }
  c.acquired(sem, cls, LockMode.Read, -1, true);
  return true;
}

export function up_read(c: LockCpu, sem: number): void {
  c.released(sem);
  const i32 = c.i32;
  const v = Atomics.sub(i32, sem, 1) - 1;
  if ((v & RWSEM_READER_MASK) === 0 && Atomics.load(i32, sem + RW_SLEEPERS) !== 0) Atomics.notify(i32, sem);
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockRelease);
}

export function down_write(c: LockCpu, sem: number, cls: LockClass): void {
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockAcquire);
  const i32 = c.i32;
  if (Atomics.compareExchange(i32, sem, 0, RWSEM_WRITER_LOCKED) === 0) {
    Atomics.store(i32, sem + RW_OWNER, c.ownerTag);
    c.acquired(sem, cls, LockMode.Write, -1);
    return;
  }
  const since = performance.now();
  for (let iter = 0; ; iter++) {
    const v = Atomics.load(i32, sem);
    if ((v & (RWSEM_WRITER_LOCKED | RWSEM_READER_MASK)) === 0) {
      // Free (perhaps with WRITER_WAITING set by us or another writer): take it. Other waiting
      // writers set WRITER_WAITING again on their next step.
      if (Atomics.compareExchange(i32, sem, v, RWSEM_WRITER_LOCKED) === v) break;
      continue;
    }
    if ((v & RWSEM_WRITER_WAITING) === 0) {
      Atomics.or(i32, sem, RWSEM_WRITER_WAITING);
      continue;
    }
    sleepStep(c, sem, v, iter, since, cls, LockMode.Write);
  }
  Atomics.store(i32, sem + RW_OWNER, c.ownerTag);
  c.waitDone();
  c.acquired(sem, cls, LockMode.Write, since);
}

/**
 * The planted broken lock of `ptlab torture --bug broken-rwsem`: a down_write that waits for
 * other writers but not for readers (the reader count is ignored), so a writer can run with
 * readers inside. Never used by the kernel paths.
 */
export function down_write_broken(c: LockCpu, sem: number, cls: LockClass): void {
  const i32 = c.i32;
  const since = performance.now();
  for (let iter = 0; ; iter++) {
    const v = Atomics.load(i32, sem);
    if ((v & RWSEM_WRITER_LOCKED) === 0) {
      if (Atomics.compareExchange(i32, sem, v, v | RWSEM_WRITER_LOCKED) === v) break;
      continue;
    }
    sleepStep(c, sem, v, iter, since, cls, LockMode.Write);
  }
  Atomics.store(i32, sem + RW_OWNER, c.ownerTag);
  c.waitDone();
  c.acquired(sem, cls, LockMode.Write, since);
}

export function down_write_trylock(c: LockCpu, sem: number, cls: LockClass): boolean {
  if (Atomics.compareExchange(c.i32, sem, 0, RWSEM_WRITER_LOCKED) !== 0) return false;
  Atomics.store(c.i32, sem + RW_OWNER, c.ownerTag);
  c.acquired(sem, cls, LockMode.Write, -1, true);
  return true;
}

export function up_write(c: LockCpu, sem: number): void {
  c.released(sem);
  const i32 = c.i32;
  Atomics.store(i32, sem + RW_OWNER, 0);
  Atomics.and(i32, sem, ~RWSEM_WRITER_LOCKED);
  if (Atomics.load(i32, sem + RW_SLEEPERS) !== 0) Atomics.notify(i32, sem);
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockRelease);
}

/** mmap_assert_write_locked's question, asked of machine memory. */
export function rwsem_is_write_locked(i32: Int32Array, sem: number): boolean {
  return (Atomics.load(i32, sem) & RWSEM_WRITER_LOCKED) !== 0;
}

export function rwsem_readers(i32: Int32Array, sem: number): number {
  return Atomics.load(i32, sem) & RWSEM_READER_MASK;
}

function sleepStep(c: LockCpu, sem: number, v: number, iter: number, since: number, cls: LockClass, mode: LockMode): void {
  const i32 = c.i32;
  if (iter < c.spinLimit) {
    c.waitStep(sem, v, iter, since, cls, mode, Atomics.load(i32, sem + RW_OWNER) - 1);
    return;
  }
  Atomics.add(i32, sem + RW_SLEEPERS, 1);
  try {
    c.waitStep(sem, v, iter, since, cls, mode, Atomics.load(i32, sem + RW_OWNER) - 1);
  } finally {
    Atomics.sub(i32, sem + RW_SLEEPERS, 1);
  }
}
