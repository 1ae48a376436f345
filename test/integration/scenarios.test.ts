/**
 * Whole runs on real worker threads: the scenarios under both models, the planted RFC bug, many
 * processes on few CPUs. Figures are checked against the x86-64 count worked out by hand.
 */
import { describe, expect, it } from 'vitest';
import { parseRunOptions } from '../../src/cli/options.js';
import { runScenario } from '../../src/cli/run.js';
import { parseScale } from '../../src/scenarios/common.js';
import { sgaPrediction } from '../../src/scenarios/sga_1500.js';

const GiB = 1024 ** 3;

// The lockset checks on (mm/guarded.ts): every run here is also a clean run of them.
const run = (scenario: string, o: Record<string, unknown>) => runScenario(scenario, parseRunOptions(scenario, { lockset: true, ...o }));

describe('sga', () => {
  it('64 processes x 64 MiB: none pays 35 tables each; map-shared-pt one host set plus 3 per guest', async () => {
    const none = await run('sga', { model: 'none', procs: '64', size: '64M', ops: '2' });
    expect(none.violations).toEqual([]);
    expect(none.ok).toBe(true);
    // 64 x (32 PTE + PMD + PUD + PGD) pages of 4 KiB.
    expect(none.pgtables_bytes.total).toBe(64 * 35 * 4096);
    const shared = await run('sga', { model: 'map-shared-pt', procs: '64', size: '64M', ops: '2' });
    expect(shared.violations).toEqual([]);
    // Host: 32 PTE + PMD + PUD + PGD; each guest: PGD + PUD + PMD.
    expect(shared.pgtables_bytes.host).toBe(35 * 4096);
    expect(shared.pgtables_bytes.total).toBe((35 + 64 * 3) * 4096);
    expect(shared.pgtables_bytes.total * 8).toBeLessThanOrEqual(none.pgtables_bytes.total);
    expect(shared.faults.shared_pmd_copied).toBe(64 * 32);
  });

  it('300 processes on 2 CPUs: scheduled like tasks, every checker passes', async () => {
    const r = await run('sga', { model: 'map-shared-pt', procs: '300', cpus: '2', size: '8M', ops: '1' });
    expect(r.violations).toEqual([]);
    expect(r.processes.total).toBe(300);
    expect(r.tlb.context_switches).toBeGreaterThan(300);
  });
});

describe('physical-memory budget', () => {
  it('a fault past the budget fails with VM_FAULT_OOM: the process is killed, the report names it, nothing leaks', async () => {
    const r = await run('sga', { model: 'none', procs: '16', size: '32M', mem: '33M', ops: '1' });
    expect(r.violations).toEqual([]);
    expect(r.memory.oom.count).toBeGreaterThan(0);
    expect(r.memory.oom.first_process).not.toBeNull();
    expect(r.processes.oom_killed).toBe(r.memory.oom.count);
    expect(r.memory.peak_bytes).toBeLessThanOrEqual(33 * 1024 * 1024);
  });
});

