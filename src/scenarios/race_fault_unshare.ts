/**
 * race-fault-unshare — a fault's PTE pointer goes stale when another thread unshares its table
 * between the walk and the PTE lock (the 2022 hugetlb race, fixed by "hugetlb: use new vma_lock
 * for pmd sharing synchronization"; issue "Sharing under fire", item 4). Processes 0 and 1 map a
 * 2 MiB shmem file with the pt-hint; each round process 0 maps it and faults a page in, so the
 * PTE table is its own, and process 1 shares it. Then, racing: process 1's reader thread reads
 * pages it has not touched yet (each fault walks to the shared table, then takes its PTE lock),
 * its other thread zaps one page with MADV_DONTNEED — under mmap_lock held for read, as Linux —
 * which unshares the table from process 1 (huge_pmd_unshare), and process 0 unmaps the file,
 * freeing the table when it is the last to map it.
 *
 * The rule: the fault holds the VMA's share lock for read from its walk to its PTE's install,
 * and huge_pmd_unshare under MADV_DONTNEED holds it for write (hugetlb_vma_lock). Without it the
 * fault fills a table its mm no longer maps — one the sibling may have freed.
 *
 * Checkers: invariant:mapcount (a page counted as mapped by a PTE in a freed table),
 * invariant:rss (pt-hint's machine-wide file RSS), use-after-free, lockset. Planted bug: pt-hint --bug fault-without-vma-lock.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sizeMachine, type Scenario } from './common.js';

const AT = 18 * 1024 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;
/** Pages the reader faults per round, each round a fresh run of them. */
const PER_ROUND = 16;

export const raceFaultUnshare: Scenario = {
  name: 'race-fault-unshare',
  summary: 'two processes share a PTE table (pt-hint); one\'s thread faults through it while its other thread unshares it with MADV_DONTNEED and the owner unmaps it',
  details: 'checkers: invariant:mapcount, invariant:rss, use-after-free, lockset; planted bug: pt-hint --bug fault-without-vma-lock (the 2022 hugetlb race: the fault\'s PTE pointer used after the unshare)',
  defaults: { procs: 2, cpus: 3, size: PMD, ops: 4 },
  models: { only: ['pt-hint'], why: 'the race is in pt-hint\'s huge_pmd_unshare under a fault of the same mm (the bug is that model\'s)' },
  explore: { strategy: 'mix', why: 'the fault must stop between its walk and its PTE lock for a whole unshare (PCT), or the unshare must land in a few decisions (the random walk)' },
  build(o) {
    const size = PMD;
    const map = (): Op[] => [
      { op: 'mmap', addr: AT, len: size, prot: [...RW], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'm' },
      { op: 'close', fd: 'fd' },
      { op: 'madvise', region: 'm', len: size, advice: 'MADV_SHARE_PT' },
    ];
    const owner: Op[] = [
      { op: 'shm_open', name: '/rfu', create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size },
      { op: 'close', fd: 'fd' }, { op: 'barrier', id: 0 },
    ];
    const zapper: Op[] = [{ op: 'barrier', id: 0 }, { op: 'shm_open', name: '/rfu', as: 'fd' }, ...map()];
    const reader: Op[] = [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 1 }, { op: 'let', as: 'm', addr: AT }];
    const rounds = Math.min(o.ops, Math.floor(size / 4096 / PER_ROUND) - 1);
    for (let i = 0; i < rounds; i++) {
      const b = 1 + 3 * i;
      // Outside the race: process 0 maps the file and faults a page in (the table is its own),
      // then process 1 shares that table (its first fault finds process 0's through i_mmap).
      owner.push({ op: 'shm_open', name: '/rfu', as: 'fd' }, ...map(), { op: 'touch', region: 'm', len: 4096, write: true });
      for (const p of [owner, zapper, reader]) p.push({ op: 'barrier', id: b });
      reader.push({ op: 'load', region: 'm', offset: 0, expect: 'any' });
      for (const p of [owner, zapper, reader]) p.push({ op: 'barrier', id: b + 1 });
      // The race: process 1's reader faults pages in through the shared table; its other thread
      // unshares it (MADV_DONTNEED of one page); process 0 unmaps it all, freeing the table once
      // it is the last to map it.
      reader.push({ op: 'touch', region: 'm', offset: (1 + i) * PER_ROUND * 4096, len: PER_ROUND * 4096, write: false, expect: 'any' });
      zapper.push({ op: 'madvise', region: 'm', offset: 0, len: 4096, advice: 'MADV_DONTNEED' });
      owner.push({ op: 'munmap', region: 'm', len: size });
      for (const p of [owner, zapper, reader]) p.push({ op: 'barrier', id: b + 2 });
    }
    owner.push({ op: 'shm_unlink', name: '/rfu' });
    for (const p of [owner, zapper, reader]) p.push({ op: 'exit', code: 0 });
    const programs: Program[] = [owner, zapper, reader];
    const config = sizeMachine({ cpus: o.cpus, procs: 3, sharedBytes: size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2 + 3 * rounds) } };
  },
};
