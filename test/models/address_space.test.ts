/**
 * address-space's rules (seed 002), from syscalls on CPUs driven by the test thread: every errno
 * of address_space_create / address_space_mmap / address_space_munmap and of mapping a space;
 * grant -> access, revoke -> SIGSEGV on the next access whatever the TLB held; tables shared at
 * the PMD level and orphaned by a revoke; backing_file_id; lifetimes in every order down to empty
 * pools; the grant/revoke latency counters.
 *
 * One CPU: a revoke's shootdown waits for every mapper CPU's ack, and CPUs on one thread cannot
 * ack each other (test/helpers/kernel.ts). The shootdown's reach is checked through flush_mask.
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/check/invariants.js';
import { FD_BASE, fdget } from '../../src/mm/fdtable.js';
import { MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { EACCES, EBADF, EEXIST, EINVAL, ENOENT } from '../../src/mm/errno.js';
import { read_violations } from '../../src/mm/mmdebug.js';
import { ACCESS_OK, ACCESS_SIGBUS, ACCESS_SIGSEGV, mmu_load, mmu_store, mmuResult, SEGV_ACCERR, SEGV_MAPERR } from '../../src/mm/mmu.js';
import {
  ST_AS_GRANT_MS, ST_AS_GRANTS, ST_AS_REVOKE_MS, ST_AS_REVOKES, ST_FAULT_SHARED_PMD, TLB_MASK, type Kernel,
} from '../../src/mm/percpu.js';
import { switch_mm } from '../../src/mm/tlb.js';
import { AS_HOST_BASE, AS_MMAP, AS_MUNMAP } from '../../src/models/address_space.js';
import {
  file_id, sys_close, sys_ftruncate, sys_ioctl, sys_mmap, sys_mprotect, sys_munmap, sys_open,
  sys_shm_open, sys_shm_unlink, sys_unlink,
} from '../../src/proc/syscalls.js';
import { G_MEM_USED, M_PGTABLES, M_USERS, P_SHARE, PL_INUSE, PTP_WORDS } from '../../src/shm/layout.js';
import { poolsOf, type Machine } from '../../src/shm/machine.js';
import { exitTask, hostOf, memfd, runOn, testMachine, touchPages } from '../helpers/kernel.js';

const MiB = 1024 * 1024;
const RW = PROT_READ | PROT_WRITE;
const DEV = '/dev/address_space';
const NAMED = '/dev/address_space/vm0';
const ADDR = 0x7f0000000000 - 64 * MiB;
const ENOTTY = 25;
const EBUSY = 16;

function space(k: Kernel, size: number, path = DEV): number {
  const fd = sys_open(k, path, true, path !== DEV);
  expect(fd).toBeGreaterThanOrEqual(FD_BASE);
  expect(sys_ftruncate(k, fd, size)).toBe(0);
  return fd;
}


function grant(k: Kernel, as: number, addr: number, size: number, fd: number, prot = RW, offset = 0): number {
  return sys_ioctl(k, as, AS_MMAP, { addr, fd, offset, size, prot });
}

function revoke(k: Kernel, as: number, addr: number, size: number): number {
  return sys_ioctl(k, as, AS_MUNMAP, { addr, size });
}



function tlbHolds(k: Kernel, addr: number): boolean {
  const vpn = Math.floor(addr / 4096);
  return k.tlbVpn[vpn & TLB_MASK] === vpn;
}

/** do_exit for the task running on `k`: close its fds, leave and drop its mm. */

function inUse(m: Machine): Record<string, number> {
  const p = poolsOf(m.layout);
  const n = (pool: { hdr: number }) => Atomics.load(m.i32, pool.hdr + PL_INUSE);
  return { frames: n(p.frames), ptps: n(p.ptps), mms: n(p.mms), vmas: n(p.vmas), files: n(p.files), xa: n(p.xa), mem: Atomics.load(m.i32, G_MEM_USED) };
}

const EMPTY = { frames: 0, ptps: 0, mms: 0, vmas: 0, files: 0, xa: 0, mem: 0 };

