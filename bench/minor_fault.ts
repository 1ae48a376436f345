/**
 * minor-fault (will-it-scale's page_fault3 shape: MAP_SHARED file faults), model `none`:
 * minor faults per second on pages already in the page cache, with 1 and with 2 simulated CPUs.
 *
 * Each process has its own /dev/shm file (disjoint mms, disjoint files: nothing shared but the
 * machine's allocators and run queue). It sizes the file, maps it MAP_SHARED, populates the page
 * cache, unmaps, meets the others at a barrier, then runs R rounds of
 * mmap / touch every page with a write (stride 4096: one fault per page) / munmap.
 *
 * How the populating round is kept out of the figure: it is done with one `store` op per page,
 * not with a `touch`. Only `touch` ops add to ST_ACCESS_MS and ST_ACCESS_FAULTS (src/proc/cpu.ts),
 * so the time and faults the rate uses are exactly those of the R timed rounds. The record
 * double-checks it: faults must equal R x pages per process, every one a page-cache hit
 * (ST_FAULT_MAP), while the populating stores account for exactly `pages` allocating faults
 * (ST_FAULT_ALLOC) per process. mmap and munmap (page-table teardown) are outside the timed ops.
 *
 * Rate: 1 thread = faults / touch time. 2 threads = aggregate: total faults / the longest
 * per-CPU touch time (both CPUs start their rounds together, after the barrier). Each run starts
 * fresh worker threads, so JIT warm-up is inside the figure; R is large enough (120 rounds, about
 * a million faults per thread) to amortise it: with 40 rounds the 2-thread figure came out lower
 * and noisier (likely V8's compiler threads competing with two busy workers for two cores).
 */
import type { Op, Program } from '../src/proc/program.js';
import { ST_ACCESS_FAULTS, ST_ACCESS_MS, ST_FAULT_ALLOC, ST_FAULT_MAP, ST_FAULTS } from '../src/mm/percpu.js';
import { sizeMachine } from '../src/scenarios/common.js';
import { BENCH_MEM, cores, LOCK_STAT_TIMING, MiB, PAGE, perCpu, round, runBench, sum, type BenchRecord } from './common.js';

export interface MinorFaultOptions {
  threads: number;
  fileBytes: number;
  rounds: number;
}

export const MINOR_FAULT_DEFAULTS = { fileBytes: 32 * MiB, rounds: 120 };

function program(p: number, procs: number, o: MinorFaultOptions): Program {
  const name = `/bench-minor-fault-${p}`;
  const prog: Op[] = [
    { op: 'shm_open', name, create: true, excl: true, as: 'fd' },
    { op: 'ftruncate', fd: 'fd', size: o.fileBytes },
    { op: 'mmap', len: o.fileBytes, flags: ['MAP_SHARED'], fd: 'fd', as: 'pop' },
  ];
  // The populating round: untimed stores, one per page (allocates the page cache).
  for (let off = 0; off < o.fileBytes; off += PAGE) prog.push({ op: 'store', region: 'pop', offset: off });
  prog.push({ op: 'munmap', region: 'pop', len: o.fileBytes });
  prog.push({ op: 'barrier', id: 0, count: procs });
  for (let r = 0; r < o.rounds; r++) {
    prog.push({ op: 'mmap', len: o.fileBytes, flags: ['MAP_SHARED'], fd: 'fd', as: 'r' });
    prog.push({ op: 'touch', region: 'r', len: o.fileBytes, stride: PAGE, write: true });
    prog.push({ op: 'munmap', region: 'r', len: o.fileBytes });
  }
  prog.push({ op: 'close', fd: 'fd' });
  prog.push({ op: 'shm_unlink', name });
  prog.push({ op: 'exit', code: 0 });
  return prog;
}

export async function benchMinorFault(o: MinorFaultOptions): Promise<BenchRecord> {
  const procs = o.threads;
  const pages = o.fileBytes / PAGE;
  const programs = Array.from({ length: procs }, (_, p) => program(p, procs, o));
  const config = sizeMachine({
    cpus: procs, procs, sharedBytes: procs * o.fileBytes, privateBytes: 0, files: procs, vmasPerProc: 2, mem: BENCH_MEM,
  });
  const run = await runBench('none', procs, config, programs);
  const faults = sum(run, ST_ACCESS_FAULTS);
  const cpuMs = perCpu(run, ST_ACCESS_MS);
  const cpuFaults = perCpu(run, ST_ACCESS_FAULTS);
  const seconds = Math.max(...cpuMs) / 1000;
  const expected = o.rounds * pages * procs;
  const ok = faults === expected && sum(run, ST_FAULT_MAP) === expected && sum(run, ST_FAULT_ALLOC) === pages * procs &&
    sum(run, ST_FAULTS) === expected + pages * procs;
  return {
    bench: 'minor-fault',
    model: 'none',
    threads: o.threads,
    ops: faults,
    seconds: round(seconds, 4),
    rate_per_s: Math.round(faults / seconds),
    cores: cores(),
    oversubscribed: o.threads > cores(),
    rate_is: o.threads > 1 ? 'aggregate: total faults / longest per-CPU touch time' : 'faults / touch time',
    per_thread: cpuMs.map((ms, c) => ({ cpu: c, faults: cpuFaults[c], touch_ms: round(ms, 1), rate_per_s: Math.round(cpuFaults[c] / (ms / 1000)) })),
    file_bytes: o.fileBytes,
    pages,
    rounds: o.rounds,
    populate: 'one untimed store op per page before the timed rounds',
    counts_check: ok ? 'ok' : `MISMATCH: expected ${expected} page-cache faults, got ${faults} (ST_FAULT_MAP ${sum(run, ST_FAULT_MAP)}, ST_FAULT_ALLOC ${sum(run, ST_FAULT_ALLOC)})`,
    run_seconds: round(run.seconds, 3),
    lock_stat_timing: LOCK_STAT_TIMING,
  };
}
