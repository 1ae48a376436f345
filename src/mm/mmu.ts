/**
 * The CPU's MMU (the hardware walker, and arch/x86/mm/fault.c's do_user_addr_fault). A load or
 * store looks in the CPU's TLB, else walks the 4-level tables lock-free with Atomics.load as the
 * hardware does, and fills the TLB; a missing or forbidding entry goes to the fault handler
 * under mmap_lock. The hardware checks the PTE, not the VMA: a present entry that forbids the
 * access faults, and the handler decides (fix it up, or SIGSEGV).
 *
 * This is the hot path: no allocation, no closures, no logging. Interrupts (TLB shootdowns) are
 * taken before the access, never between a walk and the fill that uses it.
 */
import { lock_vma_under_rcu, mmap_read_lock, mmap_read_unlock, vma_end_read } from './mmap_lock.js';
import {
  F_HDR, G_MEM_USED, G_OOM_COUNT, G_OOM_FIRST_PT, G_OOM_FIRST_TASK, G_OOM_FIRST_USED, PL_INUSE, M_MMAP_LOCK, M_PGD, P_HDR, P_WPSEQ, PTP_WORDS, R_GEN, R_STATE, WPSEQ_FLIGHT,
  T_FAULTS, T_OOM,
} from '../shm/layout.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { TraceKind } from '../sync/tracer.js';
import { handle_mm_fault, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, VM_FAULT_UFFD } from './memory.js';
import { userfault_wait } from './userfaultfd.js';
import { current_pte } from './tlb.js';
import { report_violation, Violation } from './mmdebug.js';
import {
  FAULT_FLAG_VMA_LOCK, FAULT_FLAG_WRITE, ST_VMA_LOCK_SUCCESS, ST_FAULT_OOM, ST_FAULT_RETRY, ST_FAULT_SIGSEGV, ST_FAULTS, ST_WALKS, TLB_MASK, type Kernel,
} from './percpu.js';
import {
  _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, entry_tag, PGD_LEVEL, PMD_LEVEL, PTE_LEVEL, PUD_LEVEL, TASK_SIZE,
} from './pgtable.js';
import { find_vma, vma_flags, vma_start, VM_EXEC, VM_READ, VM_SHARED_PT, VM_WRITE } from './vma.js';

// Outcome of an access (what the process sees).
export const ACCESS_OK = 0;
export const ACCESS_SIGBUS = 7;
export const ACCESS_OOM = 9; // killed: VM_FAULT_OOM with no memory to reclaim
export const ACCESS_SIGSEGV = 11;
export const ACCESS_STOP = -1; // a violation stopped the machine
export const ACCESS_UFFD = -3; // do_user_addr_fault: a uffd-wp fault was queued; wait for the handler, then retry
export const SEGV_MAPERR = 1;
export const SEGV_ACCERR = 2;
/** si_code of a general-protection fault (a non-canonical address): si_addr is 0 (do_general_protection). */
export const SI_KERNEL = 0x80;
/** The lowest canonical kernel address (0xffff800000000000), as a negative JS number: -2^47. */
const KERNEL_HALF = -(2 ** 47);

const MAX_FAULT_RETRIES = 1000;

/** The last load's value and the last fault's si_code (CPU-local results of an access). */
export const mmuResult = { value: 0, si_code: 0 };

/**
 * An access outside user space, before any walk (the walker indexes only 48 bits, so such an
 * address must never reach it): at or past TASK_SIZE and still canonical (below 2^47, or the
 * kernel half as a negative number) is a page fault that do_user_addr_fault / do_kern_addr_fault
 * turn into SIGSEGV SEGV_MAPERR; a non-canonical address raises #GP, which
 * do_general_protection delivers as SIGSEGV with si_code SI_KERNEL and si_addr 0.
 */
function bad_user_address(k: Kernel, addr: number): number {
  k.stats[ST_FAULT_SIGSEGV]++;
  mmuResult.si_code = (addr >= TASK_SIZE && addr < 2 ** 47) || (addr < 0 && addr >= KERNEL_HALF) ? SEGV_MAPERR : SI_KERNEL;
  return ACCESS_SIGSEGV;
}

