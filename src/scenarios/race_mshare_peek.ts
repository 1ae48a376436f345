/**
 * race-mshare-peek — seed 004, Dave Hansen on mshare v1's find_shared_vma: "Is digging around in
 * the other process's page tables OK without holding any locks?" Process 0 owns an msharefs
 * region with a few pages of a file mapped inside; it faults them in through a mapping of its own
 * (so the host has its PMD and PTE tables) and unmaps that mapping again, leaving the tables to
 * the host alone. Then, racing: process 1 attaches the region and touches the pages (its first
 * fault copies the host's PUD entry), while process 0 empties the region (MSHAREFS_UNMAP: the
 * host's zap and free_pgtables, under the host's mmap_lock). A fault that reads the host's entry
 * without that lock can copy an entry to a table the unmap has just freed; the retried access
 * walks into it.
 *
 * Checker: use-after-free (a walk through a freed page-table page). Planted bug: mshare
 * --bug peek-without-host-lock.
 */
import type { Op, Program } from '../proc/program.js';
import { sizeMachine, type Scenario } from './common.js';

const PAGE = 4096;
const GiB = 1024 * 1024 * 1024;
const HOT = 4;
const PATH = '/sys/fs/mshare/race-peek';

export const raceMsharePeek: Scenario = {
  name: 'race-mshare-peek',
  summary: 'two processes (--procs and --size are ignored): an mshare fault reads the host\'s tables while the owner empties the region',
  details: 'checker: use-after-free (the retried access walks through the PMD table the host unmap freed); ' +
    'planted bug: mshare --bug peek-without-host-lock (v1\'s lockless find_shared_vma, seed 004)',
  defaults: { procs: 2, size: HOT * PAGE, ops: 2 },
  models: { only: ['mshare'], why: 'the race is in mshare\'s fault (the bug is that model\'s)' },
  explore: { strategy: 'random', why: 'two exactly placed switches (after the host\'s flush, between peek and copy): PCT at depth 3 misses them' },
  build(o) {
    const len = HOT * PAGE;
    const rounds = Math.max(1, o.ops);
    const own: Op[] = [
      { op: 'shm_open', name: '/race-peek', create: true, excl: true, as: 'fd' },
      { op: 'ftruncate', fd: 'fd', size: len },
      { op: 'shm_unlink', name: '/race-peek' },
      { op: 'open', path: PATH, create: true, excl: true, as: 'ms' },
      { op: 'ftruncate', fd: 'ms', size: GiB },
      { op: 'barrier', id: 0 },
    ];
    const att: Op[] = [];
    for (let i = 0; i < rounds; i++) {
      own.push(
        { op: 'ioctl', fd: 'ms', cmd: 'MSHAREFS_CREATE_MAPPING', args: { region_offset: 0, size: len, offset: 0, prot: 3, flags: 1, fd: 'fd' } },
        // The host's tables, filled through a mapping of the owner's that then goes.
        { op: 'mmap', len: GiB, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED'], fd: 'ms', as: 'own' },
        { op: 'touch', region: 'own', len, write: true },
        { op: 'munmap', region: 'own', len: GiB },
        { op: 'barrier', id: 1 + 2 * i },
        { op: 'ioctl', fd: 'ms', cmd: 'MSHAREFS_UNMAP', args: { region_offset: 0, size: len } },
        { op: 'barrier', id: 2 + 2 * i },
      );
      att.push(
        ...(i === 0 ? [{ op: 'barrier', id: 0 } as Op, { op: 'open', path: PATH, as: 'ms' } as Op] : []),
        { op: 'mmap', len: GiB, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED'], fd: 'ms', as: 'm' },
        { op: 'barrier', id: 1 + 2 * i },
        { op: 'touch', region: 'm', len, write: true, expect: 'any' },
        { op: 'munmap', region: 'm', len: GiB },
        { op: 'barrier', id: 2 + 2 * i },
      );
    }
    own.push({ op: 'unlink', path: PATH }, { op: 'exit', code: 0 });
    att.push({ op: 'exit', code: 0 });
    const programs: Program[] = [own, att];
    const config = sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: len, privateBytes: 0, files: 2, vmasPerProc: 3, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 3 + 2 * rounds) } };
  },
};
