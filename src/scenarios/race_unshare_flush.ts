/**
 * race-unshare-flush — pt-hint's huge_pmd_unshare must flush before i_mmap_rwsem drops (the rule
 * CVE-2021-4002 broke). Processes 0 and 1 map a 4 MiB shmem file with MADV_SHARE_PT; process 0
 * faults a few pages of the first 2 MiB in, process 1 then faults the same pages and shares
 * process 0's PTE table, keeping those pages hot in its TLB. Then, racing: process 1 unmaps the
 * second 2 MiB (a partial munmap: it unshares the whole VMA first, and zaps a range with no PTEs)
 * and keeps storing into its hot pages; process 0 flips its mapping read-only and back `ops`
 * times. A store by process 1 after process 0's mprotect(PROT_READ) changed the table it used to
 * share goes through a stale TLB entry, unless the unshare flushed.
 *
 * Checkers: stale-tlb-write; expectation, when process 0's mprotect comes first and is itself the
 * unshare that skipped the flush (its own store after mprotect(PROT_READ) then succeeds through
 * its TLB). Planted bug: pt-hint --bug unshare-defers-flush (the unshare leaves the flush to the
 * caller's mmu_gather, which flushes nothing when it changed nothing).
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, MiB, PMD, sizeMachine, type Scenario } from './common.js';

const HOT = 4;

export const raceUnshareFlush: Scenario = {
  name: 'race-unshare-flush',
  summary: 'two processes (--procs and --size are ignored): a partial munmap unshares a PTE table while the other sharer mprotects it',
  details: 'checkers: stale-tlb-write (a store through a TLB entry of a table the process no longer shares, after the remaining sharer made it read-only), ' +
    'expectation (when process 0\'s own mprotect is the unshare that skipped the flush, its store after mprotect(PROT_READ) succeeds); ' +
    'planted bug: pt-hint --bug unshare-defers-flush (CVE-2021-4002\'s shape)',
  defaults: { procs: 2, size: 4 * MiB, ops: 3 },
  models: { only: ['pt-hint'], why: 'the race is in pt-hint\'s huge_pmd_unshare (the bug is that model\'s)' },
  pinned: 'the writer\'s TLB must stay its own: each process on its own CPU',
  build(o) {
    const size = 2 * PMD;
    const programs: Program[] = [];
    for (let p = 0; p < 2; p++) {
      const prog: Op[] = mapSharedSegment(p, '/ruf', size, 'm', o.model);
      // Process 0 faults first: the table is its own; process 1 shares it.
      if (p === 1) prog.push({ op: 'barrier', id: 1 });
      prog.push({ op: 'touch', region: 'm', len: HOT * 4096, write: true });
      if (p === 0) prog.push({ op: 'barrier', id: 1 });
      prog.push({ op: 'barrier', id: 2 });
      if (p === 0) {
        prog.push({ op: 'shm_unlink', name: '/ruf' });
        for (let i = 0; i < Math.max(1, o.ops); i++) {
          prog.push({ op: 'mprotect', region: 'm', len: size, prot: ['PROT_READ'] });
          prog.push({ op: 'store', region: 'm', offset: 0, expect: 'SIGSEGV' });
          prog.push({ op: 'mprotect', region: 'm', len: size, prot: ['PROT_READ', 'PROT_WRITE'] });
        }
      } else {
        prog.push({ op: 'munmap', region: 'm', offset: PMD, len: PMD });
        for (let i = 0; i < Math.max(1, o.ops) * 8; i++) prog.push({ op: 'store', region: 'm', offset: (i % HOT) * 4096 });
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
