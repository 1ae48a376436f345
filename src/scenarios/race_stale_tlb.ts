/**
 * race-stale-tlb — seed 001's "mprotect by one process affects all", made small so that explore
 * finds a forgotten sharer at once. Two processes share a 2 MiB file mapping's PTE table
 * (MAP_SHARED_PT). Process 1 is the writer: it stores into the same few pages again and again, so
 * their entries stay hot in its TLB (mprotect-vs-fault's writers sweep more pages than a TLB holds
 * and so refill from the tables, which hides the bug). Process 0 flips the mapping read-only and
 * back `ops` times. Once its mprotect(PROT_READ) returned, no store may get through: a store that
 * does went through a TLB entry the shootdown left behind (stale-tlb-write).
 *
 * Planted bug: map-shared-pt --bug shootdown-forgets-sharers (the change to the host's entries
 * flushes only the CPU that made it).
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, MiB, sizeMachine, type Scenario } from './common.js';

const HOT = 4; // pages the writer keeps in its TLB

export const raceStaleTlb: Scenario = {
  name: 'race-stale-tlb',
  summary: 'a writer keeps a few pages of a shared mapping hot in its TLB while another sharer mprotects it read-only',
  details: 'checker: stale-tlb-write (a store through a TLB entry after the mprotect that forbade it returned); ' +
    'planted bug: map-shared-pt --bug shootdown-forgets-sharers',
  defaults: { procs: 2, size: 2 * MiB, ops: 3 },
  models: { only: ['map-shared-pt'], why: 'the race is in map-shared-pt\'s shootdown of the sharers of a host entry (the bug is that model\'s)' },
  pinned: 'the writer\'s TLB must stay its own: each process on its own CPU',
  build(o) {
    const programs: Program[] = [];
    for (let p = 0; p < o.procs; p++) {
      const prog: Op[] = mapSharedSegment(p, '/rst', o.size, 'm', o.model);
      prog.push({ op: 'touch', region: 'm', len: HOT * 4096, write: true });
      prog.push({ op: 'barrier', id: 1 });
      if (p === 0) {
        prog.push({ op: 'shm_unlink', name: '/rst' });
        for (let i = 0; i < o.ops; i++) {
          prog.push({ op: 'mprotect', region: 'm', len: o.size, prot: ['PROT_READ'] });
          prog.push({ op: 'store', region: 'm', offset: 0, expect: 'SIGSEGV' });
          prog.push({ op: 'mprotect', region: 'm', len: o.size, prot: ['PROT_READ', 'PROT_WRITE'] });
        }
      } else {
        // The writer: every store hits its TLB while its entries are valid.
        for (let i = 0; i < o.ops * 8; i++) {
          prog.push({ op: 'store', region: 'm', offset: (i % HOT) * 4096, value: 1, expect: 'any' });
        }
      }
      prog.push({ op: 'barrier', id: 2 });
      prog.push({ op: 'exit', code: 0 });
      programs.push(prog);
    }
    return {
      programs,
      config: sizeMachine({ cpus: o.cpus, procs: o.procs, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem }),
    };
  },
};
