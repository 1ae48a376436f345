/**
 * mprotect-vs-fault — seed 001's "mprotect by one process affects all". Process 0 flips the
 * shared mapping read-only and back `ops` times, checking its own stores each time (SIGSEGV while
 * read-only, success after); the others store into the mapping all along. Under map-shared-pt
 * their stores meet the read-only host entries (SIGSEGV, taken as it comes); under none they never
 * do. Either way, no store may succeed through a TLB entry after the mprotect that forbade it
 * returned: the stale-TLB checker watches every store.
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, MiB, sizeMachine, type Scenario } from './common.js';

export const mprotectVsFault: Scenario = {
  name: 'mprotect-vs-fault',
  summary: 'one process mprotects a shared mapping while the others store into it',
  details: 'checkers: stale-tlb-write (a store through an entry whose write permission was removed and flushed), expectation (the mprotecting process sees its own SIGSEGV)',
  defaults: { procs: 3, size: 4 * MiB, ops: 20 },
  models: {
    only: ['none', 'map-shared-pt', 'pt-hint'],
    why: 'mshare and container-fd refuse mprotect of their mappings (EINVAL): permissions change inside the region, by ioctl',
  },
  explore: { strategy: 'random', opts: { procs: '2', cpus: '2', ops: '4', size: '2M' }, why: 'the window (after one mprotect returns, before the next) is a few decisions among thousands: PCT\'s change points miss it (race-stale-tlb is the same bug made for PCT); two pinned processes and four rounds keep a run short' },
  build(o) {
    const programs: Program[] = [];
    for (let p = 0; p < o.procs; p++) {
      const prog: Op[] = mapSharedSegment(p, '/mvf', o.size, 'm', o.model);
      prog.push({ op: 'touch', region: 'm', len: o.size, write: true });
      prog.push({ op: 'barrier', id: 1 });
      if (p === 0) {
        prog.push({ op: 'shm_unlink', name: '/mvf' });
        for (let i = 0; i < o.ops; i++) {
          prog.push({ op: 'mprotect', region: 'm', len: o.size, prot: ['PROT_READ'] });
          prog.push({ op: 'store', region: 'm', offset: (i * 4096) % o.size, expect: 'SIGSEGV' });
          prog.push({ op: 'touch', region: 'm', len: o.size, stride: 64 * 1024, write: false });
          prog.push({ op: 'mprotect', region: 'm', len: o.size, prot: ['PROT_READ', 'PROT_WRITE'] });
          prog.push({ op: 'store', region: 'm', offset: (i * 4096) % o.size });
        }
      } else {
        for (let i = 0; i < o.ops * 4; i++) {
          prog.push({ op: 'touch', region: 'm', offset: ((i * 7 + p) % 16) * 4096, len: o.size / 2, stride: 8192, write: true, expect: 'any' });
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
