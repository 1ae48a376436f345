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

function setup() {
  const t = testMachine();
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
