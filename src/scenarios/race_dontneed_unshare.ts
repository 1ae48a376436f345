/**
 * race-dontneed-unshare — CVE-2021-4002 through MADV_DONTNEED ("hugetlbfs: flush TLBs correctly
 * after huge_pmd_unshare"; issue "Sharing under fire", item 4). The set-up is race-unshare-flush's:
 * processes 0 and 1 share a PTE table of a 4 MiB shmem mapping under pt-hint, process 1 has a
 * second thread, and every task keeps a few pages hot in its TLB. Then process 1 zaps one page
 * of the shared 2 MiB with MADV_DONTNEED (under mmap_lock held for read): huge_pmd_unshare takes
 * the whole table out of its mm, so its CPUs must be flushed for all 2 MiB, not only for the page
 * it zapped. Meanwhile process 0 flips its mapping read-only and back: its shootdown reaches only
 * its own CPUs, since the table is no longer process 1's.
 *
 * Checkers: stale-tlb-write (a store by process 1 through an entry of the table it no longer
 * maps, after process 0 made it read-only), stale-tlb. Planted bug: pt-hint --bug
 * unshare-defers-flush (the unshare leaves the flush to the zap's mmu_gather, which flushes only
 * what it zapped: nothing, once the table is gone from the PMD).
 */
import { PMD, MiB, type Scenario } from './common.js';
import { buildUnshareRace } from './race_unshare_flush.js';

export const raceDontneedUnshare: Scenario = {
  name: 'race-dontneed-unshare',
  summary: 'two processes, one with a second thread (--procs and --size are ignored): MADV_DONTNEED of one page unshares a PTE table while the other sharer mprotects it',
  details: 'checkers: stale-tlb-write, stale-tlb; planted bug: pt-hint --bug unshare-defers-flush (CVE-2021-4002: the flush covers the page zapped, not the table unshared)',
  defaults: { procs: 2, cpus: 3, size: 4 * MiB, ops: 3 },
  models: { only: ['pt-hint'], why: 'the race is in pt-hint\'s huge_pmd_unshare under MADV_DONTNEED (the bug is that model\'s)' },
  pinned: 'the writers\' TLBs must stay their own: each task on its own CPU',
  build: (o) => buildUnshareRace(o, { op: 'madvise', region: 'm', offset: PMD / 2, len: 4096, advice: 'MADV_DONTNEED' }),
};
