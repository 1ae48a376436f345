/**
 * include/linux/mmap_lock.h and mm/mmap_lock.c: mmap_read_lock and friends, over the protocol the
 * machine was built with (`--mmap-lock`): the rwsem (kernel/locking/rwsem.c, writer-preferring,
 * as Linux) or the queued rwlock (kernel/locking/qrwlock.c, fair FIFO) — to compare the two under
 * the same load, or a lock plugin's protocol (`--mmap-lock ./file.mjs`, sync/lock_plugin.ts). Each
 * mm's lock keeps the protocol it was made with (MMF_QRWLOCK, MMF_LOCK_PLUGIN): a task's is
 * `--mmap-lock`'s, a sharing model's host mm's is `--host-lock`'s; for the rwsem the choice is one
 * branch, as before plugins.
 *
 * And the per-VMA locks of Linux 6.4+ (`--fault-lock per-vma`, CONFIG_PER_VMA_LOCK): a user fault
 * first looks its VMA up without mmap_lock and read-locks the VMA alone (lock_vma_under_rcu);
 * anything that changes a VMA holds mmap_lock for write and write-locks the VMA first
 * (vma_start_write), which stays locked until mmap_write_unlock bumps mm_lock_seq.
 */
import { AssertSite, mmap_assert_write_locked } from './guarded.js';
import { M_FLAGS, M_LOCK_SEQ, M_MMAP_LOCK, MMF_HOST, MMF_QRWLOCK, M_VMA_HEAD, V_DETACHED, V_LOCK, V_LOCK_SEQ, V_MM, V_NEXT } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { queued_read_lock, queued_read_unlock, queued_write_lock, queued_write_unlock } from '../sync/qrwlock.js';
import { down_read, down_read_trylock, down_write, up_read, up_write } from '../sync/rwsem.js';
import {
  LOCK_PLUGIN_SLOTS, LOCK_PLUGIN_WORDS_MAX, type LockProtocol, plugin_read_lock, plugin_read_unlock, plugin_write_lock, plugin_write_unlock,
} from '../sync/lock_plugin.js';
import { ST_VMA_LOCK_ABORT, ST_VMA_LOCK_MISS, type Kernel } from './percpu.js';
import { vma_end, vma_flags, vma_start, vmaBase, VM_SHARED_PT, VM_UFFD_WP } from './vma.js';

export const MMAP_LOCK_PROTOCOLS = ['rwsem', 'qrwlock'] as const;
/** rwsem, qrwlock, or a lock plugin's key (sync/lock_plugin.ts). */
export type MmapLockProtocol = string;

/**
 * A lock plugin's slot in M_FLAGS (2 bits: 1 --mmap-lock's plugin, 2 --host-lock's), set only
 * with MMF_QRWLOCK: the rwsem's test stays the one bit it was, and only a non-rwsem lock looks
 * further (MMF_QRWLOCK alone: the queued rwlock).
 */
export const MMF_LOCK_PLUGIN_SHIFT = 8;
export const MMF_LOCK_PLUGIN = 3 << MMF_LOCK_PLUGIN_SHIFT;

/** The M_FLAGS of a new mm, given `flags`: its lock protocol's bits (a host mm's is --host-lock's, a task's --mmap-lock's). */
export function mmap_lock_flags(k: Kernel, flags: number): number {
  const host = (flags & MMF_HOST) !== 0;
  const plugin = host ? k.hostLockPlugin : k.mmapLockPlugin;
  flags &= ~(MMF_QRWLOCK | MMF_LOCK_PLUGIN);
  if (plugin !== 0) return flags | MMF_QRWLOCK | (plugin << MMF_LOCK_PLUGIN_SHIFT);
  return (host ? k.hostQrwlock : k.mmapQrwlock) ? flags | MMF_QRWLOCK : flags;
}

/** init_rwsem(&mm->mmap_lock): every word any protocol may use, zero (free). */
export function mmap_init_lock(k: Kernel, lock: number): void {
  for (let w = 0; w < LOCK_PLUGIN_WORDS_MAX; w++) Atomics.store(k.i32, lock + w, 0);
}

/** The mm's flags, from the word `lock` of its M_MMAP_LOCK. */
function lockFlags(k: Kernel, lock: number): number {
  return Atomics.load(k.i32, lock - M_MMAP_LOCK + M_FLAGS);
}

function plugin(f: number): LockProtocol {
  return LOCK_PLUGIN_SLOTS[(f & MMF_LOCK_PLUGIN) >>> MMF_LOCK_PLUGIN_SHIFT]!;
}

/** `lock` is the word offset of an mm's M_MMAP_LOCK. */
export function mmap_read_lock(k: Kernel, lock: number): void {
  const f = lockFlags(k, lock);
  if ((f & MMF_QRWLOCK) === 0) down_read(k, lock, LockClass.MmapLock);
  else if ((f & MMF_LOCK_PLUGIN) === 0) queued_read_lock(k, lock, LockClass.MmapLock);
  else plugin_read_lock(k, plugin(f), lock, LockClass.MmapLock);
}

