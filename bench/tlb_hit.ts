/**
 * tlb-hit, model `none`, 1 thread: loads per second and stores per second that hit the CPU's
 * software TLB (src/mm/mmu.ts: check the flush word, look up the direct-mapped TLB, then
 * Atomics.load or Atomics.add on the frame's payload).
 *
 * The process maps a small file MAP_SHARED (64 pages, fewer than the 256-entry TLB, and 64
 * consecutive pages never collide in a direct-mapped TLB), populates it with one untimed `store`
 * op per page (the faults and TLB fills happen there), then runs one `touch` of many passes over
 * it, stride 512 (8 accesses per page). Only `touch` ops add to ST_ACCESS_MS, so the rate is
 * ST_ACCESSES of the touch / its time, with no fault inside it (the record checks: 0 faults, 0
 * page walks in the timed touch). Loads and stores are two runs, since ST_ACCESS_MS is one sum.
 */
import type { Op, Program } from '../src/proc/program.js';
import { ST_ACCESS_FAULTS, ST_ACCESS_MS, ST_ACCESSES, ST_WALKS } from '../src/mm/percpu.js';
import { sizeMachine } from '../src/scenarios/common.js';
import { BENCH_MEM, cores, LOCK_STAT_TIMING, PAGE, round, runBench, sum, type BenchRecord } from './common.js';

export interface TlbHitOptions {
  write: boolean;
  pages: number;
  stride: number;
  passes: number;
}

export const TLB_HIT_DEFAULTS = { pages: 64, stride: 512, passes: 40_000 };

function program(o: TlbHitOptions): Program {
  const len = o.pages * PAGE;
  const prog: Op[] = [
    { op: 'memfd_create', name: 'bench-tlb-hit', as: 'fd' },
    { op: 'ftruncate', fd: 'fd', size: len },
    { op: 'mmap', len, flags: ['MAP_SHARED'], fd: 'fd', as: 'm' },
  ];
  for (let off = 0; off < len; off += PAGE) prog.push({ op: 'store', region: 'm', offset: off });
  prog.push({ op: 'touch', region: 'm', len, stride: o.stride, write: o.write, passes: o.passes });
  prog.push({ op: 'munmap', region: 'm', len });
  prog.push({ op: 'close', fd: 'fd' });
  prog.push({ op: 'exit', code: 0 });
  return prog;
}

export async function benchTlbHit(o: TlbHitOptions): Promise<BenchRecord> {
  const config = sizeMachine({ cpus: 1, procs: 1, sharedBytes: o.pages * PAGE, privateBytes: 0, files: 1, vmasPerProc: 2, mem: BENCH_MEM });
  const run = await runBench('none', 1, config, [program(o)]);
  const accesses = run.cpus[0].stats[ST_ACCESSES] - o.pages; // less the populating stores
  const seconds = sum(run, ST_ACCESS_MS) / 1000;
  const expected = o.passes * Math.ceil((o.pages * PAGE) / o.stride);
  // Every populating store walks once (the miss; after the fault the TLB is filled from the PTE
  // the fault installed); the timed touch must not walk at all.
  const timedWalks = sum(run, ST_WALKS) - o.pages;
  const ok = accesses === expected && sum(run, ST_ACCESS_FAULTS) === 0 && timedWalks === 0;
  return {
    bench: 'tlb-hit',
    model: 'none',
    threads: 1,
    ops: accesses,
    seconds: round(seconds, 4),
    rate_per_s: Math.round(accesses / seconds),
    cores: cores(),
    ns_per_access: round((seconds * 1e9) / accesses, 1),
    access: o.write ? 'store' : 'load',
    pages: o.pages,
    stride: o.stride,
    passes: o.passes,
    counts_check: ok ? 'ok' : `MISMATCH: expected ${expected} accesses with no fault and no walk; got ${accesses}, ${sum(run, ST_ACCESS_FAULTS)} faults, ${timedWalks} walks`,
    run_seconds: round(run.seconds, 3),
    lock_stat_timing: LOCK_STAT_TIMING,
  };
}
