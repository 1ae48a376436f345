/**
 * race-vma-lock — the per-VMA lock protocol (Linux 6.4+) under a race: two threads of one mm, the
 * faulter touching a 2 MiB anonymous mapping while the other unmaps it and maps it again at the
 * same address, over and over. Faults take the VMA's lock (`--fault-lock per-vma`, this
 * scenario's default). munmap must write-lock the VMA (vma_start_write) before it detaches it and
 * tears down its page tables: that waits out a fault in progress, and makes any later
 * lock_vma_under_rcu fall back to mmap_lock. The faulter's touches may find nothing mapped
 * (SIGSEGV) or the new mapping; either is fine.
 *
 * Checkers: invariant (free_pgtables meets a table that still maps a page), use-after-free (a fault
 * installs into a freed table), invariant:mapcount. Planted bug: none --bug
 * munmap-skips-vma-write-lock (munmap detaches without vma_start_write, as the bugs fixed by "mm:
 * lock a vma before ..." patches did in places: the fault runs on under the VMA's read lock while
 * its tables go).
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, sizeMachine, type Scenario } from './common.js';

const AT = 4 * 1024 * MiB; // PMD-aligned, so munmap frees the mapping's PTE table
const LEN = 2 * MiB;
const STRIDE = 512 * 1024; // four pages a sweep: few faults, each a window

export const raceVmaLock: Scenario = {
  name: 'race-vma-lock',
  summary: 'two threads: one faults in a mapping while the other unmaps and remaps it (per-VMA locks)',
  details: 'checkers: invariant, use-after-free, invariant:mapcount (a fault under the VMA lock outlives the VMA\'s page tables); ' +
    'planted bug: none --bug munmap-skips-vma-write-lock (munmap detaches a VMA without vma_start_write)',
  defaults: { procs: 2, size: LEN, ops: 3 },
  models: { only: ['none'], why: 'the race is in the core mm\'s per-VMA locking (the bug is the kernel\'s, planted through none)' },
  pinned: 'two threads, each on its own CPU',
  faultLock: 'per-vma',
  build(o) {
    const map: Op = { op: 'mmap', addr: AT, len: LEN, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'm' };
    const faulter: Op[] = [{ op: 'barrier', id: 0 }, map, { op: 'barrier', id: 1 }];
    const mapper: Op[] = [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 0 }, { op: 'let', as: 'm', addr: AT }, { op: 'barrier', id: 1 }];
    for (let i = 0; i < o.ops; i++) {
      faulter.push({ op: 'touch', region: 'm', len: LEN, stride: STRIDE, expect: 'any' });
      mapper.push({ op: 'munmap', region: 'm', len: LEN }, map);
    }
    faulter.push({ op: 'barrier', id: 2 }, { op: 'exit', code: 0 });
    mapper.push({ op: 'barrier', id: 2 }, { op: 'exit', code: 0 });
    const programs: Program[] = [faulter, mapper];
    return { programs, config: sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: 0, privateBytes: 2 * LEN, files: 0, vmasPerProc: 4, mem: o.mem }) };
  },
};
