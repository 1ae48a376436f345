/**
 * Faults on another process's address space (mm/gup.c): what ptrace, process_vm_writev, futex
 * and KVM do through get_user_pages_remote / fixup_user_fault. The faulting CPU runs a task whose
 * own mm (current->mm) is not the mm being faulted — the case seed 004 asks about ("are we
 * guaranteed that current->mm == the original vma->vm_mm?").
 */
import { EFAULT, ESRCH } from './errno.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import { M_MMAP_LOCK, M_PGD, M_USERS, P_HDR, PTP_WORDS, R_GEN, R_STATE, T_MM, T_MM_GEN } from '../shm/layout.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { report_violation, Violation } from './mmdebug.js';
import { ACCESS_OK, do_user_addr_fault } from './mmu.js';
import { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, entry_table, entry_tag, PMD_LEVEL, pte_pfn, PTE_LEVEL, PUD_LEVEL, TASK_SIZE } from './pgtable.js';
import { refcount_inc_not_zero } from '../sync/refcount.js';
import { mm_gen, mmput } from './fork.js';
import { handle_mm_fault, VM_FAULT_UFFD } from './memory.js';
import { FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, ST_GUP_FAST, ST_GUP_SLOW, type Kernel } from './percpu.js';
import { userfault_wait } from './userfaultfd.js';
import { find_vma, vma_flags, vma_start, VM_READ, VM_SHARED_PT, VM_WRITE } from './vma.js';

/** Retries after VM_FAULT_RETRY before giving up (the uffd handler resolves each in turn). */
const MAX_RETRIES = 64;

/** get_task_mm: a user reference on `task`'s mm, or -1 when it has none (exited, or reused). */
function get_task_mm(k: Kernel, task: number): number {
  const tb = k.taskBase(task);
  const mm = Atomics.load(k.i32, tb + T_MM);
  if (mm < 0 || !refcount_inc_not_zero(k.i32, k.mmBase(mm) + M_USERS)) return -1;
  if (mm_gen(k, mm) !== Atomics.load(k.i32, tb + T_MM_GEN)) {
    mmput(k, mm);
    return -1;
  }
  return mm;
}

/**
 * fixup_user_fault: resolve a fault at `addr` in `mm` (whose mmap_lock the caller holds for read),
 * as futex and KVM do. On VM_FAULT_RETRY the fault path released the lock: wait for what it
 * waits for (here a uffd-wp handler), retake the lock, retry. Returns 0 or -EFAULT; the lock is
 * held again on return either way.
 */
export function fixup_user_fault(k: Kernel, mm: number, addr: number, write: boolean): number {
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  const vmf = k.vmf;
  for (let tries = 0; tries < MAX_RETRIES; tries++) {
    const vma = find_vma(k, mm, addr); // vma_lookup
    if (vma < 0 || vma_start(k, vma) > addr) return -EFAULT;
    const flags = vma_flags(k, vma);
    // A VM_SHARED_PT VMA's permissions are the model's to check (as in do_user_addr_fault).
    if ((flags & VM_SHARED_PT) === 0 && (flags & (write ? VM_WRITE : VM_READ)) === 0) return -EFAULT;
    // task_mm is the mm faulted on, not current->mm.
    vmf.start(mm, vma, flags, vma_start(k, vma), addr, FAULT_FLAG_REMOTE | (write ? FAULT_FLAG_WRITE : 0));
    const ret = handle_mm_fault(k, vmf);
    if ((ret & VM_FAULT_UFFD) === 0) {
      if (vmf.unlocked) mmap_read_lock(k, lock); // the contract: held on return
      return ret === 0 ? 0 : -EFAULT;
    }
    // VM_FAULT_RETRY: the lock is dropped while the handler runs, then retaken.
    if (!vmf.unlocked) mmap_read_unlock(k, lock);
    userfault_wait(k);
    mmap_read_lock(k, lock);
  }
  return -EFAULT;
}

/**
 * ptlab's remote write or read of one word's page in `task`'s address space (the fault half of
 * process_vm_writev / access_remote_vm): get_task_mm, mmap_read_lock, fixup_user_fault. Returns
 * 0, -ESRCH (no such address space), or -EFAULT.
 */
export function sys_fault_remote(k: Kernel, task: number, addr: number, write: boolean): number {
  if (!Number.isInteger(task) || task < 0 || task >= k.layout.config.tasks) return -ESRCH;
  const mm = get_task_mm(k, task);
  if (mm < 0) return -ESRCH;
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  mmap_read_lock(k, lock);
  const r = fixup_user_fault(k, mm, addr, write);
  mmap_read_unlock(k, lock);
  mmput(k, mm);
  return r;
}

