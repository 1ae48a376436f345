/**
 * mshare's rules (upstream v3 API), from syscalls on CPUs driven by the test thread: msharefs
 * names and their errnos, sizing, the ioctls, attach, sharing at the PUD level and its
 * accounting, the owner's exit, the orders in which processes go, and nothing left behind.
 */
import { describe, expect, it } from 'vitest';
import { verdict } from '../../src/check/index.js';
import { checkInvariants } from '../../src/check/invariants.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { runScenario } from '../../src/cli/run.js';
import { fdget } from '../../src/mm/fdtable.js';
import { fileBase } from '../../src/mm/filemap.js';
import { mmput } from '../../src/mm/fork.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { EBADF, EEXIST, EINVAL, ENOENT } from '../../src/mm/errno.js';
import { read_violations } from '../../src/mm/mmdebug.js';
import { ACCESS_OK, ACCESS_SIGSEGV, mmu_load, mmu_store, mmuResult } from '../../src/mm/mmu.js';
import { ptpBase } from '../../src/mm/page_alloc.js';
import { ST_FAULT_SHARED_PMD, type Kernel } from '../../src/mm/percpu.js';
import { entry_off, entry_table, pgd_index, pud_index, PUD_SIZE } from '../../src/mm/pgtable.js';
import { switch_mm } from '../../src/mm/tlb.js';
import {
  BUG_V3_DONTNEED_WITHOUT_HOST_LOCK, MSHARE_BASE, MSHARE_MAX, MSHAREFS_CREATE_MAPPING, MSHAREFS_UNMAP,
} from '../../src/models/mshare.js';
import {
  sys_close, sys_ftruncate, sys_ioctl, sys_madvise, sys_mmap, sys_mprotect, sys_munmap, sys_open, sys_shm_open,
  sys_shm_unlink, sys_unlink,
} from '../../src/proc/syscalls.js';
import {
  FL_ID, G_MEM_USED, M_PGD, M_PGTABLES, M_RSS_FILE, MAX_FDS, P_SHARE, PL_INUSE, T_FD, T_MM, T_STATE, TASK_EXITED,
} from '../../src/shm/layout.js';
import { poolsOf } from '../../src/shm/machine.js';
import { runMachine } from '../../src/proc/orchestrator.js';
import type { Program } from '../../src/proc/program.js';
import { sizeMachine } from '../../src/scenarios/common.js';
import { hostOf, memfd, runOn, testMachine, touchPages, type TestMachine } from '../helpers/kernel.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const RW = PROT_READ | PROT_WRITE;
const PATH = '/sys/fs/mshare/seg';
const ENOTTY = 25;
const EFBIG = 27;


function createMapping(k: Kernel, ms: number, fd: number, size: number, region_offset = 0): number {
  return sys_ioctl(k, ms, MSHAREFS_CREATE_MAPPING, { region_offset, size, offset: 0, prot: RW, flags: MAP_SHARED, fd });
}

/** The current task creates PATH, sizes it 1 GiB and maps a `len`-byte memfd at its start. */
function region(k: Kernel, len = 4 * MiB): { ms: number; fd: number } {
  const ms = sys_open(k, PATH, true, true);
  expect(ms).toBeGreaterThanOrEqual(3);
  expect(sys_ftruncate(k, ms, GiB)).toBe(0);
  const fd = memfd(k, len);
  expect(createMapping(k, ms, fd, len)).toBe(0);
  return { ms, fd };
}


/** Loads (or stores 1 into) every page of [a, a + len); the first outcome that is not OK. */

/** do_exit as the CPU loop does it: close every fd, leave the mm, drop it. */
function exitTask(k: Kernel, t: number): void {
  runOn(k, t);
  for (let i = 0; i < MAX_FDS; i++) if (Atomics.load(k.i32, k.taskOff + T_FD + 2 * i) >= 0) expect(sys_close(k, 3 + i)).toBe(0);
  const mm = Atomics.load(k.i32, k.taskOff + T_MM);
  switch_mm(k, -1);
  mmput(k, mm);
  Atomics.store(k.i32, k.taskOff + T_STATE, TASK_EXITED);
  k.task = -1;
}

