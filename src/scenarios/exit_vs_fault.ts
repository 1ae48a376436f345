/**
 * exit-vs-fault — seed 001's free_pmd_range concern. P processes share a file's page tables
 * (MAP_SHARED_PT), touch the first half, meet; then some exit at once while the rest keep
 * faulting the second half in and re-reading the first (more pages than a TLB holds, so they
 * walk the shared tables again). A guest's exit must not free tables the others still use:
 * with `--bug rfc-v2-free-shared-pmd` it does, and the use-after-free check catches the next walk
 * through the freed table (or, at the latest, the survivors' barrier or the host's teardown) —
 * unless a survivor first stores through a TLB entry filled from that table, which the exit's
 * shootdown (the exiting mm's CPUs alone) left behind: stale-tlb-write.
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, MiB, rng, sizeMachine, type Scenario } from './common.js';

export const exitVsFault: Scenario = {
  name: 'exit-vs-fault',
  summary: 'sharers exit while others fault on the same shared page tables',
  details: 'checkers: use-after-free (a walk through a freed page-table page), stale-tlb-write (a store through a TLB entry filled from it before it was freed); planted bug: map-shared-pt --bug rfc-v2-free-shared-pmd',
  defaults: { procs: 4, size: 2 * MiB, ops: 4 },
  build(o) {
    const rand = rng(o.seed);
    const half = Math.floor(o.size / 2 / 4096) * 4096;
    const exiters = Math.max(1, Math.floor(o.procs / 2));
    const programs: Program[] = [];
    for (let p = 0; p < o.procs; p++) {
      const prog: Op[] = mapSharedSegment(p, '/evf', o.size, 'm', o.model);
      prog.push({ op: 'touch', region: 'm', len: half, write: true });
      prog.push({ op: 'barrier', id: 1 });
      if (p === 0) prog.push({ op: 'shm_unlink', name: '/evf' });
      // Which processes exit early is the seed's choice.
      // mshare's owner takes the region with it (the others then SIGSEGV by rule): it stays.
      const exitsEarly = (p + Math.floor(rand() * o.procs)) % o.procs < exiters && !(o.model === 'mshare' && p === 0);
      if (!exitsEarly) {
        for (let i = 0; i < o.ops; i++) {
          const from = Math.floor(rand() * 8) * 4096;
          prog.push({ op: 'touch', region: 'm', offset: half + from, len: o.size - half - from, write: rand() < 0.5 });
          prog.push({ op: 'touch', region: 'm', offset: 0, len: half, write: false });
        }
        prog.push({ op: 'barrier', id: 2 });
      }
      prog.push({ op: 'exit', code: 0 });
      programs.push(prog);
    }
    return {
      programs,
      config: sizeMachine({ cpus: o.cpus, procs: o.procs, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 1, mem: o.mem }),
    };
  },
};
