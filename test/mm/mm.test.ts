/**
 * The mm through its syscalls and the MMU, on one CPU of a machine driven from the test thread:
 * errnos, VMA splits and merges, faults, SIGSEGV/SIGBUS, accounting, teardown.
 */
import { switch_mm } from '../../src/mm/tlb.js';
import { describe, expect, it } from 'vitest';
import { G_MEM_USED, M_FLAGS, M_MMAP_LOCK, M_NR_VMAS, M_PGTABLES, M_RSS_ANON, M_RSS_FILE, MMF_HOST, MMF_QRWLOCK, PL_INUSE } from '../../src/shm/layout.js';
import { host_mmap_write_lock, lock_vma_under_rcu, mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock, vma_end_read, vma_start_write } from '../../src/mm/mmap_lock.js';
import { ST_VMA_LOCK_ABORT, ST_VMA_LOCK_SUCCESS } from '../../src/mm/percpu.js';
import { vma_start } from '../../src/mm/vma.js';
import { poolsOf } from '../../src/shm/machine.js';
import { mm_alloc, mmput } from '../../src/mm/fork.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { EBADF, EINVAL, ENOMEM } from '../../src/mm/errno.js';
import { ACCESS_OK, ACCESS_SIGBUS, ACCESS_SIGSEGV, mmu_load, mmu_store, mmuResult, SEGV_ACCERR, SEGV_MAPERR } from '../../src/mm/mmu.js';
import { read_violations } from '../../src/mm/mmdebug.js';
import { sys_close, sys_mmap, sys_mprotect, sys_munmap } from '../../src/proc/syscalls.js';
import { memfd, runOn, testMachine } from '../helpers/kernel.js';

const RW = PROT_READ | PROT_WRITE;
const MiB = 1024 * 1024;

function setup() {
  const t = testMachine();
  const k = t.cpus[0];
  const mm = runOn(k, 0);
  return { ...t, k, mm };
}


