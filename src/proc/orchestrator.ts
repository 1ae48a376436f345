/**
 * The orchestrator (main thread): builds the machine, queues the tasks, starts one piscina worker
 * per simulated CPU, and collects what they return. It never takes kernel locks. A run that
 * outlives its deadline is stopped through machine memory (G_STOP), and its workers are
 * terminated if they do not stop in time, so a run always ends.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import {
  G_LIVE_TASKS, G_NEXT_PID, G_STOP, MAX_FDS, StopReason, T_FD, T_MM, T_PID, TASK_NEW, TASK_RUNNABLE, TASK_WORDS,
  T_STATE, type MachineConfig,
} from '../shm/layout.js';
import { createMachine, type Machine } from '../shm/machine.js';
import type { CpuParams, CpuResult } from './cpu.js';
import type { Program } from './program.js';
import { rq_init } from './runqueue.js';

export interface MachineSpec {
  cpus: number;
  config: MachineConfig;
  programs: Program[];
  model: string;
  bug: string;
  /** Deadline of every wait inside the machine (the watchdog), ms. */
  deadlineMs: number;
  lockStatTiming: boolean;
  /** The mmap_lock protocol (mm/mmap_lock.ts); rwsem when absent. */
  mmapLock?: string;
  /** The host mms' mmap_lock protocol (sharing models); mmapLock's when absent. Either may be a lock plugin's key (sync/lock_plugin.ts). */
  hostLock?: string;
  /** The fault path's lock: mmap_lock, or per-VMA locks first (mm/mmap_lock.ts); mmap when absent. */
  faultLock?: 'mmap' | 'per-vma';
  /** PTE-table locks: split (one per table) or the mm's page_table_lock (mm/ptlock.ts); split when absent. */
  ptl?: 'split' | 'mm';
  /** Remote TLB flushes by interrupt (x86) or broadcast invalidation (arm64 TLBI): ipi when absent. */
  tlbFlush?: 'ipi' | 'broadcast';
  /** The GUP-fast sync after an unshare: per-unshare (the 2025 fix) or batched (mmu_gather); per-unshare when absent. */
  unshareFlush?: 'per-unshare' | 'batched';
  /** Check each guarded kernel write against its declared lock (mm/guarded.ts); off when absent. */
  lockset?: boolean;
  slice: number;
  /** The scenario's phase: lock_stat covers it alone (cleared past `lockStatFrom`, kept past `lockStatTo`). */
  lockStatFrom?: number;
  lockStatTo?: number;
  /** Wall-clock limit of the whole run, ms. */
  runTimeoutMs: number;
  /**
   * Controlled mode: called on the new machine before any CPU starts, to write the strategy's
   * state (src/sched sets it up; the orchestrator does not know strategies).
   */
  controlled?: (m: Machine) => void;
  /** Called with the machine before the CPUs start; what it returns is called when they are done (a progress bar's poll). */
  watch?: (m: Machine) => () => void;
  /** Record a trace on every CPU (CpuResult.trace). */
  trace?: boolean;
  /** Each task runs until it blocks or exits (diff-kernel's deterministic order). */
  cooperative?: boolean;
}

export interface MachineRun {
  spec: MachineSpec;
  machine: Machine;
  cpus: CpuResult[];
  seconds: number;
  cores: number;
  /** Errors of workers that did not return (crashed or terminated). */
  workerErrors: string[];
  timedOut: boolean;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && JSON.parse(readFileSync(pj, 'utf8')).name === 'ptlab') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the ptlab package root');
    dir = up;
  }
}

export function workerPath(name = 'worker.mjs'): string {
  const p = join(packageRoot(), 'dist', name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`npm run build\``);
  return p;
}

/**
 * Tasks start with no mm (created on first run), no fds, no regions; the programs' `tasks` are
 * queued, the records past them (fork's children) wait in TASK_NEW for their fork.
 */
export function initTasks(m: Machine, tasks: number): void {
  const { i32, layout } = m;
  for (let t = 0; t < layout.config.tasks; t++) {
    const b = layout.tasks + t * TASK_WORDS;
    i32[b + T_STATE] = t < tasks ? TASK_RUNNABLE : TASK_NEW;
    i32[b + T_MM] = -1;
    i32[b + T_PID] = t;
    for (let f = 0; f < MAX_FDS; f++) i32[b + T_FD + 2 * f] = -1;
  }
  i32[G_LIVE_TASKS] = tasks;
  i32[G_NEXT_PID] = tasks;
  rq_init(i32, layout.runqueue, tasks);
}

/** A pool of `cpus` CPU workers; runs may share one (explore does: worker start-up dominates small runs). */
export function createCpuPool(cpus: number): Piscina {
  return new Piscina({
    filename: workerPath(),
    minThreads: cpus,
    maxThreads: cpus,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: 1,
  });
}

/** Runs the machine on `shared` (a pool of exactly spec.cpus workers, left running) or a pool of its own. */
export async function runMachine(spec: MachineSpec, shared?: Piscina): Promise<MachineRun> {
  const machine = createMachine(spec.config);
  initTasks(machine, spec.programs.length);
  spec.controlled?.(machine);
  const unwatch = spec.watch?.(machine);
  const cores = availableParallelism();
  const pool = shared ?? createCpuPool(spec.cpus);
  const t0 = performance.now();
  const origin = performance.timeOrigin + t0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    Atomics.compareExchange(machine.i32, G_STOP, StopReason.None, StopReason.Watchdog);
    setTimeout(() => void pool.destroy(), 5000).unref();
  }, spec.runTimeoutMs);
  const workerErrors: string[] = [];
  const results = await Promise.allSettled(
    Array.from({ length: spec.cpus }, (_, cpu) => {
      const p: CpuParams = {
        sab: machine.sab,
        config: spec.config,
        cpu,
        programs: spec.programs,
        model: spec.model,
        bug: spec.bug,
        deadlineMs: spec.deadlineMs,
        lockStatTiming: spec.lockStatTiming,
        mmapLock: spec.mmapLock ?? 'rwsem',
        hostLock: spec.hostLock ?? spec.mmapLock ?? 'rwsem',
        faultLock: spec.faultLock ?? 'mmap',
        ptl: spec.ptl ?? 'split',
        tlbFlush: spec.tlbFlush ?? 'ipi',
        unshareFlush: spec.unshareFlush ?? 'batched',
        lockset: spec.lockset === true,
        spin: spec.cpus <= cores,
        slice: spec.slice,
        lockStatFrom: spec.lockStatFrom ?? -1,
        lockStatTo: spec.lockStatTo ?? -1,
        controlled: spec.controlled !== undefined,
        cooperative: spec.cooperative,
        trace: spec.trace,
        traceOrigin: origin,
      };
      return pool.run(p) as Promise<CpuResult>;
    }),
  );
  clearTimeout(timer);
  unwatch?.();
  const seconds = (performance.now() - t0) / 1000;
  if (!shared || timedOut) await pool.destroy();
  const cpus: CpuResult[] = [];
  results.forEach((r, cpu) => {
    if (r.status === 'fulfilled') {
      cpus.push(r.value);
      if (r.value.error) workerErrors.push(`cpu${cpu}: ${r.value.error}`);
    } else workerErrors.push(`cpu${cpu}: ${String(r.reason)}`);
  });
  return { spec, machine, cpus, seconds, cores, workerErrors, timedOut };
}