/**
 * Stores the 32-bit `value` in the word that holds `addr` (address & ~3), and adds it to the
 * frame's ledger (F_LEDGER, just before the data: the lost-write check's count of what was
 * stored). The TLB hit is kept small enough to inline into the caller's loop; everything else is
 * the slow path.
 */
export function mmu_store(k: Kernel, addr: number, value: number): number {
  const i32 = k.i32;
  const vpn = Math.floor(addr / 4096);
  const s = vpn & TLB_MASK;
  if (Atomics.load(i32, k.ipiReqOff) === k.ipiDone && k.tlbVpn[s] === vpn && k.tlbWrite[s] === 1 && (Atomics.load(i32, k.tlbSeqOff[s]) | WPSEQ_FLIGHT) === k.tlbSeq[s]) {
    Atomics.store(i32, k.tlbPay[s] + (((addr & 0xfff) >>> 2) & k.payloadMask), value);
    k.tlbLedger[s] = (k.tlbLedger[s] + value) | 0; // the frame's ledger, written back when the entry goes
    return ACCESS_OK;
  }
  return mmu_store_slow(k, addr, value);
}

/** The store when the TLB cannot serve it at once: interrupts, walks, faults, retries. */
function mmu_store_slow(k: Kernel, addr: number, value: number): number {
  const i32 = k.i32;
  const vpn = Math.floor(addr / 4096);
  const s = vpn & TLB_MASK;
  const w = ((addr & 0xfff) >>> 2) & k.payloadMask;
  if (!(addr >= 0 && addr < TASK_SIZE)) return bad_user_address(k, addr);
  for (let tries = 0; ; tries++) {
    if (Atomics.load(i32, k.ipiReqOff) !== k.ipiDone) k.pollInterrupts();
    if (k.tlbVpn[s] === vpn && k.tlbWrite[s] === 1) {
      if ((Atomics.load(i32, k.tlbSeqOff[s]) | WPSEQ_FLIGHT) !== k.tlbSeq[s] && stale_tlb_write(k, s, addr)) return ACCESS_STOP;
      Atomics.store(i32, k.tlbPay[s] + w, value);
      k.tlbLedger[s] = (k.tlbLedger[s] + value) | 0;
      return ACCESS_OK;
    }
    const r = walk_and_fill(k, vpn, s, true);
    if (r > 0) continue;
    if (r < 0) return ACCESS_STOP;
    if (tries >= MAX_FAULT_RETRIES) return fault_livelock(k, addr);
    if (k.sched !== null) k.sched.point(k, SchedPoint.FaultAfterWalk);
    const ipis = k.ipiDone;
    const f = do_user_addr_fault(k, addr, true);
    if (f === ACCESS_UFFD) {
      userfault_wait(k); // mmap_lock already dropped, as handle_userfault does
      continue;
    }
    if (f !== ACCESS_OK) return f;
    // The fault left vmf.pte pointing at the entry it installed: fill from it, no second walk —
    // unless the CPU took a shootdown meanwhile (controlled mode delivers them at schedule
    // points): then the entry, even its table, may be gone, and the retried access walks again.
    if (k.ipiDone !== ipis) continue;
    if (k.vmf.pte >= 0 && tlb_fill(k, vpn, s, k.vmf.pte, true, fault_pmd_wp(k)) < 0) return ACCESS_STOP;
  }
}

/** Loads the word that holds `addr` into mmuResult.value (the hit inlines; see mmu_store). */
export function mmu_load(k: Kernel, addr: number): number {
  const i32 = k.i32;
  const vpn = Math.floor(addr / 4096);
  const s = vpn & TLB_MASK;
  if (Atomics.load(i32, k.ipiReqOff) === k.ipiDone && k.tlbVpn[s] === vpn) {
    mmuResult.value = Atomics.load(i32, k.tlbPay[s] + (((addr & 0xfff) >>> 2) & k.payloadMask));
    return ACCESS_OK;
  }
  return mmu_load_slow(k, addr);
}

