/**
 * include/linux/mm.h: pte_lockptr — the lock that guards a PTE table's entries. With split PTE
 * locks (USE_SPLIT_PTE_PTLOCKS, x86-64's default: `--ptl split`) every table has its own
 * (ptlock_ptr(ptdesc)); without them (`--ptl mm`) one mm-wide spinlock, mm->page_table_lock,
 * guards every table of the mm. A table is locked through the mm that owns it: a host mm's
 * shared tables take the host's lock, so every sharer serializes on the same one.
 */
import { M_PAGE_TABLE_LOCK, P_OWNER, P_PTL } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { spin_lock, spin_unlock } from '../sync/spinlock.js';
import { ptpBase } from './page_alloc.js';
import type { Kernel } from './percpu.js';

/** pte_offset_map_lock's lock: takes the lock of PTE table `t` and returns its word (for spin_unlock). */
export function pte_lock(k: Kernel, t: number): number {
  if (k.ptlMm) {
    // The owner's lock; a shared table may change owner (cow-pte hands it on under this very
    // lock): once held, look again, as pte_offset_map_lock looks at the PMD again.
    for (;;) {
      const w = k.mmBase(Atomics.load(k.i32, ptpBase(k, t) + P_OWNER)) + M_PAGE_TABLE_LOCK;
      spin_lock(k, w, LockClass.PageTableLock);
      if (k.mmBase(Atomics.load(k.i32, ptpBase(k, t) + P_OWNER)) + M_PAGE_TABLE_LOCK === w) return w;
      spin_unlock(k, w);
    }
  }
  const w = ptpBase(k, t) + P_PTL;
  spin_lock(k, w, LockClass.Ptl);
  return w;
}