describe('mmap', () => {
  it('maps a memfd MAP_SHARED: stores land in the page, a load sees the last one', () => {
    const { k } = setup();
    const fd = memfd(k, 4 * MiB);
    const a = sys_mmap(k, 0, 4 * MiB, RW, MAP_SHARED, fd, 0);
    expect(a).toBeGreaterThan(0);
    expect(a % 4096).toBe(0);
    expect(mmu_store(k, a + 8, 5)).toBe(ACCESS_OK);
    expect(mmu_store(k, a + 8, 2)).toBe(ACCESS_OK);
    expect(mmu_load(k, a + 8)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(2);
    expect(mmu_load(k, a + 12)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(0); // the next word: never stored
  });

  it('returns the errnos Linux returns for bad arguments', () => {
    const { k } = setup();
    const fd = memfd(k, MiB);
    expect(sys_mmap(k, 0, 0, RW, MAP_SHARED, fd, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0x10001000 + 1, 4096, RW, MAP_SHARED | MAP_FIXED, fd, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 4096, RW, 0x0f, fd, 0)).toBe(-EINVAL); // no such mapping type (MAP_SHARED | MAP_PRIVATE is MAP_SHARED_VALIDATE)
    expect(sys_mmap(k, 0, 4096, RW, 0, fd, 0)).toBe(-EINVAL);
    expect(sys_mmap(k, 0, 4096, RW, MAP_SHARED, 42, 0)).toBe(-EBADF);
    expect(sys_mmap(k, 0, 4096, RW, MAP_SHARED, fd, 100)).toBe(-EINVAL);
    expect(sys_munmap(k, 0x10000001, 4096)).toBe(-EINVAL);
    expect(sys_munmap(k, 0x10000000, 0)).toBe(-EINVAL);
    expect(sys_mprotect(k, 0x10000001, 4096, PROT_READ)).toBe(-EINVAL);
    expect(sys_mprotect(k, 0x10000000, 4096, PROT_READ)).toBe(-ENOMEM); // nothing mapped there
  });

  it('honours a free hint and MAP_FIXED, and picks another place for a taken hint', () => {
    const { k } = setup();
    const hint = 0x200000000;
    const a = sys_mmap(k, hint, 8192, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(a).toBe(hint);
    const b = sys_mmap(k, hint, 8192, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(b).not.toBe(hint);
    expect(mmu_store(k, hint, 3)).toBe(ACCESS_OK);
    const c = sys_mmap(k, hint, 4096, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    expect(c).toBe(hint);
    expect(mmu_load(k, hint)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(0); // a fresh page replaced the old one
  });
});

describe('munmap and mprotect', () => {
  it('a partial munmap splits the VMA; the hole faults with SEGV_MAPERR', () => {
    const { m, k, mm } = setup();
    const fd = memfd(k, MiB);
    const a = sys_mmap(k, 0, MiB, RW, MAP_SHARED, fd, 0);
    for (let off = 0; off < MiB; off += 4096) expect(mmu_store(k, a + off, 1)).toBe(ACCESS_OK);
    expect(sys_munmap(k, a + 64 * 1024, 64 * 1024)).toBe(0);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_NR_VMAS)).toBe(2);
    expect(mmu_load(k, a + 64 * 1024)).toBe(ACCESS_SIGSEGV);
    expect(mmuResult.si_code).toBe(SEGV_MAPERR);
    expect(mmu_load(k, a + 128 * 1024)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(1);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_RSS_FILE)).toBe(256 - 16);
  });

  it('mprotect read-only makes stores fault with SEGV_ACCERR, and the VMAs merge back', () => {
    const { m, k, mm } = setup();
    const a = sys_mmap(k, 0, 16 * 4096, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (let i = 0; i < 16; i++) expect(mmu_store(k, a + i * 4096, 1)).toBe(ACCESS_OK);
    expect(sys_mprotect(k, a + 4096, 4096, PROT_READ)).toBe(0);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_NR_VMAS)).toBe(3);
    expect(mmu_store(k, a + 4096, 1)).toBe(ACCESS_SIGSEGV);
    expect(mmuResult.si_code).toBe(SEGV_ACCERR);
    expect(mmu_load(k, a + 4096)).toBe(ACCESS_OK);
    expect(mmu_store(k, a + 2 * 4096, 1)).toBe(ACCESS_OK);
    expect(sys_mprotect(k, a + 4096, 4096, RW)).toBe(0);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_NR_VMAS)).toBe(1);
    expect(mmu_store(k, a + 4096, 1)).toBe(ACCESS_OK);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_RSS_ANON)).toBe(16);
  });

  it('an access beyond the end of the file raises SIGBUS', () => {
    const { k } = setup();
    const fd = memfd(k, 4096);
    const a = sys_mmap(k, 0, 8192, RW, MAP_SHARED, fd, 0);
    expect(mmu_load(k, a)).toBe(ACCESS_OK);
    expect(mmu_load(k, a + 4096)).toBe(ACCESS_SIGBUS);
  });

  it('a private file mapping copies on write; the shared mapping keeps the page-cache value', () => {
    const { k } = setup();
    const fd = memfd(k, 4096);
    const s = sys_mmap(k, 0, 4096, RW, MAP_SHARED, fd, 0);
    const p = sys_mmap(k, 0, 4096, RW, MAP_PRIVATE, fd, 0);
    expect(mmu_store(k, s, 10)).toBe(ACCESS_OK);
    expect(mmu_load(k, p)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(10);
    expect(mmu_store(k, p, 1)).toBe(ACCESS_OK);
    expect(mmu_load(k, p)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(1); // its own (empty) copy, plus this store
    expect(mmu_load(k, s)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(10);
  });
});

describe('accounting and teardown', () => {
  it('counts page tables as x86-64 does and frees everything at exit', () => {
    const { m, k, mm } = setup();
    const fd = memfd(k, 4 * MiB);
    const a = sys_mmap(k, 0x40000000, 4 * MiB, RW, MAP_SHARED | MAP_FIXED, fd, 0);
    expect(a).toBe(0x40000000);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_PGTABLES)).toBe(1); // the PGD
    for (let off = 0; off < 4 * MiB; off += 4096) expect(mmu_load(k, a + off)).toBe(ACCESS_OK);
    // PGD + PUD + PMD + two PTE tables, 4 KiB each.
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_PGTABLES)).toBe(5);
    expect(sys_close(k, fd)).toBe(0);
    switch_mm(k, -1);
    mmput(k, mm);
    for (const [name, p] of Object.entries(poolsOf(m.layout))) expect([name, Atomics.load(m.i32, p.hdr + PL_INUSE)]).toEqual([name, 0]);
    expect(Atomics.load(m.i32, G_MEM_USED)).toBe(0);
    expect(read_violations(m.i32, m.layout)).toEqual([]);
  });

  it('munmap frees the tables nothing maps any more', () => {
    const { m, k, mm } = setup();
    const a = sys_mmap(k, 0x80000000, 4 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    for (let off = 0; off < 4 * MiB; off += 4096) expect(mmu_store(k, a + off, 1)).toBe(ACCESS_OK);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_PGTABLES)).toBe(5);
    expect(sys_munmap(k, a + 2 * MiB, 2 * MiB)).toBe(0);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_PGTABLES)).toBe(4);
    expect(sys_munmap(k, a, 2 * MiB)).toBe(0);
    expect(Atomics.load(m.i32, k.mmBase(mm) + M_PGTABLES)).toBe(1);
  });

  it('fails a fault with VM_FAULT_OOM when the physical-memory budget is spent', async () => {
    const { testMachine: tm } = await import('../helpers/kernel.js');
    const t = tm('none', '', { mem: 64 * 4096 });
    const k = t.cpus[0];
    runOn(k, 0);
    const a = sys_mmap(k, 0, MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    let r = ACCESS_OK;
    let n = 0;
    for (; n < 256 && r === ACCESS_OK; n++) r = mmu_store(k, a + n * 4096, 1);
    expect(r).toBe(9); // ACCESS_OOM: the task is killed
    expect(n).toBeLessThan(64);
  });
});

