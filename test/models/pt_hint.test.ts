/** pt-hint's rules on CPUs driven by the test thread: when tables are shared, and unshared. */
import { describe, expect, it } from 'vitest';
import { M_PGTABLES, PL_INUSE } from '../../src/shm/layout.js';
import { poolsOf } from '../../src/shm/machine.js';
import { checkInvariants } from '../../src/check/invariants.js';
import { mmput } from '../../src/mm/fork.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { EINVAL, ENOMEM } from '../../src/mm/errno.js';
import { ACCESS_OK, ACCESS_SIGSEGV, mmu_store, mmuResult } from '../../src/mm/mmu.js';
import { read_violations } from '../../src/mm/mmdebug.js';
import { ST_FAULT_SHARED_PMD, type Kernel } from '../../src/mm/percpu.js';
import { switch_mm } from '../../src/mm/tlb.js';
import { sys_ftruncate, sys_madvise, sys_mmap, sys_mprotect, sys_munmap, sys_shm_open } from '../../src/proc/syscalls.js';
import { runOn, testMachine, touchPages } from '../helpers/kernel.js';

const RW = PROT_READ | PROT_WRITE;
const MiB = 1024 * 1024;
const A = 0x40000000;

function map(k: Kernel, create: boolean, len = 4 * MiB, addr = A): number {
  const fd = sys_shm_open(k, '/h', create, false);
  if (create) expect(sys_ftruncate(k, fd, 8 * MiB)).toBe(0);
  const a = sys_mmap(k, addr, len, RW, MAP_SHARED | MAP_FIXED, fd, 0);
  expect(a).toBe(addr);
  return a;
}


function twoSharers() {
  const t = testMachine('pt-hint');
  const k = t.cpus[0];
  const mm0 = runOn(k, 0);
  map(k, true);
  expect(sys_madvise(k, A, 4 * MiB, 'MADV_SHARE_PT')).toBe(0);
  expect(touchPages(k, A, 4 * MiB, true)).toBe(ACCESS_OK);
  const mm1 = runOn(k, 1);
  map(k, false);
  expect(sys_madvise(k, A, 4 * MiB, 'MADV_SHARE_PT')).toBe(0);
  expect(touchPages(k, A, 4 * MiB, false)).toBe(ACCESS_OK);
  return { ...t, k, mm0, mm1 };
}

describe('pt-hint', () => {
  it('shares a sibling\'s PTE tables once both hinted, accounted to the first owner only', () => {
    const { m, k, mm0, mm1 } = twoSharers();
    expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(2);
    expect(mmuResult.value).toBe(1);
    expect(Atomics.load(m.i32, k.mmBase(mm0) + M_PGTABLES)).toBe(5);
    expect(Atomics.load(m.i32, k.mmBase(mm1) + M_PGTABLES)).toBe(3);
    expect(checkInvariants(m.i32, m.layout, { model: 'pt-hint' }).findings).toEqual([]);
  });

  it('does not share without the hint on both sides, nor across different permissions', () => {
    const t = testMachine('pt-hint');
    const k = t.cpus[0];
    runOn(k, 0);
    map(k, true);
    expect(sys_madvise(k, A, 4 * MiB, 'MADV_SHARE_PT')).toBe(0);
    expect(touchPages(k, A, 4 * MiB, true)).toBe(ACCESS_OK);
    runOn(k, 1);
    map(k, false);
    expect(touchPages(k, A, 4 * MiB, false)).toBe(ACCESS_OK);
    expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(0);
    expect(sys_mprotect(k, A, 4 * MiB, PROT_READ)).toBe(0);
    expect(sys_madvise(k, A, 4 * MiB, 'MADV_SHARE_PT')).toBe(0);
    expect(sys_munmap(k, A, 4 * MiB)).toBe(0);
    expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(0);
  });

  it('mprotect unshares first: the other process keeps its permissions', () => {
    const { m, k } = twoSharers();
    runOn(k, 1);
    expect(sys_mprotect(k, A, 2 * MiB, PROT_READ)).toBe(0);
    expect(mmu_store(k, A, 1)).toBe(ACCESS_SIGSEGV);
    runOn(k, 0);
    expect(mmu_store(k, A, 1)).toBe(ACCESS_OK);
    expect(checkInvariants(m.i32, m.layout, { model: 'pt-hint' }).findings).toEqual([]);
  });

  it('the owner exits first: its shared tables move to the other process; then nothing leaks', () => {
    const { m, k, mm0, mm1 } = twoSharers();
    runOn(k, 0);
    switch_mm(k, -1);
    mmput(k, mm0);
    expect(Atomics.load(m.i32, k.mmBase(mm1) + M_PGTABLES)).toBe(5);
    expect(checkInvariants(m.i32, m.layout, { model: 'pt-hint' }).findings).toEqual([]);
    runOn(k, 1);
    expect(touchPages(k, A, 4 * MiB, false)).toBe(ACCESS_OK);
    expect(sys_munmap(k, A + 4096, 4096)).toBe(0); // partial: unshare, split, as none
    switch_mm(k, -1);
    mmput(k, mm1);
    expect(Atomics.load(m.i32, poolsOf(m.layout).ptps.hdr + PL_INUSE)).toBe(0);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('takes only its own advice: EINVAL for another, ENOMEM for a hole', () => {
    const t = testMachine('pt-hint');
    const k = t.cpus[0];
    runOn(k, 0);
    map(k, true, 2 * MiB);
    expect(sys_madvise(k, A, 2 * MiB, 'MADV_FROBNICATE')).toBe(-EINVAL);
    expect(sys_madvise(k, A, 4 * MiB, 'MADV_SHARE_PT')).toBe(-ENOMEM);
  });
});
