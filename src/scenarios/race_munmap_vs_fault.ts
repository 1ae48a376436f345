/**
 * race-munmap-vs-fault — unmap only, no remap, under per-VMA locks (issue "Catch what nobody
 * planted", item 5). Two threads of one mm: the faulter sweeps a 4 MiB anonymous mapping while
 * the other unmaps it in two pieces — first 1.5 MiB at +256 KiB (inside the first table's range:
 * a split of the VMA the fault may hold read-locked, lock_vma_under_rcu), then all of it (the two
 * VMAs left, one from +1.75 MiB across the table boundary at 2 MiB) — and the last frees tables
 * (free_pgtables) the fault may still be walking. Each round maps the range again before the
 * race (between barriers), never during it.
 *
 * Checkers: invariant (free_pgtables meets a table that still maps a page), use-after-free, leak
 * (a table allocated after its range was freed), invariant:mapcount. Planted bug: none --bug
 * munmap-skips-vma-write-lock (munmap detaches and splits without vma_start_write).
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, sizeMachine, type Scenario } from './common.js';

const AT = 6 * 1024 * MiB;
const LEN = 4 * MiB;
const KiB = 1024;
const PIECES: { offset: number; len: number }[] = [
  { offset: 256 * KiB, len: MiB + 512 * KiB }, // inside the first table's 2 MiB: a split
  { offset: 0, len: LEN }, // the two VMAs left, whole (from +1.75 MiB across the boundary at 2 MiB)
];

export const raceMunmapVsFault: Scenario = {
  name: 'race-munmap-vs-fault',
  summary: 'two threads: one faults over a mapping while the other unmaps it piece by piece, no remap in the race (per-VMA locks)',
  details: 'checkers: invariant (free-pgtables), use-after-free, leak, invariant:mapcount; the pieces start and end inside a table\'s 2 MiB; ' +
    'planted bug: none --bug munmap-skips-vma-write-lock',
  defaults: { procs: 2, size: LEN, ops: 3 },
  models: { only: ['none'], why: 'the race is in the core mm\'s per-VMA locking of an anonymous mapping (no sharing model takes part)' },
  pinned: 'two threads, each on its own CPU',
  faultLock: 'per-vma',
  explore: { strategy: 'random', why: 'the fault must stop inside the last whole-VMA unmap\'s window (the splits before it write-lock the VMA anyway), a few decisions among thousands: PCT\'s change points rarely land there, the random walk does at once' },
  build(o) {
    const map: Op = { op: 'mmap', addr: AT, len: LEN, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'm' };
    const faulter: Op[] = [{ op: 'barrier', id: 0 }];
    const unmapper: Op[] = [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 0 }, { op: 'let', as: 'm', addr: AT }];
    for (let i = 0; i < o.ops; i++) {
      faulter.push(map, { op: 'barrier', id: 1 + 2 * i });
      unmapper.push({ op: 'barrier', id: 1 + 2 * i });
      // The second table's range first (what the whole unmap frees), then the first's.
      faulter.push({ op: 'touch', region: 'm', offset: 2 * MiB, len: 2 * MiB, stride: 256 * KiB, write: true, expect: 'any' });
      faulter.push({ op: 'touch', region: 'm', offset: 128 * KiB, len: LEN - 128 * KiB, stride: 256 * KiB, write: false, expect: 'any' });
      for (const piece of PIECES) unmapper.push({ op: 'munmap', region: 'm', ...piece });
      faulter.push({ op: 'barrier', id: 2 + 2 * i });
      unmapper.push({ op: 'barrier', id: 2 + 2 * i });
    }
    faulter.push({ op: 'exit', code: 0 });
    unmapper.push({ op: 'exit', code: 0 });
    const programs: Program[] = [faulter, unmapper];
    const config = sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: 0, privateBytes: 2 * LEN, files: 0, vmasPerProc: 6, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2 + 2 * o.ops) } };
  },
};