describe('sga-1500 (the seed\'s headline, scaled)', () => {
  it('the x86-64 arithmetic: 600 MiB of PTEs per 300 GiB client, about 878 GiB for 1500', () => {
    const p = sgaPrediction(300 * GiB, 512 * GiB, 1500);
    expect(p.pte_pages * 4096).toBe(600 * 1024 * 1024);
    expect((1500 * p.pte_pages * 4096) / GiB).toBeCloseTo(878.9, 1);
    // At 1/100: 5.12 GiB - 3 GiB - 1500 PGDs, over 1536 PTE + 3 PMD + 1 PUD pages per client.
    const s = sgaPrediction(3 * GiB, Math.floor((5.12 * GiB) / 4096) * 4096, 1500);
    expect(s.clients_fit).toBe(Math.floor((1342177 - 786432 - 1500) / 1540));
    expect(parseScale('1/100')).toBe(0.01);
    expect(parseScale('0.001')).toBe(0.001);
    expect(parseScale('2')).toBeNaN();
    expect(parseScale('1/0')).toBeNaN();
  });

  it('unshared, memory runs out at the predicted client: VM_FAULT_OOM reported with when; shared, all 1500 fit', async () => {
    const none = await run('sga-1500', { model: 'none', scale: '1/1000' });
    expect(none.violations).toEqual([]);
    const sec = none.scenario_report!.json as {
      predicted: { clients_fit: number };
      oom: { count: number; first: { clients_worth: number } | null; as_predicted: boolean };
      clients_alive_at_end: number;
      clients_at_most_at_end: number;
    };
    expect(none.memory.oom.count).toBeGreaterThan(0);
    expect(sec.oom.first).not.toBeNull();
    expect(Math.floor(sec.oom.first!.clients_worth)).toBe(sec.predicted.clients_fit);
    expect(sec.oom.as_predicted).toBe(true);
    expect(sec.clients_alive_at_end).toBeGreaterThanOrEqual(sec.predicted.clients_fit);
    expect(sec.clients_alive_at_end).toBeLessThanOrEqual(sec.clients_at_most_at_end);
    expect(none.processes.oom_killed).toBe(1500 - sec.clients_alive_at_end);
    expect(none.memory.peak_bytes).toBeLessThanOrEqual(none.memory.budget_bytes);
    for (const model of ['map-shared-pt', 'pt-hint']) {
      const shared = await run('sga-1500', { model, scale: '1/1000' });
      expect([model, shared.violations]).toEqual([model, []]);
      expect(shared.memory.oom.count).toBe(0);
      expect(shared.processes.oom_killed).toBe(0);
      expect((shared.scenario_report!.json as { clients_alive_at_end: number }).clients_alive_at_end).toBe(1500);
    }
  });

  it('--scale is refused where it means nothing, and when it is not a fraction', () => {
    expect(() => parseRunOptions('sga', { scale: '1/100' })).toThrow(/--scale applies only/);
    expect(() => parseRunOptions('sga-1500', { scale: '3' })).toThrow(/--scale must be/);
  });
});

/**
 * How exit-vs-fault's planted bug (a guest's exit frees the shared tables, flushing only its own
 * CPUs) shows on real threads: the next walk through the freed table (use-after-free) or a store
 * through a TLB entry that table's missing shootdown left behind (stale-tlb-write), whichever a
 * survivor's CPU reaches first.
 */
const FREED_SHARED_TABLE = ['use-after-free', 'stale-tlb-write'];

