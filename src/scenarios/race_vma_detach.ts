/**
 * race-vma-detach — a fault's lockless VMA lookup against a writer that changes the VMA and then
 * unmaps it, no remap in the race (issue "Catch what nobody planted", item 5). Two threads of one
 * mm: the faulter sweeps a 2 MiB anonymous mapping under per-VMA locks while the other thread
 * mprotects all of it read-only and back (the VMA stays attached, write-locked by
 * vma_start_write until mmap_write_unlock) and then unmaps it whole (vma_mark_detached, the VMA
 * freed). The faulter maps it again between the rounds, outside the race, so no new VMA takes the
 * old one's place while a lookup may still hold it (race-vma-lock remaps inside the race).
 *
 * lock_vma_under_rcu's two rechecks are what this reaches, each by another strategy, so explore
 * alternates them (`mix`):
 * - the detached check: a fault stopped after its lockless walk for the writer's whole munmap
 *   (mm_lock_seq moves on at mmap_write_unlock, so the trylock then succeeds on the freed VMA) —
 *   one CPU run through a long window, which PCT's priorities give and a uniform random walk
 *   almost never does;
 * - vma_start_read's vm_lock_seq recheck after the trylock: the writer's vma_start_write lands
 *   between the reader's first check and its trylock, and the reader then runs while the writer
 *   still holds mmap_lock — two exactly placed switches, the random walk's.
 *
 * Checkers: lockdep:assert (assert_fault_locked: a fault under a VMA lock on a VMA detached or
 * write-locked), use-after-free, invariant (free_pgtables meets a table that still maps a page),
 * invariant:mapcount, invariant:pte-perm (a store that faulted in under a read-only VMA).
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, sizeMachine, type Scenario } from './common.js';

const AT = 10 * 1024 * MiB;
const LEN = 2 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;

export const raceVmaDetach: Scenario = {
  name: 'race-vma-detach',
  summary: 'two threads: one faults while the other mprotects the VMA and then unmaps it whole, no remap in the race (lock_vma_under_rcu\'s rechecks)',
  details: 'checkers: lockdep:assert (a fault under a VMA lock on a VMA detached or write-locked), use-after-free, invariant (free-pgtables, pte-perm), invariant:mapcount; ' +
    'explored with PCT and the random walk by turns (mix)',
  defaults: { procs: 2, size: LEN, ops: 4 },
  models: { only: ['none'], why: 'the race is in the core mm\'s per-VMA locking of an anonymous mapping (no sharing model takes part)' },
  pinned: 'two threads, each on its own CPU',
  faultLock: 'per-vma',
  explore: { strategy: 'mix', why: 'the detached VMA needs a fault held in its window for a whole munmap (PCT); the write-locked one two switches exactly placed (the random walk)' },
  build(o) {
    const map: Op = { op: 'mmap', addr: AT, len: LEN, prot: [...RW], flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'm' };
    const faulter: Op[] = [{ op: 'barrier', id: 0 }];
    const writer: Op[] = [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 0 }, { op: 'let', as: 'm', addr: AT }];
    for (let i = 0; i < o.ops; i++) {
      faulter.push(map, { op: 'barrier', id: 1 + 2 * i });
      writer.push({ op: 'barrier', id: 1 + 2 * i });
      faulter.push({ op: 'touch', region: 'm', len: LEN, stride: 128 * 1024, write: true, expect: 'any' });
      writer.push(
        { op: 'mprotect', region: 'm', len: LEN, prot: ['PROT_READ'] },
        { op: 'mprotect', region: 'm', len: LEN, prot: [...RW] },
        { op: 'munmap', region: 'm', len: LEN },
      );
      faulter.push({ op: 'barrier', id: 2 + 2 * i });
      writer.push({ op: 'barrier', id: 2 + 2 * i });
    }
    faulter.push({ op: 'exit', code: 0 });
    writer.push({ op: 'exit', code: 0 });
    const programs: Program[] = [faulter, writer];
    const config = sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: 0, privateBytes: 2 * LEN, files: 0, vmasPerProc: 4, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2 + 2 * o.ops) } };
  },
};
