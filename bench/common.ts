/**
 * What every ptlab benchmark shares: the machine spec for speed runs, summing per-CPU counters,
 * and the record each benchmark prints (one JSON object per line on stdout).
 */
import { availableParallelism } from 'node:os';
import { verdict } from '../src/check/index.js';
import { ST_COUNT } from '../src/mm/percpu.js';
import { runMachine, type MachineRun } from '../src/proc/orchestrator.js';
import type { Program } from '../src/proc/program.js';
import type { MachineConfig } from '../src/shm/layout.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const PAGE = 4096;
export const PMD = 2 * MiB;

/** Simulated memory budget: large, so that no benchmark measures the OOM path. */
export const BENCH_MEM = 64 * GiB;

/**
 * Lock-stat timing (performance.now() around every contended wait) is off in every speed run:
 * it adds its own cost to the paths measured here. Each record says so (lock_stat_timing: false).
 */
export const LOCK_STAT_TIMING = false;

export interface BenchRecord {
  bench: string;
  model: string;
  threads: number;
  /** Operations the rate counts (faults, or accesses). */
  ops: number;
  /** The time the rate divides by (s): time inside the measured ops, not whole-run wall time. */
  seconds: number;
  rate_per_s: number;
  cores: number;
  [extra: string]: unknown;
}

export function cores(): number {
  return availableParallelism();
}

/**
 * Runs `programs` on `cpus` simulated CPUs with the benchmark settings. Throws if the run failed
 * or any checker found a violation (an unexpected errno, a leak...): a rate from a broken run
 * would mean nothing.
 */
export async function runBench(model: string, cpus: number, config: MachineConfig, programs: Program[]): Promise<MachineRun> {
  const run = await runMachine({
    cpus,
    config,
    programs,
    model,
    bug: '',
    deadlineMs: 20_000,
    lockStatTiming: LOCK_STAT_TIMING,
    slice: 4,
    runTimeoutMs: 120_000,
  });
  if (run.timedOut || run.workerErrors.length > 0 || run.cpus.some((c) => c.stopped)) {
    throw new Error(`benchmark run failed (model ${model}): ${run.timedOut ? 'timed out; ' : ''}${run.workerErrors.join('; ')}`);
  }
  const { violations } = verdict(run);
  if (violations.length > 0) {
    throw new Error(`benchmark run broke a check (model ${model}): ${violations.map((v) => `${v.checker}: ${v.message}`).join('; ')}`);
  }
  return run;
}

/** Counter `st` summed over every CPU. */
export function sum(run: MachineRun, st: number): number {
  return run.cpus.reduce((a, c) => a + c.stats[st], 0);
}

/** Counter `st` of each CPU. */
export function perCpu(run: MachineRun, st: number): number[] {
  return run.cpus.map((c) => c.stats[st]);
}

/** All counters summed over every CPU. */
export function totals(run: MachineRun): Float64Array {
  const t = new Float64Array(ST_COUNT);
  for (const c of run.cpus) for (let i = 0; i < ST_COUNT; i++) t[i] += c.stats[i];
  return t;
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Prints one record as one JSON line (the machine-readable output). */
export function emit(r: BenchRecord): BenchRecord {
  process.stdout.write(`${JSON.stringify(r)}\n`);
  return r;
}