export function mmap_read_unlock(k: Kernel, lock: number): void {
  const f = lockFlags(k, lock);
  if ((f & MMF_QRWLOCK) === 0) up_read(k, lock);
  else if ((f & MMF_LOCK_PLUGIN) === 0) queued_read_unlock(k, lock);
  else plugin_read_unlock(k, plugin(f), lock);
}

export function mmap_write_lock(k: Kernel, lock: number): void {
  const f = lockFlags(k, lock);
  if ((f & MMF_QRWLOCK) === 0) down_write(k, lock, LockClass.MmapLock);
  else if ((f & MMF_LOCK_PLUGIN) === 0) queued_write_lock(k, lock, LockClass.MmapLock);
  else plugin_write_lock(k, plugin(f), lock, LockClass.MmapLock);
}

export function mmap_write_unlock(k: Kernel, lock: number): void {
  // vma_end_write_all: every VMA write-locked under this hold is unlocked at once.
  Atomics.add(k.i32, lock - M_MMAP_LOCK + M_LOCK_SEQ, 1);
  const f = lockFlags(k, lock);
  if ((f & MMF_QRWLOCK) === 0) up_write(k, lock);
  else if ((f & MMF_LOCK_PLUGIN) === 0) queued_write_unlock(k, lock);
  else plugin_write_unlock(k, plugin(f), lock);
}

/**
 * The same on a host mm (a sharing model's mm that holds the shared tables), nested inside a
 * task's mmap_lock: lockdep's subclass 1 (mmap_read_lock_nested(mm, SINGLE_DEPTH_NESTING)), so
 * the two are ordered apart.
 */
export function host_mmap_read_lock(k: Kernel, lock: number): void {
  const f = lockFlags(k, lock);
  if ((f & MMF_QRWLOCK) === 0) down_read(k, lock, LockClass.MmapLockNested);
  else if ((f & MMF_LOCK_PLUGIN) === 0) queued_read_lock(k, lock, LockClass.MmapLockNested);
  else plugin_read_lock(k, plugin(f), lock, LockClass.MmapLockNested);
}

export function host_mmap_write_lock(k: Kernel, lock: number): void {
  const f = lockFlags(k, lock);
  if ((f & MMF_QRWLOCK) === 0) down_write(k, lock, LockClass.MmapLockNested);
  else if ((f & MMF_LOCK_PLUGIN) === 0) queued_write_lock(k, lock, LockClass.MmapLockNested);
  else plugin_write_lock(k, plugin(f), lock, LockClass.MmapLockNested);
}

// ---- per-VMA locks (Linux 6.4+) ----

/**
 * vma_start_write: with mmap_lock held for write, waits for the VMA's readers (faults in it) and
 * marks it write-locked (vm_lock_seq = mm_lock_seq) until mmap_write_unlock. Every change to a
 * VMA (range, flags, unlink) comes after it, as vm_flags_set and vma_prepare do in Linux.
 */
export function vma_start_write(k: Kernel, v: number): void {
  const i32 = k.i32;
  const b = vmaBase(k, v);
  const mm = Atomics.load(i32, b + V_MM);
  mmap_assert_write_locked(k, mm, AssertSite.VmaStartWrite); // __is_vma_write_locked
  if (!k.perVmaLock) return;
  const seq = Atomics.load(i32, k.mmBase(mm) + M_LOCK_SEQ);
  if (Atomics.load(i32, b + V_LOCK_SEQ) === seq) return;
  down_write(k, b + V_LOCK, LockClass.VmaLock);
  Atomics.store(i32, b + V_LOCK_SEQ, seq);
  up_write(k, b + V_LOCK);
}

/**
 * vma_start_read: false when the VMA is write-locked (its vm_lock_seq equals mm_lock_seq: the
 * check before and after the trylock, as Linux makes it) or its lock is taken for write.
 */
function vma_start_read(k: Kernel, mm: number, v: number): boolean {
  const i32 = k.i32;
  const b = vmaBase(k, v);
  const seqOff = k.mmBase(mm) + M_LOCK_SEQ;
  if (Atomics.load(i32, b + V_LOCK_SEQ) === Atomics.load(i32, seqOff)) return false;
  // Not write-locked when looked at; a writer's vma_start_write may come before the trylock.
  if (k.sched !== null) k.sched.point(k, SchedPoint.VmaBeforeTrylock);
  if (!down_read_trylock(k, b + V_LOCK, LockClass.VmaLock)) return false;
  // Between the trylock and the recheck that makes it safe (a writer may have set vm_lock_seq).
  if (k.sched !== null) k.sched.point(k, SchedPoint.VmaBeforeRecheck);
  if (Atomics.load(i32, b + V_LOCK_SEQ) === Atomics.load(i32, seqOff)) {
    up_read(k, b + V_LOCK);
    return false;
  }
  return true;
}