function inuse(m: TestMachine['m'], pool: keyof ReturnType<typeof poolsOf>): number {
  return Atomics.load(m.i32, poolsOf(m.layout)[pool].hdr + PL_INUSE);
}

/** After every process exited: every pool empty, no memory charged, nothing reported. */
function expectEmpty(m: TestMachine['m']): void {
  expect(read_violations(m.i32, m.layout)).toEqual([]);
  expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
  for (const name of Object.keys(poolsOf(m.layout)) as (keyof ReturnType<typeof poolsOf>)[]) expect([name, inuse(m, name)]).toEqual([name, 0]);
  expect(Atomics.load(m.i32, G_MEM_USED)).toBe(0);
}

describe('msharefs: names, size, ioctls', () => {
  it('open: O_CREAT|O_EXCL on an existing name is EEXIST, a missing name without O_CREAT ENOENT; unlink removes the name', () => {
    const { m, cpus: [k] } = testMachine('mshare');
    runOn(k, 0);
    expect(sys_open(k, PATH, false, false)).toBe(-ENOENT);
    const ms = sys_open(k, PATH, true, true);
    expect(ms).toBeGreaterThanOrEqual(3);
    expect(sys_open(k, PATH, true, true)).toBe(-EEXIST);
    const again = sys_open(k, PATH, true, false); // O_CREAT alone opens the existing file
    expect(fdget(k, again)).toBe(fdget(k, ms));
    expect(sys_open(k, '/sys/fs/mshare', true, false)).toBe(-ENOENT);
    expect(sys_open(k, '/sys/fs/mshare/a/b', true, false)).toBe(-ENOENT);
    expect(sys_open(k, '/proc/whatever', false, false)).toBe(-ENOENT);
    // msharefs and /dev/shm names live apart.
    const shm = sys_shm_open(k, '/seg', true, true);
    expect(shm).toBeGreaterThanOrEqual(3);
    expect(fdget(k, shm)).not.toBe(fdget(k, ms));
    expect(sys_shm_unlink(k, '/seg')).toBe(0);
    expect(sys_open(k, PATH, false, false)).toBeGreaterThanOrEqual(3);
    expect(sys_unlink(k, PATH)).toBe(0);
    expect(sys_unlink(k, PATH)).toBe(-ENOENT);
    expect(sys_open(k, PATH, false, false)).toBe(-ENOENT);
    expect(sys_unlink(k, '/sys/fs/mshare/other')).toBe(-ENOENT);
    // The unlinked region lives on while fds hold it; a new name is a new region.
    const fresh = sys_open(k, PATH, true, true);
    expect(fdget(k, fresh)).not.toBe(fdget(k, ms));
    expect(inuse(m, 'mms')).toBe(3); // the task's mm and two hosts
    expect(sys_unlink(k, PATH)).toBe(0);
    exitTask(k, 0);
    expectEmpty(m);
  });

  it('ftruncate sizes the region once, in PUD_SIZE multiples', () => {
    const { cpus: [k] } = testMachine('mshare');
    runOn(k, 0);
    const ms = sys_open(k, PATH, true, true);
    expect(sys_ftruncate(k, ms, 2 * MiB)).toBe(-EINVAL);
    expect(sys_ftruncate(k, ms, GiB + 4096)).toBe(-EINVAL);
    expect(sys_ftruncate(k, ms, 0)).toBe(-EINVAL);
    expect(sys_ftruncate(k, ms, MSHARE_MAX + PUD_SIZE)).toBe(-EFBIG);
    expect(sys_ftruncate(k, ms, 2 * GiB)).toBe(0);
    expect(sys_ftruncate(k, ms, 2 * GiB)).toBe(-EINVAL); // already sized
    expect(sys_ftruncate(k, ms, GiB)).toBe(-EINVAL);
  });

  it('MSHAREFS_CREATE_MAPPING and MSHAREFS_UNMAP check their arguments; unknown cmds are ENOTTY', () => {
    const { cpus: [k] } = testMachine('mshare');
    runOn(k, 0);
    const ms = sys_open(k, PATH, true, true);
    const fd = memfd(k, 4 * MiB);
    const map = (args: Record<string, number>) => sys_ioctl(k, ms, MSHAREFS_CREATE_MAPPING, { region_offset: 0, size: 4 * MiB, offset: 0, prot: RW, flags: MAP_SHARED, fd, ...args });
    // Unsized: every ioctl is EINVAL (msharefs_ioctl checks mshare_is_initialized first).
    expect(map({})).toBe(-EINVAL);
    expect(sys_ioctl(k, ms, 'MSHAREFS_BOGUS', {})).toBe(-EINVAL);
    expect(sys_ftruncate(k, ms, GiB)).toBe(0);
    expect(sys_ioctl(k, ms, 'MSHAREFS_BOGUS', {})).toBe(-ENOTTY);
    expect(sys_ioctl(k, fd, MSHAREFS_CREATE_MAPPING, {})).toBe(-ENOTTY); // not an msharefs file
    expect(map({ region_offset: GiB })).toBe(-EINVAL); // starts past the end
    expect(map({ region_offset: -4096 })).toBe(-EINVAL);
    expect(map({ region_offset: GiB - 2 * MiB })).toBe(-EINVAL); // ends past the end
    expect(map({ region_offset: 100 })).toBe(-EINVAL);
    expect(map({ size: 4 * MiB + 1 })).toBe(-EINVAL);
    expect(map({ size: 0 })).toBe(-EINVAL);
    expect(map({ offset: 512 })).toBe(-EINVAL);
    expect(map({ flags: MAP_PRIVATE })).toBe(-EINVAL);
    expect(map({ flags: 0 })).toBe(-EINVAL);
    expect(map({ flags: MAP_SHARED | MAP_ANONYMOUS })).toBe(-EINVAL);
    expect(map({ fd: 42 })).toBe(-EBADF);
    expect(map({ fd: ms })).toBe(-EINVAL); // a region inside a region
    expect(map({})).toBe(0);
    expect(map({ region_offset: GiB - 4 * MiB })).toBe(0);
    expect(k.model.backing_file_id?.(k, fdget(k, ms))).toBe(Atomics.load(k.i32, fileBase(k, fdget(k, fd)) + FL_ID));
    const unmap = (region_offset: number, size: number) => sys_ioctl(k, ms, MSHAREFS_UNMAP, { region_offset, size });
    expect(unmap(0, 2 * GiB)).toBe(-EINVAL);
    expect(unmap(GiB, 4096)).toBe(-EINVAL);
    expect(unmap(GiB - 4096, 8192)).toBe(-EINVAL);
    expect(unmap(-4096, 4096)).toBe(-EINVAL);
    expect(unmap(100, 4096)).toBe(-EINVAL); // do_munmap: unaligned start
    expect(unmap(0, 0)).toBe(-EINVAL);
    expect(unmap(GiB - 4 * MiB, 4 * MiB)).toBe(0);
    expect(unmap(0, GiB)).toBe(0);
    expect(k.model.backing_file_id?.(k, fdget(k, ms))).toBe(-1); // nothing mapped inside
  });

  it('attach: the whole sized region, MAP_SHARED, PUD-aligned; no mprotect, no partial munmap', () => {
    const { m, cpus: [k] } = testMachine('mshare');
    runOn(k, 0);
    const ms = sys_open(k, PATH, true, true);
    expect(sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms, 0)).toBe(-EINVAL); // unsized
    expect(sys_ftruncate(k, ms, GiB)).toBe(0);
    expect(sys_mmap(k, 0, GiB, RW, MAP_PRIVATE, ms, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 2 * MiB, RW, MAP_SHARED, ms, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 2 * GiB, RW, MAP_SHARED, ms, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 40 * GiB + 2 * MiB, GiB, RW, MAP_SHARED | MAP_FIXED, ms, 0)).toBe(-EINVAL);
    const fixed = sys_mmap(k, 40 * GiB, GiB, RW, MAP_SHARED | MAP_FIXED, ms, 0);
    expect(fixed).toBe(40 * GiB);
    const a = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms, 0);
    expect(a).toBeGreaterThan(0);
    expect(a % PUD_SIZE).toBe(0);
    expect(sys_mmap(k, 50 * GiB + 4096, GiB, RW, MAP_SHARED, ms, 0)).toBe(51 * GiB); // a hint is aligned up
    expect(sys_munmap(k, a, 2 * MiB)).toBe(-EINVAL);
    expect(sys_munmap(k, a + 2 * MiB, GiB - 2 * MiB)).toBe(-EINVAL);
    expect(sys_mprotect(k, a, GiB, PROT_READ)).toBe(-EINVAL);
    expect(sys_mprotect(k, a, GiB, RW)).toBe(-EINVAL);
    expect(sys_munmap(k, a, GiB)).toBe(0);
    expect(sys_munmap(k, fixed, GiB)).toBe(0);
    expect(sys_unlink(k, PATH)).toBe(0);
    exitTask(k, 0);
    expectEmpty(m);
  });
});

