/**
 * rw_semaphore for mmap_lock, i_mmap_rwsem and the VMA locks (after kernel/locking/rwsem.c):
 * - writer-preferring: a waiting writer sets RWSEM_WRITER_WAITING (RWSEM_FLAG_WAITERS' cousin),
 *   so new readers queue behind it;
 * - optimistic spinning on a running owner (rwsem_spin_on_owner): a waiter spins while the
 *   writer that holds the lock is running — not itself asleep in a wait — and while the lock is
 *   reader-owned, up to the CPU's spin limit (0 when threads outnumber cores: never spin then);
 *   otherwise it sleeps at once. Readers spin too, as they did before 5.12: with a handful of
 *   CPUs a futex sleep costs more than the holds it waits out;
 * - handoff (RWSEM_FLAG_HANDOFF): a waiter that has waited RWSEM_WAIT_TIMEOUT (4 ms) marks the
 *   lock as its own; from then on only it may take the lock — no fast-path reader, no other
 *   writer, no trylock — so no waiter starves. Free mode only: in controlled mode the scheduler
 *   decides who runs, and a wall-clock bound would make replays differ.
 * Sleepers are counted so that unlock notifies only when someone sleeps.
 *
 * Words: [RW_COUNT, RW_OWNER, RW_SLEEPERS].
 *   RW_COUNT: readers in the low 20 bits, then the handoff waiter's CPU + 1 (6 bits),
 *             RWSEM_WRITER_WAITING, RWSEM_WRITER_LOCKED.
 *   RW_OWNER: the writer CPU + 1 (like sem->owner), 0 when no writer holds it.
 */
import { C_WAIT_WORD, CPU_WORDS } from '../shm/layout.js';
import { type LockClass, LockMode } from './lockdep.js';
import { SchedPoint } from './schedpoint.js';
import { type LockCpu } from './wait.js';

export const RW_COUNT = 0;
export const RW_OWNER = 1;
export const RW_SLEEPERS = 2;
export const RWSEM_WORDS = 3;

const RWSEM_READER_MASK = (1 << 20) - 1;
const RWSEM_HANDOFF_SHIFT = 20;
const RWSEM_HANDOFF_MASK = 0x3f << RWSEM_HANDOFF_SHIFT;
const RWSEM_WRITER_WAITING = 1 << 28;
const RWSEM_WRITER_LOCKED = 1 << 29;
/** What stops a reader on the fast path (and a reader's trylock). */
const RWSEM_READ_FAILED = RWSEM_WRITER_LOCKED | RWSEM_WRITER_WAITING | RWSEM_HANDOFF_MASK;
/** RWSEM_WAIT_TIMEOUT: DIV_ROUND_UP(HZ, 250) jiffies, 4 ms. */
const RWSEM_WAIT_TIMEOUT_MS = 4;

export function down_read(c: LockCpu, sem: number, cls: LockClass): void {
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockAcquire);
  const i32 = c.i32;
  const v = Atomics.load(i32, sem);
  if ((v & RWSEM_READ_FAILED) === 0 && Atomics.compareExchange(i32, sem, v, v + 1) === v) {
    c.acquired(sem, cls, LockMode.Read, -1);
    return;
  }
  down_read_slow(c, sem, cls);
}

function down_read_slow(c: LockCpu, sem: number, cls: LockClass): void {
  const i32 = c.i32;
  c.contended(cls, LockMode.Read);
  const since = performance.now();
  const mine = (c.cpu + 1) << RWSEM_HANDOFF_SHIFT;
  for (let iter = 0; ; iter++) {
    const v = Atomics.load(i32, sem);
    if ((v & RWSEM_READ_FAILED) === 0) {
      if (Atomics.compareExchange(i32, sem, v, v + 1) === v) break;
      continue;
    }
    if ((v & RWSEM_HANDOFF_MASK) === mine && (v & RWSEM_WRITER_LOCKED) === 0) {
      // Handed to this reader: in past waiting writers, and the handoff ends.
      if (Atomics.compareExchange(i32, sem, v, (v & ~RWSEM_HANDOFF_MASK) + 1) === v) break;
      continue;
    }
    if (set_handoff(c, sem, v, mine, since)) continue;
    sleepStep(c, sem, v, iter, since, cls, LockMode.Read);
  }
  c.waitDone();
  c.acquired(sem, cls, LockMode.Read, since);
}

/**
 * rwsem_out_nospin / the handoff bit: a waiter past RWSEM_WAIT_TIMEOUT claims the lock's next
 * turn if nobody has. True when this call set it (the caller looks at the lock again).
 */
