/**
 * exit_mmap (mm/mmap.c): the last user of an address space is gone. Every VMA is unmapped —
 * a VM_SHARED_PT VMA by its model's detach, which must not free tables others still use (the
 * pmd_free_tlb concern of seed 001) — then free_pgtables frees what is left, down to the PGD.
 */
import { host_mmap_write_lock, mmap_write_lock, mmap_write_unlock } from './mmap_lock.js';
import { M_FLAGS, M_MMAP_LOCK, MMF_HOST } from '../shm/layout.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { free_pgtables } from './memory.js';
import type { Kernel } from './percpu.js';
import { TASK_SIZE } from './pgtable.js';
import { unmap_vmas } from './mmap.js';
import { first_vma, vma_next } from './vma.js';

export function exit_mmap(k: Kernel, mm: number): void {
  k.model.exit_mm?.(k, mm);
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  // A host mm's lock is the nested subclass wherever it is taken (its last user may hold a model
  // lock taken under a task's mmap_lock, as map-shared-pt's detach does).
  if ((Atomics.load(k.i32, k.mmBase(mm) + M_FLAGS) & MMF_HOST) !== 0) host_mmap_write_lock(k, lock);
  else mmap_write_lock(k, lock);
  const all: number[] = [];
  for (let v = first_vma(k, mm); v >= 0; v = vma_next(k, v)) all.push(v);
  unmap_vmas(k, mm, all, true);
  if (k.sched !== null) k.sched.point(k, SchedPoint.ExitBeforeFreePgtables);
  free_pgtables(k, mm, 0, TASK_SIZE); // what no VMA covered: tables left by earlier unmaps
  mmap_write_unlock(k, lock);
}
