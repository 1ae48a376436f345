/**
 * map-shared-pt's rules, from scenario-level syscalls on CPUs driven by the test thread: the
 * EINVAL cases, sharing and its accounting, mprotect reaching every sharer, lifetimes, and the
 * two planted bugs caught by their checkers.
 */
import { switch_mm } from '../../src/mm/tlb.js';
import { describe, expect, it } from 'vitest';
import { G_MEM_USED, G_STOP, M_PGTABLES, PL_INUSE, StopReason } from '../../src/shm/layout.js';
import { poolsOf } from '../../src/shm/machine.js';
import { mmput } from '../../src/mm/fork.js';
import { MAP_FIXED, MAP_SHARED, MAP_SHARED_PT, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { EINVAL } from '../../src/mm/errno.js';
import { ACCESS_OK, ACCESS_SIGSEGV, ACCESS_STOP, mmu_load, mmu_store, mmuResult } from '../../src/mm/mmu.js';
import { read_violations, Violation } from '../../src/mm/mmdebug.js';
import { ST_FAULT_SHARED_PMD, type Kernel } from '../../src/mm/percpu.js';
import { sys_ftruncate, sys_mmap, sys_mprotect, sys_munmap, sys_shm_open } from '../../src/proc/syscalls.js';
import { runOn, testMachine } from '../helpers/kernel.js';

const RW = PROT_READ | PROT_WRITE;
const MiB = 1024 * 1024;
const PT = MAP_SHARED | MAP_SHARED_PT;
const ADDR = 0x7f0000000000 - 64 * MiB;

function shared(k: Kernel, create: boolean): number {
  const fd = sys_shm_open(k, '/seg', create, false);
  expect(fd).toBeGreaterThanOrEqual(3);
  if (create) expect(sys_ftruncate(k, fd, 8 * MiB)).toBe(0);
  return fd;
}

function pages(k: Kernel, a: number, len: number, write: boolean): number {
  for (let off = 0; off < len; off += 4096) {
    const r = write ? mmu_store(k, a + off, 1) : mmu_load(k, a + off);
    if (r !== ACCESS_OK) return r;
  }
  return ACCESS_OK;
}

describe('map-shared-pt rules', () => {
  it('refuses an unaligned address, a non-PMD length, another address or offset, and partial munmap (EINVAL)', () => {
    const { cpus: [k] } = testMachine('map-shared-pt');
    runOn(k, 0);
    const fd = shared(k, true);
    expect(sys_mmap(k, ADDR + 4096, 2 * MiB, RW, PT | MAP_FIXED, fd, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 3 * MiB, RW, PT, fd, 0)).toBe(-EINVAL);
    const a = sys_mmap(k, ADDR, 4 * MiB, RW, PT, fd, 0);
    expect(a).toBe(ADDR);
    runOn(k, 1);
    const fd1 = shared(k, false);
    expect(sys_mmap(k, ADDR + 2 * MiB, 4 * MiB, RW, PT | MAP_FIXED, fd1, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 2 * MiB, RW, PT, fd1, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 4 * MiB, RW, PT, fd1, 2 * MiB)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 4 * MiB, RW, PT, fd1, 0)).toBe(ADDR); // the same address, found for it
    expect(sys_munmap(k, ADDR, 2 * MiB)).toBe(-EINVAL);
    expect(sys_munmap(k, ADDR, 4 * MiB)).toBe(0);
  });

  it('guests share the host PTE tables: host accounted once, guests only their upper tables', () => {
    const { m, cpus: [k] } = testMachine('map-shared-pt');
    const mm0 = runOn(k, 0);
    const a = sys_mmap(k, ADDR, 4 * MiB, RW, PT, shared(k, true), 0);
    expect(pages(k, a, 4 * MiB, true)).toBe(ACCESS_OK);
    const mm1 = runOn(k, 1);
    expect(sys_mmap(k, 0, 4 * MiB, RW, PT, shared(k, false), 0)).toBe(a);
    expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(2); // so far: task 0's two PMDs
    expect(pages(k, a, 4 * MiB, false)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(1); // task 0's store, seen through the shared table
    expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(4);
    // Each guest: PGD + PUD + PMD. The host: those and two PTE tables.
    expect(Atomics.load(m.i32, k.mmBase(mm0) + M_PGTABLES)).toBe(3);
    expect(Atomics.load(m.i32, k.mmBase(mm1) + M_PGTABLES)).toBe(3);
    const tables = Atomics.load(m.i32, poolsOf(m.layout).ptps.hdr + PL_INUSE);
    expect(tables).toBe(3 + 3 + 5);
  });

  it('mprotect by one guest reaches the other; the host and its tables go with the last guest', () => {
    const { m, cpus: [k] } = testMachine('map-shared-pt');
    const mm0 = runOn(k, 0);
    const a = sys_mmap(k, ADDR, 2 * MiB, RW, PT, shared(k, true), 0);
    expect(pages(k, a, 2 * MiB, true)).toBe(ACCESS_OK);
    const mm1 = runOn(k, 1);
    expect(sys_mmap(k, 0, 2 * MiB, RW, PT, shared(k, false), 0)).toBe(a);
    expect(pages(k, a, 2 * MiB, true)).toBe(ACCESS_OK);
    runOn(k, 0);
    expect(sys_mprotect(k, a, 2 * MiB, PROT_READ)).toBe(0);
    runOn(k, 1);
    expect(mmu_store(k, a + 4096, 1)).toBe(ACCESS_SIGSEGV); // its own VMA still says RW
    expect(mmu_load(k, a + 4096)).toBe(ACCESS_OK);
    runOn(k, 0);
    expect(sys_mprotect(k, a, 2 * MiB, RW)).toBe(0);
    runOn(k, 1);
    expect(mmu_store(k, a + 4096, 1)).toBe(ACCESS_OK);
    // Guest 0 exits first: guest 1 keeps working on the shared tables.
    runOn(k, 0);
    switch_mm(k, -1);
    mmput(k, mm0);
    runOn(k, 1);
    expect(pages(k, a, 2 * MiB, false)).toBe(ACCESS_OK);
    switch_mm(k, -1);
    mmput(k, mm1);
    // (the fds still hold the file: drop them as exit would)
    expect(read_violations(m.i32, m.layout)).toEqual([]);
    expect(Atomics.load(m.i32, poolsOf(m.layout).ptps.hdr + PL_INUSE)).toBe(0);
    expect(Atomics.load(m.i32, poolsOf(m.layout).mms.hdr + PL_INUSE)).toBe(0);
    expect(Atomics.load(m.i32, G_MEM_USED)).toBeGreaterThan(0); // the page cache, still referenced by fds and the name
  });
});

describe('map-shared-pt planted bugs', () => {
  /** Two guests share a populated 2 MiB mapping; guest 0 exits; returns what guest 1 sees next. */
  function guestExitsWhileOtherMaps(bug: string) {
    const { m, cpus: [k] } = testMachine('map-shared-pt', bug);
    const mm0 = runOn(k, 0);
    const a = sys_mmap(k, ADDR, 2 * MiB, RW, PT, shared(k, true), 0);
    expect(pages(k, a, 2 * MiB, true)).toBe(ACCESS_OK);
    runOn(k, 1);
    expect(sys_mmap(k, 0, 2 * MiB, RW, PT, shared(k, false), 0)).toBe(a);
    expect(pages(k, a, 4096, false)).toBe(ACCESS_OK);
    runOn(k, 0);
    switch_mm(k, -1);
    mmput(k, mm0);
    runOn(k, 1);
    return { m, access: pages(k, a + 8192, 2 * MiB - 8192, false) };
  }

  it('rfc-v2-free-shared-pmd: a guest exit frees the shared table, the next walk reports a use-after-free', () => {
    const { m, access } = guestExitsWhileOtherMaps('rfc-v2-free-shared-pmd');
    expect(access).toBe(ACCESS_STOP);
    expect(read_violations(m.i32, m.layout)[0].kind).toBe(Violation.UafPageTable);
    expect(Atomics.load(m.i32, G_STOP)).toBe(StopReason.Fatal);
  });

  it('the fixed exit path leaves the shared table to the others', () => {
    const { m, access } = guestExitsWhileOtherMaps('');
    expect(access).toBe(ACCESS_OK);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('shootdown-forgets-sharers: a store through the stale TLB entry is caught', () => {
    // Two CPUs on the test thread: the buggy flush sends no IPI, so nothing waits for cpu1.
    const { m, cpus: [k0, k1] } = testMachine('map-shared-pt', 'shootdown-forgets-sharers', { cpus: 2 });
    runOn(k0, 0);
    const a = sys_mmap(k0, ADDR, 2 * MiB, RW, PT, shared(k0, true), 0);
    expect(pages(k0, a, 2 * MiB, true)).toBe(ACCESS_OK);
    runOn(k1, 1);
    expect(sys_mmap(k1, 0, 2 * MiB, RW, PT, shared(k1, false), 0)).toBe(a);
    expect(mmu_store(k1, a, 1)).toBe(ACCESS_OK); // cpu1's TLB now holds a writable entry
    expect(sys_mprotect(k0, a, 2 * MiB, PROT_READ)).toBe(0);
    expect(mmu_store(k1, a, 1)).toBe(ACCESS_STOP);
    expect(read_violations(m.i32, m.layout).map((v) => v.kind)).toEqual([Violation.StaleTlbWrite]);
  });
});