describe('address-space: address_space_create (open / unlink)', () => {
  it('anonymous with O_CREAT; named: O_EXCL on an existing name EEXIST, absent without O_CREAT ENOENT, unlink', () => {
    const { cpus: [k] } = testMachine('address-space');
    runOn(k, 0);
    expect(sys_open(k, DEV, false, false)).toBe(-ENOENT); // nothing to open without O_CREAT
    expect(sys_open(k, DEV, true, false)).toBeGreaterThanOrEqual(FD_BASE);
    expect(sys_open(k, '/dev/address_spacex', true, false)).toBe(-ENOENT);
    expect(sys_open(k, DEV + '/', true, false)).toBe(-ENOENT);
    expect(sys_open(k, NAMED, false, false)).toBe(-ENOENT);
    const a = sys_open(k, NAMED, true, true);
    expect(a).toBeGreaterThanOrEqual(FD_BASE);
    expect(sys_open(k, NAMED, true, true)).toBe(-EEXIST);
    runOn(k, 1);
    const b = sys_open(k, NAMED, false, false); // another process opens it by name
    expect(b).toBeGreaterThanOrEqual(FD_BASE);
    const fileB = fdget(k, b);
    runOn(k, 0);
    expect(fdget(k, a)).toBe(fileB); // the same space
    runOn(k, 1);
    expect(sys_open(k, NAMED, true, false)).toBeGreaterThanOrEqual(FD_BASE); // O_CREAT alone opens the existing one
    expect(sys_unlink(k, NAMED)).toBe(0);
    expect(sys_unlink(k, NAMED)).toBe(-ENOENT);
    expect(sys_unlink(k, DEV)).toBe(-ENOENT);
    expect(sys_open(k, NAMED, false, false)).toBe(-ENOENT);
    // A /dev/shm name of the same spelling is another namespace.
    expect(sys_shm_open(k, '/vm0', false, false)).toBe(-ENOENT);
  });

  it('ftruncate: a PMD multiple (else EINVAL); resizing while something is mapped inside or a process maps it: EBUSY', () => {
    const { cpus: [k] } = testMachine('address-space');
    runOn(k, 0);
    const as = sys_open(k, DEV, true, false);
    expect(sys_ftruncate(k, as, 3 * MiB)).toBe(-EINVAL);
    expect(sys_ftruncate(k, as, 4096)).toBe(-EINVAL);
    expect(sys_ftruncate(k, as, 4 * MiB)).toBe(0);
    const ram = memfd(k, 4 * MiB);
    expect(grant(k, as, 0, 4096, ram)).toBe(0);
    expect(sys_ftruncate(k, as, 8 * MiB)).toBe(-EBUSY);
    expect(sys_ftruncate(k, as, 4 * MiB)).toBe(0); // the same size: nothing changes
    expect(revoke(k, as, 0, 4096)).toBe(0);
    expect(sys_ftruncate(k, as, 8 * MiB)).toBe(0);
    expect(sys_mmap(k, ADDR, 8 * MiB, RW, MAP_SHARED, as, 0)).toBe(ADDR);
    expect(sys_ftruncate(k, as, 2 * MiB)).toBe(-EBUSY);
  });
});