describe('per-VMA locks (mm/mmap_lock.ts) and the lock protocols an mm is made with', () => {
  it('lock_vma_under_rcu: a VMA is write-locked from its creation or vma_start_write until mmap_write_unlock, and gone once unmapped', () => {
    const t = testMachine('none', '', { kernel: { perVmaLock: true } });
    const k = t.cpus[0];
    const mm = runOn(k, 0);
    const a = sys_mmap(k, 0, 4 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(a).toBeGreaterThan(0);
    // sys_mmap's mmap_write_unlock ended the new VMA's write lock: the VMA alone, read-locked.
    const v = lock_vma_under_rcu(k, mm, a + 4096);
    expect(v).toBeGreaterThanOrEqual(0);
    expect(vma_start(k, v)).toBe(a);
    vma_end_read(k, v);
    expect(lock_vma_under_rcu(k, mm, a + 4 * MiB)).toBe(-1); // no VMA there
    const lock = k.mmOff + M_MMAP_LOCK;
    mmap_write_lock(k, lock);
    vma_start_write(k, v);
    const aborts = k.stats[ST_VMA_LOCK_ABORT];
    expect(lock_vma_under_rcu(k, mm, a)).toBe(-1); // write-locked: fall back to mmap_lock
    expect(k.stats[ST_VMA_LOCK_ABORT]).toBe(aborts + 1);
    mmap_write_unlock(k, lock);
    const w = lock_vma_under_rcu(k, mm, a);
    expect(w).toBe(v);
    vma_end_read(k, w);
    // A fault goes through the VMA lock, not mmap_lock.
    const before = k.stats[ST_VMA_LOCK_SUCCESS];
    expect(mmu_store(k, a, 1)).toBe(ACCESS_OK);
    expect(k.stats[ST_VMA_LOCK_SUCCESS]).toBe(before + 1);
    expect(sys_munmap(k, a, 4 * MiB)).toBe(0);
    expect(lock_vma_under_rcu(k, mm, a)).toBe(-1);
    expect(k.heldDepth).toBe(0);
  });

  it('a host mm takes --host-lock\'s protocol, a task\'s mm --mmap-lock\'s', () => {
    const t = testMachine('none', '', { kernel: { mmapQrwlock: false, hostQrwlock: true } });
    const k = t.cpus[0];
    const task = runOn(k, 0);
    const host = mm_alloc(k, -1, MMF_HOST);
    expect(Atomics.load(k.i32, k.mmBase(task) + M_FLAGS) & MMF_QRWLOCK).toBe(0);
    expect(Atomics.load(k.i32, k.mmBase(host) + M_FLAGS) & MMF_QRWLOCK).toBe(MMF_QRWLOCK);
    // Each lock works under its own protocol.
    host_mmap_write_lock(k, k.mmBase(host) + M_MMAP_LOCK);
    mmap_read_lock(k, k.mmBase(task) + M_MMAP_LOCK);
    mmap_read_unlock(k, k.mmBase(task) + M_MMAP_LOCK);
    mmap_write_unlock(k, k.mmBase(host) + M_MMAP_LOCK);
    expect(k.heldDepth).toBe(0);
  });
});
