/**
 * include/linux/mmap_lock.h: mmap_read_lock and friends, over the protocol the machine was built
 * with (`--mmap-lock`): the rwsem (kernel/locking/rwsem.c, writer-preferring, as Linux) or the
 * queued rwlock (kernel/locking/qrwlock.c, fair FIFO) — to compare the two under the same load.
 * Every mm's mmap_lock and every host mm's use the same protocol; the choice is one branch.
 */
import { LockClass } from '../sync/lockdep.js';
import { queued_read_lock, queued_read_unlock, queued_write_lock, queued_write_unlock } from '../sync/qrwlock.js';
import { down_read, down_write, up_read, up_write } from '../sync/rwsem.js';
import type { Kernel } from './percpu.js';

export const MMAP_LOCK_PROTOCOLS = ['rwsem', 'qrwlock'] as const;
export type MmapLockProtocol = (typeof MMAP_LOCK_PROTOCOLS)[number];

/** `lock` is the word offset of an mm's M_MMAP_LOCK. */
export function mmap_read_lock(k: Kernel, lock: number): void {
  if (k.mmapQrwlock) queued_read_lock(k, lock, LockClass.MmapLock);
  else down_read(k, lock, LockClass.MmapLock);
}

export function mmap_read_unlock(k: Kernel, lock: number): void {
  if (k.mmapQrwlock) queued_read_unlock(k, lock);
  else up_read(k, lock);
}

export function mmap_write_lock(k: Kernel, lock: number): void {
  if (k.mmapQrwlock) queued_write_lock(k, lock, LockClass.MmapLock);
  else down_write(k, lock, LockClass.MmapLock);
}

export function mmap_write_unlock(k: Kernel, lock: number): void {
  if (k.mmapQrwlock) queued_write_unlock(k, lock);
  else up_write(k, lock);
}

/**
 * The same on a host mm (a sharing model's mm that holds the shared tables), nested inside a
 * task's mmap_lock: lockdep's subclass 1 (mmap_read_lock_nested(mm, SINGLE_DEPTH_NESTING)), so
 * the two are ordered apart.
 */
export function host_mmap_read_lock(k: Kernel, lock: number): void {
  if (k.mmapQrwlock) queued_read_lock(k, lock, LockClass.MmapLockNested);
  else down_read(k, lock, LockClass.MmapLockNested);
}

export function host_mmap_write_lock(k: Kernel, lock: number): void {
  if (k.mmapQrwlock) queued_write_lock(k, lock, LockClass.MmapLockNested);
  else down_write(k, lock, LockClass.MmapLockNested);
}