describe('address-space: address_space_mmap / address_space_munmap (ioctl)', () => {
  it('errnos: unaligned -> EINVAL, bad fd -> EBADF, an address space into an address space -> EINVAL, overlap -> EINVAL, unknown cmd -> ENOTTY', () => {
    const { cpus: [k] } = testMachine('address-space');
    runOn(k, 0);
    const as = space(k, 4 * MiB);
    const ram = memfd(k, 8 * MiB);
    expect(grant(k, as, 4096 + 1, 4096, ram)).toBe(-EINVAL); // addr not page-aligned
    expect(grant(k, as, 0, 4096 + 512, ram)).toBe(-EINVAL); // size not page-aligned
    expect(grant(k, as, 0, 0, ram)).toBe(-EINVAL); // empty
    expect(grant(k, as, 0, 4096, ram, RW, 100)).toBe(-EINVAL); // offset not page-aligned
    expect(grant(k, as, 4 * MiB - 4096, 8192, ram)).toBe(-EINVAL); // past the end of the space
    expect(grant(k, as, 0, 4096, ram, 8)).toBe(-EINVAL); // unknown prot bit
    expect(sys_ioctl(k, as, AS_MMAP, { addr: 0, size: 4096, prot: RW })).toBe(-EBADF); // no fd
    expect(grant(k, as, 0, 4096, 42)).toBe(-EBADF);
    const other = space(k, 2 * MiB);
    expect(grant(k, as, 0, 4096, other)).toBe(-EINVAL); // "an address space mapped into an address space is refused"
    expect(grant(k, as, 0, 4096, as)).toBe(-EINVAL); // nor into itself
    // Not PMD-aligned, not a PMD multiple: fine inside.
    expect(grant(k, as, 5 * 4096, 3 * 4096, ram, RW, 7 * 4096)).toBe(0);
    expect(grant(k, as, 7 * 4096, 4096, ram)).toBe(-EINVAL); // overlaps the last page of that grant
    expect(grant(k, as, 4 * 4096, 2 * 4096, ram)).toBe(-EINVAL); // overlaps its first page
    expect(grant(k, as, 8 * 4096, 4096, ram)).toBe(0); // right after it
    expect(sys_ioctl(k, as, 'AS_REMAP', {})).toBe(-ENOTTY);
    expect(sys_ioctl(k, ram, AS_MMAP, { addr: 0, fd: ram, offset: 0, size: 4096, prot: RW })).toBe(-ENOTTY); // not a space
    expect(sys_ioctl(k, 42, AS_MMAP, {})).toBe(-EBADF);
    expect(revoke(k, as, 1, 4096)).toBe(-EINVAL);
    expect(revoke(k, as, 0, 0)).toBe(-EINVAL);
    expect(revoke(k, as, 0, 8 * MiB)).toBe(-EINVAL); // past the end
    expect(revoke(k, as, 2 * MiB, 4096)).toBe(0); // nothing there: nothing to do
  });

  it('mapping a space: MAP_PRIVATE, another length, an offset or an unaligned address -> EINVAL; partial munmap, mprotect -> EINVAL', () => {
    const { cpus: [k] } = testMachine('address-space');
    runOn(k, 0);
    const as = space(k, 4 * MiB);
    expect(sys_mmap(k, 0, 4 * MiB, RW, MAP_PRIVATE, as, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 2 * MiB, RW, MAP_SHARED, as, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 8 * MiB, RW, MAP_SHARED, as, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 4 * MiB, RW, MAP_SHARED, as, 2 * MiB)).toBe(-EINVAL);
    expect(sys_mmap(k, ADDR + 4096, 4 * MiB, RW, MAP_SHARED | MAP_FIXED, as, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, ADDR + MiB, 4 * MiB, RW, MAP_SHARED, as, 0)).toBe(-EINVAL);
    const empty = sys_open(k, DEV, true, false); // size 0
    expect(sys_mmap(k, 0, 4096, RW, MAP_SHARED, empty, 0)).toBe(-EINVAL);
    const a = sys_mmap(k, 0, 4 * MiB, RW, MAP_SHARED, as, 0);
    expect(a % (2 * MiB)).toBe(0);
    expect(sys_munmap(k, a, 2 * MiB)).toBe(-EINVAL);
    expect(sys_mprotect(k, a, 4 * MiB, PROT_READ)).toBe(-EINVAL);
    expect(sys_munmap(k, a, 4 * MiB)).toBe(0);
  });

  it('superset rule: a mapper prot not covering a grant -> EACCES, and a grant beyond a mapper prot -> EACCES', () => {
    const { cpus: [k] } = testMachine('address-space');
    runOn(k, 0);
    const as = space(k, 2 * MiB);
    const ram = memfd(k, 2 * MiB);
    expect(grant(k, as, 0, 4096, ram, PROT_READ)).toBe(0);
    const ro = sys_mmap(k, ADDR, 2 * MiB, PROT_READ, MAP_SHARED, as, 0);
    expect(ro).toBe(ADDR);
    expect(grant(k, as, 4096, 4096, ram, RW)).toBe(-EACCES); // the read-only mapper could write through the shared PTE
    expect(grant(k, as, 4096, 4096, ram, PROT_READ | PROT_EXEC)).toBe(-EACCES);
    expect(grant(k, as, 4096, 4096, ram, PROT_READ)).toBe(0);
    expect(sys_munmap(k, ro, 2 * MiB)).toBe(0);
    expect(grant(k, as, 8192, 4096, ram, RW)).toBe(0);
    expect(sys_mmap(k, 0, 2 * MiB, PROT_READ, MAP_SHARED, as, 0)).toBe(-EACCES);
    expect(sys_mmap(k, 0, 2 * MiB, RW, MAP_SHARED, as, 0)).toBeGreaterThan(0);
  });
});