/** The load's slow path (see mmu_store_slow). */
function mmu_load_slow(k: Kernel, addr: number): number {
  const i32 = k.i32;
  const vpn = Math.floor(addr / 4096);
  const s = vpn & TLB_MASK;
  const w = ((addr & 0xfff) >>> 2) & k.payloadMask;
  if (!(addr >= 0 && addr < TASK_SIZE)) return bad_user_address(k, addr);
  for (let tries = 0; ; tries++) {
    if (Atomics.load(i32, k.ipiReqOff) !== k.ipiDone) k.pollInterrupts();
    if (k.tlbVpn[s] === vpn) {
      mmuResult.value = Atomics.load(i32, k.tlbPay[s] + w);
      return ACCESS_OK;
    }
    const r = walk_and_fill(k, vpn, s, false);
    if (r > 0) continue;
    if (r < 0) return ACCESS_STOP;
    if (tries >= MAX_FAULT_RETRIES) return fault_livelock(k, addr);
    if (k.sched !== null) k.sched.point(k, SchedPoint.FaultAfterWalk);
    const ipis = k.ipiDone;
    const f = do_user_addr_fault(k, addr, false);
    if (f !== ACCESS_OK) return f;
    if (k.ipiDone !== ipis) continue; // (see mmu_store_slow)
    if (k.vmf.pte >= 0 && tlb_fill(k, vpn, s, k.vmf.pte, false, fault_pmd_wp(k)) < 0) return ACCESS_STOP;
  }
}

/**
 * The PMD entry the fault path went through does not allow writes (cow-pte's COW-shared table):
 * the TLB entry filled from vmf.pte must not either, as the hardware ANDs R/W down the walk.
 * (Only a fault that leaves the table shared gets here with one: a spurious one.)
 */
function fault_pmd_wp(k: Kernel): boolean {
  const pmd = k.vmf.pmd;
  return pmd >= 0 && (Atomics.load(k.i32, pmd) & _PAGE_RW) === 0;
}

/**
 * The hardware walk: 1 = TLB filled, 0 = fault (entry missing or forbidding), -1 = the walk
 * reached a freed table or frame (reported; the machine stops). As on x86, a write needs R/W at
 * every level: an upper entry without it (cow-pte's write-protected PMD entries) makes every
 * translation below read-only.
 */
function walk_and_fill(k: Kernel, vpn: number, s: number, write: boolean): number {
  const i32 = k.i32;
  k.stats[ST_WALKS]++;
  const pbase = k.ptps.base;
  const pgd = Atomics.load(i32, k.mmOff + M_PGD);
  let e = Atomics.load(i32, pbase + pgd * PTP_WORDS + P_HDR + (Math.floor(vpn / 134217728) & 511));
  let wp = false;
  for (let level = PUD_LEVEL; ; level--) {
    // Controlled mode: another CPU may change the entry just read before the walker follows it.
    if (k.sched !== null) k.sched.point(k, SchedPoint.MmuWalkLoad);
    if ((e & _PAGE_PRESENT) === 0) return 0;
    if ((e & _PAGE_RW) === 0) wp = true;
    const nt = (e >>> 5) & 0x1fffff;
    const nb = pbase + nt * PTP_WORDS;
    // The generation tag alone: a freed table's generation has moved on. (A table freed and
    // reused at another level with the same six bits is left to the quiescence check.)
    if ((Atomics.load(i32, nb + R_GEN) & 63) !== entry_tag(e)) {
      report_violation(i32, k.layout, Violation.UafPageTable, k.cpu, nt, level, entry_tag(e), Atomics.load(i32, nb + R_GEN), k.mm, Atomics.load(i32, nb + R_STATE));
      return -1;
    }
    const idx = level === PUD_LEVEL ? (vpn >>> 18) & 511 : level === PMD_LEVEL ? (vpn >>> 9) & 511 : vpn & 511;
    if (level === PTE_LEVEL) return tlb_fill(k, vpn, s, nb + P_HDR + idx, write, wp);
    e = Atomics.load(i32, nb + P_HDR + idx);
  }
}

/**
 * Fills TLB slot `s` for `vpn` from the PTE at word `pteOff` if it allows the access: 1 filled,
 * 0 not allowed (fault), -1 the PTE maps a free frame (reported). The table's P_WPSEQ is read
 * before the PTE: a change that lands between the two then shows as a moved sequence. `wp`: an
 * upper-level entry on the way forbids writes (the entry is filled read-only).
 */
