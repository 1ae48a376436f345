/**
 * race-mshare-dontneed — mshare v3's MADV_DONTNEED on the shared page table. The v3 cover letter
 * (Aug 2025) conceded that MADV_DONTNEED on an mshare mapping "will operate on the shared page
 * table without taking the needed locks"; the plan was to refuse madvise there and add ioctls.
 * Two processes attach one msharefs region (segments.ts's mshare recipe: process 0 creates it and
 * maps a shmem file inside with MSHAREFS_CREATE_MAPPING) and both keep the first HOT pages hot in
 * their TLBs with stores. Then, racing: process 1 calls madvise(MADV_DONTNEED) on the first ZAP of
 * those pages (`expect: 'any'`: the fixed model refuses it with EINVAL, v3's plan) and stores
 * only into the pages it did not zap — a fault of its own would put the zapped PTEs back and hide
 * a stale entry — while process 0 stores into and loads from all HOT pages. Every task then meets
 * at a barrier, where each CPU audits its TLB against the tables.
 *
 * Under v3's behaviour the zap clears the host's PTEs (the tables every guest's PUD entry points
 * to) and flushes only process 1's mm (tlb_finish_mmu on the caller), so process 0's CPU keeps
 * translations for PTEs that are gone: its next store through one is a stale-tlb-write (the
 * table's P_WPSEQ moved when the zap finished), and the audit at the barrier finds the entry
 * (stale-tlb). A change to the host's tables must reach every CPU running a guest, as
 * MSHAREFS_UNMAP's do_munmap on the host does.
 *
 * Checkers: stale-tlb-write, stale-tlb. Planted bug: mshare --bug v3-dontneed-without-host-lock.
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, sizeMachine, type Scenario } from './common.js';

const PAGE = 4096;
const HOT = 4; // pages both processes keep in their TLBs
const ZAP = 2; // of those, the ones process 1 zaps (the first)

export const raceMshareDontneed: Scenario = {
  name: 'race-mshare-dontneed',
  summary: 'two processes attach one mshare region (--procs and --size are ignored): one MADV_DONTNEEDs pages the other keeps hot in its TLB',
  details: 'checkers: stale-tlb-write (a store through a TLB entry for a host PTE the DONTNEED zapped), stale-tlb (the entry, found at the barrier\'s audit); ' +
    'the fixed model refuses MADV_DONTNEED on the mapping (EINVAL, v3\'s plan); ' +
    'planted bug: mshare --bug v3-dontneed-without-host-lock (v3: the zap runs on the host\'s shared tables without the host\'s mmap_lock and flushes only the caller)',
  defaults: { procs: 2, size: HOT * PAGE, ops: 3 },
  models: { only: ['mshare'], why: 'the race is in mshare\'s MADV_DONTNEED on the host\'s shared tables (the bug is that model\'s)' },
  pinned: 'the storer\'s TLB must stay its own: each process on its own CPU',
  build(o) {
    const len = HOT * PAGE;
    const rounds = Math.max(1, o.ops);
    const programs: Program[] = [];
    for (let p = 0; p < 2; p++) {
      const prog: Op[] = mapSharedSegment(p, '/rmd', len, 'm', 'mshare');
      if (p === 0) prog.push({ op: 'shm_unlink', name: '/rmd' }); // only process 0 opened it (the region holds the file)
      prog.push({ op: 'touch', region: 'm', len, write: true });
      prog.push({ op: 'barrier', id: 1 });
      if (p === 1) {
        prog.push({ op: 'madvise', region: 'm', offset: 0, len: ZAP * PAGE, advice: 'MADV_DONTNEED', expect: 'any' });
        // Only the pages it kept: a fault on a zapped one would refill the host's PTE.
        for (let i = 0; i < rounds * 4; i++) prog.push({ op: 'store', region: 'm', offset: (ZAP + (i % (HOT - ZAP))) * PAGE });
      } else {
        // Every access hits the TLB while its entries are valid.
        for (let i = 0; i < rounds * 8; i++) {
          const offset = (i % HOT) * PAGE;
          prog.push({ op: 'store', region: 'm', offset, value: i + 1 }, { op: 'load', region: 'm', offset });
        }
      }
      prog.push({ op: 'barrier', id: 2 }); // quiescent: every CPU audits its TLB
      prog.push({ op: 'exit', code: 0 });
      programs.push(prog);
    }
    return {
      programs,
      config: sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: len, privateBytes: 0, files: 2, vmasPerProc: 3, mem: o.mem }),
    };
  },
};