describe('mshare sharing', () => {
  it('guests share the host PMD table and all below: host PGD+PUD+PMD+PTEs, each guest PGD+PUD', () => {
    const { m, cpus: [k] } = testMachine('mshare');
    const mm0 = runOn(k, 0);
    const { ms } = region(k, 4 * MiB);
    const host = hostOf(k, ms);
    const a0 = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms, 0);
    expect(touchPages(k, a0, 4 * MiB, true)).toBe(ACCESS_OK);
    const mm1 = runOn(k, 1);
    const ms1 = sys_open(k, PATH, false, false);
    const a1 = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms1, 0);
    expect(a1 % PUD_SIZE).toBe(0);
    expect(touchPages(k, a1, 4 * MiB, false)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(1); // task 0's store, through the shared tables
    expect(touchPages(k, a1, 4 * MiB, true, 2)).toBe(ACCESS_OK); // task 1's 2 replaces task 0's 1
    runOn(k, 0);
    expect(mmu_load(k, a0 + 4 * MiB - 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(2); // task 1's store, seen by task 0 through the same tables
    // One PUD entry copied per guest; every page faulted once, in the host.
    expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(2);
    const pg = (mm: number) => Atomics.load(m.i32, k.mmBase(mm) + M_PGTABLES);
    expect(pg(host)).toBe(3 + 2); // PGD, PUD, PMD + two PTE tables
    expect(pg(mm0)).toBe(2);
    expect(pg(mm1)).toBe(2);
    expect(inuse(m, 'ptps')).toBe(5 + 2 + 2);
    // Both guests' PUD entries are the host's, and the PMD table counts the three.
    const pudEntry = (mm: number, addr: number) => {
      const pgd = Atomics.load(m.i32, k.mmBase(mm) + M_PGD);
      const pud = entry_table(Atomics.load(m.i32, entry_off(k, pgd, pgd_index(addr / 4096))));
      return Atomics.load(m.i32, entry_off(k, pud, pud_index(addr / 4096)));
    };
    const he = pudEntry(host, MSHARE_BASE);
    expect(pudEntry(mm0, a0)).toBe(he);
    expect(pudEntry(mm1, a1)).toBe(he);
    expect(Atomics.load(m.i32, ptpBase(k, entry_table(he)) + P_SHARE)).toBe(3);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
    // The mapped segment is the region's first 4 MiB: beyond it there is no host VMA.
    expect(mmu_load(k, a0 + 4 * MiB)).toBe(ACCESS_SIGSEGV);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('MADV_DONTNEED on the mapping is EINVAL (v3\'s plan); --bug v3-dontneed-without-host-lock zaps the host\'s PTEs, off the host\'s RSS', () => {
    for (const bug of ['', BUG_V3_DONTNEED_WITHOUT_HOST_LOCK]) {
      const { m, cpus: [k] } = testMachine('mshare', bug);
      runOn(k, 0);
      const { ms } = region(k, 2 * MiB);
      const host = hostOf(k, ms);
      const rss = () => Atomics.load(m.i32, k.mmBase(host) + M_RSS_FILE);
      const a = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms, 0);
      expect(touchPages(k, a, 4 * 4096, true, 7)).toBe(ACCESS_OK);
      expect(rss()).toBe(4); // the host owns the tables: the PTEs count in its RSS
      expect(sys_madvise(k, a, 2 * 4096, 'MADV_DONTNEED')).toBe(bug === '' ? -EINVAL : 0);
      expect(rss()).toBe(bug === '' ? 4 : 2); // v3: the host's PTEs zapped through the guest's PUD entry
      expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
      // Shared file memory keeps its data: the next load faults the page back in.
      expect(mmu_load(k, a)).toBe(ACCESS_OK);
      expect(mmuResult.value).toBe(7);
      expect(rss()).toBe(bug === '' ? 4 : 3);
      expect(read_violations(m.i32, m.layout)).toEqual([]);
    }
  });

  it('a read-only attach cannot store; the host VMA decides what is there', () => {
    const { cpus: [k] } = testMachine('mshare');
    runOn(k, 0);
    const { ms } = region(k, 2 * MiB);
    const ro = sys_mmap(k, 0, GiB, PROT_READ, MAP_SHARED, ms, 0);
    expect(mmu_store(k, ro, 1)).toBe(ACCESS_SIGSEGV);
    expect(mmu_load(k, ro)).toBe(ACCESS_OK);
    const fd2 = memfd(k, 2 * MiB);
    expect(sys_ioctl(k, ms, MSHAREFS_CREATE_MAPPING, { region_offset: 4 * MiB, size: 2 * MiB, offset: 0, prot: PROT_READ, flags: MAP_SHARED, fd: fd2 })).toBe(0);
    const rw = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms, 0);
    expect(mmu_load(k, rw + 4 * MiB)).toBe(ACCESS_OK);
    expect(mmu_store(k, rw + 4 * MiB, 1)).toBe(ACCESS_SIGSEGV); // the host VMA is read-only
    expect(mmu_store(k, rw, 1)).toBe(ACCESS_OK);
  });

  it('MSHAREFS_UNMAP takes the range from every guest (SIGSEGV); a new mapping there is seen again', () => {
    const { m, cpus: [k] } = testMachine('mshare');
    runOn(k, 0);
    const { ms, fd } = region(k, 4 * MiB);
    const host = hostOf(k, ms);
    const a0 = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms, 0);
    expect(touchPages(k, a0, 4 * MiB, true)).toBe(ACCESS_OK);
    runOn(k, 1);
    const a1 = sys_mmap(k, 0, GiB, RW, MAP_SHARED, sys_open(k, PATH, false, false), 0);
    expect(touchPages(k, a1, 4 * MiB, false)).toBe(ACCESS_OK); // its TLB holds the pages now
    runOn(k, 0);
    expect(sys_ioctl(k, ms, MSHAREFS_UNMAP, { region_offset: 0, size: 4 * MiB })).toBe(0);
    expect(mmu_load(k, a0)).toBe(ACCESS_SIGSEGV);
    runOn(k, 1);
    expect(mmu_load(k, a1 + 8192)).toBe(ACCESS_SIGSEGV);
    // The host dropped its emptied tables; the guests still point at the old PMD table (counted).
    expect(Atomics.load(m.i32, k.mmBase(host) + M_PGTABLES)).toBe(2); // PGD + that PMD table
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
    runOn(k, 0);
    expect(createMapping(k, ms, fd, 4 * MiB)).toBe(0);
    expect(mmu_load(k, a0)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(1); // the file kept task 0's stores
    runOn(k, 1);
    expect(touchPages(k, a1, 4 * MiB, false)).toBe(ACCESS_OK);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
    expect(Atomics.load(m.i32, k.mmBase(host) + M_PGTABLES)).toBe(5); // the old PMD table went with its last guest
    exitTask(k, 1);
    exitTask(k, 0);
    expect(sys_unlink(k, PATH)).toBe(0);
    expectEmpty(m);
  });

  it('the flush mask of the host reaches every CPU running a guest', () => {
    const { cpus: [k0, k1] } = testMachine('mshare', '', { cpus: 2, tasks: 3 });
    runOn(k0, 0);
    const { ms } = region(k0, 2 * MiB);
    const host = hostOf(k0, ms);
    expect(k0.model.flush_mask(k0, host)).toBe(0); // no guest yet
    expect(sys_mmap(k0, 0, GiB, RW, MAP_SHARED, ms, 0)).toBeGreaterThan(0);
    expect(k0.model.flush_mask(k0, host)).toBe(0b01);
    runOn(k1, 1);
    expect(sys_mmap(k1, 0, GiB, RW, MAP_SHARED, sys_open(k1, PATH, false, false), 0)).toBeGreaterThan(0);
    expect(k0.model.flush_mask(k0, host)).toBe(0b11);
    // Task 1 moves to cpu0's run queue: cpu1 leaves, cpu0 (still a guest CPU) stays.
    switch_mm(k1, -1);
    expect(k0.model.flush_mask(k0, host)).toBe(0b01);
    runOn(k1, 2); // a process that maps nothing
    expect(k0.model.flush_mask(k0, host)).toBe(0b01);
  });
});

describe('mshare lifetimes', () => {
  /** Task 0 creates and maps a 4 MiB segment and stores into it; task 1 maps it and reads. */
  function twoGuests() {
    const t = testMachine('mshare');
    const k = t.cpus[0];
    runOn(k, 0);
    const { ms, fd } = region(k, 4 * MiB);
    const a0 = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms, 0);
    expect(touchPages(k, a0, 4 * MiB, true)).toBe(ACCESS_OK);
    runOn(k, 1);
    const ms1 = sys_open(k, PATH, false, false);
    const a1 = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms1, 0);
    expect(touchPages(k, a1, 4 * MiB, false)).toBe(ACCESS_OK);
    return { ...t, k, ms, fd, a0, a1, ms1 };
  }

  it('the owner exits first: the host range is unmapped, the other guest gets SIGSEGV, nothing leaks', () => {
    const { m, k, a1, ms1 } = twoGuests();
    exitTask(k, 0);
    runOn(k, 1);
    expect(mmu_load(k, a1)).toBe(ACCESS_SIGSEGV);
    expect(mmu_store(k, a1 + 2 * MiB, 1)).toBe(ACCESS_SIGSEGV);
    // No owner: no new mapping.
    const fd = memfd(k, 2 * MiB);
    expect(createMapping(k, ms1, fd, 2 * MiB)).toBe(-EINVAL);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
    expect(sys_unlink(k, PATH)).toBe(0);
    exitTask(k, 1);
    expectEmpty(m);
  });

  it('a guest exits first: the owner keeps its shared tables and data, then everything goes with it', () => {
    const { m, k, a0 } = twoGuests();
    exitTask(k, 1);
    runOn(k, 0);
    expect(touchPages(k, a0, 4 * MiB, false)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(1);
    expect(touchPages(k, a0, 4 * MiB, true)).toBe(ACCESS_OK);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
    expect(sys_unlink(k, PATH)).toBe(0);
    exitTask(k, 0);
    expectEmpty(m);
  });

  it('the owner exits without ever mapping the region: the guests lose it all the same', () => {
    const { m, cpus: [k] } = testMachine('mshare');
    runOn(k, 0);
    region(k, 2 * MiB);
    runOn(k, 1);
    const a1 = sys_mmap(k, 0, GiB, RW, MAP_SHARED, sys_open(k, PATH, false, false), 0);
    expect(touchPages(k, a1, 2 * MiB, true)).toBe(ACCESS_OK);
    exitTask(k, 0);
    runOn(k, 1);
    expect(mmu_store(k, a1, 1)).toBe(ACCESS_SIGSEGV);
    expect(sys_unlink(k, PATH)).toBe(0);
    exitTask(k, 1);
    expectEmpty(m);
  });

  it('unlink before any mapping: the fds keep the region; it goes with the last mapping', () => {
    const { m, cpus: [k] } = testMachine('mshare');
    runOn(k, 0);
    const { ms, fd } = region(k, 2 * MiB);
    expect(sys_unlink(k, PATH)).toBe(0);
    runOn(k, 1);
    expect(sys_open(k, PATH, false, false)).toBe(-ENOENT);
    runOn(k, 0);
    const a = sys_mmap(k, 0, GiB, RW, MAP_SHARED, ms, 0);
    expect(sys_close(k, ms)).toBe(0);
    expect(sys_close(k, fd)).toBe(0);
    expect(inuse(m, 'files')).toBe(2); // held by the mapping and the host's VMA
    expect(touchPages(k, a, 2 * MiB, true)).toBe(ACCESS_OK);
    expect(sys_munmap(k, a, GiB)).toBe(0);
    expect(inuse(m, 'files')).toBe(0);
    expect(inuse(m, 'mms')).toBe(2); // the tasks' own: the host went with the region
    exitTask(k, 1);
    exitTask(k, 0);
    expectEmpty(m);
  });

  it('unlink after the mappings: the region lives on while mapped, and nothing is left after every exit', () => {
    const { m, k, a0, a1 } = twoGuests();
    runOn(k, 1);
    expect(sys_unlink(k, PATH)).toBe(0); // anyone may unlink
    exitTask(k, 1);
    runOn(k, 0);
    expect(sys_close(k, 3)).toBe(0); // every fd of task 0 closed: only the mapping holds the region
    expect(sys_close(k, 4)).toBe(0);
    expect(touchPages(k, a0, 4 * MiB, false)).toBe(ACCESS_OK);
    void a1;
    exitTask(k, 0);
    expectEmpty(m);
  });

  it('all exit with fds still open and the name unlinked by the last: no leak', () => {
    const { m, k } = twoGuests();
    exitTask(k, 0);
    runOn(k, 1);
    expect(sys_unlink(k, PATH)).toBe(0);
    exitTask(k, 1);
    expectEmpty(m);
  });
});

