/**
 * race-cow-break — the COW break of one PTE table by several sharers at once (cow-pte: On-Demand-
 * Fork, Lin's handle_cow_pte_fault). Process 0 writes every page of a 2 MiB private mapping, then
 * in each round forks a child: the table is shared by the parent and the child. Between two
 * barriers the parent, a second thread of the parent (join_mm: the same mm) and the child each
 * store to a page of it, so all three break the COW of the same table at once. A break drops the
 * table's lock to allocate its copy ("We don't hold the lock when allocating the new PTE") and
 * must look again once it holds it: the entry may have been broken by another thread of its mm
 * already, and the others may have left the table, so that the last user takes it back instead of
 * copying (pmd_put_pte refusing to drop the last reference).
 *
 * Checkers: leak (a table no entry points to, a copy orphaned), invariant:pt-share (a share count
 * that is not the entries pointing to the table), invariant:pt-owner, invariant:pgtables-bytes,
 * invariant:rss, expectation (each process reads back only its own stores).
 */
import type { Op, Program } from '../proc/program.js';
import { cowPteOptIn, MiB, sizeMachine, type Scenario } from './common.js';

const AT = 16 * 1024 * MiB;
const LEN = 2 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;

export const raceCowBreak: Scenario = {
  name: 'race-cow-break',
  summary: 'a parent, a second thread of it and a fork child store into one COW-shared PTE table at once: three COW breaks of one table race (cow-pte)',
  details: 'checkers: leak, invariant:pt-share, invariant:pt-owner, invariant:pgtables-bytes, invariant:rss, expectation; under none the same program (fork copies the table) is the baseline',
  defaults: { procs: 2, size: LEN, ops: 3 },
  models: { only: ['none', 'cow-pte'], why: 'copy-on-write PTE tables at fork are cow-pte\'s; none runs the same program as its baseline' },
  explore: { strategy: 'random', why: 'a break must be held in its allocation window (cow:before-relock) while another sharer breaks and leaves, a few placed switches the random walk finds at once and PCT at depth 3 missed in 300 runs' },
  build(o) {
    const map: Op = { op: 'mmap', addr: AT, len: LEN, prot: [...RW], flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'm' };
    const parent: Op[] = [...cowPteOptIn(o.model), map, { op: 'touch', region: 'm', len: LEN, write: true, value: 1 }, { op: 'barrier', id: 0 }];
    const thread: Op[] = [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 0 }, { op: 'let', as: 'm', addr: AT }];
    for (let i = 0; i < o.ops; i++) {
      const page = (n: number) => (n * 97 + i * 13) % 512 * 4096;
      parent.push(
        {
          op: 'fork', as: `c${i}`, child: [
            { op: 'barrier', id: 1 + 2 * i },
            { op: 'store', region: 'm', offset: page(1), value: 30 + i },
            { op: 'load', region: 'm', offset: page(1), value: 30 + i },
            { op: 'load', region: 'm', offset: page(2), value: 1 }, // the parent's store of this round is its own
            { op: 'barrier', id: 2 + 2 * i },
            { op: 'exit', code: 0 },
          ],
        },
        { op: 'barrier', id: 1 + 2 * i },
        { op: 'store', region: 'm', offset: page(2), value: 10 + i },
        { op: 'load', region: 'm', offset: page(1), value: 1 }, // the child's store is the child's
        { op: 'barrier', id: 2 + 2 * i },
        { op: 'wait', pid: `c${i}`, status: 0 },
        { op: 'load', region: 'm', offset: page(2), value: 10 + i },
      );
      thread.push(
        { op: 'barrier', id: 1 + 2 * i },
        { op: 'store', region: 'm', offset: page(3), value: 20 + i },
        { op: 'barrier', id: 2 + 2 * i },
      );
    }
    parent.push({ op: 'exit', code: 0 });
    thread.push({ op: 'exit', code: 0 });
    const programs: Program[] = [parent, thread];
    const config = sizeMachine({ cpus: o.cpus, procs: 2 + o.ops, sharedBytes: 0, privateBytes: 2 * LEN, files: 0, vmasPerProc: 4, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2 + 2 * o.ops) } };
  },
};
