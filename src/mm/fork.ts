/**
 * mm_struct lifetime (kernel/fork.c): mm_alloc builds an mm with its PGD; mm_users counts the
 * tasks (and, for a host mm, the attached guest VMAs) using the address space, mm_count the
 * references to the struct; mmput drops a user and tears the address space down with the last.
 */
import {
  M_ANON_RETIRED, M_COUNT, M_CPUMASK, M_FLAGS, M_HOST_FILE, M_HOST_FILE_GEN, M_MMAP_LOCK, M_NR_VMAS,
  M_PAGE_TABLE_LOCK, M_PGD, M_PGTABLES, M_RSS_ANON, M_RSS_FILE, M_TASK, M_TLB_GEN, M_USERS, M_VMA_HEAD,
  G_BADMM_ANON, G_BADMM_FILE, G_BADMM_FILE_MM, G_BADMM_FILE_TASK, G_BADMM_MM, G_BADMM_PGTABLES,
  G_BADMM_TASK, G_RETIRED_PGTABLES, G_RETIRED_RSS_ANON, G_RETIRED_RSS_FILE, R_GEN, T_ANON_RETIRED, V_MM, V_FLAGS, FRAME_ANON, R_STATE,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { refcount_dec_and_test, refcount_inc, REFCOUNT_OK, REFCOUNT_UNDERFLOW, REFCOUNT_ZERO } from '../sync/refcount.js';
import { exit_mmap } from './exit.js';
import { PoolId, report_violation, Violation } from './mmdebug.js';
import { alloc_ptp, free_ptp } from './page_alloc.js';
import type { Kernel } from './percpu.js';
import {
  _PAGE_PRESENT, _PAGE_RW, entry_off, PGD_LEVEL, pgd_index, PMD_LEVEL, PMD_SIZE, pmd_index, pte_index, PTE_LEVEL, pte_pfn, PUD_LEVEL, pud_index, table_alloc,
} from './pgtable.js';
import { EINVAL, ENOMEM } from './errno.js';
import { lookup_table, MmuGather } from './memory.js';
import { flush_protection } from './mprotect.js';
import { host_mmap_write_lock, mmap_init_lock, mmap_lock_flags, mmap_write_lock, mmap_write_unlock, vma_start_write } from './mmap_lock.js';
import { AssertSite, guard_pte, guard_rss, guard_vma, mmap_assert_write_locked, pte_assert_locked, pte_lockptr } from './guarded.js';
import { frameBase } from './page_alloc.js';
import { pte_lock } from './ptlock.js';
import { frame_add_rmap, i_mmap_insert } from './rmap.js';
import { get_file } from './shmem.js';
import { spin_unlock } from '../sync/spinlock.js';
import { first_vma, VM_LOCKED, VM_LOCKONFAULT, vm_area_dup, vma_end, vma_file, vma_flags, vma_link_mm, vma_next, vma_start, vmaBase, VM_DONTCOPY, VM_SHARED, VM_SHARED_PT, VM_WIPEONFORK } from './vma.js';
import { pool_alloc, pool_free } from './slab.js';

/** mm_alloc: a new address space (task = owner task id, or -1 for a host mm). -1 when out of memory. */
export function mm_alloc(k: Kernel, task: number, flags: number): number {
  const i32 = k.i32;
  const mm = pool_alloc(k, k.pools.mms, LockClass.SlabPool, 1);
  if (mm < 0) return -1;
  const b = k.mmBase(mm);
  for (const w of [M_PGTABLES, M_RSS_FILE, M_RSS_ANON, M_NR_VMAS, M_ANON_RETIRED, M_TLB_GEN, M_CPUMASK, M_PAGE_TABLE_LOCK]) Atomics.store(i32, b + w, 0);
  mmap_init_lock(k, b + M_MMAP_LOCK);
  Atomics.store(i32, b + M_USERS, 1);
  Atomics.store(i32, b + M_COUNT, 1);
  // The lock's protocol is the mm's for its whole life: a host mm's is --host-lock's, a task's --mmap-lock's.
  Atomics.store(i32, b + M_FLAGS, mmap_lock_flags(k, flags));
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
  check_mm(k, mm);
  pool_free(k, k.pools.mms, LockClass.SlabPool, mm, PoolId.Mms);
}

/**
 * check_mm (kernel/fork.c, called from __mmdrop): an mm is freed with every counter at zero, else
 * "BUG: Bad rss-counter state mm:... type:MM_FILEPAGES val:..." and "BUG: non-zero
 * pgtables_bytes on freeing mm". ptlab does not stop here: what the mm still counted goes to
 * machine-wide sums and the first offender is remembered, and the invariant checker judges them
 * (at quiescence and at the end), since one model (pt-hint) lets file RSS move between the mms
 * that share a table and so frees mms with a non-zero file RSS by design.
 */
function check_mm(k: Kernel, mm: number): void {
  const i32 = k.i32;
  const b = k.mmBase(mm);
  const file = Atomics.load(i32, b + M_RSS_FILE);
  const anon = Atomics.load(i32, b + M_RSS_ANON);
  const pgt = Atomics.load(i32, b + M_PGTABLES);
  const task = Atomics.load(i32, b + M_TASK);
  if (file !== 0) {
    Atomics.add(i32, G_RETIRED_RSS_FILE, file);
    if (Atomics.compareExchange(i32, G_BADMM_FILE_MM, 0, mm + 1) === 0) {
      Atomics.store(i32, G_BADMM_FILE_TASK, task);
      Atomics.store(i32, G_BADMM_FILE, file);
    }
  }
  if (anon !== 0 || pgt !== 0) {
    Atomics.add(i32, G_RETIRED_RSS_ANON, anon);
    Atomics.add(i32, G_RETIRED_PGTABLES, pgt);
    if (Atomics.compareExchange(i32, G_BADMM_MM, 0, mm + 1) === 0) {
      Atomics.store(i32, G_BADMM_TASK, task);
      Atomics.store(i32, G_BADMM_ANON, anon);
      Atomics.store(i32, G_BADMM_PGTABLES, pgt);
    }
  }
}

/**
 * dup_mmap (kernel/fork.c): `child`'s address space as a copy of `parent`'s, called with nothing
 * held (it takes the parent's mmap_lock for write, as dup_mmap does). Every VMA is copied
 * (vm_area_dup, joining its file's i_mmap) but VM_DONTCOPY ones; page tables are copied only
 * where a fault could not fill them again (vma_needs_copy): private mappings, not shared file
 * ones, nor VM_WIPEONFORK ones (the child's start empty). copy_present_pte: a private writable
 * PTE is write-protected in both (copy-on-write), every copied PTE takes a map count, and the
 * child's RSS and pgtables_bytes count what it got. The parent's TLB is flushed for the
 * write-protected entries before the lock drops. Returns 0, -ENOMEM, or -EINVAL when the mm holds
 * a sharing model's VM_SHARED_PT mapping.
 */
export function dup_mmap(k: Kernel, parent: number, child: number): number {
  const i32 = k.i32;
  const lock = k.mmBase(parent) + M_MMAP_LOCK;
  const clock = k.mmBase(child) + M_MMAP_LOCK;
  mmap_write_lock(k, lock);
  // The child's too, nested (dup_mmap: mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING)): its
  // VMAs join files' i_mmap as they come, where an rmap walk (truncation) can reach them and
  // their tables while they are built.
  host_mmap_write_lock(k, clock);
  const tlb = new MmuGather();
  let r = 0;
  try {
    // A sharing model's VM_SHARED_PT mapping: the model says what a child gets (pt-hint: as
    // hugetlb's copy_hugetlb_page_range, the parent's PTE tables shared); one that does not say: EINVAL.
    if (!k.model.fork_vma) for (let v = first_vma(k, parent); v >= 0; v = vma_next(k, v)) if ((vma_flags(k, v) & VM_SHARED_PT) !== 0) return -EINVAL;
    for (let v = first_vma(k, parent); v >= 0; v = vma_next(k, v)) {
      const flags = vma_flags(k, v);
      if ((flags & VM_DONTCOPY) !== 0) continue;
      // "fork: lock VMAs of the parent process when forking" (6.4): no fault under the VMA's
      // lock changes the parent's PTEs while they are copied and write-protected.
      vma_start_write(k, v);
      const n = vm_area_dup(k, v);
      if (n < 0) {
        r = -ENOMEM;
        break;
      }
      const nb = vmaBase(k, n);
      guard_vma(k, n, AssertSite.CopyPageRange); // detached: the new VMA is dup_mmap's alone
      Atomics.store(i32, nb + V_MM, child);
      Atomics.and(i32, nb + V_FLAGS, ~(VM_LOCKED | VM_LOCKONFAULT)); // mlock is not inherited (vm_flags_clear(tmp, VM_LOCKED_MASK))
      const file = vma_file(k, n);
      if (file >= 0) {
        get_file(k, file);
        i_mmap_insert(k, file, n);
      }
      vma_link_mm(k, child, n);
      if ((flags & VM_SHARED_PT) !== 0) {
        r = k.model.fork_vma!(k, v, n);
        if (r < 0) break;
        continue;
      }
      if ((flags & (VM_SHARED | VM_WIPEONFORK)) !== 0) continue;
      if (copy_page_range(k, child, parent, vma_start(k, v), vma_end(k, v), tlb) < 0) {
        r = -ENOMEM;
        break;
      }
    }
    flush_protection(k, parent, tlb); // the parent's write-protected PTEs: flushed before anyone relies on them
  } finally {
    mmap_write_unlock(k, clock);
    mmap_write_unlock(k, lock);
  }
  return r;
}

/** copy_page_range over [start, end) of a private VMA: see dup_mmap. -1 when out of memory. */
function copy_page_range(k: Kernel, dst: number, src: number, start: number, end: number, tlb: MmuGather): number {
  const i32 = k.i32;
  const spgd = Atomics.load(i32, k.mmBase(src) + M_PGD);
  const dpgd = Atomics.load(i32, k.mmBase(dst) + M_PGD);
  mmap_assert_write_locked(k, src, AssertSite.CopyPageRange);
  for (let addr = start; addr < end;) {
    const next = Math.min(end, (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE);
    const vpn = Math.floor(addr / 4096);
    if (k.model.copy_pte_table !== undefined) {
      // cow-pte (copy_pmd_range under MMF_COW_PTE): share the whole PTE table, or copy it below.
      const shared = k.model.copy_pte_table(k, dst, src, addr, tlb);
      if (shared < 0) return -1;
      if (shared > 0) {
        addr = next;
        continue;
      }
    }
    const t = lookup_table(k, spgd, vpn, PTE_LEVEL, src);
    if (t >= 0) {
      // copy_pte_range: the child's table locked (pte_alloc_map_lock), the parent's nested in it
      // (spin_lock_nested(src_ptl, SINGLE_DEPTH_NESTING)); the child's table is found first.
      let dt = -1;
      for (let i = 0, n = (next - addr) / 4096; i < n; i++) {
        if (Atomics.load(i32, entry_off(k, t, pte_index(vpn + i))) === 0) continue;
        dt = pte_alloc_at(k, dst, dpgd, vpn);
        if (dt < 0) return -1;
        break;
      }
      if (dt < 0) {
        addr = next;
        continue;
      }
      const dptl = pte_lock(k, dt);
      const ptl = pte_lockptr(k, t) !== dptl ? pte_lock(k, t) : -1;
      pte_assert_locked(k, t, AssertSite.CopyPageRange);
      for (let i = 0, n = (next - addr) / 4096; i < n; i++) {
        const so = entry_off(k, t, pte_index(vpn + i));
        let e = Atomics.load(i32, so);
        if (e === 0) continue;
        if ((e & _PAGE_RW) !== 0) {
          e &= ~_PAGE_RW; // is_cow_mapping && pte_write: ptep_set_wrprotect in the parent too
          guard_pte(k, t, AssertSite.CopyPageRange);
          Atomics.store(i32, so, e);
          tlb.addTable(t);
        }
        const f = pte_pfn(e);
        // copy_nonpresent_pte: a migration entry is copied (made readable above, as
        // make_readable_migration_entry does for a COW mapping) and counted in the child's RSS;
        // it holds no map count. The child's VMA is in i_mmap already, so remove_migration_ptes
        // finds the copy.
        if ((e & _PAGE_PRESENT) !== 0) frame_add_rmap(k, f);
        const anon = Atomics.load(i32, frameBase(k, f) + R_STATE) === FRAME_ANON;
        guard_rss(k, dst, dt, AssertSite.CopyPageRange);
        Atomics.add(i32, k.mmBase(dst) + (anon ? M_RSS_ANON : M_RSS_FILE), 1);
        guard_pte(k, dt, AssertSite.CopyPageRange); // set_pte_at(dst_mm) under dst_ptl
        Atomics.store(i32, entry_off(k, dt, pte_index(vpn + i)), e);
      }
      if (ptl >= 0) spin_unlock(k, ptl);
      spin_unlock(k, dptl);
    }
    addr = next;
  }
  return 0;
}

/** The PTE table of `mm` (its PGD `pgd`) that maps `vpn`, allocated down the way; -1 when out of memory. */
function pte_alloc_at(k: Kernel, mm: number, pgd: number, vpn: number): number {
  const pud = table_alloc(k, entry_off(k, pgd, pgd_index(vpn)), mm, PUD_LEVEL);
  if (pud < 0) return -1;
  const pmd = table_alloc(k, entry_off(k, pud, pud_index(vpn)), mm, PMD_LEVEL);
  if (pmd < 0) return -1;
  const pte = table_alloc(k, entry_off(k, pmd, pmd_index(vpn)), mm, PTE_LEVEL);
  return pte < 0 ? -1 : pte;
}