describe('address-space: grant, access, revoke', () => {
  /** VMM (task 0) makes a named space and a RAM file; device (task 1) maps the space. */
  function vmmAndDevice(opts: { cpus?: number } = {}) {
    const t = testMachine('address-space', '', { tasks: 3, ...opts });
    const k = t.cpus[0];
    const vmm = runOn(k, 0);
    const as = space(k, 4 * MiB, NAMED);
    const ramFd = sys_shm_open(k, '/ram', true, true);
    expect(sys_ftruncate(k, ramFd, 4 * MiB)).toBe(0);
    const ram = sys_mmap(k, 0, 4 * MiB, RW, MAP_SHARED, ramFd, 0); // the VMM's own view of guest RAM
    expect(ram).toBeGreaterThan(0);
    const host = hostOf(k, as);
    const dev = runOn(k, 1);
    const das = sys_open(k, NAMED, false, false);
    const d = sys_mmap(k, 0, 4 * MiB, RW, MAP_SHARED, das, 0);
    expect(d).toBeGreaterThan(0);
    return { ...t, k, vmm, dev, as, ramFd, ram, das, d, host };
  }

  it('nothing granted: SIGSEGV (SEGV_ACCERR: the VMA is there, the grant is not); grant -> the device reads and writes guest RAM; read-only grant', () => {
    const { k, m, as, ramFd, ram, d } = vmmAndDevice();
    expect(mmu_load(k, d)).toBe(ACCESS_SIGSEGV);
    expect(mmuResult.si_code).toBe(SEGV_ACCERR);
    runOn(k, 0);
    expect(mmu_store(k, ram + 5 * 4096, 7)).toBe(ACCESS_OK); // the guest wrote its RAM
    expect(grant(k, as, 0, 8 * 4096, ramFd)).toBe(0);
    expect(grant(k, as, 16 * 4096, 4096, ramFd, PROT_READ, 16 * 4096)).toBe(0);
    runOn(k, 1);
    expect(mmu_load(k, d + 5 * 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(7); // the device sees it through the space
    expect(touchPages(k, d, 8 * 4096, true, 3)).toBe(ACCESS_OK); // DMA writes
    expect(mmu_load(k, d + 8 * 4096)).toBe(ACCESS_SIGSEGV); // just past the grant
    expect(mmu_load(k, d + 16 * 4096)).toBe(ACCESS_OK); // read-only grant: reads
    expect(mmu_store(k, d + 16 * 4096, 1)).toBe(ACCESS_SIGSEGV); // ... not writes
    runOn(k, 0);
    expect(mmu_load(k, ram + 5 * 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(3); // the device's DMA write replaced the guest's 7: one page, two views
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('a revoke makes the next access SIGSEGV although the TLB held the entry (the revoker is the device process itself: no context switch flushes)', () => {
    const { k, m, as, ramFd, das, d } = vmmAndDevice();
    runOn(k, 0);
    expect(grant(k, as, 0, 2 * 4096, ramFd)).toBe(0);
    runOn(k, 1);
    expect(mmu_store(k, d, 1)).toBe(ACCESS_OK);
    expect(mmu_store(k, d + 4096, 1)).toBe(ACCESS_OK);
    expect(tlbHolds(k, d)).toBe(true); // a writable entry in this CPU's TLB
    expect(revoke(k, das, 0, 4096)).toBe(0); // the device's own fd: the same mm stays loaded
    expect(tlbHolds(k, d)).toBe(false); // the revoke flushed this CPU (a mapper's)
    expect(mmu_store(k, d, 1)).toBe(ACCESS_SIGSEGV);
    expect(mmuResult.si_code).toBe(SEGV_ACCERR);
    expect(mmu_load(k, d)).toBe(ACCESS_SIGSEGV);
    expect(mmu_store(k, d + 4096, 1)).toBe(ACCESS_OK); // the rest of the grant stays
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('VMM and device alternate on one CPU: grant -> access -> revoke -> the access SIGSEGVs; re-grant -> access again', () => {
    const { k, m, as, ramFd, d } = vmmAndDevice();
    for (let round = 0; round < 3; round++) {
      const off = round * 3 * 4096;
      runOn(k, 0);
      expect(grant(k, as, off, 2 * 4096, ramFd, RW, off)).toBe(0);
      runOn(k, 1);
      expect(touchPages(k, d + off, 2 * 4096, true)).toBe(ACCESS_OK);
      runOn(k, 0);
      expect(revoke(k, as, off, 2 * 4096)).toBe(0);
      runOn(k, 1);
      expect(mmu_store(k, d + off, 1)).toBe(ACCESS_SIGSEGV);
      expect(mmu_load(k, d + off + 4096)).toBe(ACCESS_SIGSEGV);
    }
    runOn(k, 0);
    expect(grant(k, as, 0, 4096, ramFd)).toBe(0);
    runOn(k, 1);
    expect(mmu_store(k, d, 1)).toBe(ACCESS_OK);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
  });

  it('the revoke shootdown reaches every CPU running a mapper: flush_mask(host) is the mappers\' cpumasks', () => {
    const { m, cpus: [k0, k1, k2] } = testMachine('address-space', '', { cpus: 3, tasks: 3 });
    runOn(k0, 0);
    const as = space(k0, 2 * MiB, NAMED);
    const host = hostOf(k0, as);
    expect(k0.model.flush_mask(k0, host)).toBe(0); // no mapper: no CPU caches the space
    runOn(k1, 1);
    expect(sys_mmap(k1, 0, 2 * MiB, RW, MAP_SHARED, sys_open(k1, NAMED, false, false), 0)).toBeGreaterThan(0);
    runOn(k2, 2); // runs no mapper
    expect(k0.model.flush_mask(k0, host)).toBe(0b010);
    expect(sys_mmap(k0, 0, 2 * MiB, RW, MAP_SHARED, as, 0)).toBeGreaterThan(0);
    expect(k0.model.flush_mask(k0, host)).toBe(0b011);
    // Task 1 migrates to cpu2: the mask follows at flush time.
    switch_mm(k1, -1);
    runOn(k2, 1);
    expect(k0.model.flush_mask(k0, host)).toBe(0b101);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('revoking a whole PMD range orphans the shared table; a later grant there swaps the mapper over; counts stay right', () => {
    const { k, m, as, ramFd, d, dev, host } = vmmAndDevice();
    runOn(k, 0);
    expect(grant(k, as, 0, 4096, ramFd)).toBe(0);
    runOn(k, 1);
    expect(mmu_store(k, d, 1)).toBe(ACCESS_OK);
    expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(1);
    const hostTables = Atomics.load(m.i32, k.mmBase(host) + M_PGTABLES);
    runOn(k, 0);
    expect(revoke(k, as, 0, 4096)).toBe(0); // free_pgtables drops the host's entry: the device still points at the table
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
    runOn(k, 1);
    expect(mmu_store(k, d, 1)).toBe(ACCESS_SIGSEGV);
    runOn(k, 0);
    expect(grant(k, as, 4096, 4096, ramFd, RW, 4096)).toBe(0);
    runOn(k, 1);
    expect(mmu_store(k, d + 4096, 1)).toBe(ACCESS_OK); // the orphan goes, the host's new table comes
    expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(2);
    expect(mmu_store(k, d, 1)).toBe(ACCESS_SIGSEGV);
    expect(Atomics.load(m.i32, k.mmBase(host) + M_PGTABLES)).toBe(hostTables);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
    void dev;
  });

  it('a guest PMD entry is one share of the host PTE table; the mapper\'s munmap gives it back', () => {
    const { k, m, as, ramFd, d, host } = vmmAndDevice();
    runOn(k, 0);
    expect(grant(k, as, 0, 2 * MiB, ramFd)).toBe(0);
    runOn(k, 1);
    expect(touchPages(k, d, 2 * MiB, false)).toBe(ACCESS_OK);
    const tables = poolsOf(m.layout).ptps;
    const shares = () => {
      const out: number[] = [];
      for (let t = 0; t < m.layout.config.ptPages; t++) {
        const b = tables.base + t * PTP_WORDS;
        if (Atomics.load(m.i32, b + 1) === 1 /* PTE level */ && Atomics.load(m.i32, b + 2) === host) out.push(Atomics.load(m.i32, b + P_SHARE));
      }
      return out;
    };
    expect(shares()).toEqual([2]); // the host's entry and the device's
    expect(sys_munmap(k, d, 4 * MiB)).toBe(0);
    expect(shares()).toEqual([1]);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
  });

  it('DAX window: a slot remapped to another file chunk shows that chunk\'s data; stores through the window land in the file', () => {
    const { m, cpus: [k] } = testMachine('address-space');
    const SLOT = 256 * 1024;
    runOn(k, 0); // virtiofsd
    const file = memfd(k, 4 * MiB);
    const fmap = sys_mmap(k, 0, 4 * MiB, RW, MAP_SHARED, file, 0);
    expect(mmu_store(k, fmap + 3 * SLOT, 11)).toBe(ACCESS_OK); // chunk 3
    expect(mmu_store(k, fmap + 5 * SLOT, 22)).toBe(ACCESS_OK); // chunk 5
    const win = space(k, 2 * MiB, '/dev/address_space/dax');
    expect(grant(k, win, SLOT, SLOT, file, RW, 3 * SLOT)).toBe(0);
    runOn(k, 1); // the guest
    const w = sys_mmap(k, 0, 2 * MiB, RW, MAP_SHARED, sys_open(k, '/dev/address_space/dax', false, false), 0);
    expect(mmu_load(k, w + SLOT)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(11);
    expect(mmu_load(k, w)).toBe(ACCESS_SIGSEGV); // slot 0 is empty
    runOn(k, 0);
    expect(revoke(k, win, SLOT, SLOT)).toBe(0);
    expect(grant(k, win, SLOT, SLOT, file, RW, 5 * SLOT)).toBe(0);
    runOn(k, 1);
    expect(mmu_load(k, w + SLOT)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(22);
    expect(mmu_store(k, w + SLOT, 5)).toBe(ACCESS_OK);
    runOn(k, 0);
    expect(mmu_load(k, fmap + 5 * SLOT)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(5); // the window's store replaced chunk 5's 22 in the file
    expect(mmu_load(k, fmap + 3 * SLOT)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(11);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
    expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
  });

  it('an access beyond the end of the file mapped inside: SIGBUS, as for any file mapping', () => {
    const { k, as, d } = vmmAndDevice();
    runOn(k, 0);
    const small = memfd(k, 4096);
    expect(grant(k, as, 0, 2 * 4096, small)).toBe(0);
    runOn(k, 1);
    expect(mmu_load(k, d)).toBe(ACCESS_OK);
    expect(mmu_load(k, d + 4096)).toBe(ACCESS_SIGBUS);
  });

  it('SIGSEGV outside the mapping of the space is SEGV_MAPERR as usual', () => {
    const { k, d } = vmmAndDevice();
    expect(mmu_load(k, d + 4 * MiB)).toBe(ACCESS_SIGSEGV);
    expect(mmuResult.si_code).toBe(SEGV_MAPERR);
  });

  it('backing_file_id: the single file mapped inside, else -1', () => {
    const { k } = vmmAndDevice();
    runOn(k, 0);
    const as = space(k, 2 * MiB);
    const f = fdget(k, as);
    expect(k.model.backing_file_id!(k, f)).toBe(-1); // nothing inside
    const a = memfd(k, MiB);
    const b = memfd(k, MiB);
    expect(grant(k, as, 0, 4096, a)).toBe(0);
    expect(grant(k, as, 8192, 4096, a, RW, 4096)).toBe(0);
    expect(k.model.backing_file_id!(k, f)).toBe(file_id(k, fdget(k, a)));
    expect(grant(k, as, 4 * 4096, 4096, b)).toBe(0);
    expect(k.model.backing_file_id!(k, f)).toBe(-1); // two files
    expect(revoke(k, as, 4 * 4096, 4096)).toBe(0);
    expect(k.model.backing_file_id!(k, f)).toBe(file_id(k, fdget(k, a)));
  });

  it('grants and revokes are counted with their wall time (ST_AS_*); refused ones are not', () => {
    const { k, as, ramFd } = vmmAndDevice();
    runOn(k, 0);
    expect(grant(k, as, 0, 4096, ramFd)).toBe(0);
    expect(grant(k, as, 0, 4096, ramFd)).toBe(-EINVAL);
    expect(grant(k, as, 4096, 4096, ramFd, RW, 4096)).toBe(0);
    expect(revoke(k, as, 0, 2 * 4096)).toBe(0);
    expect(revoke(k, as, 1, 4096)).toBe(-EINVAL);
    expect(k.stats[ST_AS_GRANTS]).toBe(2);
    expect(k.stats[ST_AS_REVOKES]).toBe(1);
    expect(k.stats[ST_AS_GRANT_MS]).toBeGreaterThanOrEqual(0);
    expect(k.stats[ST_AS_REVOKE_MS]).toBeGreaterThanOrEqual(0);
  });
});

describe('address-space: lifetime', () => {
  type Ev = 'vmm-exits' | 'device-exits' | 'name-unlinked';
  const orders: Ev[][] = [
    ['vmm-exits', 'device-exits', 'name-unlinked'],
    ['vmm-exits', 'name-unlinked', 'device-exits'],
    ['device-exits', 'vmm-exits', 'name-unlinked'],
    ['device-exits', 'name-unlinked', 'vmm-exits'],
    ['name-unlinked', 'vmm-exits', 'device-exits'],
    ['name-unlinked', 'device-exits', 'vmm-exits'],
  ];

  for (const order of orders) {
    it(`${order.join(', then ')}: the space lives while an fd, the name or a mapping holds it; then every pool is empty`, () => {
      const { m, cpus: [k] } = testMachine('address-space', '', { tasks: 3 });
      runOn(k, 0);
      const as = space(k, 4 * MiB, NAMED);
      const host = hostOf(k, as);
      const ramFd = sys_shm_open(k, '/ram', true, true);
      expect(sys_ftruncate(k, ramFd, 4 * MiB)).toBe(0);
      expect(sys_shm_unlink(k, '/ram')).toBe(0); // the RAM lives on through the fd and the grant
      expect(grant(k, as, 0, 3 * MiB, ramFd)).toBe(0);
      expect(sys_mmap(k, ADDR, 4 * MiB, RW, MAP_SHARED, as, 0)).toBe(ADDR); // the VMM maps it too
      expect(touchPages(k, ADDR, MiB, true)).toBe(ACCESS_OK);
      runOn(k, 1);
      const d = sys_mmap(k, 0, 4 * MiB, RW, MAP_SHARED, sys_open(k, NAMED, false, false), 0);
      expect(d).toBeGreaterThan(0);
      expect(touchPages(k, d, 3 * MiB, true, 2)).toBe(ACCESS_OK); // the device's 2 replaces the VMM's 1
      const alive = { vmm: true, device: true, name: true };
      for (const ev of order) {
        if (ev === 'vmm-exits') {
          runOn(k, 0);
          exitTask(k);
          alive.vmm = false;
        } else if (ev === 'device-exits') {
          runOn(k, 1);
          exitTask(k);
          alive.device = false;
        } else {
          runOn(k, 2);
          expect(sys_unlink(k, NAMED)).toBe(0);
          alive.name = false;
        }
        const held = alive.vmm || alive.device || alive.name;
        if (held) {
          expect(Atomics.load(m.i32, k.mmBase(host) + M_USERS)).toBeGreaterThan(0);
          expect(checkInvariants(m.i32, m.layout).findings).toEqual([]);
        }
        if (alive.device) {
          runOn(k, 1);
          expect(touchPages(k, d, 3 * MiB, false)).toBe(ACCESS_OK); // the grant outlives the VMM
          expect(mmu_load(k, d + 3 * MiB)).toBe(ACCESS_SIGSEGV);
        }
        if (alive.name && !alive.vmm && !alive.device) {
          // Only the name holds the space: a new process finds it, grant and all.
          runOn(k, 2);
          const fd = sys_open(k, NAMED, false, false);
          const a = sys_mmap(k, 0, 4 * MiB, RW, MAP_SHARED, fd, 0);
          expect(a).toBeGreaterThan(0);
          expect(mmu_load(k, a + 4096)).toBe(ACCESS_OK);
          expect(mmuResult.value).toBe(2); // the device's store, the last to that word (over the VMM's 1)
          expect(sys_munmap(k, a, 4 * MiB)).toBe(0);
          expect(sys_close(k, fd)).toBe(0);
        }
      }
      runOn(k, 2);
      exitTask(k);
      expect(read_violations(m.i32, m.layout)).toEqual([]);
      expect(inUse(m)).toEqual(EMPTY);
    });
  }

  it('an anonymous space goes with its last fd when nothing maps it; with its last mapping otherwise', () => {
    const { m, cpus: [k] } = testMachine('address-space');
    runOn(k, 0);
    const as = space(k, 2 * MiB);
    const ram = memfd(k, 2 * MiB);
    expect(grant(k, as, 0, 2 * MiB, ram)).toBe(0);
    expect(sys_close(k, as)).toBe(0);
    expect(sys_close(k, ram)).toBe(0);
    expect(inUse(m).files).toBe(0);
    expect(inUse(m).mms).toBe(1); // the task's own
    const as2 = space(k, 2 * MiB);
    const ram2 = memfd(k, 2 * MiB);
    expect(grant(k, as2, 0, 2 * MiB, ram2)).toBe(0);
    const a = sys_mmap(k, 0, 2 * MiB, RW, MAP_SHARED, as2, 0);
    expect(sys_close(k, as2)).toBe(0);
    expect(sys_close(k, ram2)).toBe(0);
    expect(touchPages(k, a, 2 * MiB, true)).toBe(ACCESS_OK);
    expect(inUse(m).mms).toBe(2);
    expect(sys_munmap(k, a, 2 * MiB)).toBe(0);
    expect(inUse(m).mms).toBe(1);
    exitTask(k);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
    expect(inUse(m)).toEqual(EMPTY);
  });

  it('the space sits at AS_HOST_BASE in the host, whatever address each mapper chose', () => {
    const { m, cpus: [k] } = testMachine('address-space', '', { tasks: 2 });
    runOn(k, 0);
    const as = space(k, 2 * MiB, NAMED);
    const ram = memfd(k, 2 * MiB);
    expect(grant(k, as, 4096, 4096, ram)).toBe(0);
    const a0 = sys_mmap(k, ADDR, 2 * MiB, RW, MAP_SHARED, as, 0);
    expect(mmu_store(k, a0 + 4096, 5)).toBe(ACCESS_OK);
    runOn(k, 1);
    const a1 = sys_mmap(k, ADDR - 32 * MiB, 2 * MiB, RW, MAP_SHARED, sys_open(k, NAMED, false, false), 0);
    expect(a1).toBe(ADDR - 32 * MiB);
    expect(mmu_load(k, a1 + 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(5);
    expect(AS_HOST_BASE % (2 * MiB)).toBe(0);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });
});