export function vma_end_read(k: Kernel, v: number): void {
  up_read(k, vmaBase(k, v) + V_LOCK);
}

/** Steps the lockless VMA walk takes before giving up (a walk led astray by a reused VMA). */
const VMA_WALK_LIMIT = 4096;
/** Walks lock_vma_under_rcu retries after finding its VMA detached (Linux retries until it finds none). */
const VMA_MISS_RETRIES = 4;

/**
 * lock_vma_under_rcu: the VMA of `mm` that contains `addr`, read-locked, without mmap_lock; -1
 * when the caller must fall back to mmap_lock. ptlab's VMA list stands for the maple tree read
 * under RCU: the walk may meet a VMA that is being changed or was freed and reused, so everything
 * is checked again once the VMA's lock is held — its mm, that it is attached, that it contains
 * `addr` (Linux checks the same three). A VMA found detached was replaced: walk again
 * (VMA_LOCK_MISS), a few times.
 *
 * Faults that need mmap_lock fall back: a sharing model's VM_SHARED_PT VMA (its fault takes the
 * host mm's locks, as hugetlb's did before it learnt the VMA lock) and a uffd-wp registered one
 * (6.4's lock_vma_under_rcu: userfaultfd_armed).
 */
export function lock_vma_under_rcu(k: Kernel, mm: number, addr: number): number {
  const i32 = k.i32;
  for (let retry = 0; retry <= VMA_MISS_RETRIES; retry++) {
    let v = Atomics.load(i32, k.mmBase(mm) + M_VMA_HEAD);
    for (let n = 0; v >= 0; n++) {
      if (n === VMA_WALK_LIMIT) {
        v = -1;
        break;
      }
      if (vma_end(k, v) > addr) break;
      v = Atomics.load(i32, vmaBase(k, v) + V_NEXT);
    }
    // mas_walk found it under RCU only: it may be write-locked, detached or reused from here on.
    if (k.sched !== null && v >= 0) k.sched.point(k, SchedPoint.VmaAfterLookup);
    if (v < 0 || !vma_start_read(k, mm, v)) break;
    const b = vmaBase(k, v);
    if (k.sched !== null) k.sched.point(k, SchedPoint.VmaBeforeRecheck);
    if (Atomics.load(i32, b + V_MM) !== mm || Atomics.load(i32, b + V_DETACHED) !== 0) {
      up_read(k, b + V_LOCK);
      k.stats[ST_VMA_LOCK_MISS]++;
      continue;
    }
    if (addr < vma_start(k, v) || addr >= vma_end(k, v) || (vma_flags(k, v) & (VM_SHARED_PT | VM_UFFD_WP)) !== 0) {
      up_read(k, b + V_LOCK);
      break;
    }
    return v;
  }
  k.stats[ST_VMA_LOCK_ABORT]++;
  return -1;
}

/**
 * A VMA lookup without mmap_lock, for bookkeeping that must not show in lock statistics (where
 * the lost-write check credits stores): the lockless walk lock_vma_under_rcu makes, trusted only
 * when the VMA found is attached to `mm`, not write-locked (vm_lock_seq != mm_lock_seq, as
 * vma_start_read tests), and mm_lock_seq did not move meanwhile (mmap_lock_speculate_retry).
 * Returns the VMA holding `addr`, -1 for none there, or -2 when the answer cannot be trusted
 * (the caller takes mmap_lock).
 */
export function find_vma_speculative(k: Kernel, mm: number, addr: number): number {
  const i32 = k.i32;
  const seqOff = k.mmBase(mm) + M_LOCK_SEQ;
  const seq = Atomics.load(i32, seqOff);
  let v = Atomics.load(i32, k.mmBase(mm) + M_VMA_HEAD);
  for (let n = 0; v >= 0; n++) {
    if (n === VMA_WALK_LIMIT) return -2;
    if (vma_end(k, v) > addr) break;
    v = Atomics.load(i32, vmaBase(k, v) + V_NEXT);
  }
  if (v >= 0) {
    const b = vmaBase(k, v);
    if (Atomics.load(i32, b + V_MM) !== mm || Atomics.load(i32, b + V_DETACHED) !== 0 || Atomics.load(i32, b + V_LOCK_SEQ) === seq) return -2;
    if (vma_start(k, v) > addr) v = -1;
  }
  return Atomics.load(i32, seqOff) === seq ? v : -2;
}

// The lock-context assertions (mmap_assert_locked and friends) and their sites live in guarded.ts.
export {
  ASSERT_SITES, AssertSite, LOCK_ASSERT_VIOLATION, i_mmap_assert_locked, i_mmap_assert_write_locked, lockdep_assert_held,
  mmap_assert_locked, mmap_assert_write_locked, pte_assert_locked, vma_assert_locked, vma_assert_write_locked,
} from './guarded.js';
