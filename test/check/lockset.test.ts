/**
 * Locksets of kernel data (mm/guarded.ts, lockdep's __guarded_by): a write outside the protection
 * its class declares is a 'lockset' violation naming the class, the function and the locks the
 * CPU held; with the checking mode off nothing is checked; and clean runs stay clean.
 */
import { describe, expect, it } from 'vitest';
import { describeViolation } from '../../src/check/index.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { runScenario } from '../../src/cli/run.js';
import { fdget } from '../../src/mm/fdtable.js';
import { fileBase } from '../../src/mm/filemap.js';
import { AssertSite, guard_i_mmap, guard_pte, LOCKSET_VIOLATION, pte_lockptr } from '../../src/mm/guarded.js';
import { lookup_table } from '../../src/mm/memory.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock } from '../../src/mm/mmap_lock.js';
import { read_violations, Violation } from '../../src/mm/mmdebug.js';
import { ACCESS_OK, mmu_store } from '../../src/mm/mmu.js';
import type { Kernel, KernelOptions } from '../../src/mm/percpu.js';
import { entry_off, pmd_index, PMD_LEVEL, PTE_LEVEL, pte_index, table_alloc } from '../../src/mm/pgtable.js';
import { pte_lock } from '../../src/mm/ptlock.js';
import { find_vma, vma_end, vma_set_range, vma_start } from '../../src/mm/vma.js';
import { sys_mmap } from '../../src/proc/syscalls.js';
import { FL_IMMAP_HEAD, M_MMAP_LOCK, M_PGD } from '../../src/shm/layout.js';
import type { Machine } from '../../src/shm/machine.js';
import { spin_unlock } from '../../src/sync/spinlock.js';
import { memfd, runOn, testMachine } from '../helpers/kernel.js';

