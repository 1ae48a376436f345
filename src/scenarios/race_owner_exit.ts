/**
 * race-owner-exit-vs-share — a shared table's only owner exits while another process's first
 * fault finds the table (issue "Catch what nobody planted", item 5). Process 0 maps the shared
 * file (the model's way), stores into all of it — its tables hold every page — and exits; process
 * 1 has mapped the same range but not touched it: its first faults race with that exit.
 *
 * - pt-hint: process 1's fault looks through i_mmap for a sibling (huge_pmd_share) while process
 *   0's exit unshares (huge_pmd_unshare under i_mmap_rwsem for write), transfers ownership of a
 *   table already shared (transfer_owner) or zaps and frees its own.
 * - map-shared-pt: the host mm holds the tables; process 0 is a guest whose exit drops its share
 *   and its host reference (the host lives on in process 1's mapping), while process 1's fault
 *   copies the host's PMD entry.
 * - none: each process its own tables (the baseline; nothing is shared).
 *
 * Process 1 then reads what process 0 stored. Checkers: use-after-free (a fault or walk through a
 * table the exit freed), invariant (share counts, pgtables_bytes and owners at quiescence),
 * leak, lost-write, expectation (process 1 reads process 0's values). Planted bug:
 * map-shared-pt --bug rfc-v2-free-shared-pmd (the exiting guest frees the host's table).
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sizeMachine, type Scenario } from './common.js';

const AT = 16 * 1024 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;

export const raceOwnerExit: Scenario = {
  name: 'race-owner-exit-vs-share',
  summary: 'a shared table\'s only owner exits while another process\'s first fault finds the table (pt-hint owner transfer, map-shared-pt host)',
  details: 'checkers: use-after-free, invariant (share counts, owners, pgtables_bytes), leak, lost-write, expectation (the survivor reads the exited owner\'s stores); ' +
    'planted bug: map-shared-pt --bug rfc-v2-free-shared-pmd',
  defaults: { procs: 2, size: 2 * PMD, ops: 1 },
  models: { only: ['none', 'pt-hint', 'map-shared-pt'], why: 'the owner transfer is pt-hint\'s and the host\'s table is map-shared-pt\'s (mshare\'s owner takes the region with it, by rule)' },
  pinned: 'the owner and the first faulter, each on its own CPU',
  build(o) {
    if (o.size % PMD !== 0) throw new Error('race-owner-exit-vs-share: --size must be a multiple of 2 MiB');
    const msp = o.model === 'map-shared-pt';
    const hint = o.model === 'pt-hint';
    const map: Op = { op: 'mmap', addr: AT, len: o.size, prot: [...RW], flags: msp ? ['MAP_SHARED', 'MAP_FIXED', 'MAP_SHARED_PT'] : ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'm' };
    const advise: Op[] = hint ? [{ op: 'madvise', region: 'm', len: o.size, advice: 'MADV_SHARE_PT' }] : [];
    // Barrier 1 (the two of them): the file exists. Barrier 0: both mapped, the owner's stores done.
    const owner: Op[] = [
      { op: 'shm_open', name: '/roe', create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size: o.size },
      { op: 'barrier', id: 1, count: 2 },
      map, ...advise, { op: 'close', fd: 'fd' },
      { op: 'touch', region: 'm', len: o.size, write: true, value: 7 },
      { op: 'barrier', id: 0 },
      { op: 'shm_unlink', name: '/roe' },
      { op: 'exit', code: 0 },
    ];
    const f: Op[] = [
      { op: 'barrier', id: 1, count: 2 },
      { op: 'shm_open', name: '/roe', as: 'fd' }, map, ...advise, { op: 'close', fd: 'fd' },
      { op: 'barrier', id: 0 },
    ];
    for (let i = 0; i < o.ops; i++) {
      // Its first faults (one store per 64 KiB), then pages only the owner stored into, read back.
      f.push({ op: 'touch', region: 'm', len: o.size, stride: 64 * 1024, write: true, value: 7 });
      f.push({ op: 'load', region: 'm', offset: 4096, value: 7 });
      f.push({ op: 'load', region: 'm', offset: o.size - 4096, value: 7 });
    }
    f.push({ op: 'exit', code: 0 });
    const programs: Program[] = [owner, f];
    return {
      programs,
      config: sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem }),
    };
  },
};