describe('exit-vs-fault', () => {
  it('the RFC v2 exit path is caught as a use-after-free', async () => {
    const r = await run('exit-vs-fault', { model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd' });
    expect(r.ok).toBe(false);
    expect(r.violations.some((v) => FREED_SHARED_TABLE.includes(v.checker))).toBe(true);
  });

  it('the fixed exit path passes every checker, seed after seed', async () => {
    for (const seed of ['1', '2', '3', '4', '5']) {
      const r = await run('exit-vs-fault', { model: 'map-shared-pt', seed });
      expect([seed, r.violations]).toEqual([seed, []]);
    }
  });
});

describe('mprotect-vs-fault', () => {
  // How the stores interleave with the mprotects is up to the threads; what must hold is that
  // every checker passes (the rule itself is unit-tested in test/models).
  it('passes every checker under both models', async () => {
    const none = await run('mprotect-vs-fault', { model: 'none' });
    expect(none.violations).toEqual([]);
    expect(none.processes.signals_taken).toBe(20); // process 0's own SIGSEGVs, one per round
    const shared = await run('mprotect-vs-fault', { model: 'map-shared-pt', cpus: '2', procs: '2' });
    expect(shared.violations).toEqual([]);
    expect(shared.processes.signals_taken).toBeGreaterThanOrEqual(20);
  });
});

describe('viommu (address-space, seed 002)', () => {
  it('grants and revokes pass every checker; each round the device takes its certain SIGSEGVs', async () => {
    for (const seed of ['1', '2']) {
      const r = await run('viommu', { model: 'address-space', seed });
      expect([seed, r.violations]).toEqual([seed, []]);
      expect(r.address_space.grants).toBe(12); // 6 rounds x (read-write + read-only)
      expect(r.address_space.revokes).toBe(12);
      expect(r.address_space.revoke_us_avg).toBeGreaterThan(0);
      // Per round: read-only write, never-granted IOVA, and two accesses after the revoke.
      expect(r.processes.signals_taken).toBeGreaterThanOrEqual(6 * 4);
      expect(r.processes.killed_by_signal).toBe(0);
    }
    const many = await run('viommu', { model: 'address-space', procs: '4', cpus: '2', ops: '3' });
    expect(many.violations).toEqual([]);
  });

  it('another model: refused as bad input; forced through the library, the open of /dev/address_space fails fast (ENOENT)', async () => {
    expect(() => parseRunOptions('viommu', { model: 'none' })).toThrow(/does not apply to --model none/);
    const r = await runScenario('viommu', { model: 'none' });
    expect(r.ok).toBe(false);
    expect(r.violations[0].checker).toBe('expectation');
    expect(r.violations[0].message).toContain('got ENOENT');
    expect(r.address_space).toEqual({ grants: 0, grant_us_avg: 0, revokes: 0, revoke_us_avg: 0 });
  });
});

describe('dax-window (address-space, seed 002)', () => {
  it('virtiofsd remaps the window while a guest uses it: every checker passes (stores land in the file)', async () => {
    for (const seed of ['1', '2']) {
      const r = await run('dax-window', { model: 'address-space', seed });
      expect([seed, r.violations]).toEqual([seed, []]);
      expect(r.notes.some((n) => n.includes('lost-write check was skipped'))).toBe(false);
      expect(r.address_space.grants).toBeGreaterThan(0);
      expect(r.address_space.revokes).toBeGreaterThan(0);
      expect(r.processes.signals_taken).toBeGreaterThan(0); // the empty slots
    }
    const guests = await run('dax-window', { model: 'address-space', procs: '3', ops: '3' });
    expect(guests.violations).toEqual([]);
  });

  it('another model: refused as bad input; forced through the library, the open of /dev/address_space fails fast (ENOENT)', async () => {
    expect(() => parseRunOptions('dax-window', { model: 'container-fd' })).toThrow(/does not apply/);
    const r = await runScenario('dax-window', { model: 'none' });
    expect(r.ok).toBe(false);
    expect(r.violations[0].checker).toBe('expectation');
    expect(r.violations[0].message).toContain('got ENOENT');
  });
});

describe('sga under address-space', () => {
  it('16 processes x 64 MiB: the space\'s host holds one set of tables, each mapper 3 pages', async () => {
    const r = await run('sga', { model: 'address-space', procs: '16', size: '64M', ops: '2' });
    expect(r.violations).toEqual([]);
    expect(r.pgtables_bytes.host).toBe(35 * 4096);
    expect(r.pgtables_bytes.total).toBe((35 + 16 * 3) * 4096);
    expect(r.faults.shared_pmd_copied).toBe(16 * 32);
    expect(r.address_space.grants).toBe(1);
  });
});

describe('qemu-snapshot: uffd-wp background snapshot, per-process markers vs the page cache (seed 003)', () => {
  it('both flavours pass every checker under none and map-shared-pt, and report their costs', async () => {
    for (const model of ['none', 'map-shared-pt']) {
      const pte = await run('qemu-snapshot', { model, ops: '8' });
      expect([model, pte.violations]).toEqual([model, []]);
      expect(pte.uffd.events).toBeGreaterThan(0);
      expect(pte.uffd.wakeups).toBeGreaterThan(0);
      const file = await run('qemu-snapshot-file', { model, ops: '8' });
      expect([model, file.violations]).toEqual([model, []]);
      expect(file.uffd.events).toBe(pte.uffd.events); // same seed, same pages written
      // QEMU unprotects each page once per registered process in the per-process flavour, once in the file's.
      expect(pte.uffd.syscalls).toBeGreaterThan(file.uffd.syscalls);
    }
  });

  it('needs a CPU per process (bad input otherwise)', () => {
    expect(() => parseRunOptions('qemu-snapshot', { model: 'none', procs: '4', cpus: '2' })).toThrow(/procs <= --cpus/);
    expect(() => parseRunOptions('qemu-snapshot-file', { model: 'mshare' })).toThrow(/does not apply/);
  });
});

describe('--mmap-lock qrwlock (mm/mmap_lock.ts)', () => {
  // The protocol changes who waits how long, never what the kernel does: the same page tables, every
  // checker passing, and a planted bug still caught.
  it('runs the workloads with the same results as the rwsem, and the RFC exit bug is still caught', async () => {
    for (const [scenario, o] of [
      ['sga', { model: 'map-shared-pt', procs: '16', size: '16M' }],
      ['mprotect-vs-fault', { model: 'map-shared-pt', procs: '2', cpus: '2', ops: '6', size: '2M' }],
      ['race-mshare-retry', {}],
      ['qemu-snapshot', { procs: '2' }],
    ] as const) {
      const rw = await run(scenario, { ...o, mmapLock: 'rwsem' });
      const q = await run(scenario, { ...o, mmapLock: 'qrwlock' });
      expect([scenario, q.mmap_lock, q.violations]).toEqual([scenario, 'qrwlock', []]);
      // (fault counts differ by the spurious faults of racing CPUs: free mode)
      expect([scenario, q.pgtables_bytes.total]).toEqual([scenario, rw.pgtables_bytes.total]);
    }
    const bug = await run('exit-vs-fault', { model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', mmapLock: 'qrwlock' });
    expect(bug.violations.some((v) => FREED_SHARED_TABLE.includes(v.checker))).toBe(true);
  });

  it('--host-lock: the host mms\' lock takes its own protocol, the tasks\' keep theirs; same tables, checkers pass', async () => {
    for (const model of ['map-shared-pt', 'mshare', 'container-fd']) {
      for (const [mmapLock, hostLock] of [['rwsem', 'qrwlock'], ['qrwlock', 'rwsem']]) {
        const r = await run('sga', { model, procs: '8', size: '16M', mmapLock, hostLock });
        expect([model, r.mmap_lock, r.host_lock, r.violations]).toEqual([model, mmapLock, hostLock, []]);
        expect(r.locks.find((l) => l.class === '&mm->mmap_lock/1')!.acquisitions).toBeGreaterThan(0);
      }
    }
  });
});

describe('--fault-lock per-vma (lock_vma_under_rcu) and --ptl mm (pte_lockptr)', () => {
  it('fault-storm: every storm fault is taken under its VMA\'s lock, none under mmap_lock; under mmap none under a VMA lock', async () => {
    const o = { size: '32M', ops: '1' };
    const vma = await run('fault-storm', { ...o, faultLock: 'per-vma' });
    expect(vma.violations).toEqual([]);
    expect(vma.fault_lock).toBe('per-vma');
    // The scratch region's faults and the storm's: every fault of the run went through the VMA lock.
    expect(vma.vma_lock.success).toBe(vma.faults.total);
    // lock_stat covers the storm alone (fault-storm's phase): one VMA read lock per storm fault.
    expect(vma.lock_stat_over).toMatch(/storm/);
    expect(vma.locks.find((l) => l.class === '&mm->mmap_lock' && l.mode === 'R')).toBeUndefined();
    expect(vma.locks.find((l) => l.class === '&vma->vm_lock->lock' && l.mode === 'R')!.acquisitions).toBe(vma.phase!.faults);
    expect(vma.phase!.faults).toBe(32 * 256 + 16 * 256); // 8192 storm faults, and the leader's 16 scratch MiB
    expect(vma.phase!.per_task_faults_per_s).toHaveLength(2);
    const mm = await run('fault-storm', { ...o, faultLock: 'mmap' });
    expect(mm.violations).toEqual([]);
    expect(mm.vma_lock).toEqual({ success: 0, abort: 0, miss: 0 });
    expect(mm.locks.find((l) => l.class === '&mm->mmap_lock' && l.mode === 'R')!.acquisitions).toBe(mm.phase!.faults);
  });

  it('the workloads and the races\' fixed variants pass under per-VMA locks; shared-PT and uffd-wp VMAs fall back to mmap_lock', async () => {
    for (const [scenario, o] of [
      ['sga', { model: 'none', procs: '8', size: '16M' }],
      ['sga', { model: 'map-shared-pt', procs: '8', size: '16M' }],
      ['sga', { model: 'pt-hint', procs: '8', size: '16M' }],
      ['exit-vs-fault', { model: 'map-shared-pt' }],
      ['mprotect-vs-fault', { model: 'none', procs: '2', cpus: '2', ops: '6', size: '2M' }],
      ['qemu-snapshot', { procs: '2' }],
      ['qemu-snapshot-file', { procs: '2' }],
    ] as const) {
      const r = await run(scenario, { ...o, faultLock: 'per-vma' });
      expect([scenario, o.model, r.violations]).toEqual([scenario, o.model, []]);
      if (o.model === 'map-shared-pt') expect(r.vma_lock.abort).toBeGreaterThan(0);
      if (o.model === 'none' && scenario === 'sga') expect(r.vma_lock.success).toBe(r.faults.total);
    }
    const bug = await run('exit-vs-fault', { model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', faultLock: 'per-vma' });
    expect(bug.violations.some((v) => FREED_SHARED_TABLE.includes(v.checker))).toBe(true);
  });

  it('--ptl mm: one page_table_lock per mm (the host\'s for shared tables), the same tables, every checker passing', async () => {
    for (const model of ['none', 'map-shared-pt', 'mshare']) {
      const split = await run('sga', { model, procs: '8', size: '16M' });
      const mm = await run('sga', { model, procs: '8', size: '16M', ptl: 'mm' });
      expect([model, mm.ptl, mm.violations]).toEqual([model, 'mm', []]);
      expect(mm.pgtables_bytes.total).toBe(split.pgtables_bytes.total);
      expect(mm.locks.some((l) => l.class === 'ptlock_ptr(ptdesc)')).toBe(false);
      expect(mm.locks.find((l) => l.class === '&mm->page_table_lock')!.acquisitions).toBeGreaterThan(0);
    }
    expect(() => parseRunOptions('sga', { model: 'pt-hint', ptl: 'mm' })).toThrow(/--ptl mm does not apply to --model pt-hint/);
    expect(() => parseRunOptions('sga', { faultLock: 'rcu' })).toThrow(/--fault-lock must be mmap or per-vma/);
  });
});

describe('race-reclaim-sharer (reclaim through rmap)', () => {
  it('none and pt-hint pass on real threads; reclaim keeps the data; a shared table shows a third of the accessed bits', async () => {
    const none = await run('race-reclaim-sharer', { model: 'none' });
    const hint = await run('race-reclaim-sharer', { model: 'pt-hint' });
    // The loads after reclaim assert pwrite's values (the expectation checker): no violation.
    expect(none.violations).toEqual([]);
    expect(hint.violations).toEqual([]);
    expect(hint.faults.shared_pmd_copied).toBe(2);
    // 2 rounds x 4 hot pages: three PTEs each under none, one shared PTE under pt-hint.
    expect(none.reclaim).toEqual({ pages: 8, ptes_cleared: 24, accessed_bits: 24 });
    expect(hint.reclaim).toEqual({ pages: 8, ptes_cleared: 8, accessed_bits: 8 });
    const bug = await run('race-reclaim-sharer', { model: 'pt-hint', bug: 'reclaim-flushes-one-sharer' });
    expect(['stale-tlb', 'stale-tlb-write']).toContain(bug.violations[0]?.checker);
  });
});

describe('race-migrate-store (migration through rmap)', () => {
  it('none and pt-hint pass on real threads: every page moves, no store is lost (the planted bug: test/sched/catalog.test.ts)', async () => {
    for (const model of ['none', 'pt-hint']) {
      const r = await run('race-migrate-store', { model });
      // The loads after the move assert process 1's last stores (the expectation checker).
      expect(r.violations).toEqual([]);
      expect(r.migrate.pages + r.migrate.failed).toBe(8); // 2 rounds x 4 hot pages
    }
  });
});
