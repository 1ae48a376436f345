/**
 * fault-storm — what per-VMA locks are for (Linux 6.4, "Per-VMA locks"): many threads of one
 * process fault disjoint ranges, each through its own mapping, while one of them keeps mapping
 * and unmapping a scratch region. Under mmap_lock every fault takes the mm's lock for read, so
 * each mmap and munmap (write) stalls every faulting thread, and the readers' shared lock word
 * bounces between the cores; under per-VMA locks a fault takes only its own VMA's lock, and the
 * writer write-locks only the VMAs it changes.
 *
 * The faults are minor ones (the file's pages are in the page cache before the storm: the leader
 * populates them through a mapping it then drops), so the fault path's own locks, not page
 * allocation, are what the run measures. `--procs` threads (task 0 the leader, the others join
 * its mm) each map their 1/procs share of a `--size` shmem file and touch it in 1 MiB steps;
 * after each of its steps the leader maps, touches and unmaps `--ops` 1 MiB anonymous regions
 * (a munmap that zaps 256 PTEs and shoots down the other CPUs holds mmap_lock long enough to matter).
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, sizeMachine, type Scenario } from './common.js';

const STEP = MiB;
const SCRATCH = MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;

export const faultStorm: Scenario = {
  name: 'fault-storm',
  summary: 'threads of one mm take minor faults in disjoint mappings while the leader mmaps and munmaps a scratch region',
  details: 'compare --fault-lock mmap,per-vma: faults/s, mmap_lock waits and per-thread fairness; vma_lock counts faults done under the VMA lock',
  defaults: { procs: 2, size: 512 * MiB, ops: 1 },
  phase: { from: 1, to: 2, what: 'the storm (barrier 1 to 2)', fairness: true },
  models: { only: ['none'], why: 'one process\'s threads: page tables shared across processes change nothing in it' },
  build(o) {
    const share = Math.max(STEP, Math.floor(o.size / o.procs / STEP) * STEP);
    const size = share * o.procs;
    const programs: Program[] = [];
    for (let t = 0; t < o.procs; t++) {
      const prog: Op[] = t === 0
        ? [
          { op: 'shm_open', name: '/storm', create: true, excl: true, as: 'fd' },
          { op: 'ftruncate', fd: 'fd', size },
          { op: 'mmap', len: size, prot: [...RW], flags: ['MAP_SHARED'], fd: 'fd', as: 'p' },
          { op: 'touch', region: 'p', len: size, write: true },
          { op: 'munmap', region: 'p', len: size },
          { op: 'barrier', id: 0 },
        ]
        : [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 0 }, { op: 'shm_open', name: '/storm', as: 'fd' }];
      prog.push(
        { op: 'mmap', len: share, prot: [...RW], flags: ['MAP_SHARED'], fd: 'fd', offset: t * share, as: 'r' },
        { op: 'close', fd: 'fd' },
        { op: 'barrier', id: 1 },
      );
      for (let off = 0; off < share; off += STEP) {
        prog.push({ op: 'touch', region: 'r', offset: off, len: STEP });
        if (t === 0) {
          for (let i = 0; i < o.ops; i++) {
            prog.push(
              { op: 'mmap', len: SCRATCH, prot: [...RW], flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS'], as: 's' },
              { op: 'touch', region: 's', len: SCRATCH, write: true },
              { op: 'munmap', region: 's', len: SCRATCH },
            );
          }
        }
      }
      prog.push({ op: 'barrier', id: 2 });
      if (t === 0) prog.push({ op: 'shm_unlink', name: '/storm' });
      prog.push({ op: 'munmap', region: 'r', len: share }, { op: 'exit', code: 0 });
      programs.push(prog);
    }
    const config = sizeMachine({ cpus: o.cpus, procs: o.procs, sharedBytes: size, privateBytes: 2 * SCRATCH, files: 1, vmasPerProc: 4, mem: o.mem });
    return { programs, config };
  },
};
