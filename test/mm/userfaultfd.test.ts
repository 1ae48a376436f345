/**
 * uffd-wp on shared memory (seed 003), on one CPU driven by the test thread. A single thread
 * cannot wait for a handler, so the pieces are tested one by one: the write fault returns the
 * userfault result and queues an event, the handler resolves it, the retry succeeds.
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/check/invariants.js';
import { fdget } from '../../src/mm/fdtable.js';
import { filemap_get_frame } from '../../src/mm/filemap.js';
import { lookup_entry } from '../../src/mm/memory.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_PT, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { EBADF, EINVAL, ENOMEM } from '../../src/mm/errno.js';
import { read_violations, Violation } from '../../src/mm/mmdebug.js';
import { ACCESS_OK, ACCESS_UFFD, do_user_addr_fault, mmu_load, mmu_store, mmuResult } from '../../src/mm/mmu.js';
import { frameBase, ptpBase } from '../../src/mm/page_alloc.js';
import {
  ST_FAULT_WP, ST_UFFD_ENTRY_WRITES, ST_UFFD_EVENTS, ST_UFFD_SYSCALLS, type Kernel,
} from '../../src/mm/percpu.js';
import { _PAGE_RW, PTE_LEVEL } from '../../src/mm/pgtable.js';
import {
  pte_marker, sys_uffd_handle, sys_uffd_register, sys_uffd_register_file, sys_uffd_snapshot_end, sys_uffd_wp, sys_uffd_wp_file,
} from '../../src/mm/userfaultfd.js';
import { find_vma, vma_flags, VM_SHARED_PT, VM_UFFD_WP } from '../../src/mm/vma.js';
import { want_pmd_share } from '../../src/models/pt_hint.js';
import { sys_ftruncate, sys_madvise, sys_mmap, sys_shm_open } from '../../src/proc/syscalls.js';
import { F_HDR, F_LEDGER, P_SHARE, PTP_WORDS, U_TAIL } from '../../src/shm/layout.js';
import { runOn, testMachine, touchPages } from '../helpers/kernel.js';

const RW = PROT_READ | PROT_WRITE;
const MiB = 1024 * 1024;
const A = 0x40000000;

function map(k: Kernel, create: boolean, len = 4 * MiB, flags = MAP_SHARED): number {
  const fd = sys_shm_open(k, '/u', create, false);
  if (create) expect(sys_ftruncate(k, fd, 8 * MiB)).toBe(0);
  expect(sys_mmap(k, A, len, RW, flags | MAP_FIXED, fd, 0)).toBe(A);
  return fd;
}


function pte(k: Kernel, mm: number, addr: number): number {
  const off = lookup_entry(k, mm, Math.floor(addr / 4096), PTE_LEVEL);
  expect(off).toBeGreaterThanOrEqual(0);
  return off;
}

const events = (k: Kernel) => Atomics.load(k.i32, k.layout.uffd + U_TAIL);

describe('uffd-wp, per-process markers (UFFDIO_REGISTER / UFFDIO_WRITEPROTECT)', () => {
  it('register and write-protect errnos', () => {
    const { cpus: [k] } = testMachine();
    runOn(k, 0);
    map(k, true, 2 * MiB);
    expect(sys_uffd_register(k, A + 1, 4096)).toBe(-EINVAL);
    expect(sys_uffd_register(k, A, 0)).toBe(-EINVAL);
    expect(sys_uffd_register(k, A, 4 * MiB)).toBe(-ENOMEM); // a hole after the mapping
    expect(sys_uffd_wp(k, A, 4096, true)).toBe(-EINVAL); // not registered
    // A private mapping of a shmem file: not taken here; anonymous private memory is.
    expect(sys_mmap(k, A + 4 * MiB, 2 * MiB, RW, MAP_PRIVATE | MAP_FIXED, sys_shm_open(k, '/u', false, false), 0)).toBe(A + 4 * MiB);
    expect(sys_uffd_register(k, A + 4 * MiB, 4096)).toBe(-EINVAL);
    expect(sys_mmap(k, A + 8 * MiB, 2 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)).toBe(A + 8 * MiB);
    expect(sys_uffd_register(k, A + 8 * MiB, 2 * MiB)).toBe(0);
    // Registering a part splits the VMA at the edges: the rest is not registered.
    expect(sys_uffd_register(k, A + 4096, 8192)).toBe(0);
    expect(vma_flags(k, find_vma(k, k.mm, A)) & VM_UFFD_WP).toBe(0);
    expect(vma_flags(k, find_vma(k, k.mm, A + 4096)) & VM_UFFD_WP).toBe(VM_UFFD_WP);
    expect(sys_uffd_wp(k, A, 3 * 4096, true)).toBe(-EINVAL); // starts outside the registered part
    expect(sys_uffd_wp(k, A + 4096, 8192, true)).toBe(0);
    expect(k.stats[ST_UFFD_SYSCALLS]).toBe(9);
  });

  it('a write to a marked PTE queues an event and returns the userfault result; the handler saves, unprotects, and the retry succeeds', () => {
    const { m, cpus: [k] } = testMachine();
    const mm = runOn(k, 0);
    map(k, true, 2 * MiB);
    expect(touchPages(k, A, 2 * MiB, true)).toBe(ACCESS_OK);
    expect(sys_uffd_register(k, A, 2 * MiB)).toBe(0);
    expect(sys_uffd_wp(k, A, 2 * MiB, true)).toBe(0);
    expect(k.stats[ST_UFFD_ENTRY_WRITES]).toBe(512);
    const off = pte(k, mm, A + 4096);
    expect(Atomics.load(m.i32, off) & _PAGE_RW).toBe(0);
    expect(pte_marker(k, off)).toBe(true);
    // Reads go on; a write faults into the userfault path (mmap_lock dropped by then).
    expect(mmu_load(k, A + 4096)).toBe(ACCESS_OK);
    expect(do_user_addr_fault(k, A + 4096, true)).toBe(ACCESS_UFFD);
    expect(do_user_addr_fault(k, A + 4096, true)).toBe(ACCESS_UFFD); // still pending: no second event
    expect(k.stats[ST_UFFD_EVENTS]).toBe(1);
    expect(events(k)).toBe(1);
    expect(sys_uffd_handle(k, -1, 0, 1)).toBe(1);
    expect(pte_marker(k, off)).toBe(false);
    expect(Atomics.load(m.i32, off) & _PAGE_RW).toBe(_PAGE_RW);
    expect(mmu_store(k, A + 4096, 5)).toBe(ACCESS_OK);
    expect(mmu_load(k, A + 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(5); // the retried store landed (it replaced touchPages' 1)
    // The other pages stay protected; the end of the snapshot finds nothing wrong and unregisters.
    expect(do_user_addr_fault(k, A + 8192, true)).toBe(ACCESS_UFFD);
    expect(sys_uffd_handle(k, -1, 0, 1)).toBe(1);
    expect(sys_uffd_snapshot_end(k)).toBe(0);
    expect(touchPages(k, A, 2 * MiB, true)).toBe(ACCESS_OK);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
  });

  it('the snapshot check: a page written behind the protection is caught when saved, and at the end', () => {
    // A write the protection did not stop, done as mmu_store does it: the word replaced, the
    // frame's ledger credited (the snapshot check compares the ledger, not the data). Rewriting
    // the 1 touchPages left leaves the data as it was, but it is still a write behind the
    // protection: the ledger moves with every store, so it is caught too. (One machine each: the
    // first violation stops the machine.)
    for (const value of [7, 1]) {
      const { m, cpus: [k] } = testMachine();
      runOn(k, 0);
      const fd = map(k, true, 2 * MiB);
      expect(touchPages(k, A, 2 * MiB, true)).toBe(ACCESS_OK);
      expect(sys_uffd_register(k, A, 2 * MiB)).toBe(0);
      expect(sys_uffd_wp(k, A, 2 * MiB, true)).toBe(0);
      const b = frameBase(k, filemap_get_frame(k, fdget(k, fd), 3));
      Atomics.store(m.i32, b + F_HDR, value);
      Atomics.add(m.i32, b + F_LEDGER, value);
      expect(do_user_addr_fault(k, A + 3 * 4096, true)).toBe(ACCESS_UFFD);
      sys_uffd_handle(k, -1, 0, 1);
      const v = read_violations(m.i32, m.layout);
      expect(v.map((x) => [x.kind, x.args[0], x.args[2]])).toEqual([[Violation.Snapshot, 2, 3]]);
    }
  });

  it('on a shared table (map-shared-pt) one process\'s markers hit a sharer that never registered', () => {
    const { m, cpus: [k] } = testMachine('map-shared-pt');
    runOn(k, 0);
    const fd = sys_shm_open(k, '/s', true, false);
    expect(sys_ftruncate(k, fd, 2 * MiB)).toBe(0);
    expect(sys_mmap(k, A, 2 * MiB, RW, MAP_SHARED | MAP_SHARED_PT | MAP_FIXED, fd, 0)).toBe(A);
    expect(touchPages(k, A, 2 * MiB, true)).toBe(ACCESS_OK);
    const mm1 = runOn(k, 1);
    expect(sys_mmap(k, A, 2 * MiB, RW, MAP_SHARED | MAP_SHARED_PT | MAP_FIXED, sys_shm_open(k, '/s', false, false), 0)).toBe(A);
    expect(touchPages(k, A, 2 * MiB, true)).toBe(ACCESS_OK);
    runOn(k, 0);
    expect(sys_uffd_register(k, A, 2 * MiB)).toBe(0);
    expect(sys_uffd_wp(k, A, 2 * MiB, true)).toBe(0);
    runOn(k, 1); // not registered
    expect(vma_flags(k, find_vma(k, mm1, A)) & VM_UFFD_WP).toBe(0);
    expect(do_user_addr_fault(k, A, true)).toBe(ACCESS_UFFD);
    expect(events(k)).toBe(1);
    runOn(k, 0);
    expect(sys_uffd_handle(k, -1, 0, 1)).toBe(1);
    runOn(k, 1);
    expect(mmu_store(k, A, 1)).toBe(ACCESS_OK);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('pt-hint: registration unshares the VMA first, and want_pmd_share refuses a VM_UFFD_WP VMA', () => {
    const { m, cpus: [k] } = testMachine('pt-hint');
    const mm0 = runOn(k, 0);
    map(k, true);
    expect(sys_madvise(k, A, 4 * MiB, 'MADV_SHARE_PT')).toBe(0);
    expect(touchPages(k, A, 4 * MiB, true)).toBe(ACCESS_OK);
    const mm1 = runOn(k, 1);
    map(k, false);
    expect(sys_madvise(k, A, 4 * MiB, 'MADV_SHARE_PT')).toBe(0);
    expect(touchPages(k, A, 4 * MiB, false)).toBe(ACCESS_OK);
    const shared = (mm: number) => Atomics.load(m.i32, ptpBase(k, Math.floor((pte(k, mm, A) - k.ptps.base) / PTP_WORDS)) + P_SHARE);
    expect(shared(mm1)).toBe(2);
    expect(sys_uffd_register(k, A, 4 * MiB)).toBe(0);
    const v = find_vma(k, mm1, A);
    expect(vma_flags(k, v) & (VM_SHARED_PT | VM_UFFD_WP)).toBe(VM_UFFD_WP);
    expect(want_pmd_share(k, v, A)).toBe(false);
    expect(want_pmd_share(k, find_vma(k, mm0, A), A)).toBe(true);
    expect(touchPages(k, A, 4 * MiB, false)).toBe(ACCESS_OK);
    expect(shared(mm0)).toBe(1);
    expect(shared(mm1)).toBe(1);
    // Hinting again after registration shares nothing.
    expect(sys_madvise(k, A, 4 * MiB, 'MADV_SHARE_PT')).toBe(0);
    expect(sys_uffd_wp(k, A, 4 * MiB, true)).toBe(0);
    runOn(k, 0);
    expect(mmu_store(k, A, 1)).toBe(ACCESS_OK); // process 0's own tables: no marker
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
  });
});

describe('uffd-wp, file level (in the page cache)', () => {
  it('flags every cached page, write-protects every PTE mapping them; a write by anyone raises the event; after the flag is cleared do_wp_page makes the PTE writable', () => {
    const { m, cpus: [k] } = testMachine();
    const mm0 = runOn(k, 0);
    const fd = map(k, true, 2 * MiB);
    expect(touchPages(k, A, 2 * MiB, true)).toBe(ACCESS_OK);
    const mm1 = runOn(k, 1);
    map(k, false, 2 * MiB);
    expect(touchPages(k, A, 2 * MiB, true)).toBe(ACCESS_OK);
    runOn(k, 0);
    expect(sys_uffd_wp_file(k, fd, true)).toBe(-EINVAL); // not registered
    expect(sys_uffd_register_file(k, 99)).toBe(-EBADF);
    expect(sys_uffd_register_file(k, fd)).toBe(0);
    expect(sys_uffd_wp_file(k, fd, true)).toBe(0);
    expect(k.stats[ST_UFFD_ENTRY_WRITES]).toBe(512 + 2 * 512); // one flag per page, one PTE per page per process
    for (const mm of [mm0, mm1]) expect(Atomics.load(m.i32, pte(k, mm, A + 4096)) & _PAGE_RW).toBe(0);
    runOn(k, 1); // never registered anything
    expect(do_user_addr_fault(k, A + 4096, true)).toBe(ACCESS_UFFD);
    expect(events(k)).toBe(1);
    runOn(k, 0);
    expect(sys_uffd_handle(k, -1, 0, 1)).toBe(1);
    runOn(k, 1);
    const wp = k.stats[ST_FAULT_WP];
    expect(mmu_store(k, A + 4096, 1)).toBe(ACCESS_OK);
    expect(k.stats[ST_FAULT_WP]).toBe(wp + 1);
    expect(Atomics.load(m.i32, pte(k, mm1, A + 4096)) & _PAGE_RW).toBe(_PAGE_RW);
    expect(Atomics.load(m.i32, pte(k, mm0, A + 4096)) & _PAGE_RW).toBe(0); // process 0's PTE: until it writes
    runOn(k, 0);
    expect(mmu_store(k, A + 4096, 1)).toBe(ACCESS_OK);
    expect(sys_uffd_snapshot_end(k)).toBe(0);
    expect(touchPages(k, A, 2 * MiB, true)).toBe(ACCESS_OK);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
  });
});
