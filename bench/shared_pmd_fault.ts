/**
 * shared-pmd-fault, model `map-shared-pt`: guest faults per second when the host's page tables
 * are already complete, so that each fault only copies one host PMD entry into the guest
 * (ST_FAULT_SHARED_PMD) and finds the PTE present.
 *
 * Process 0 creates a /dev/shm file, maps all of it MAP_SHARED | MAP_SHARED_PT (size a multiple
 * of 2 MiB) and populates it: every host PTE present. Then a barrier. Then each guest runs R
 * rounds of mmap (same flags; it attaches to the host) / touch one page per 2 MiB (stride 2 MiB,
 * loads: guests do not contend on the same payload words) / munmap (the guest's PMD entries go).
 * Process 0 keeps its mapping until every guest is done, so the host and its tables live on.
 *
 * How the populating is kept out of the figure: process 0 populates with one `store` op per page,
 * not with a `touch`, and only `touch` ops add to ST_ACCESS_MS and ST_ACCESS_FAULTS
 * (src/proc/cpu.ts). A program holds at most 100,000 ops, so the mapping is 256 MiB (128 PMDs,
 * 65,536 pages) rather than 1 GiB; the fault itself does not depend on the mapping's size. The
 * record checks that the timed faults are exactly guests x R x PMDs, every one a PMD copy
 * (process 0's own 128 PMD copies happen inside its untimed stores and are left out).
 *
 * Run on 1 and on 2 simulated CPUs. The 4 guests outnumber the CPUs and share them through the
 * run queue, between ops only, so a touch is never interrupted by a task switch. Rate = aggregate:
 * guest faults / the longest per-CPU touch time.
 */
import type { Op, Program } from '../src/proc/program.js';
import { ST_ACCESS_FAULTS, ST_ACCESS_MS, ST_FAULT_ALLOC, ST_FAULT_SHARED_PMD, ST_FAULT_SPURIOUS } from '../src/mm/percpu.js';
import { sizeMachine } from '../src/scenarios/common.js';
import { BENCH_MEM, cores, LOCK_STAT_TIMING, MiB, PAGE, perCpu, PMD, round, runBench, sum, type BenchRecord } from './common.js';

export interface SharedPmdOptions {
  cpus: number;
  guests: number;
  mapBytes: number;
  rounds: number;
}

export const SHARED_PMD_DEFAULTS = { guests: 4, mapBytes: 256 * MiB, rounds: 1000 };

const NAME = '/bench-shared-pmd';
const FLAGS: Extract<Op, { op: 'mmap' }>['flags'] = ['MAP_SHARED', 'MAP_SHARED_PT'];

function host(o: SharedPmdOptions): Program {
  const prog: Op[] = [
    { op: 'shm_open', name: NAME, create: true, excl: true, as: 'fd' },
    { op: 'ftruncate', fd: 'fd', size: o.mapBytes },
    { op: 'mmap', len: o.mapBytes, flags: FLAGS, fd: 'fd', as: 'm' },
  ];
  // Populating: untimed stores, one per page (every host PTE present).
  for (let off = 0; off < o.mapBytes; off += PAGE) prog.push({ op: 'store', region: 'm', offset: off });
  prog.push({ op: 'barrier', id: 0 });
  prog.push({ op: 'barrier', id: 1 });
  prog.push({ op: 'munmap', region: 'm', len: o.mapBytes });
  prog.push({ op: 'close', fd: 'fd' });
  prog.push({ op: 'shm_unlink', name: NAME });
  prog.push({ op: 'exit', code: 0 });
  return prog;
}

function guest(o: SharedPmdOptions): Program {
  const prog: Op[] = [{ op: 'barrier', id: 0 }, { op: 'shm_open', name: NAME, as: 'fd' }];
  for (let r = 0; r < o.rounds; r++) {
    prog.push({ op: 'mmap', len: o.mapBytes, flags: FLAGS, fd: 'fd', as: 'm' });
    prog.push({ op: 'touch', region: 'm', len: o.mapBytes, stride: PMD, write: false });
    prog.push({ op: 'munmap', region: 'm', len: o.mapBytes });
  }
  prog.push({ op: 'close', fd: 'fd' });
  prog.push({ op: 'barrier', id: 1 });
  prog.push({ op: 'exit', code: 0 });
  return prog;
}

export async function benchSharedPmdFault(o: SharedPmdOptions): Promise<BenchRecord> {
  if (o.mapBytes % PMD !== 0) throw new RangeError('shared-pmd-fault: the mapping must be a multiple of 2 MiB');
  const pmds = o.mapBytes / PMD;
  const procs = 1 + o.guests;
  const programs = [host(o), ...Array.from({ length: o.guests }, () => guest(o))];
  const config = sizeMachine({
    cpus: o.cpus, procs, sharedBytes: o.mapBytes, privateBytes: 0, files: 1, vmasPerProc: 2, mem: BENCH_MEM,
  });
  const run = await runBench('map-shared-pt', o.cpus, config, programs);
  const faults = sum(run, ST_ACCESS_FAULTS);
  const cpuMs = perCpu(run, ST_ACCESS_MS);
  const cpuFaults = perCpu(run, ST_ACCESS_FAULTS);
  const seconds = Math.max(...cpuMs) / 1000;
  const expected = o.guests * o.rounds * pmds;
  const pmdCopies = sum(run, ST_FAULT_SHARED_PMD) - pmds; // less process 0's own, in its stores
  const ok = faults === expected && pmdCopies === expected && sum(run, ST_FAULT_ALLOC) === o.mapBytes / PAGE;
  return {
    bench: 'shared-pmd-fault',
    model: 'map-shared-pt',
    threads: o.cpus,
    ops: faults,
    seconds: round(seconds, 4),
    rate_per_s: Math.round(faults / seconds),
    cores: cores(),
    oversubscribed: o.cpus > cores(),
    rate_is: 'aggregate: guest faults (each a host PMD entry copied) / longest per-CPU touch time',
    per_thread: cpuMs.map((ms, c) => ({ cpu: c, faults: cpuFaults[c], touch_ms: round(ms, 1), rate_per_s: Math.round(cpuFaults[c] / (ms / 1000)) })),
    guests: o.guests,
    map_bytes: o.mapBytes,
    pmds,
    rounds: o.rounds,
    shared_pmd_faults: pmdCopies,
    pte_already_present: sum(run, ST_FAULT_SPURIOUS),
    populate: 'process 0, one untimed store op per page, before the barrier',
    counts_check: ok ? 'ok' : `MISMATCH: expected ${expected} timed faults, all PMD copies; got ${faults} timed, ${pmdCopies} guest PMD copies, ${sum(run, ST_FAULT_ALLOC)} pages allocated`,
    run_seconds: round(run.seconds, 3),
    lock_stat_timing: LOCK_STAT_TIMING,
  };
}
