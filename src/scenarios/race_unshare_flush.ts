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
 * A third task, a thread of process 1 on its own CPU, stores into the same hot pages all along:
 * its TLB holds the shared table's entries while process 1's other CPU unshares, so a flush put
 * after up_write(i_mmap_rwsem) instead of before it (the window CVE-2021-4002's fix closed) is
 * seen even when the unshare flushes at all — process 0's mprotect can run in that window.
 *
 * Checkers: stale-tlb-write; expectation, when process 0's mprotect comes first and is itself the
 * unshare that skipped the flush (its own store after mprotect(PROT_READ) then succeeds through
 * its TLB). Planted bug: pt-hint --bug unshare-defers-flush (the unshare leaves the flush to the
 * caller's mmu_gather, which flushes nothing when it changed nothing).
 */
import type { Op, Program } from '../proc/program.js';
import type { MachineConfig } from '../shm/layout.js';
import { MiB, PMD, sizeMachine, type Scenario, type ScenarioOptions } from './common.js';

const HOT = 4;
const AT = 16 * 1024 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;

/**
 * The programs of race-unshare-flush and race-dontneed-unshare: process 1's main thread runs
 * `unshare` (an op that takes the shared table out of its mm) while the other tasks race.
 */
export function buildUnshareRace(o: ScenarioOptions, unshare: Op): { programs: Program[]; config: MachineConfig } {
  const size = 2 * PMD;
  const programs: Program[] = [];
  for (let p = 0; p < 2; p++) {
    // Both map at AT (MAP_FIXED), so process 1's thread can name the address it stores to.
    const prog: Op[] = p === 0
      ? [{ op: 'shm_open', name: '/ruf', create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size }, { op: 'barrier', id: 0 }]
      : [{ op: 'barrier', id: 0 }, { op: 'shm_open', name: '/ruf', as: 'fd' }];
    prog.push(
      { op: 'mmap', addr: AT, len: size, prot: [...RW], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'm' },
      { op: 'close', fd: 'fd' },
      { op: 'madvise', region: 'm', len: size, advice: 'MADV_SHARE_PT' },
    );
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
      prog.push(unshare);
      for (let i = 0; i < Math.max(1, o.ops) * 8; i++) prog.push({ op: 'store', region: 'm', offset: (i % HOT) * 4096 });
    }
    prog.push({ op: 'barrier', id: 3 });
    prog.push({ op: 'exit', code: 0 });
    programs.push(prog);
  }
  const thread: Op[] = [
    { op: 'barrier', id: 0 }, { op: 'barrier', id: 1 }, { op: 'join_mm', task: 1 }, { op: 'let', as: 'm', addr: AT },
    { op: 'touch', region: 'm', len: HOT * 4096, write: true }, { op: 'barrier', id: 2 },
  ];
  for (let i = 0; i < Math.max(1, o.ops) * 8; i++) thread.push({ op: 'store', region: 'm', offset: (i % HOT) * 4096 });
  thread.push({ op: 'barrier', id: 3 }, { op: 'exit', code: 0 });
  programs.push(thread);
  return {
    programs,
    config: sizeMachine({ cpus: o.cpus, procs: 3, sharedBytes: size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem }),
  };
}

export const raceUnshareFlush: Scenario = {
  name: 'race-unshare-flush',
  summary: 'two processes, one with a second thread (--procs and --size are ignored): a partial munmap unshares a PTE table while the other sharer mprotects it',
  details: 'checkers: stale-tlb-write (a store through a TLB entry of a table the process no longer shares, after the remaining sharer made it read-only), ' +
    'expectation (when process 0\'s own mprotect is the unshare that skipped the flush, its store after mprotect(PROT_READ) succeeds); ' +
    'planted bug: pt-hint --bug unshare-defers-flush (CVE-2021-4002\'s shape)',
  defaults: { procs: 2, cpus: 3, size: 4 * MiB, ops: 3 },
  models: { only: ['pt-hint'], why: 'the race is in pt-hint\'s huge_pmd_unshare (the bug is that model\'s)' },
  pinned: 'the writers\' TLBs must stay their own: each task on its own CPU',
  build: (o) => buildUnshareRace(o, { op: 'munmap', region: 'm', offset: PMD, len: PMD }),
};
