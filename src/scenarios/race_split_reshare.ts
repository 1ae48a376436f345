/**
 * race-split-reshare — pt-hint's split must unshare under the locks that stop faults from
 * sharing again (the rule CVE-2025-38084 broke: hugetlb unshared in may_split, before
 * __split_vma took the VMA and rmap locks). Processes 0 and 1 map a 2 MiB shmem file with
 * MADV_SHARE_PT; process 1 faults a few pages in (its own PTE table), then unmaps them — a
 * partial munmap, so a split. Racing it, process 0 faults the same pages in (huge_pmd_share
 * through i_mmap finds process 1's table while its VMA still has the hint); once the unmap
 * returned, process 0 stores into its pages again. Process 1's unmap must not take process 0's
 * pages away: a store by process 0 that meets a zapped PTE through its TLB got through an entry
 * that no shootdown reached.
 *
 * Checker: stale-tlb-write. Planted bug: pt-hint --bug split-unshares-early.
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, MiB, PMD, sizeMachine, type Scenario } from './common.js';

const HOT = 2;

export const raceSplitReshare: Scenario = {
  name: 'race-split-reshare',
  summary: 'two processes (--procs and --size are ignored): a partial munmap (a split) races a fault that shares the splitting VMA\'s PTE table',
  details: 'checker: stale-tlb-write (a store through a TLB entry for a PTE another process\'s munmap zapped in a table shared behind its back); ' +
    'planted bug: pt-hint --bug split-unshares-early (CVE-2025-38084\'s shape)',
  defaults: { procs: 2, size: 2 * MiB, ops: 1 },
  models: { only: ['pt-hint'], why: 'the race is in pt-hint\'s unshare on split (the bug is that model\'s)' },
  pinned: 'the writer\'s TLB must stay its own: each process on its own CPU',
  build(o) {
    const size = PMD;
    const programs: Program[] = [];
    for (let p = 0; p < 2; p++) {
      const prog: Op[] = mapSharedSegment(p, '/rsr', size, 'm', o.model);
      if (p === 1) prog.push({ op: 'touch', region: 'm', len: HOT * 4096, write: true });
      prog.push({ op: 'barrier', id: 1 });
      if (p === 0) {
        prog.push({ op: 'shm_unlink', name: '/rsr' });
        prog.push({ op: 'touch', region: 'm', len: HOT * 4096, write: true });
        // Once the unmap returned (barrier 2), the stores go on through the TLB.
        prog.push({ op: 'barrier', id: 2 });
        for (let i = 0; i < Math.max(1, o.ops) * HOT; i++) prog.push({ op: 'store', region: 'm', offset: (i % HOT) * 4096 });
      } else {
        prog.push({ op: 'munmap', region: 'm', offset: 0, len: HOT * 4096 });
        prog.push({ op: 'barrier', id: 2 });
      }
      prog.push({ op: 'barrier', id: 3 });
      prog.push({ op: 'exit', code: 0 });
      programs.push(prog);
    }
    return {
      programs,
      config: sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem }),
    };
  },
};
