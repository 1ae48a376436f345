/**
 * sga — seed 001's database: M processes map one shared memory segment (a /dev/shm file of size
 * S, like an Oracle SGA) with MAP_SHARED | MAP_SHARED_PT, touch all of it, then run `ops` rounds
 * of loads and stores at seeded offsets, meet at a barrier (where the invariants are checked and
 * page-table memory is measured, every process fully mapped), and exit. Under `none` every process
 * pays for its own PTEs; under `map-shared-pt` one host's tables serve all.
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, MiB, rng, sizeMachine, unmapSharedSegment, type Scenario } from './common.js';

export const sga: Scenario = {
  name: 'sga',
  summary: 'M processes map one shared segment of size S, touch it concurrently with loads and stores, then exit',
  details: 'the page-table memory figure (pgtables_bytes.total) is taken at the barrier where every process has the whole segment mapped',
  defaults: { procs: 8, size: 64 * MiB, ops: 16 },
  phase: { from: 1, to: 2, what: 'the touches (barrier 1 to 2)' },
  build(o) {
    const rand = rng(o.seed);
    const chunk = Math.min(o.size, 256 * 1024);
    const programs: Program[] = [];
    for (let p = 0; p < o.procs; p++) {
      const prog: Op[] = mapSharedSegment(p, '/sga', o.size, 'sga', o.model);
      prog.push({ op: 'barrier', id: 1 });
      if (p === 0) prog.push({ op: 'shm_unlink', name: '/sga' });
      // Every process touches the whole segment (its own pass starts at its own offset).
      const start = Math.floor(rand() * (o.size / 4096)) * 4096;
      prog.push({ op: 'touch', region: 'sga', offset: start, len: o.size - start, write: p % 2 === 0 });
      if (start > 0) prog.push({ op: 'touch', region: 'sga', offset: 0, len: start, write: p % 2 === 0 });
      for (let i = 0; i < o.ops; i++) {
        const off = Math.floor(rand() * ((o.size - chunk) / 4096 + 1)) * 4096;
        prog.push({ op: 'touch', region: 'sga', offset: off, len: chunk, stride: 512, write: rand() < 0.5, value: 1 + (p % 7) });
      }
      prog.push({ op: 'barrier', id: 2 });
      prog.push(...unmapSharedSegment('sga', o.size, o.model));
      prog.push({ op: 'exit', code: 0 });
      programs.push(prog);
    }
    return {
      programs,
      config: sizeMachine({ cpus: o.cpus, procs: o.procs, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 1, mem: o.mem }),
    };
  },
};
