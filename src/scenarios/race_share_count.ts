/**
 * race-share-count — sharing decided by a refcount that a speculative reference inflates
 * (CVE-2024-57883, fixed by "mm: hugetlb: independent PMD page table shared count"; issue
 * "Sharing under fire", item 4). Each round process 0 maps a 2 MiB shmem file with the pt-hint
 * and faults pages in: its PTE table is its own, shared with no one. Then, racing: process 0
 * unmaps the file (huge_pmd_unshare looks at the table first) while process 1 runs
 * kcompactd's pfn scanner over the page-table pages (the `compact` op: a speculative reference
 * taken and dropped on each).
 *
 * The rule: sharing is the table's share count (pt_share_count), never its page refcount. Read
 * from the refcount, the scanner's reference makes the unshared table look shared: its entry is
 * cleared and its count dropped as if another mm held it, and the pages it maps stay counted.
 *
 * Checkers: invariant:mapcount, invariant:rss, leak, use-after-free. Planted bug: pt-hint --bug
 * share-count-from-refcount.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sizeMachine, type Scenario } from './common.js';

const AT = 22 * 1024 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;

export const raceShareCount: Scenario = {
  name: 'race-share-count',
  summary: 'one process unmaps a hinted mapping whose PTE table it alone uses while another runs compaction\'s pfn scanner over the page-table pages',
  details: 'checkers: invariant:mapcount, invariant:rss, leak, use-after-free; planted bug: pt-hint --bug share-count-from-refcount ' +
    '(CVE-2024-57883: huge_pmd_unshare reads sharing from the page refcount a speculative reference inflates)',
  defaults: { procs: 2, size: PMD, ops: 4 },
  models: { only: ['pt-hint'], why: 'the race is in pt-hint\'s huge_pmd_unshare (the bug is that model\'s)' },
  explore: { strategy: 'mix', why: 'the scanner must hold its reference across a whole unshare check (PCT), or land in it (the random walk)' },
  build(o) {
    const size = PMD;
    const unmapper: Op[] = [
      { op: 'shm_open', name: '/rsc', create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size }, { op: 'close', fd: 'fd' },
      { op: 'barrier', id: 0 },
    ];
    const scanner: Op[] = [{ op: 'barrier', id: 0 }];
    for (let i = 0; i < o.ops; i++) {
      unmapper.push(
        { op: 'shm_open', name: '/rsc', as: 'fd' },
        { op: 'mmap', addr: AT, len: size, prot: [...RW], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'm' },
        { op: 'close', fd: 'fd' },
        { op: 'madvise', region: 'm', len: size, advice: 'MADV_SHARE_PT' },
        { op: 'touch', region: 'm', len: size, stride: 256 * 1024, write: true, value: i + 1 },
      );
      for (const p of [unmapper, scanner]) p.push({ op: 'barrier', id: 1 + 2 * i });
      unmapper.push({ op: 'munmap', region: 'm', len: size });
      scanner.push({ op: 'compact' }, { op: 'compact' });
      for (const p of [unmapper, scanner]) p.push({ op: 'barrier', id: 2 + 2 * i });
    }
    unmapper.push({ op: 'shm_unlink', name: '/rsc' });
    for (const p of [unmapper, scanner]) p.push({ op: 'exit', code: 0 });
    const programs: Program[] = [unmapper, scanner];
    const config = sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2 + 2 * o.ops) } };
  },
};
