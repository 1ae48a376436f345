/**
 * `map-shared-pt`: Khalid Aziz's MAP_SHARED_PT, RFC v2 (seed 001; mm/ptshare.c of the series).
 *
 * - mmap(MAP_SHARED | MAP_SHARED_PT) of a file needs a PMD-aligned address, a PMD-multiple
 *   length, and the same address, length and offset in every process (else EINVAL).
 * - The first such mmap creates a host mm, attached to no task, with one VMA over the range; it
 *   holds the shared PTE tables. Every mapper is a guest: its VMA carries VM_SHARED_PT and points
 *   at the host.
 * - A guest fault copies the host's PMD entry into the guest's PMD (the PTE table is shared, its
 *   P_SHARE counts the PMD entries pointing to it) and handles the fault in the host mm's context
 *   (find_shared_vma: the host VMA decides permissions; the host mm's mmap_lock nests inside the
 *   task's).
 * - mprotect by one guest changes the host VMA and entries, so every sharer; the shootdown
 *   reaches every CPU running any sharer (the host mm's cpumask is the union of theirs).
 * - A partial munmap is refused with EINVAL. A guest's exit or munmap only clears its own PMD
 *   entries (the fix for the RFC's free_pmd_range concern); the host mm and its tables go with
 *   the last guest. Host tables are accounted to the host mm, once, apart from the guests'.
 *
 * --bug rfc-v2-free-shared-pmd: a guest's exit frees the shared PTE tables as if they were its
 * own (pmd_free_tlb on a shared table), while the host and other guests still point to them.
 * --bug shootdown-forgets-sharers: a change to the host's entries flushes only the CPU that made
 * it (flush_tlb_mm on the host's own, empty, cpumask), so other sharers keep stale entries.
 */
