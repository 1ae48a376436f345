/**
 * Reclaim through rmap (src/mm/vmscan.ts) on CPUs driven by the test thread: the pages keep
 * their data (loads after reclaim read what was stored, through fresh faults), a PTE table
 * shared under pt-hint is cleared once and shows fewer accessed bits than unshared tables on the
 * same workload, the errnos of the `reclaim` op, and the planted bug's missed flush.
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/check/invariants.js';
import { EINVAL, ENOMEM } from '../../src/mm/errno.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { ACCESS_OK, mmu_load, mmu_store, mmuResult } from '../../src/mm/mmu.js';
import { read_violations, Violation } from '../../src/mm/mmdebug.js';
import { ST_FAULT_SHARED_PMD, ST_FAULTS, ST_RECLAIM_ACCESSED, ST_RECLAIM_PAGES, ST_RECLAIM_PTES, type Kernel } from '../../src/mm/percpu.js';
import { BUG_RECLAIM_FLUSHES_ONE_SHARER } from '../../src/mm/vmscan.js';
import { sys_mlock, sys_mmap, sys_reclaim } from '../../src/proc/syscalls.js';
import { mapSharedFile, runOn, testMachine, threeSharers, touchPages } from '../helpers/kernel.js';

const RW = PROT_READ | PROT_WRITE;
const MiB = 1024 * 1024;
const A = 0x40000000;
const PAGES = 8;

const map = (k: Kernel, t: number, hint: boolean) => mapSharedFile(k, t, '/r', A, hint);

/**
 * Three processes on one CPU map the file; process 0 stores 10 + page into its first PAGES
 * pages, processes 1 and 2 read them; then process 2 reclaims them.
 */
function workload(model: string) {
  const t = testMachine(model, '', { tasks: 3 });
  const k = t.cpus[0];
  const hint = model === 'pt-hint';
  threeSharers(k, '/r', A, PAGES, hint);
  expect(sys_reclaim(k, A, PAGES * 4096)).toBe(0);
  return { ...t, k };
}