function tlb_fill(k: Kernel, vpn: number, s: number, pteOff: number, write: boolean, wp: boolean): number {
  const i32 = k.i32;
  const seqOff = pteOff - ((pteOff - k.ptps.base) % PTP_WORDS) + P_WPSEQ;
  const seq = Atomics.load(i32, seqOff);
  const pte = Atomics.load(i32, pteOff);
  // Between the walker's read of the PTE and the TLB fill from it (the shootdown that a change
  // sends is taken only after the fill: the CPU's next access flushes it).
  if (k.sched !== null) k.sched.point(k, SchedPoint.MmuBeforeFill);
  if ((pte & (_PAGE_PRESENT | _PAGE_USER)) !== (_PAGE_PRESENT | _PAGE_USER)) return 0;
  if (write && ((pte & _PAGE_RW) === 0 || wp)) return 0;
  const f = pte >>> 5;
  const fb = k.frames.base + f * k.frames.stride;
  if (Atomics.load(i32, fb + R_STATE) === 0) {
    report_violation(i32, k.layout, Violation.UafObject, k.cpu, 0, f, -1, Atomics.load(i32, fb + R_GEN));
    return -1;
  }
  k.tlb_slot_writeback(s);
  k.tlbVpn[s] = vpn;
  k.tlbPay[s] = fb + F_HDR;
  k.tlbWrite[s] = (pte & _PAGE_RW) !== 0 && !wp ? 1 : 0;
  k.tlbPte[s] = pteOff;
  k.tlbSeqOff[s] = seqOff;
  k.tlbSeq[s] = seq | WPSEQ_FLIGHT; // the sequence alone (see wpseq_begin)
  return 1;
}

/**
 * A store hit a TLB entry whose table changed (P_WPSEQ moved) since the fill. A correct kernel
 * flushes such entries before the change returns. If the PTE still allows this write to this
 * frame, no harm came of it: refresh and go on. If not, and a shootdown for the table is still in
 * flight, the change has not returned: the store goes through, as on a real CPU the interrupt has
 * not arrived yet (the entry is not refreshed: the next store looks again). If none is in flight,
 * the store went through a stale TLB entry after the change that forbade it returned. (The word
 * is read before the PTE for the refresh, as tlb_fill reads it, and again after it for the
 * flight, so a change that lands between the reads is neither missed nor taken for returned.)
 */
function stale_tlb_write(k: Kernel, s: number, addr: number): boolean {
  const i32 = k.i32;
  const seq = Atomics.load(i32, k.tlbSeqOff[s]);
  const pte = Atomics.load(i32, k.tlbPte[s]);
  const frame = (k.tlbPay[s] - F_HDR - k.frames.base) / k.frames.stride;
  // (and no upper-level entry of this mm's walk forbids the write now: cow-pte's fork
  // write-protects PMD entries, leaving the PTEs as they were)
  if ((pte & (_PAGE_PRESENT | _PAGE_USER | _PAGE_RW)) === (_PAGE_PRESENT | _PAGE_USER | _PAGE_RW) && pte >>> 5 === frame &&
    (current_pte(k, k.mm, Math.floor(addr / 4096)) & _PAGE_RW) !== 0) {
    k.tlbSeq[s] = seq | WPSEQ_FLIGHT;
    return false;
  }
  if ((Atomics.load(i32, k.tlbSeqOff[s]) & WPSEQ_FLIGHT) !== 0) return false;
  report_violation(i32, k.layout, Violation.StaleTlbWrite, k.cpu, k.task, Math.floor(addr / 2 ** 32), addr % 2 ** 32 | 0, frame, pte, k.mm);
  return true;
}

function fault_livelock(k: Kernel, addr: number): number {
  report_violation(k.i32, k.layout, Violation.Invariant, k.cpu, 3, k.task, Math.floor(addr / 2 ** 32), addr % 2 ** 32 | 0);
  return ACCESS_STOP;
}

/**
 * do_user_addr_fault: find the VMA under mmap_lock, check the access against it (bad_area /
 * access_error), and hand it to handle_mm_fault. Returns ACCESS_OK to retry the access.
 */
export function do_user_addr_fault(k: Kernel, addr: number, write: boolean): number {
  if (k.tracer === null) return __do_user_addr_fault(k, addr, write);
  k.tracer.begin(TraceKind.Fault, addr);
  const r = __do_user_addr_fault(k, addr, write);
  k.tracer.end(TraceKind.Fault, r);
  return r;
}

