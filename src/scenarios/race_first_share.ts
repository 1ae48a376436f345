/**
 * race-first-share — two threads of one process make their first faults on a shared range at
 * once, where another process's tables already map it (issue "Catch what nobody planted", item
 * 5: threads in every model's workload). Process 0 maps the file (the model's way) and stores
 * into all of it, so its PTE tables are full; process 1's two threads then sweep the same range
 * together, each fault finding the PMD entry none:
 * - pt-hint: both look through i_mmap for a sibling's table (huge_pmd_share, i_mmap_rwsem held for
 *   read by both) and take a share of the same table; one populates the PMD entry, the other
 *   must drop the share it took (put_page(virt_to_page(spte)) when pud_none no longer holds);
 * - map-shared-pt: both copy the host's PMD entry into the guest;
 * - none: both allocate a PTE table, one installs it (pmd_install), the other frees its own.
 *
 * Then every task meets at a barrier (the quiescent checks) and reads back what process 0
 * stored. Checkers: invariant (share counts against the mms that reach each table by walking,
 * owners, pgtables_bytes), invariant:counters at the end, leak, expectation.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sizeMachine, type Scenario } from './common.js';

const AT = 14 * 1024 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;

export const raceFirstShare: Scenario = {
  name: 'race-first-share',
  summary: 'two threads of one process make their first faults together on a range another process\'s tables already map (huge_pmd_share vs itself)',
  details: 'checkers: invariant (share counts, owners, pgtables_bytes), invariant:counters, leak, expectation',
  defaults: { procs: 2, size: 2 * PMD, ops: 2 },
  models: { only: ['none', 'pt-hint', 'map-shared-pt'], why: 'a first fault that finds a table another mm built is pt-hint\'s and map-shared-pt\'s (mshare\'s and the others\' mappers attach whole regions by their own calls)' },
  pinned: 'the first process and the two threads, each on its own CPU',
  explore: { strategy: 'random', why: 'the two first faults must meet between a PMD entry read and its populate, one switch among many: the random walk\'s' },
  build(o) {
    if (o.size % PMD !== 0) throw new Error('race-first-share: --size must be a multiple of 2 MiB');
    const msp = o.model === 'map-shared-pt';
    const hint = o.model === 'pt-hint';
    const map: Op = { op: 'mmap', addr: AT, len: o.size, prot: [...RW], flags: msp ? ['MAP_SHARED', 'MAP_FIXED', 'MAP_SHARED_PT'] : ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'm' };
    const advise: Op[] = hint ? [{ op: 'madvise', region: 'm', len: o.size, advice: 'MADV_SHARE_PT' }] : [];
    const owner: Op[] = [
      { op: 'shm_open', name: '/rfs', create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size: o.size },
      { op: 'barrier', id: 0 }, map, ...advise,
      { op: 'touch', region: 'm', len: o.size, write: true, value: 7 },
    ];
    const first: Op[] = [{ op: 'barrier', id: 0 }, { op: 'shm_open', name: '/rfs', as: 'fd' }];
    const second: Op[] = [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 1 }];
    for (let i = 0; i < o.ops; i++) {
      // Process 1 maps afresh each round (its tables went with the unmap), outside the race.
      first.push(map, ...advise);
      for (const t of [owner, first, second]) t.push({ op: 'barrier', id: 1 + 3 * i });
      const sweep = (from: number): Op => ({ op: 'touch', region: 'm', offset: from, len: o.size - from, stride: 256 * 1024, write: true, value: 7 });
      if (i === 0) second.push({ op: 'let', as: 'm', addr: AT });
      first.push(sweep(0));
      second.push(sweep(4096));
      for (const t of [owner, first, second]) t.push({ op: 'barrier', id: 2 + 3 * i });
      first.push({ op: 'load', region: 'm', offset: o.size - 4096, value: 7 }, { op: 'munmap', region: 'm', len: o.size });
      for (const t of [owner, first, second]) t.push({ op: 'barrier', id: 3 + 3 * i });
    }
    owner.push({ op: 'shm_unlink', name: '/rfs' });
    for (const t of [owner, first, second]) t.push({ op: 'exit', code: 0 });
    const programs: Program[] = [owner, first, second];
    const config = sizeMachine({ cpus: o.cpus, procs: 3, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 4 + 3 * o.ops) } };
  },
};