/**
 * gup_fast (mm/gup.c, gup_fast_pgd_range .. gup_fast_pte_range): take the page at `addr` in the
 * current mm without any lock, interrupts off (local_irq_save), as get_user_pages_fast does for
 * O_DIRECT and device pins: each entry read once (READ_ONCE / ptep_get_lockless) and followed;
 * the PTE must be present, user and (for a write) writable; the page is taken; then the PMD
 * entry and the PTE are read again and, if either changed, the page is given back and the walk
 * fails (the caller falls back to the slow path).
 *
 * Interrupts off is the whole protocol: a page table is freed only after every CPU that might
 * walk it answered an IPI (tlb_remove_table_sync_one, or the flush's own IPIs), so a table the
 * walker stands in cannot be freed under it. A table whose generation moved while the walker was
 * inside is a use-after-free — what CVE-2025-38085 allowed when huge_pmd_unshare gave a table
 * away without that sync.
 *
 * Returns the frame taken, -1 (nothing to take: fall back), or -2 (a violation was reported).
 */
export function gup_fast(k: Kernel, addr: number, write: boolean): number {
  const i32 = k.i32;
  const vpn = Math.floor(addr / 4096);
  const pbase = k.ptps.base;
  k.local_irq_save();
  try {
    const pgd = Atomics.load(i32, k.mmOff + M_PGD);
    let e = Atomics.load(i32, pbase + pgd * PTP_WORDS + P_HDR + (Math.floor(vpn / 134217728) & 511));
    let pmdOff = -1;
    let pmdVal = 0;
    for (let level = PUD_LEVEL; ; level--) {
      if (k.sched !== null) k.sched.point(k, SchedPoint.GupFastLoad);
      if ((e & _PAGE_PRESENT) === 0) return -1;
      const t = entry_table(e);
      const tb = pbase + t * PTP_WORDS;
      if ((Atomics.load(i32, tb + R_GEN) & 63) !== entry_tag(e)) {
        report_violation(i32, k.layout, Violation.UafPageTable, k.cpu, t, level, entry_tag(e), Atomics.load(i32, tb + R_GEN), k.mm, Atomics.load(i32, tb + R_STATE));
        return -2;
      }
      const idx = level === PUD_LEVEL ? (vpn >>> 18) & 511 : level === PMD_LEVEL ? (vpn >>> 9) & 511 : vpn & 511;
      const off = tb + P_HDR + idx;
      if (level !== PTE_LEVEL) {
        if (level === PMD_LEVEL) pmdOff = off;
        e = Atomics.load(i32, off);
        if (level === PMD_LEVEL) pmdVal = e;
        continue;
      }
      const pte = Atomics.load(i32, off);
      if ((pte & (_PAGE_PRESENT | _PAGE_USER)) !== (_PAGE_PRESENT | _PAGE_USER) || (write && (pte & _PAGE_RW) === 0)) return -1;
      const f = pte_pfn(pte);
      const fb = k.frames.base + f * k.frames.stride;
      if (Atomics.load(i32, fb + R_STATE) === 0) {
        report_violation(i32, k.layout, Violation.UafObject, k.cpu, 0, f, -1, Atomics.load(i32, fb + R_GEN));
        return -2;
      }
      // try_grab_folio_fast took the page; now the recheck (gup_fast_pte_range).
      if (k.sched !== null) k.sched.point(k, SchedPoint.GupFastLoad);
      if ((Atomics.load(i32, tb + R_GEN) & 63) !== entry_tag(e)) {
        // The table was freed while this CPU, interrupts off, stood in it.
        report_violation(i32, k.layout, Violation.UafPageTable, k.cpu, t, level, entry_tag(e), Atomics.load(i32, tb + R_GEN), k.mm, Atomics.load(i32, tb + R_STATE));
        return -2;
      }
      if (Atomics.load(i32, pmdOff) !== pmdVal || Atomics.load(i32, off) !== pte) return -1;
      k.stats[ST_GUP_FAST]++;
      return f;
    }
  } finally {
    k.local_irq_restore();
  }
}

/**
 * (The remote path, fault_remote, does not use gup_fast, as in Linux: get_user_pages_remote and
 * fixup_user_fault walk another mm under its mmap_lock; the lockless walk is only for
 * current->mm, whose tables this CPU's interrupts-off state protects.)
 *
 * get_user_pages_fast for one page, as O_DIRECT or a device pin uses it: gup_fast, and when it
 * finds nothing to take, the slow path (gup_fast_fallback -> get_user_pages_unlocked: a fault
 * under mmap_lock, then the walk again). Returns 0 or -EFAULT (nothing mapped there that allows
 * the access, as GUP reports it); -EFAULT also after a violation stopped the walk.
 */
export function sys_gup_fast(k: Kernel, addr: number, write: boolean): number {
  if (!(addr >= 0 && addr < TASK_SIZE)) return -EFAULT;
  for (let tries = 0; tries < MAX_RETRIES; tries++) {
    const f = gup_fast(k, addr, write);
    if (f >= 0) return 0;
    if (f === -2) return -EFAULT;
    k.stats[ST_GUP_SLOW]++;
    if (do_user_addr_fault(k, addr, write) !== ACCESS_OK) return -EFAULT;
  }
  return -EFAULT;
}
