/**
 * Lock-context assertions (issue 12's first part): do_munmap, do_mmap, split_vma and
 * mprotect_fixup assert mmap_lock held for write, as Linux's mmap_assert_write_locked does; a path
 * that calls them with the lock held for read, or not at all, is a 'lockdep:assert' violation,
 * whatever the schedule.
 */
import { describe, expect, it } from 'vitest';
import { M_MMAP_LOCK } from '../../src/shm/layout.js';
import { LOCK_ASSERT_VIOLATION, mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock } from '../../src/mm/mmap_lock.js';
import { do_munmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { read_violations, Violation } from '../../src/mm/mmdebug.js';
import { sys_mmap } from '../../src/proc/syscalls.js';
import { memfd, runOn, testMachine } from '../helpers/kernel.js';
import { fdget } from '../../src/mm/fdtable.js';
import { unmap_mapping_range } from '../../src/mm/truncate.js';
import { describeViolation } from '../../src/check/index.js';
import { free_pgtables, handle_mm_fault } from '../../src/mm/memory.js';
import { find_vma, vma_end, vma_set_range, vma_start, vma_flags } from '../../src/mm/vma.js';
import { i_mmap_assert_write_locked, AssertSite } from '../../src/mm/guarded.js';
import { FAULT_FLAG_VMA_LOCK, FAULT_FLAG_WRITE } from '../../src/mm/percpu.js';
import { mmu_store, ACCESS_OK } from '../../src/mm/mmu.js';
import { lock_vma_under_rcu, vma_end_read } from '../../src/mm/mmap_lock.js';
import type { Machine } from '../../src/shm/machine.js';
import type { KernelOptions } from '../../src/mm/percpu.js';

function setup(kernel: Partial<KernelOptions> = {}) {
  const t = testMachine('none', '', { kernel });
  const k = t.cpus[0];
  const mm = runOn(k, 0);
  const a = sys_mmap(k, 0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  expect(a).toBeGreaterThan(0);
  return { ...t, k, mm, a };
}

const asserts = (i32: Int32Array, layout: Parameters<typeof read_violations>[1]) =>
  read_violations(i32, layout).filter((v) => v.kind === Violation.Invariant && v.args[0] === LOCK_ASSERT_VIOLATION);

describe('mmap_assert_write_locked', () => {
  it('do_munmap with mmap_lock held for write: no violation', () => {
    const { k, mm, a, m } = setup();
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    mmap_write_lock(k, lock);
    expect(do_munmap(k, mm, a + 4096, 4096)).toBe(0);
    mmap_write_unlock(k, lock);
    expect(asserts(m.i32, m.layout)).toEqual([]);
  });

  it('do_munmap under mmap_lock held for read (the bug of mprotect or munmap under a read lock) is caught, and so is no lock at all', () => {
    const { k, mm, a, m } = setup();
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    mmap_read_lock(k, lock);
    do_munmap(k, mm, a + 4096, 4096); // splits the VMA, too: split_vma asserts as well
    mmap_read_unlock(k, lock);
    const found = asserts(m.i32, m.layout);
    expect(found.length).toBeGreaterThanOrEqual(1);
    expect(found[0].args.slice(1, 5)).toEqual([0 /* do_munmap */, mm, 1 /* for write */, 1 /* held for read */]);
  });

  it('unmap_mapping_range without the file\'s i_mmap_rwsem (truncation takes it for write) is caught', () => {
    const { k, m } = setup();
    const fd = memfd(k, 8192);
    const file = fdget(k, fd);
    unmap_mapping_range(k, file, 0, 2);
    const found = asserts(m.i32, m.layout);
    expect(found.map((v) => v.args.slice(1, 4))).toEqual([[5 /* unmap_mapping_range */, -1, 2 /* another lock than mmap_lock */]]);
  });
});

/** What the report says of each lock assertion (src/check/index.ts). */
function messages(m: Machine): { checker: string; message: string }[] {
  const run = { machine: m, spec: { programs: [[], []] } } as unknown as Parameters<typeof describeViolation>[0];
  return asserts(m.i32, m.layout).map((v) => describeViolation(run, v.kind, v.cpu, v.args));
}

describe('lock-context assertions where Linux has them', () => {
  it('a clean syscall mix (mmap, touch, mprotect, munmap, mremap, fork-free) asserts nothing', () => {
    const { k, m, a } = setup({ perVmaLock: true });
    expect(mmu_store(k, a, 1)).toBe(ACCESS_OK);
    expect(mmu_store(k, a + 4096, 1)).toBe(ACCESS_OK);
    expect(asserts(m.i32, m.layout)).toEqual([]);
  });

  it('free_pgtables under mmap_lock held for read: caught, naming free_pgtables and the lock (mmap_assert_write_locked)', () => {
    const { k, mm, a, m } = setup();
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    mmap_read_lock(k, lock);
    free_pgtables(k, mm, a, a + 4096);
    mmap_read_unlock(k, lock);
    const [first] = messages(m);
    expect(first.checker).toBe('lockdep:assert');
    expect(first.message).toMatch(/ran free_pgtables on process 0 \(mm \d+\) without holding its mmap_lock for write \(mmap_assert_write_locked\) \(it holds it for read only\)/);
  });

  it('handle_mm_fault with no lock at all (assert_fault_locked): caught; with the VMA lock (FAULT_FLAG_VMA_LOCK) it is not', () => {
    const { k, mm, a, m } = setup({ perVmaLock: true });
    const v = lock_vma_under_rcu(k, mm, a);
    expect(v).toBeGreaterThanOrEqual(0);
    k.vmf.start(mm, v, vma_flags(k, v), vma_start(k, v), a, FAULT_FLAG_WRITE | FAULT_FLAG_VMA_LOCK);
    expect(handle_mm_fault(k, k.vmf)).toBe(0);
    vma_end_read(k, v);
    expect(asserts(m.i32, m.layout)).toEqual([]);
    k.vmf.start(mm, v, vma_flags(k, v), vma_start(k, v), a + 4096, FAULT_FLAG_WRITE); // no mmap_lock, no VMA lock
    handle_mm_fault(k, k.vmf);
    const [first] = messages(m);
    expect(first.message).toMatch(/ran handle_mm_fault on process 0 .* without holding its mmap_lock \(mmap_assert_locked\)/);
  });

  it('--fault-lock per-vma: a VMA changed under mmap_lock but without vma_start_write is caught (vma_assert_write_locked)', () => {
    const { k, mm, a, m } = setup({ perVmaLock: true });
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    mmap_write_lock(k, lock);
    const v = find_vma(k, mm, a);
    vma_set_range(k, v, vma_start(k, v), vma_end(k, v)); // the bug: no vma_start_write first
    mmap_write_unlock(k, lock);
    const found = asserts(m.i32, m.layout);
    expect(found.map((x) => x.args.slice(1, 4))).toEqual([[8 /* vma_set_range */, mm, 6 /* VMA write-locked */]]);
    expect(messages(m)[0].message).toMatch(/ran vma_set_range on process 0 .* without holding the VMA write-locked \(vma_assert_write_locked\)/);
  });

  it('an i_mmap change without i_mmap_rwsem for write is caught (i_mmap_assert_write_locked), and names who holds it', () => {
    const { k, m } = setup();
    const file = fdget(k, memfd(k, 8192));
    i_mmap_assert_write_locked(k, file, AssertSite.IMmapInsert);
    const [first] = messages(m);
    expect(first.message).toMatch(/ran vma_interval_tree_insert without holding the file's i_mmap_rwsem for write \(i_mmap_assert_write_locked\)/);
  });

  it('a lock held by another CPU is named: munmap while cpu1 holds the mmap_lock for write', () => {
    const t = testMachine('none', '', { cpus: 2 });
    const [k0, k1] = t.cpus;
    const mm = runOn(k0, 0);
    const a = sys_mmap(k0, 0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const lock = k0.mmBase(mm) + M_MMAP_LOCK;
    mmap_write_lock(k1, lock); // cpu1 holds it; cpu0 runs do_munmap without it
    do_munmap(k0, mm, a, 4096);
    mmap_write_unlock(k1, lock);
    expect(messages(t.m)[0].message).toMatch(/^cpu0 ran do_munmap .* without holding its mmap_lock for write \(mmap_assert_write_locked\); cpu1 holds it for write$/);
  });
});
