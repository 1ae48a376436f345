/**
 * race-mshare-attach — seed 004, on mshare v1's attach: "vma unmapped and remapped between
 * dropping and retaking mmap_lock". Two threads of one process (task 1 joins task 0's mm). Task 0
 * maps memfd A at 4 GiB, fills it, and turns the range into a named mshare region (mshare v1: its
 * mappings move into the region, which is mapped back at the same address). Racing with that,
 * task 1 maps memfd B over the same range (MAP_FIXED) and stores into it. Whichever runs first,
 * every store task 1 makes through B's mapping must land in B: either B replaced the region's
 * mapping, or mshare found B there and moved B into the region. An mshare that looked at the
 * mappings, dropped mmap_lock and retook it moves the stale A and unmaps B's fresh mapping; the
 * stores credited to B then land in A.
 *
 * Checker: lost-write (file B holds fewer stores than were made to it, file A more). Planted bug:
 * mshare --bug attach-drops-mmap-lock.
 */
import type { Op, Program } from '../proc/program.js';
import { sizeMachine, type Scenario } from './common.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const AT = 4 * GiB;
const LEN = 2 * MiB;
const STRIDE = 256 * 1024; // a few pages: fewer scheduling points for PCT's change points to miss

export const raceMshareAttach: Scenario = {
  name: 'race-mshare-attach',
  summary: 'two threads (--procs and --size are ignored): one turns its mapping into an mshare v1 region while the other maps a new file over it',
  details: 'checker: lost-write (the stores made through the new mapping land in the old file); ' +
    'planted bug: mshare --bug attach-drops-mmap-lock (v1 drops mmap_lock between looking and attaching, seed 004)',
  defaults: { procs: 2, size: LEN, ops: 1 },
  // With the window points and the TLB audit, PCT's few change points rarely fall between the
  // look at the caller's mappings and the move (seed 1: none in 300 runs); the random walk finds it in a few.
  explore: { strategy: 'random', why: 'the window between mshare()\'s look and its move is one of many points: the random walk finds it in a few runs, PCT at depth 3 rarely' },
  models: { only: ['mshare'], why: 'the race is in mshare v1\'s attach (the bug is that model\'s)' },
  build(o) {
    const leader: Op[] = [
      { op: 'barrier', id: 0 },
      { op: 'memfd_create', name: 'A', as: 'a' },
      { op: 'ftruncate', fd: 'a', size: LEN },
      { op: 'mmap', addr: AT, len: LEN, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'a', as: 'm' },
      { op: 'touch', region: 'm', len: LEN, stride: STRIDE, write: true },
      { op: 'barrier', id: 1 },
      { op: 'mshare', name: 'attach', addr: AT, len: GiB, create: true, excl: true },
      { op: 'barrier', id: 2 },
      { op: 'mshare_unlink', name: 'attach' },
      { op: 'exit', code: 0 },
    ];
    const thread: Op[] = [
      { op: 'barrier', id: 0 }, // the leader's mm exists
      { op: 'join_mm', task: 0 },
      { op: 'memfd_create', name: 'B', as: 'b' },
      { op: 'ftruncate', fd: 'b', size: LEN },
      { op: 'barrier', id: 1 },
      // EINVAL once the region is mapped: a MAP_FIXED over part of it would split it (mshare_vm_op_split).
      { op: 'mmap', addr: AT, len: LEN, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'b', as: 'n', expect: 'any' },
      { op: 'touch', region: 'n', len: LEN, stride: STRIDE, write: true, expect: 'any' },
      { op: 'barrier', id: 2 },
      { op: 'exit', code: 0 },
    ];
    const programs: Program[] = [leader, thread];
    const config = sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: 2 * LEN, privateBytes: 0, files: 3, vmasPerProc: 4, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 3) } };
  },
};