describe('reclaim (shrink_folio_list -> try_to_unmap)', () => {
  for (const model of ['none', 'pt-hint']) {
    it(`${model}: every mapping loses its PTEs, the pages stay cached, and loads read the same values again`, () => {
      const { m, k } = workload(model);
      expect(k.stats[ST_RECLAIM_PAGES]).toBe(PAGES);
      expect(checkInvariants(m.i32, m.layout, { model }).findings).toEqual([]);
      for (let p = 0; p < 3; p++) {
        runOn(k, p); // switch_mm flushes this CPU: the loads walk the tables again
        const faults = k.stats[ST_FAULTS];
        for (let i = 0; i < PAGES; i++) {
          expect(mmu_load(k, A + i * 4096)).toBe(ACCESS_OK);
          expect(mmuResult.value).toBe(10 + i);
        }
        // Under pt-hint process 0's faults bring the shared PTEs back for all three.
        expect(k.stats[ST_FAULTS] - faults).toBe(model === 'pt-hint' && p > 0 ? 0 : PAGES);
      }
      expect(read_violations(m.i32, m.layout)).toEqual([]);
      expect(checkInvariants(m.i32, m.layout, { model }).findings).toEqual([]);
    });
  }

  it('the same workload: one shared PTE per page under pt-hint, so fewer accessed bits than none\'s three', () => {
    const none = workload('none').k;
    const hint = workload('pt-hint').k;
    expect(hint.stats[ST_FAULT_SHARED_PMD]).toBe(2);
    expect(none.stats[ST_RECLAIM_PTES]).toBe(3 * PAGES);
    expect(none.stats[ST_RECLAIM_ACCESSED]).toBe(3 * PAGES);
    expect(hint.stats[ST_RECLAIM_PTES]).toBe(PAGES); // the shared table cleared once, not per sharer
    expect(hint.stats[ST_RECLAIM_ACCESSED]).toBe(PAGES);
    expect(hint.stats[ST_RECLAIM_ACCESSED]).toBeLessThan(none.stats[ST_RECLAIM_ACCESSED]);
  });

  it('errnos: madvise(MADV_PAGEOUT)\'s checks, EINVAL for private anonymous memory and VM_LOCKED', () => {
    const k = testMachine('none').cpus[0];
    map(k, 0, false);
    expect(touchPages(k, A, 4 * 4096, true)).toBe(ACCESS_OK);
    expect(sys_reclaim(k, A + 1, 4096)).toBe(-EINVAL); // unaligned start
    expect(sys_reclaim(k, A, 0)).toBe(0);
    expect(sys_reclaim(k, A + 2 * MiB - 4096, 8192)).toBe(-ENOMEM); // runs into a hole, after the mapped page
    expect(sys_reclaim(k, -4096, 8192)).toBe(-EINVAL); // wraps past 2^64
    expect(sys_reclaim(k, -(2 ** 40), 4096)).toBe(-ENOMEM); // the kernel half: nothing mapped
    const anon = sys_mmap(k, 0, 8192, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(touchPages(k, anon, 8192, true)).toBe(ACCESS_OK);
    expect(sys_reclaim(k, anon, 8192)).toBe(-EINVAL);
    expect(sys_mlock(k, A, 4096, false)).toBe(0);
    expect(sys_reclaim(k, A, 4096)).toBe(-EINVAL); // can_madv_lru_vma
    expect(sys_reclaim(k, A + 4096, 3 * 4096)).toBe(0);
    expect(k.stats[ST_RECLAIM_PAGES]).toBe(3);
  });

  it('a private file mapping: the page-cache pages it maps go, its COW copies stay', () => {
    const { m, cpus: [k] } = testMachine('none');
    const fd = map(k, 0, false);
    expect(touchPages(k, A, 2 * 4096, true, 7)).toBe(ACCESS_OK);
    const priv = sys_mmap(k, 0, 2 * 4096, RW, MAP_PRIVATE, fd, 0);
    expect(mmu_load(k, priv)).toBe(ACCESS_OK); // page 0: the page-cache page, read-only
    expect(mmu_store(k, priv + 4096, 9)).toBe(ACCESS_OK); // page 1: a private copy
    expect(sys_reclaim(k, priv, 2 * 4096)).toBe(0);
    expect(k.stats[ST_RECLAIM_PTES]).toBe(3); // page 0 in both mappings, page 1 in the shared one
    expect(mmu_load(k, priv + 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(9);
    expect(mmu_load(k, A + 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(7);
    expect(checkInvariants(m.i32, m.layout, { model: 'none' }).findings).toEqual([]);
  });

  it(`pt-hint --bug ${BUG_RECLAIM_FLUSHES_ONE_SHARER}: the sharer's CPU is not flushed, its next store goes through the stale entry`, () => {
    // Two CPUs on the test thread: the bug sends no IPI, so nothing waits for CPU 1's ack.
    const { m, cpus } = testMachine('pt-hint', BUG_RECLAIM_FLUSHES_ONE_SHARER, { cpus: 2, tasks: 2 });
    const [k0, k1] = cpus;
    map(k0, 0, true);
    expect(touchPages(k0, A, 4 * 4096, true)).toBe(ACCESS_OK);
    map(k1, 1, true);
    expect(touchPages(k1, A, 4 * 4096, true)).toBe(ACCESS_OK);
    expect(k1.stats[ST_FAULT_SHARED_PMD]).toBe(1);
    expect(sys_reclaim(k0, A, 4 * 4096)).toBe(0);
    expect(k0.stats[ST_RECLAIM_PTES]).toBe(4);
    mmu_store(k1, A, 5);
    expect(read_violations(m.i32, m.layout).map((v) => v.kind)).toContain(Violation.StaleTlbWrite);
  });
});
