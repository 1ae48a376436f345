/**
 * Schedule points: the places where controlled mode may switch CPUs — every lock acquire and
 * release, every op boundary, and the named places the seeds' reviewers doubted. With no
 * scheduler installed a point costs one well-predicted branch (`c.sched !== null`).
 */
import type { LockCpu } from './wait.js';

export const enum SchedPoint {
  LockAcquire = 0,
  LockRelease = 1,
  OpBoundary = 2,
  FaultAfterWalk = 3,
  FaultBeforePteInstall = 4,
  ExitBeforeFreePgtables = 5,
  MprotectBeforeFlush = 6,
  HostBetweenUnlockRelock = 7,
  Wait = 8,
  MsharePeek = 9,
}

export const SCHED_POINT_NAMES: readonly string[] = [
  'lock:acquire',
  'lock:release',
  'op',
  'fault:after-walk',
  'fault:before-pte-install',
  'exit:before-free-pgtables',
  'mprotect:before-flush',
  'mshare:between-unlock-relock',
  'wait',
  'mshare:after-peek',
];

/** What controlled mode installs on a CPU (src/sched implements it). */
export interface Scheduler {
  /** Before a CPU runs anything: returns at its first turn. */
  start(c: LockCpu): void;
  /** A point: the strategy may hand the CPU to another; returns when this CPU runs again. */
  point(c: LockCpu, at: SchedPoint): void;
  /**
   * This CPU cannot go on until `word` no longer holds `expected`: hand over to a CPU that can,
   * and return when this one is picked again (the caller re-checks its condition).
   */
  wait(c: LockCpu, word: number, expected: number): void;
  /** This CPU has finished: it never runs again. */
  done(c: LockCpu): void;
}

/** A schedule point: nothing unless a scheduler is installed. */
export function sched_point(c: LockCpu, at: SchedPoint): void {
  if (c.sched !== null) c.sched.point(c, at);
}
