/**
 * fork-storm — the cost of correctness, counted (issue "Sharing under fire", item 5). As in the
 * 2025 regression report (fork ~4x slower with 1.2 TB of hugetlb shared on 196 CPUs once
 * huge_pmd_unshare broadcast an IPI per unshared table, CVE-2025-38085's fix), `--procs`
 * processes map one large shmem segment (`--size`) the way the model shares it, plus private
 * anonymous memory (a quarter of `--size`), touch both, and fork `--ops` children each; every
 * child exits at once and its parent waits for it. Under pt-hint each child shares its parent's
 * PTE tables at fork (copy_hugetlb_page_range) and unshares them all at exit, each unshare
 * waiting for GUP-fast walkers: `--unshare-flush per-unshare` broadcasts one IPI per table (the
 * 2025 fix), `batched` one per mmu_gather, only when a table stopped being shared (David
 * Hildenbrand's Dec 2025 fix). At the end each parent forks one more child that stays to a last
 * barrier, where the page tables are counted (pgtables_bytes: after fork).
 *
 * The JSON has `forks`, `ipis_per_fork` (every IPI sent over the run, shootdowns and table syncs,
 * per fork), `fork_latency_us` {p50, p99, mean} and `tlb.table_syncs`. IPI counts do not depend on
 * the cores: threads may outnumber them (`--cpus`).
 */
import type { Op, Program } from '../proc/program.js';
import { countTasks } from '../proc/program.js';
import { cowPteOptIn, mapSharedSegment, MiB, PMD, sizeMachine, type Scenario } from './common.js';

const RW = ['PROT_READ', 'PROT_WRITE'] as const;
const STRIDE = 64 * 1024;

export const forkStorm: Scenario = {
  name: 'fork-storm',
  summary: 'processes with a large shared mapping (and private memory) fork --ops children each, which exit at once: IPIs, table syncs and fork latency per fork',
  details: 'figures: forks, ipis_per_fork, fork_latency_us (p50, p99), tlb.table_syncs, pgtables_bytes after fork; ' +
    'compare --unshare-flush per-unshare and batched under pt-hint (CVE-2025-38085\'s IPI per unshared table vs the mmu_gather batch); all checkers',
  defaults: { procs: 1, size: 64 * MiB, ops: 16 },
  build(o) {
    if (o.size % PMD !== 0) throw new Error('fork-storm: --size must be a multiple of 2 MiB');
    const priv = Math.max(PMD, Math.floor(o.size / 4 / PMD) * PMD);
    const programs: Program[] = [];
    for (let p = 0; p < o.procs; p++) {
      const prog: Op[] = [...cowPteOptIn(o.model), ...mapSharedSegment(p, '/fork-storm', o.size, 'm', o.model)];
      prog.push(
        { op: 'mmap', len: priv, prot: [...RW], flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS'], as: 'a' },
        { op: 'touch', region: 'a', len: priv, stride: STRIDE, write: true, value: p + 1 },
        { op: 'touch', region: 'm', len: o.size, stride: STRIDE, write: true, value: p + 1, expect: 'any' },
        { op: 'barrier', id: 1 },
      );
      for (let i = 0; i < o.ops; i++) prog.push({ op: 'fork', as: 'c', child: [{ op: 'exit', code: 0 }] }, { op: 'wait', pid: 'c', status: 0 });
      // One child stays to the last barrier: the page tables after fork are counted there.
      prog.push({ op: 'fork', as: 'last', child: [{ op: 'barrier', id: 2 }, { op: 'exit', code: 0 }] }, { op: 'barrier', id: 2 }, { op: 'wait', pid: 'last', status: 0 });
      if (p === 0) prog.push({ op: 'shm_unlink', name: '/fork-storm' });
      prog.push({ op: 'exit', code: 0 });
      programs.push(prog);
    }
    // Parents and one child each are alive at once (the storm's children exit before the next fork).
    const config = sizeMachine({ cpus: o.cpus, procs: 2 * o.procs, sharedBytes: o.size, privateBytes: priv, files: 1, vmasPerProc: 4, mem: o.mem });
    return { programs, config: { ...config, tasks: countTasks(programs) } };
  },
};
