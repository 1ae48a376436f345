/**
 * What every model with a host mm shares (map-shared-pt's ptshare host, an mshare region, a
 * container, an address space): finding the host from a guest VMA or the model's file with the
 * generation check, the CPUs a change to the host's tables must reach, and the file the host maps.
 */
import {
  FL_ID, FL_IMMAP_HEAD, FL_IMMAP_RWSEM, FL_PRIV, FL_PRIV_GEN, M_CPUMASK, M_HOST_FILE, M_MMAP_LOCK, V_IMMAP_NEXT,
  V_MM, V_PRIV_GEN,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { down_read, up_read } from '../sync/rwsem.js';
import { fileBase } from '../mm/filemap.js';
import { PoolId } from '../mm/mmdebug.js';
import type { Kernel } from '../mm/percpu.js';
import { pool_check } from '../mm/slab.js';
import { first_vma, vma_end, vma_file, vma_flags, vma_next, vma_priv, vma_start, vmaBase, VM_SHARED_PT } from '../mm/vma.js';
import { lookup_entry, pt_put } from '../mm/memory.js';
import { entry_span, PAGE_SIZE, table_of } from '../mm/pgtable.js';
import { flush_tlb_mm } from '../mm/tlb.js';

/** The host mm of a guest VMA (V_PRIV), checked against the generation recorded at attach; -1 if gone (reported). */
export function host_of_vma(k: Kernel, vma: number): number {
  const host = vma_priv(k, vma);
  const gen = Atomics.load(k.i32, vmaBase(k, vma) + V_PRIV_GEN);
  return pool_check(k, k.pools.mms, host, gen, PoolId.Mms) ? host : -1;
}

/** The host mm a model file holds (FL_PRIV = host + 1), checked; -1 when none. */
export function host_of_file(k: Kernel, file: number): number {
  const fb = fileBase(k, file);
  const host = Atomics.load(k.i32, fb + FL_PRIV) - 1;
  if (host < 0) return -1;
  return pool_check(k, k.pools.mms, host, Atomics.load(k.i32, fb + FL_PRIV_GEN), PoolId.Mms) ? host : -1;
}

/**
 * The CPUs that may cache the host's translations: its own cpumask and the mm_cpumask of every
 * guest — the VM_SHARED_PT VMAs of the host's file that point at this host — read at flush time,
 * after the entries changed: a CPU that joins a guest later flushed on the way in (switch_mm)
 * and can only walk the new entries. (Upstream mshare uses flush_tlb_all; this is it, narrowed.)
 */
export function host_flush_mask(k: Kernel, host: number): number {
  const i32 = k.i32;
  let mask = Atomics.load(i32, k.mmBase(host) + M_CPUMASK);
  const file = Atomics.load(i32, k.mmBase(host) + M_HOST_FILE);
  if (file < 0) return mask;
  const fb = fileBase(k, file);
  down_read(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  for (let v = Atomics.load(i32, fb + FL_IMMAP_HEAD); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) {
    if ((vma_flags(k, v) & VM_SHARED_PT) !== 0 && vma_priv(k, v) === host) {
      mask |= Atomics.load(i32, k.mmBase(Atomics.load(i32, vmaBase(k, v) + V_MM)) + M_CPUMASK);
    }
  }
  up_read(k, fb + FL_IMMAP_RWSEM);
  return mask;
}

/** FL_ID of the one file every VMA of the host maps (the lost-write check credits it), else -1. */
export function host_backing_file_id(k: Kernel, host: number): number {
  const hlock = k.mmBase(host) + M_MMAP_LOCK;
  down_read(k, hlock, LockClass.MmapLock);
  try {
    let only = -1;
    for (let v = first_vma(k, host); v >= 0; v = vma_next(k, v)) {
      const f = vma_file(k, v);
      if (f < 0 || (only >= 0 && f !== only)) return -1;
      only = f;
    }
    return only < 0 ? -1 : Atomics.load(k.i32, fileBase(k, only) + FL_ID);
  } finally {
    up_read(k, hlock);
  }
}

/**
 * A guest VMA goes (munmap or exit): its entries at `level` that point into the host's tables
 * (PMD entries for PTE-table sharing, PUD entries for PMD-table sharing) are cleared, the guest
 * is flushed, and only then does each table lose the guest's share (the mmu_gather order: no CPU
 * can still reach a table when its reference goes). Guest mmap_lock held for write.
 */
export function guest_unshare(k: Kernel, vma: number, level: number): void {
  const i32 = k.i32;
  const guest = Atomics.load(i32, vmaBase(k, vma) + V_MM);
  const step = entry_span(level);
  const dropped: number[] = [];
  for (let a = vma_start(k, vma); a < vma_end(k, vma); a += step) {
    const off = lookup_entry(k, guest, a / PAGE_SIZE, level);
    if (off < 0) continue;
    const e = Atomics.load(i32, off);
    if (e === 0) continue;
    const t = table_of(k, e, level - 1, guest);
    Atomics.store(i32, off, 0);
    if (t >= 0) dropped.push(t);
  }
  if (dropped.length === 0) return;
  flush_tlb_mm(k, guest);
  for (const t of dropped) pt_put(k, t);
}