function __do_user_addr_fault(k: Kernel, addr: number, write: boolean): number {
  k.stats[ST_FAULTS]++;
  Atomics.add(k.i32, k.taskOff + T_FAULTS, 1);
  const mm = k.mm;
  if (k.perVmaLock) {
    // Per-VMA locks first; mmap_lock only when lock_vma_under_rcu says so.
    const vma = lock_vma_under_rcu(k, mm, addr);
    if (vma >= 0) {
      const flags = vma_flags(k, vma);
      if (write ? (flags & VM_WRITE) === 0 : (flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0) {
        vma_end_read(k, vma);
        k.stats[ST_FAULT_SIGSEGV]++;
        mmuResult.si_code = SEGV_ACCERR;
        return ACCESS_SIGSEGV;
      }
      const vmf = k.vmf;
      vmf.start(mm, vma, flags, vma_start(k, vma), addr, write ? FAULT_FLAG_WRITE | FAULT_FLAG_VMA_LOCK : FAULT_FLAG_VMA_LOCK);
      const ret = handle_mm_fault(k, vmf);
      vma_end_read(k, vma);
      k.stats[ST_VMA_LOCK_SUCCESS]++;
      return fault_result(k, ret);
    }
  }
  const lock = k.mmOff + M_MMAP_LOCK;
  mmap_read_lock(k, lock);
  const vma = find_vma(k, mm, addr);
  if (vma < 0 || vma_start(k, vma) > addr) {
    mmap_read_unlock(k, lock);
    k.stats[ST_FAULT_SIGSEGV]++;
    mmuResult.si_code = SEGV_MAPERR;
    return ACCESS_SIGSEGV;
  }
  const flags = vma_flags(k, vma);
  // A VM_SHARED_PT VMA's permissions are the host's (mprotect by one sharer reaches all):
  // the model checks the access against the host VMA.
  if ((flags & VM_SHARED_PT) === 0 && (write ? (flags & VM_WRITE) === 0 : (flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0)) {
    mmap_read_unlock(k, lock);
    k.stats[ST_FAULT_SIGSEGV]++;
    mmuResult.si_code = SEGV_ACCERR;
    return ACCESS_SIGSEGV;
  }
  const vmf = k.vmf;
  vmf.start(mm, vma, flags, vma_start(k, vma), addr, write ? FAULT_FLAG_WRITE : 0);
  const ret = handle_mm_fault(k, vmf);
  if (!vmf.unlocked) mmap_read_unlock(k, lock);
  return fault_result(k, ret);
}

/** What the access does after handle_mm_fault returned `ret` (the lock already dropped). */
function fault_result(k: Kernel, ret: number): number {
  const i32 = k.i32;
  if (ret === 0) return ACCESS_OK;
  if ((ret & VM_FAULT_UFFD) !== 0) return ACCESS_UFFD;
  if ((ret & VM_FAULT_OOM) !== 0) {
    k.stats[ST_FAULT_OOM]++;
    Atomics.add(i32, G_OOM_COUNT, 1);
    if (Atomics.compareExchange(i32, G_OOM_FIRST_TASK, 0, k.task + 1) === 0) {
      // What memory held when it first ran out: the report's "when" (sga-1500's client count).
      Atomics.store(i32, G_OOM_FIRST_PT, Atomics.load(i32, k.ptps.hdr + PL_INUSE));
      Atomics.store(i32, G_OOM_FIRST_USED, Atomics.load(i32, G_MEM_USED));
    }
    Atomics.add(i32, k.taskOff + T_OOM, 1);
    return ACCESS_OOM;
  }
  if ((ret & VM_FAULT_SIGSEGV) !== 0) {
    k.stats[ST_FAULT_SIGSEGV]++;
    mmuResult.si_code = SEGV_ACCERR;
    return ACCESS_SIGSEGV;
  }
  if ((ret & VM_FAULT_SIGBUS) !== 0) {
    k.checkStop();
    mmuResult.si_code = 2; // BUS_ADRERR
    return ACCESS_SIGBUS;
  }
  k.stats[ST_FAULT_RETRY]++;
  return ACCESS_OK;
}

export { PGD_LEVEL };