import { mmap_read_unlock, mmap_write_unlock, host_mmap_read_lock, host_mmap_write_lock } from '../mm/mmap_lock.js';
import {
  FL_PTSHARE, FL_PTSHARE_GEN, FL_PTSHARE_LOCK, M_CPUMASK, M_HOST_FILE, M_HOST_FILE_GEN, M_MMAP_LOCK, M_FLAGS,
  M_USERS, MMF_HOST, R_GEN,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { down_write, up_write } from '../sync/rwsem.js';
import { fileBase } from '../mm/filemap.js';
import { guest_fork, guest_pmd_fault, host_flush_mask, host_of_vma } from './host_mm.js';
import { mm_alloc, mm_gen, mmdrop, mmget, mmput } from '../mm/fork.js';
import { lookup_entry, type MmuGather, pt_put, tlb_finish_mmu, VM_FAULT_SIGBUS, zap_page_range } from '../mm/memory.js';
import { calc_vm_flags, do_munmap, get_unmapped_area, MAP_FIXED, MAP_SHARED_PT, mmap_region } from '../mm/mmap.js';
import { EINVAL, ENOMEM } from '../mm/errno.js';
import { change_access_range } from '../mm/mprotect.js';
import { MODEL_DEFAULT, type MmapArgs, type ModelOps } from '../mm/model_ops.js';
import { free_ptp } from '../mm/page_alloc.js';
import { type Kernel, type VmFault } from '../mm/percpu.js';
import {
  PMD_LEVEL, PMD_SIZE, PTE_LEVEL, table_of,
} from '../mm/pgtable.js';
import { flush_tlb_mm } from '../mm/tlb.js';
import {
  first_vma, vma_end, vma_pgoff, vma_start, vmaBase, VM_SHARED_PT,
} from '../mm/vma.js';
import { AssertSite, guard_upper, mmap_assert_write_locked } from '../mm/guarded.js';

export const BUG_FREE_SHARED_PMD = 'rfc-v2-free-shared-pmd';
export const BUG_FORGET_SHARERS = 'shootdown-forgets-sharers';

export function createMapSharedPtModel(bug: string): ModelOps {
  const freeSharedOnExit = bug === BUG_FREE_SHARED_PMD;
  const forgetSharers = bug === BUG_FORGET_SHARERS;


  function mmap(k: Kernel, a: MmapArgs): number {
    if ((a.flags & MAP_SHARED_PT) === 0) return MODEL_DEFAULT;
    if (a.len % PMD_SIZE !== 0 || a.addr % PMD_SIZE !== 0) return -EINVAL;
    const i32 = k.i32;
    if ((a.flags & MAP_FIXED) !== 0) {
      // Before the ptshare lock: unmapping may detach another shared mapping of this file.
      const r = do_munmap(k, a.mm, a.addr, a.len);
      if (r < 0) return r;
    }
    const fb = fileBase(k, a.file);
    const plock = fb + FL_PTSHARE_LOCK;
    down_write(k, plock, LockClass.ModelLock);
    try {
      let host = Atomics.load(i32, fb + FL_PTSHARE) - 1;
      let addr: number;
      const vm_flags = calc_vm_flags(a.prot, a.flags);
      if (host >= 0) {
        // Attach to the existing host: same address, length and offset, or EINVAL.
        const hv = first_vma(k, host);
        const hs = vma_start(k, hv);
        if ((a.addr !== 0 && a.addr !== hs) || vma_end(k, hv) - hs !== a.len || vma_pgoff(k, hv) !== a.pgoff) return -EINVAL;
        addr = hs;
        if (get_unmapped_area(k, a.mm, addr, a.len, PMD_SIZE) !== addr) {
          return -EINVAL; // the shared address is taken in this process
        }
        mmget(k, host);
      } else {
        addr = get_unmapped_area(k, a.mm, a.addr, a.len, PMD_SIZE);
        if (addr < 0) return addr;
        if ((a.flags & MAP_FIXED) !== 0 && addr !== a.addr) return -EINVAL;
        host = mm_alloc(k, -1, MMF_HOST);
        if (host < 0) return -ENOMEM;
        const hb = k.mmBase(host);
        Atomics.store(i32, hb + M_HOST_FILE, a.file);
        Atomics.store(i32, hb + M_HOST_FILE_GEN, Atomics.load(i32, fb + R_GEN));
        host_mmap_write_lock(k, hb + M_MMAP_LOCK);
        const hv = mmap_region(k, host, addr, a.len, vm_flags, a.file, a.pgoff);
        mmap_write_unlock(k, hb + M_MMAP_LOCK);
        if (hv < 0) {
          mmdrop(k, host);
          return hv;
        }
        Atomics.store(i32, fb + FL_PTSHARE, host + 1);
        Atomics.store(i32, fb + FL_PTSHARE_GEN, mm_gen(k, host));
      }
      const gv = mmap_region(k, a.mm, addr, a.len, vm_flags | VM_SHARED_PT, a.file, a.pgoff, host, mm_gen(k, host));
      if (gv < 0) {
        host_put(k, host, a.file);
        return gv;
      }
      return addr;
    } finally {
      up_write(k, plock);
    }
  }

  /** Drops a guest's hold on the host; the last one tears the host down. ptshare lock held. */
  function host_put(k: Kernel, host: number, file: number): void {
    const i32 = k.i32;
    const fb = fileBase(k, file);
    // The last guest: no one may find the host through the file from now on.
    if (Atomics.load(i32, k.mmBase(host) + M_USERS) === 1 && Atomics.load(i32, fb + FL_PTSHARE) === host + 1) {
      Atomics.store(i32, fb + FL_PTSHARE, 0);
    }
    mmput(k, host);
  }

  /**
   * The guest fault (handle_mm_fault's VM_SHARED_PT branch + find_shared_vma): the host VMA at
   * the same address decides — mprotect by one sharer reaches all — and the host's PMD entry is
   * copied (host_mm.ts guest_pmd_fault). Task's mmap_lock held for read; the host's nests inside.
   */
  function fault(k: Kernel, vmf: VmFault): number {
    const host = host_of_vma(k, vmf.vma);
    if (host < 0) return VM_FAULT_SIGBUS;
    return guest_pmd_fault(k, vmf, host, vmf.address, false);
  }

  /** mprotect on the shared range: the host VMA and entries change, so every sharer's do. */
  function mprotect(k: Kernel, vma: number, start: number, end: number, vm_flags: number): number {
    const host = host_of_vma(k, vma);
    if (host < 0) return -EINVAL;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_write_lock(k, hlock);
    try {
      return change_access_range(k, host, start, end, vm_flags);
    } finally {
      mmap_write_unlock(k, hlock);
    }
  }

  /**
   * MADV_DONTNEED on the shared range, by the RFC's rule for changes to it (one mprotect reaches
   * every sharer): the host's PTEs in the range are zapped under the host mm's mmap_lock (read, as
   * madvise_dontneed_free holds the task's), and the flush reaches every sharer's CPUs (the
   * host's flush mask) before it returns. Every process then reads the page cache again — the
   * data stays, as under none.
   */
  function madvise_dontneed(k: Kernel, vma: number, start: number, end: number, tlb: MmuGather): void {
    const host = host_of_vma(k, vma);
    if (host < 0) return;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_read_lock(k, hlock);
    try {
      zap_page_range(k, host, start, end, tlb);
      tlb_finish_mmu(k, host, tlb);
    } finally {
      mmap_read_unlock(k, hlock);
    }
  }

  function may_munmap(k: Kernel, vma: number, start: number, end: number): number {
    return start === vma_start(k, vma) && end === vma_end(k, vma) ? 0 : -EINVAL;
  }

  /**
   * The guest VMA goes (munmap or exit): clear the guest's PMD entries that point at host
   * tables — one share less each — flush, and drop the host. Guest mmap_lock held for write.
   */
  function detach(k: Kernel, vma: number, exiting: boolean): void {
    const i32 = k.i32;
    const guest = Atomics.load(i32, vmaBase(k, vma) + 2 /* V_MM */);
    const host = host_of_vma(k, vma);
    if (host < 0) return;
    mmap_assert_write_locked(k, guest, AssertSite.GuestDetach);
    const start = vma_start(k, vma);
    const end = vma_end(k, vma);
    for (let a = start; a < end; a += PMD_SIZE) {
      const off = lookup_entry(k, guest, a / 4096, PMD_LEVEL);
      if (off < 0) continue;
      const e = Atomics.load(i32, off);
      // The guest's PMD entry read, before it is cleared and the shared table loses a share.
      if (k.sched !== null) k.sched.point(k, SchedPoint.UnshareLoad);
      if (e === 0) continue;
      const t = table_of(k, e, PTE_LEVEL, guest);
      guard_upper(k, off, AssertSite.GuestDetach);
      Atomics.store(i32, off, 0);
      if (t < 0) continue;
      if (exiting && freeSharedOnExit) free_ptp(k, t); // the RFC v2 bug: pmd_free_tlb on a shared table
      else pt_put(k, t);
    }
    flush_tlb_mm(k, guest);
    const file = Atomics.load(i32, k.mmBase(host) + M_HOST_FILE);
    const plock = fileBase(k, file) + FL_PTSHARE_LOCK;
    down_write(k, plock, LockClass.ModelLock);
    host_put(k, host, file);
    up_write(k, plock);
  }


  return {
    name: 'map-shared-pt',
    mmap,
    fault,
    mprotect,
    madvise_dontneed,
    /**
     * fork: the child's mapping stays a guest of the same host (a host user more). No ptshare
     * lock: the parent's mapping, held still by dup_mmap's mmap_lock, pins the host, so no
     * host_put can see this guest's count as the last.
     */
    fork_vma: (k, src) => guest_fork(k, src),
    vma_open: (k, vma) => void guest_fork(k, vma), // a host user per VMA, as fork's copy
    may_munmap,
    detach,
    switch_mm: () => {},
    flush_mask: (k, mm) => {
      if ((Atomics.load(k.i32, k.mmBase(mm) + M_FLAGS) & MMF_HOST) === 0) return Atomics.load(k.i32, k.mmBase(mm) + M_CPUMASK);
      return forgetSharers ? k.cpuBit : host_flush_mask(k, mm);
    },
  };
}

