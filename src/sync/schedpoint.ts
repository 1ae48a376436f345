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
  // vma_start_read: the VMA was not write-locked when looked at, before the trylock. Not one of
  // the window points below (the random walk switches here as at a lock acquire: the trylock's).
  VmaBeforeTrylock = 10,
  // The lock-free windows (issue "Catch what nobody planted", item 3): a lock a developer removes
  // still leaves a point between the lockless read and what is done with it.
  VmaAfterLookup = 11,
  VmaBeforeRecheck = 12,
  MmuWalkLoad = 13,
  MmuBeforeFill = 14,
  FaultWalkLoad = 15,
  FaultAfterPteRead = 16,
  FaultBeforePtl = 17,
  PtLookupLoad = 18,
  FreePgtablesLoad = 19,
  UnshareLoad = 20,
  ShareLoad = 21,
  TlbBeforeFlush = 22,
  GupFastLoad = 23,
  CowBreakRelock = 24,
  MigrateUnmapped = 25,
}

/**
 * The points from here on are the lock-free windows' (a load of an entry, a lookup before its
 * lock): many per fault. The random walk switches at them only now and then (strategy.ts), so
 * that they do not dilute the walk's chance of running one CPU through a long window.
 */
export const FIRST_WINDOW_POINT = SchedPoint.VmaAfterLookup;

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
  'vma:before-trylock', // vma_start_read: vm_lock_seq read (not write-locked), before the trylock — a writer may come between
  'vma:after-lookup', // lock_vma_under_rcu: the lockless walk found a VMA, before vma_start_read
  'vma:before-recheck', // vma_start_read / lock_vma_under_rcu: locked, before the seq / mm / detached / range recheck
  'mmu:walk-load', // the hardware walk read an upper-level entry, before it follows it
  'mmu:before-fill', // the hardware walk read the PTE, before the TLB is filled from it
  'fault:walk-load', // walk_to_pmd / __pte_alloc (table_alloc): an entry read, before it is populated or followed
  'fault:after-pte-read', // handle_pte_fault: vmf->orig_pte read, before any PTE lock
  'fault:before-ptl', // do_wp_page / wp_page_copy / fix_pte_prot: before pte_offset_map_lock
  'pt:lookup-load', // a software walk (zap, change_protection, unshare, mremap, fork): an entry read, before it is followed
  'free-pgtables:load', // free_pgtables: an entry read, before it is cleared and its table put
  'unshare:load', // huge_pmd_unshare / a guest's detach: the shared PMD entry read, before it is cleared
  'share:load', // huge_pmd_share / find_shared_vma: the sibling's or host's entry read, before it is copied
  'tlb:before-flush', // flush_tlb_mm: the entries changed (and their lock perhaps dropped), before the shootdown
  'gup:fast-load', // gup_fast (interrupts off): an entry read, before it is followed, or the page taken, before the recheck
  'cow:before-relock', // handle_cow_pte_fault: the shared PTE table's lock dropped to allocate the copy, before it is taken again
  'migrate:unmapped', // migrate_folio_unmap: migration entries in place (the flush done, or not yet under a planted bug), before the copy
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
