/**
 * race-dontneed-vs-fault — MADV_DONTNEED against write faults on present read-only PTEs, two
 * threads of one mm (issues "Catch what nobody planted", item 5, and "Sharing under fire":
 * MADV_DONTNEED). The faulter writes every page of a private anonymous mapping, forks a child
 * that exits at once (copy_present_pte write-protects the parent's PTEs; the child's exit gives
 * the pages back to the parent alone), so each store of the next round is a do_wp_page on a
 * present read-only PTE that wp_page_reuse may make writable in place. Meanwhile the other
 * thread zaps the whole range with MADV_DONTNEED, which runs under mmap_lock held for read
 * (madvise_need_mmap_write), so nothing but the PTE lock orders it against the fault.
 *
 * The rule it tests is do_wp_page's: the PTE read before the PTE lock (vmf->orig_pte) is checked
 * again under it (pte_same). A zap that cleared the entry and freed the page in between must
 * not be undone by the fault making the old PTE writable again.
 *
 * Checkers: use-after-free (a PTE or TLB entry to a freed page), invariant:rss and
 * invariant:mapcount (an entry put back behind the zap's accounting), leak, stale-tlb.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, sizeMachine, type Scenario } from './common.js';

const AT = 14 * 1024 * MiB;
const LEN = 2 * MiB;
const STRIDE = 64 * 1024;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;

export const raceDontneedVsFault: Scenario = {
  name: 'race-dontneed-vs-fault',
  summary: 'two threads: one write-faults read-only PTEs (do_wp_page) while the other zaps them with MADV_DONTNEED under mmap_lock for read',
  details: 'checkers: use-after-free, invariant:rss, invariant:mapcount, leak, stale-tlb; explored with PCT and the random walk by turns (mix)',
  defaults: { procs: 2, size: LEN, ops: 3 },
  models: { only: ['none'], why: 'the race is in the core mm\'s anonymous write fault against madvise (the sharing models meet DONTNEED in race-dontneed-unshare)' },
  explore: { strategy: 'mix', why: 'the fault must stop between its PTE read and its PTE lock for a whole zap (PCT), or the zap must land in a few decisions (the random walk)' },
  build(o) {
    const map: Op = { op: 'mmap', addr: AT, len: LEN, prot: [...RW], flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'm' };
    const faulter: Op[] = [map, { op: 'barrier', id: 0 }];
    const adviser: Op[] = [{ op: 'barrier', id: 0 }, { op: 'join_mm', task: 0 }, { op: 'let', as: 'm', addr: AT }];
    for (let i = 0; i < o.ops; i++) {
      // Outside the race: every page present and the mm's own, then write-protected by a fork
      // whose child is gone before the race starts.
      faulter.push(
        { op: 'touch', region: 'm', len: LEN, stride: STRIDE, write: true, value: 100 + i },
        { op: 'fork', child: [{ op: 'exit', code: 0 }], as: `c${i}` },
        { op: 'wait', pid: `c${i}`, status: 0 },
        { op: 'barrier', id: 1 + 2 * i },
        { op: 'touch', region: 'm', len: LEN, stride: STRIDE, write: true, value: i + 1, expect: 'any' },
        { op: 'barrier', id: 2 + 2 * i },
      );
      adviser.push(
        { op: 'barrier', id: 1 + 2 * i },
        { op: 'madvise', region: 'm', len: LEN, advice: 'MADV_DONTNEED' },
        { op: 'barrier', id: 2 + 2 * i },
      );
    }
    faulter.push({ op: 'exit', code: 0 });
    adviser.push({ op: 'exit', code: 0 });
    const programs: Program[] = [faulter, adviser];
    const config = sizeMachine({ cpus: o.cpus, procs: 2 + o.ops, sharedBytes: 0, privateBytes: 2 * LEN, files: 0, vmasPerProc: 4, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2 + 2 * o.ops) } };
  },
};
