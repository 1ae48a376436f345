/**
 * mm_struct lifetime (kernel/fork.c): mm_alloc builds an mm with its PGD; mm_users counts the
 * tasks (and, for a host mm, the attached guest VMAs) using the address space, mm_count the
 * references to the struct; mmput drops a user and tears the address space down with the last.
 */
import {
  M_ANON_RETIRED, M_COUNT, M_CPUMASK, M_FLAGS, M_HOST_FILE, M_HOST_FILE_GEN, M_MMAP_LOCK, M_NR_VMAS,
  M_PAGE_TABLE_LOCK, M_PGD, M_PGTABLES, M_RSS_ANON, M_RSS_FILE, M_TASK, M_TLB_GEN, M_USERS, M_VMA_HEAD,
  MMAP_LOCK_WORDS, MMF_HOST, MMF_QRWLOCK, R_GEN, T_ANON_RETIRED,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { refcount_dec_and_test, refcount_inc, REFCOUNT_OK, REFCOUNT_UNDERFLOW, REFCOUNT_ZERO } from '../sync/refcount.js';
import { exit_mmap } from './exit.js';
import { PoolId, report_violation, Violation } from './mmdebug.js';
import { alloc_ptp, free_ptp } from './page_alloc.js';
import type { Kernel } from './percpu.js';
import { PGD_LEVEL } from './pgtable.js';
import { pool_alloc, pool_free } from './slab.js';

/** mm_alloc: a new address space (task = owner task id, or -1 for a host mm). -1 when out of memory. */
export function mm_alloc(k: Kernel, task: number, flags: number): number {
  const i32 = k.i32;
  const mm = pool_alloc(k, k.pools.mms, LockClass.SlabPool, 1);
  if (mm < 0) return -1;
  const b = k.mmBase(mm);
  for (const w of [M_PGTABLES, M_RSS_FILE, M_RSS_ANON, M_NR_VMAS, M_ANON_RETIRED, M_TLB_GEN, M_CPUMASK, M_PAGE_TABLE_LOCK]) Atomics.store(i32, b + w, 0);
  for (let w = 0; w < MMAP_LOCK_WORDS; w++) Atomics.store(i32, b + M_MMAP_LOCK + w, 0);
  Atomics.store(i32, b + M_USERS, 1);
  Atomics.store(i32, b + M_COUNT, 1);
  // The lock's protocol is the mm's for its whole life: a host mm's is --host-lock's, a task's --mmap-lock's.
  const qrw = (flags & MMF_HOST) !== 0 ? k.hostQrwlock : k.mmapQrwlock;
  Atomics.store(i32, b + M_FLAGS, qrw ? flags | MMF_QRWLOCK : flags & ~MMF_QRWLOCK);
  Atomics.store(i32, b + M_TASK, task + 1);
  Atomics.store(i32, b + M_VMA_HEAD, -1);
  Atomics.store(i32, b + M_HOST_FILE, -1);
  Atomics.store(i32, b + M_HOST_FILE_GEN, 0);
  const pgd = alloc_ptp(k, mm, PGD_LEVEL);
  if (pgd < 0) {
    pool_free(k, k.pools.mms, LockClass.SlabPool, mm, PoolId.Mms);
    return -1;
  }
  Atomics.store(i32, b + M_PGD, pgd);
  return mm;
}

export function mm_gen(k: Kernel, mm: number): number {
  return Atomics.load(k.i32, k.mmBase(mm) + R_GEN);
}

/** mmget: one more user of the address space. */
export function mmget(k: Kernel, mm: number): void {
  if (refcount_inc(k.i32, k.mmBase(mm) + M_USERS) !== REFCOUNT_OK) {
    report_violation(k.i32, k.layout, Violation.Refcount, k.cpu, PoolId.Mms, mm, 0);
  }
}

/** mmput: drops a user; the last one runs exit_mmap and frees the mm. */
export function mmput(k: Kernel, mm: number): void {
  const r = refcount_dec_and_test(k.i32, k.mmBase(mm) + M_USERS);
  if (r === REFCOUNT_OK) return;
  if (r === REFCOUNT_UNDERFLOW) {
    report_violation(k.i32, k.layout, Violation.Refcount, k.cpu, PoolId.Mms, mm, -1);
    return;
  }
  exit_mmap(k, mm);
  mmdrop(k, mm);
}

/** mmdrop: drops a reference to the struct; the last frees the PGD and the mm_struct. */
export function mmdrop(k: Kernel, mm: number): void {
  const i32 = k.i32;
  const b = k.mmBase(mm);
  if (refcount_dec_and_test(i32, b + M_COUNT) !== REFCOUNT_ZERO) return;
  const task = Atomics.load(i32, b + M_TASK) - 1;
  if (task >= 0) Atomics.add(i32, k.taskBase(task) + T_ANON_RETIRED, Atomics.load(i32, b + M_ANON_RETIRED));
  free_ptp(k, Atomics.load(i32, b + M_PGD));
  pool_free(k, k.pools.mms, LockClass.SlabPool, mm, PoolId.Mms);
}