function set_handoff(c: LockCpu, sem: number, v: number, mine: number, since: number): boolean {
  if ((v & RWSEM_HANDOFF_MASK) !== 0 || c.sched !== null || performance.now() - since < RWSEM_WAIT_TIMEOUT_MS) return false;
  if (Atomics.compareExchange(c.i32, sem, v, v | mine) !== v) return false;
  c.handoffs++;
  return true;
}

export function down_read_trylock(c: LockCpu, sem: number, cls: LockClass): boolean {
  const i32 = c.i32;
  for (;;) {
    const v = Atomics.load(i32, sem);
    if ((v & RWSEM_READ_FAILED) !== 0) return false;
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
  // A writer waits (or a waiter claimed the handoff): lock_stat's contending point.
  if ((v & (RWSEM_WRITER_WAITING | RWSEM_HANDOFF_MASK)) !== 0) c.contendedRelease();
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
  c.contended(cls, LockMode.Write);
  const since = performance.now();
  const mine = (c.cpu + 1) << RWSEM_HANDOFF_SHIFT;
  for (let iter = 0; ; iter++) {
    const v = Atomics.load(i32, sem);
    const handoff = v & RWSEM_HANDOFF_MASK;
    if ((v & (RWSEM_WRITER_LOCKED | RWSEM_READER_MASK)) === 0 && (handoff === 0 || handoff === mine)) {
      // Free (perhaps with WRITER_WAITING set by us or another writer), and not handed to
      // someone else: take it; a handoff to us ends. Other waiting writers set WRITER_WAITING
      // again on their next step.
      if (Atomics.compareExchange(i32, sem, v, RWSEM_WRITER_LOCKED) === v) break;
      continue;
    }
    if ((v & RWSEM_WRITER_WAITING) === 0) {
      Atomics.or(i32, sem, RWSEM_WRITER_WAITING);
      continue;
    }
    if (set_handoff(c, sem, v, mine, since)) continue;
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
  c.contended(cls, LockMode.Write);
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
  const v = Atomics.and(i32, sem, ~RWSEM_WRITER_LOCKED);
  if (Atomics.load(i32, sem + RW_SLEEPERS) !== 0) {
    Atomics.notify(i32, sem);
    c.contendedRelease(); // lock_stat's contending point: a waiter slept through this hold
  } else if ((v & (RWSEM_WRITER_WAITING | RWSEM_HANDOFF_MASK)) !== 0) c.contendedRelease();
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockRelease);
}

/** mmap_assert_write_locked's question, asked of machine memory. */
export function rwsem_is_write_locked(i32: Int32Array, sem: number): boolean {
  return (Atomics.load(i32, sem) & RWSEM_WRITER_LOCKED) !== 0;
}

/** The CPU the lock is handed off to (RWSEM_FLAG_HANDOFF), or -1. */
export function rwsem_handoff_cpu(i32: Int32Array, sem: number): number {
  return ((Atomics.load(i32, sem) & RWSEM_HANDOFF_MASK) >>> RWSEM_HANDOFF_SHIFT) - 1;
}

/** What set_handoff stores for `cpu` (tests put a lock in that state directly). */
export function rwsem_handoff_bits(cpu: number): number {
  return (cpu + 1) << RWSEM_HANDOFF_SHIFT;
}

export function rwsem_readers(i32: Int32Array, sem: number): number {
  return Atomics.load(i32, sem) & RWSEM_READER_MASK;
}

/**
 * rwsem_spin_on_owner's question: is the writer that holds the lock running (not asleep in a
 * wait of its own)? A reader-owned or free lock counts as running: spinning on it is bounded by
 * the spin limit alone.
 */
function owner_running(c: LockCpu, owner: number): boolean {
  return owner < 0 || Atomics.load(c.i32, c.layout.cpu + owner * CPU_WORDS + C_WAIT_WORD) < 0;
}

function sleepStep(c: LockCpu, sem: number, v: number, iter: number, since: number, cls: LockClass, mode: LockMode): void {
  const i32 = c.i32;
  const owner = Atomics.load(i32, sem + RW_OWNER) - 1;
  if (iter < c.spinLimit && owner_running(c, owner)) {
    c.waitStep(sem, v, iter, since, cls, mode, owner);
    return;
  }
  // Sleep now: past the spin limit, or the owner sleeps itself. waitStep sleeps only past the
  // limit, so this wait starts there.
  if (iter < c.spinLimit) iter = c.spinLimit;
  Atomics.add(i32, sem + RW_SLEEPERS, 1);
  try {
    c.waitStep(sem, v, iter, since, cls, mode, owner);
  } finally {
    Atomics.sub(i32, sem + RW_SLEEPERS, 1);
  }
}
