/** mshare's v1 API (seed 004): mshare(name, addr, len, oflag, mode) and mshare_unlink(name). */
import { describe, expect, it } from 'vitest';
import { G_MEM_USED, M_PGTABLES, PL_INUSE } from '../../src/shm/layout.js';
import { poolsOf } from '../../src/shm/machine.js';
import { mmput } from '../../src/mm/fork.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { EEXIST, EINVAL, ENOENT } from '../../src/mm/errno.js';
import { ACCESS_OK, mmu_load, mmu_store, mmuResult } from '../../src/mm/mmu.js';
import { read_violations } from '../../src/mm/mmdebug.js';
import { switch_mm } from '../../src/mm/tlb.js';
import { sys_close, sys_ftruncate, sys_memfd_create, sys_mmap, sys_mshare, sys_mshare_unlink } from '../../src/proc/syscalls.js';
import { runOn, testMachine } from '../helpers/kernel.js';

const GiB = 1024 ** 3;
const MiB = 1024 * 1024;
const A = 4 * GiB;
const RW = PROT_READ | PROT_WRITE;

function creator() {
  const t = testMachine('mshare');
  const k = t.cpus[0];
  const mm0 = runOn(k, 0);
  const fd = sys_memfd_create(k);
  expect(sys_ftruncate(k, fd, 8 * MiB)).toBe(0);
  expect(sys_mmap(k, A, 8 * MiB, RW, MAP_SHARED | MAP_FIXED, fd, 0)).toBe(A);
  expect(sys_close(k, fd)).toBe(0);
  expect(mmu_store(k, A + 8, 7)).toBe(ACCESS_OK);
  return { ...t, k, mm0 };
}

describe('mshare v1', () => {
  it('moves the creator\'s mappings into the region, and a second process attaches at the same address', () => {
    const { m, k, mm0 } = creator();
    expect(sys_mshare(k, 'db', A, GiB, true, true)).toBe(0);
    expect(mmu_load(k, A + 8)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(7); // the same page, now behind the host's tables
    expect(Atomics.load(m.i32, k.mmBase(mm0) + M_PGTABLES)).toBe(2); // PGD + PUD: the rest is the host's
    const mm1 = runOn(k, 1);
    expect(sys_mshare(k, 'db', A, GiB, false, false)).toBe(0);
    expect(mmu_load(k, A + 8)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(7);
    expect(Atomics.load(m.i32, k.mmBase(mm1) + M_PGTABLES)).toBe(2);
    expect(mmu_store(k, A + 4 * MiB, 1)).toBe(ACCESS_OK);
  });

  it('gives EEXIST, ENOENT and EINVAL as v1 does', () => {
    const { k } = creator();
    expect(sys_mshare(k, 'db', A + 4096, GiB, true, true)).toBe(-EINVAL); // unaligned
    expect(sys_mshare(k, 'db', A, GiB + 4096, true, true)).toBe(-EINVAL);
    expect(sys_mshare(k, 'nope', A, GiB, false, false)).toBe(-ENOENT);
    expect(sys_mshare(k, 'db', A, GiB, true, true)).toBe(0);
    runOn(k, 1);
    expect(sys_mshare(k, 'db', A, GiB, true, true)).toBe(-EEXIST);
    expect(sys_mshare(k, 'db', A + GiB, GiB, false, false)).toBe(-EINVAL); // v1: the same address
    expect(sys_mmap(k, 8 * GiB, 4096, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)).toBe(8 * GiB);
    expect(sys_mshare(k, 'anon', 8 * GiB, GiB, true, true)).toBe(-EINVAL); // private memory does not move
    expect(sys_mshare_unlink(k, 'nope')).toBe(-ENOENT);
  });

  it('the region lives while mapped, goes with the last unlink and mapping; nothing leaks', () => {
    const { m, k, mm0 } = creator();
    expect(sys_mshare(k, 'db', A, GiB, true, true)).toBe(0);
    const mm1 = runOn(k, 1);
    expect(sys_mshare(k, 'db', A, GiB, false, false)).toBe(0);
    expect(sys_mshare_unlink(k, 'db')).toBe(0);
    expect(sys_mshare(k, 'db', A, GiB, false, false)).toBe(-ENOENT);
    expect(mmu_load(k, A + 8)).toBe(ACCESS_OK); // still mapped: still there
    expect(mmuResult.value).toBe(7);
    switch_mm(k, -1);
    mmput(k, mm1);
    runOn(k, 0);
    switch_mm(k, -1);
    mmput(k, mm0);
    for (const [name, p] of Object.entries(poolsOf(m.layout))) expect([name, Atomics.load(m.i32, p.hdr + PL_INUSE)]).toEqual([name, 0]);
    expect(Atomics.load(m.i32, G_MEM_USED)).toBe(0);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('is ENOSYS under every other model', () => {
    const t = testMachine('none');
    runOn(t.cpus[0], 0);
    expect(sys_mshare(t.cpus[0], 'db', A, GiB, true, true)).toBe(-38);
  });
});