function setup(kernel: Partial<KernelOptions> = {}) {
  const t = testMachine('none', '', { kernel });
  const k = t.cpus[0];
  const mm = runOn(k, 0);
  const a = sys_mmap(k, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  expect(a).toBeGreaterThan(0);
  expect(mmu_store(k, a, 7)).toBe(ACCESS_OK); // a PTE table under `a`
  return { ...t, k, mm, a };
}

/** The lockset violations of the run, in words. */
function locksets(m: Machine): { checker: string; message: string }[] {
  const run = { machine: m, spec: { programs: [[], []] } } as unknown as Parameters<typeof describeViolation>[0];
  return read_violations(m.i32, m.layout)
    .filter((v) => v.kind === Violation.Invariant && v.args[0] === LOCKSET_VIOLATION)
    .map((v) => describeViolation(run, v.kind, v.cpu, v.args));
}

/** The PTE table that maps `a` in `mm`. */
function pteTable(k: Kernel, mm: number, a: number): number {
  return lookup_table(k, Atomics.load(k.i32, k.mmBase(mm) + M_PGD), a / 4096, PTE_LEVEL, mm);
}

/**
 * A kernel function that forgot pte_offset_map_lock: it sets a PTE the way finish_fault does
 * (its guard, then the store), with or without the table's lock.
 */
function set_pte_without_ptl(k: Kernel, t: number, vpn: number, e: number, locked: boolean): void {
  const ptl = locked ? pte_lock(k, t) : -1;
  guard_pte(k, t, AssertSite.FinishFault);
  Atomics.store(k.i32, entry_off(k, t, pte_index(vpn)), e);
  if (ptl >= 0) spin_unlock(k, ptl);
}

describe('lockset: PTEs are guarded by their table\'s PTE lock (pte_lockptr)', () => {
  it('a PTE set without its lock is caught, naming the class, the function and the locks held', () => {
    const { k, mm, a, m } = setup();
    const t = pteTable(k, mm, a);
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    mmap_read_lock(k, lock);
    set_pte_without_ptl(k, t, a / 4096 + 1, 0, false);
    mmap_read_unlock(k, lock);
    const [v] = locksets(m);
    expect(v.checker).toBe('lockset');
    expect(v.message).toMatch(/^cpu0 wrote a PTE of table #\d+ of process 0 \(mm \d+\) in finish_fault holding \[&mm->mmap_lock\(R\)\]; declared protection \(__guarded_by\): the table's PTE lock \(pte_lockptr/);
  });

  it('the same write under the lock is clean; with --ptl mm the lock is the mm\'s page_table_lock', () => {
    for (const ptlMm of [false, true]) {
      const { k, mm, a, m } = setup({ ptlMm });
      const t = pteTable(k, mm, a);
      set_pte_without_ptl(k, t, a / 4096 + 1, 0, true);
      expect(locksets(m)).toEqual([]);
      expect(pte_lockptr(k, t) === k.mmBase(mm) + 64 /* M_PAGE_TABLE_LOCK */).toBe(ptlMm);
      set_pte_without_ptl(k, t, a / 4096 + 2, 0, false);
      expect(locksets(m)[0].message).toMatch(/wrote a PTE .* in finish_fault holding \[\]/);
    }
  });

  it('with the checking mode off (benchmarks) nothing is checked', () => {
    const { k, mm, a, m } = setup({ lockset: false });
    set_pte_without_ptl(k, pteTable(k, mm, a), a / 4096 + 1, 0, false);
    expect(locksets(m)).toEqual([]);
  });
});

describe('lockset: VMAs, upper-level entries, i_mmap', () => {
  it('a VMA field changed without mmap_lock held for write is caught (vma_set_range under a read lock)', () => {
    const { k, mm, a, m } = setup();
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    mmap_read_lock(k, lock);
    const v = find_vma(k, mm, a);
    vma_set_range(k, v, vma_start(k, v), vma_end(k, v));
    mmap_read_unlock(k, lock);
    expect(locksets(m)[0].message).toMatch(/wrote a vm_area_struct field \(VMA #\d+\) of process 0 .* in vma_set_range holding \[&mm->mmap_lock\(R\)\]; .*the mm's mmap_lock for write/);
  });

  it('--fault-lock per-vma: under mmap_lock for write but without vma_start_write, the lockset and vma_assert_write_locked both catch it', () => {
    const { k, mm, a, m } = setup({ perVmaLock: true });
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    mmap_write_lock(k, lock);
    const v = find_vma(k, mm, a);
    vma_set_range(k, v, vma_start(k, v), vma_end(k, v));
    mmap_write_unlock(k, lock);
    expect(locksets(m)[0].message).toMatch(/in vma_set_range holding \[&mm->mmap_lock\(W\)\]; .*the VMA write-locked: vma_start_write/);
    const asserted = read_violations(m.i32, m.layout).filter((x) => x.kind === Violation.Invariant && x.args[0] === 8);
    expect(asserted.length).toBe(1);
  });

  it('an upper-level entry populated without mmap_lock (table_alloc\'s compareExchange outside its rule) is caught', () => {
    const { k, mm, m } = setup();
    // A PMD entry of the tables under a fresh PUD-range address: walk down with mmap_lock held...
    const far = 0x40000000 * 5;
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    const pgd = Atomics.load(k.i32, k.mmBase(mm) + M_PGD);
    mmap_read_lock(k, lock);
    const pud = table_alloc(k, entry_off(k, pgd, 0), mm, 3);
    const pmd = table_alloc(k, entry_off(k, pud, 5), mm, PMD_LEVEL);
    mmap_read_unlock(k, lock);
    expect(locksets(m)).toEqual([]);
    // ... then the PTE table without it.
    table_alloc(k, entry_off(k, pmd, pmd_index(far / 4096)), mm, PTE_LEVEL);
    const found = locksets(m).map((v) => v.message);
    expect(found[0]).toMatch(/wrote a pgtables_bytes of process 0 .* in alloc_ptp holding \[\]/); // mm_inc_nr_ptes first
    expect(found[1]).toMatch(/wrote an upper-level entry \(PGD\/PUD\/PMD\) of table #\d+ of process 0 .* in __pte_alloc holding \[\]; .*populate \(compareExchange on a none entry\) under the owner mm's mmap_lock or a VMA lock/);
  });

  it('an i_mmap link changed without i_mmap_rwsem for write is caught; under it, clean', () => {
    const { k, m } = setup();
    const file = fdget(k, memfd(k, 8192));
    guard_i_mmap(k, file, AssertSite.IMmapInsert); // a vma_interval_tree_insert that forgot i_mmap_lock_write
    Atomics.store(k.i32, fileBase(k, file) + FL_IMMAP_HEAD, -1);
    const [v] = locksets(m);
    expect(v.message).toMatch(/wrote an i_mmap link of file #\d+ in vma_interval_tree_insert holding \[\]; declared protection \(__guarded_by\): the file's i_mmap_rwsem for write/);
  });
});

describe('lockset: clean runs stay clean', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['race-vma-lock', { model: 'none' }],
    ['exit-vs-fault', { model: 'map-shared-pt', ptl: 'mm' }],
    ['mprotect-vs-fault', { model: 'pt-hint' }],
    ['sga', { model: 'mshare', procs: '4', size: '8M', ops: '2' }],
  ];
  for (const [scenario, o] of cases) {
    it(`${scenario} under ${o.model as string}${o.ptl ? ' --ptl mm' : ''} with --lockset: no violation`, async () => {
      const r = await runScenario(scenario, parseRunOptions(scenario, { ...o, lockset: true, lockStat: false }));
      expect(r.violations).toEqual([]);
      expect(r.ok).toBe(true);
    });
  }
});
