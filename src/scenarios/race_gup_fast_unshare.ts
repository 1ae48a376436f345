/**
 * race-gup-fast-unshare — GUP-fast against huge_pmd_unshare (CVE-2025-38085, "mm/hugetlb: fix
 * huge_pmd_unshare() vs GUP-fast race"; issue "Sharing under fire", item 4). Each round process
 * 0 maps a 2 MiB shmem file with the pt-hint and faults a few pages in (the PTE table is its
 * own); process 1 shares that table. Then, racing: process 1's pinner thread takes the pages
 * with gup_fast (a lockless walk, interrupts off, as O_DIRECT does), its other thread unshares
 * the table from process 1 with MADV_DONTNEED of one page, and process 0 unmaps the file —
 * freeing the table once it is its only user.
 *
 * The rule: after huge_pmd_unshare drops this mm's share, the table may be the other process's
 * ordinary table, freed with only that process's CPUs interrupted; so the unshare waits for every
 * gup_fast walker first (tlb_remove_table_sync_one). The scenario runs with broadcast TLB
 * invalidation (arm64 TLBI, x86 INVLPGB: --tlb-flush broadcast), where the unsharer's own TLB
 * flush interrupts no one; under --tlb-flush ipi that flush happens to wait for the walker too.
 *
 * Checkers: use-after-free (a gup_fast walker in a table freed under it), invariant, leak.
 * Planted bug: pt-hint --bug unshare-skips-gup-sync (the pre-fix huge_pmd_unshare).
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sizeMachine, type Scenario } from './common.js';

const AT = 20 * 1024 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;
const HOT = 4;

export const raceGupFastUnshare: Scenario = {
  name: 'race-gup-fast-unshare',
  summary: 'two processes share a PTE table (pt-hint); one\'s thread pins its pages with gup_fast while its other thread unshares the table and the owner unmaps it',
  details: 'checkers: use-after-free (a lockless gup_fast walker inside a table freed under it), invariant, leak; runs with --tlb-flush broadcast; ' +
    'planted bug: pt-hint --bug unshare-skips-gup-sync (CVE-2025-38085: no tlb_remove_table_sync_one in huge_pmd_unshare)',
  defaults: { procs: 2, cpus: 3, size: PMD, ops: 4 },
  models: { only: ['pt-hint'], why: 'the race is in pt-hint\'s huge_pmd_unshare against a lockless walker (the bug is that model\'s)' },
  tlbFlush: 'broadcast',
  explore: { strategy: 'mix', why: 'the pinner must stand in the table for a whole unshare and unmap (PCT), or the unmap must land between two of its loads (the random walk)' },
  build(o) {
    const size = PMD;
    const map = (): Op[] => [
      { op: 'mmap', addr: AT, len: size, prot: [...RW], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'm' },
      { op: 'close', fd: 'fd' },
      { op: 'madvise', region: 'm', len: size, advice: 'MADV_SHARE_PT' },
    ];
    const owner: Op[] = [
      { op: 'shm_open', name: '/rgu', create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size },
      { op: 'close', fd: 'fd' }, { op: 'barrier', id: 0 },
    ];
    const unsharer: Op[] = [{ op: 'barrier', id: 0 }, { op: 'shm_open', name: '/rgu', as: 'fd' }, ...map()];
    const pinner: Op[] = [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 1 }, { op: 'let', as: 'm', addr: AT }];
    for (let i = 0; i < o.ops; i++) {
      const b = 1 + 3 * i;
      // Outside the race: process 0 maps the file and faults the hot pages in (the table is its
      // own), then process 1 shares that table.
      owner.push({ op: 'shm_open', name: '/rgu', as: 'fd' }, ...map(), { op: 'touch', region: 'm', len: HOT * 4096, write: true, value: i + 1 });
      for (const p of [owner, unsharer, pinner]) p.push({ op: 'barrier', id: b });
      pinner.push({ op: 'load', region: 'm', offset: 0, expect: 'any' });
      for (const p of [owner, unsharer, pinner]) p.push({ op: 'barrier', id: b + 1 });
      // The race.
      for (let j = 0; j < 2 * HOT; j++) pinner.push({ op: 'gup_fast', region: 'm', offset: (j % HOT) * 4096, expect: 'any' });
      unsharer.push({ op: 'madvise', region: 'm', offset: (HOT + 1) * 4096, len: 4096, advice: 'MADV_DONTNEED' });
      owner.push({ op: 'munmap', region: 'm', len: size });
      for (const p of [owner, unsharer, pinner]) p.push({ op: 'barrier', id: b + 2 });
    }
    owner.push({ op: 'shm_unlink', name: '/rgu' });
    for (const p of [owner, unsharer, pinner]) p.push({ op: 'exit', code: 0 });
    const programs: Program[] = [owner, unsharer, pinner];
    const config = sizeMachine({ cpus: o.cpus, procs: 3, sharedBytes: size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2 + 3 * o.ops) } };
  },
};