describe('mshare on worker threads', () => {
  it('sga, 64 processes x 64 MiB: one host set of tables (35 pages), two pages per guest', async () => {
    const r = await runScenario('sga', parseRunOptions('sga', { model: 'mshare', procs: '64', size: '64M', ops: '2' }));
    expect(r.violations).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.pgtables_bytes.host).toBe(35 * 4096);
    expect(r.pgtables_bytes.total).toBe((35 + 64 * 2) * 4096);
    expect(r.pgtables_bytes.total * 10).toBeLessThan(64 * 35 * 4096); // none's
    expect(r.faults.shared_pmd_copied).toBe(64);
  });

  it("the owner's exit flushes every guest's CPU: no store slips through a stale TLB entry, then SIGSEGV", async () => {
    const seg = 1024 * 1024; // 256 pages: as many as a TLB holds
    const owner: Program = [
      { op: 'memfd_create', as: 'fd' },
      { op: 'ftruncate', fd: 'fd', size: seg },
      { op: 'open', path: PATH, create: true, excl: true, as: 'ms' },
      { op: 'ftruncate', fd: 'ms', size: GiB },
      { op: 'ioctl', fd: 'ms', cmd: MSHAREFS_CREATE_MAPPING, args: { region_offset: 0, size: seg, offset: 0, prot: RW, flags: MAP_SHARED, fd: 'fd' } },
      { op: 'mmap', len: GiB, flags: ['MAP_SHARED'], fd: 'ms', as: 'r' },
      { op: 'touch', region: 'r', len: seg, write: true },
      { op: 'barrier', id: 0 },
      { op: 'barrier', id: 1 },
      { op: 'touch', region: 'r', len: seg, passes: 50 }, // the guests fill their TLBs meanwhile
      { op: 'unlink', path: PATH },
      { op: 'exit', code: 0 },
    ];
    // Each guest stores through its TLB while the owner exits: a CPU the flush missed would go on
    // storing through entries whose PTEs are gone (the stale-TLB check); one it reached faults,
    // finds no host VMA, and the touch ends with SIGSEGV.
    const guest: Program = [
      { op: 'barrier', id: 0 },
      { op: 'open', path: PATH, as: 'ms' },
      { op: 'mmap', len: GiB, flags: ['MAP_SHARED'], fd: 'ms', as: 'r' },
      { op: 'barrier', id: 1 },
      { op: 'touch', region: 'r', len: seg, write: true, passes: 20000, expect: 'any' },
      { op: 'barrier', id: 2 }, // every live process: the owner has exited
      { op: 'store', region: 'r', offset: seg - 4096, expect: 'SIGSEGV' },
      { op: 'load', region: 'r', offset: 0, expect: 'SIGSEGV' },
      { op: 'munmap', region: 'r', len: GiB },
      { op: 'exit', code: 0 },
    ];
    const procs = 4; // one CPU each: nothing but the owner's flush empties a guest's TLB
    const config = sizeMachine({ cpus: procs, procs, sharedBytes: seg, privateBytes: 0, files: 2, vmasPerProc: 2, mem: GiB });
    const run = await runMachine({
      cpus: procs, config, programs: [owner, guest, guest, guest], model: 'mshare', bug: '', deadlineMs: 20_000, lockStatTiming: false, slice: 4, runTimeoutMs: 30_000,
    });
    expect(verdict(run)).toEqual({ violations: [], notes: [] });
  });
});
