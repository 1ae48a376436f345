/**
 * Physical memory (mm/page_alloc.c): frames and page-table pages come from their pools and are
 * charged against the machine's budget in 4 KiB pages, as x86-64 would use them. When the budget
 * is spent the allocation fails and the fault returns VM_FAULT_OOM.
 */
import {
  F_FLAGS, F_HDR, F_INDEX, F_LEDGER, R_GEN, F_MAPCOUNT, F_OWNER, F_OWNER_GEN, F_UFFD_WP, FRAME_ANON, P_COW_SHARERS, P_COW_SLOTS, P_UFFD_WP, FL_RETIRED, G_MEM_LIMIT, G_MEM_PEAK,
  G_MEM_USED, M_ANON_RETIRED, M_PGTABLES, P_HDR, P_OWNER, P_SHARE, P_WPSEQ, PTP_WORDS, WPSEQ_ONE,
  PTRS_PER_TABLE, R_STATE,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { PoolId } from './mmdebug.js';
import type { Kernel } from './percpu.js';
import { pool_alloc, pool_free } from './slab.js';
import { AssertSite, guard_pgtables } from './guarded.js';

function charge(k: Kernel): boolean {
  const i32 = k.i32;
  const used = Atomics.add(i32, G_MEM_USED, 1) + 1;
  if (used > Atomics.load(i32, G_MEM_LIMIT)) {
    Atomics.sub(i32, G_MEM_USED, 1);
    return false;
  }
  if (used > Atomics.load(i32, G_MEM_PEAK)) Atomics.store(i32, G_MEM_PEAK, used);
  return true;
}

function uncharge(k: Kernel): void {
  Atomics.sub(k.i32, G_MEM_USED, 1);
}

export function frameBase(k: Kernel, f: number): number {
  return k.frames.base + f * k.frames.stride;
}

/** alloc_page: a frame of `kind` (FRAME_FILE / FRAME_ANON) for its owner; -1 when out of memory. */
export function alloc_frame(k: Kernel, kind: number, owner: number, ownerGen: number, index: number): number {
  if (!charge(k)) return -1;
  const f = pool_alloc(k, k.frames, LockClass.FramePool, kind);
  if (f < 0) {
    uncharge(k);
    return -1;
  }
  const i32 = k.i32;
  const b = frameBase(k, f);
  Atomics.store(i32, b + F_MAPCOUNT, 0);
  Atomics.store(i32, b + F_OWNER, owner);
  Atomics.store(i32, b + F_OWNER_GEN, ownerGen);
  Atomics.store(i32, b + F_INDEX, index);
  Atomics.store(i32, b + F_UFFD_WP, 0);
  Atomics.store(i32, b + F_LEDGER, 0);
  Atomics.store(i32, b + F_FLAGS, 0);
  // A new page reads 0 (clear_page): a frame freed before (its generation moved on from the
  // first, 1) kept its data; one never used is still as the machine was made, all zero.
  if (Atomics.load(i32, b + R_GEN) !== 1) for (let w = 0, n = k.layout.config.payloadWords; w < n; w++) Atomics.store(i32, b + F_HDR + w, 0);
  return f;
}

/**
 * __free_page: the ledger (the sum of stores into it) moves to the owner's retired count (so the lost-write check still
 * sees every store), then the frame goes back to the pool.
 */
export function free_frame(k: Kernel, f: number): void {
  const i32 = k.i32;
  const b = frameBase(k, f);
  const sum = Atomics.exchange(i32, b + F_LEDGER, 0);
  const owner = Atomics.load(i32, b + F_OWNER);
  if (Atomics.load(i32, b + R_STATE) === FRAME_ANON) Atomics.add(i32, k.mmBase(owner) + M_ANON_RETIRED, sum);
  else Atomics.add(i32, k.pools.files.base + owner * k.pools.files.stride + FL_RETIRED, sum);
  if (pool_free(k, k.frames, LockClass.FramePool, f, PoolId.Frames)) uncharge(k);
}

export function ptpBase(k: Kernel, t: number): number {
  return k.ptps.base + t * PTP_WORDS;
}

/**
 * pte_alloc_one / pmd_alloc_one ...: a zeroed page-table page of `level` owned and accounted by
 * `mm` (mm_inc_nr_ptes: pgtables_bytes grows by 4 KiB). -1 when out of memory.
 */
export function alloc_ptp(k: Kernel, mm: number, level: number): number {
  if (!charge(k)) return -1;
  const t = pool_alloc(k, k.ptps, LockClass.PtpPool, level);
  if (t < 0) {
    uncharge(k);
    return -1;
  }
  const i32 = k.i32;
  const b = ptpBase(k, t);
  Atomics.store(i32, b + P_OWNER, mm);
  Atomics.store(i32, b + P_SHARE, 1);
  for (let e = 0; e < PTRS_PER_TABLE; e++) Atomics.store(i32, b + P_HDR + e, 0);
  for (let w = 0; w < PTRS_PER_TABLE / 32; w++) Atomics.store(i32, b + P_UFFD_WP + w, 0); // no uffd-wp markers
  for (let w = 0; w < P_COW_SLOTS; w++) Atomics.store(i32, b + P_COW_SHARERS + w, 0); // no COW sharers (cow-pte)
  // mm_inc_nr_ptes (a PGD comes with a new mm, its creator's alone: mm_alloc_pgd)
  if (level !== 4 /* PGD_LEVEL */) guard_pgtables(k, mm, AssertSite.AllocPtp);
  Atomics.add(i32, k.mmBase(mm) + M_PGTABLES, 1);
  return t;
}

/** pte_free and friends: unaccounted from its owner, write-seq bumped (stale TLB check), freed. */
export function free_ptp(k: Kernel, t: number): void {
  const i32 = k.i32;
  const b = ptpBase(k, t);
  Atomics.add(i32, b + P_WPSEQ, WPSEQ_ONE);
  if (Atomics.load(i32, b + R_STATE) !== 0) Atomics.sub(i32, k.mmBase(Atomics.load(i32, b + P_OWNER)) + M_PGTABLES, 1);
  if (pool_free(k, k.ptps, LockClass.PtpPool, t, PoolId.Ptps)) uncharge(k);
}
