/**
 * Faults on another process's address space (mm/gup.c): what ptrace, process_vm_writev, futex
 * and KVM do through get_user_pages_remote / fixup_user_fault. The faulting CPU runs a task whose
 * own mm (current->mm) is not the mm being faulted — the case seed 004 asks about ("are we
 * guaranteed that current->mm == the original vma->vm_mm?").
 */
import { EFAULT, ESRCH } from './errno.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import { M_MMAP_LOCK, M_USERS, T_MM, T_MM_GEN } from '../shm/layout.js';
import { refcount_inc_not_zero } from '../sync/refcount.js';
import { mm_gen, mmput } from './fork.js';
import { handle_mm_fault, VM_FAULT_UFFD } from './memory.js';
import { FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, type Kernel } from './percpu.js';
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
