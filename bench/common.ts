/**
 * What every ptlab benchmark shares: the machine spec for speed runs, summing per-CPU counters,
 * and the record each benchmark prints (one JSON object per line on stdout).
 */
import { stringify } from 'csv-stringify/sync';
import { availableParallelism } from 'node:os';
import { verdict } from '../src/check/index.js';
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

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Runs each benchmark in `benches` `n` times, interleaved (a, b, a, b...: a slow spell of the
 * host hits both sides of a ratio alike), and keeps each one's median run by rate, with every
 * run's rate beside it. Simulated CPUs are worker threads on a shared, often virtual, machine:
 * one run can land on a bad moment. n is odd, so the median is a run that happened.
 */
export async function medians(n: number, benches: Array<() => Promise<BenchRecord> | BenchRecord>): Promise<BenchRecord[]> {
  const runs: BenchRecord[][] = benches.map(() => []);
  for (let i = 0; i < n; i++) for (let b = 0; b < benches.length; b++) runs[b].push(await benches[b]());
  return runs.map((rs) => {
    const mid = [...rs].sort((a, b) => a.rate_per_s - b.rate_per_s)[Math.floor(n / 2)];
    return { ...mid, runs: n, rate_per_s_runs: rs.map((r) => r.rate_per_s) };
  });
}

/**
 * Records as CSV (csv-stringify): one row per record, a column per key any record has (in the
 * order first seen); arrays (a bench's per-run rates) joined by spaces.
 */
export function recordsCsv(records: readonly Record<string, unknown>[]): string {
  const columns = [...new Set(records.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (Array.isArray(v) ? v.join(' ') : v !== null && typeof v === 'object' ? JSON.stringify(v) : v);
  return stringify(records.map((r) => Object.fromEntries(columns.map((c) => [c, cell(r[c])]))), { header: true, columns });
}

/** Prints one record as one JSON line (the machine-readable output). */
export function emit(r: BenchRecord): BenchRecord {
  process.stdout.write(`${JSON.stringify(r)}\n`);
  return r;
}
