/**
 * Runs one scenario under one model and turns the machine's state into a report: the figures a
 * kernel developer asks for, and the checkers' verdict.
 */
import * as hdr from 'hdr-histogram-js';
import { availableParallelism } from 'node:os';
import { B_RELEASE_US, BARRIER_WORDS, computeLayout, MAX_MACHINE_WORDS, G_DECISIONS, G_SCHED_NREC, T_ARRIVE_FAULTS, T_ARRIVE_US, T_PREV_ARRIVE_FAULTS, type Layout, G_MEM_PEAK, G_NAMES_LEFT, G_OP_SEQ, G_OOM_COUNT, G_OOM_FIRST_PT, G_OOM_FIRST_TASK, G_OOM_FIRST_USED, G_SNAP_TASKS, G_PT_SNAP, G_PT_SNAP_HOST, G_SNAPS, PL_PEAK, T_KILLED, T_SIGNALS, TASK_WORDS } from '../shm/layout.js';
import { poolsOf } from '../shm/machine.js';
import { type LockHistogram, mergeLockHistograms } from '../sync/lock_hist.js';
import { lockStatRows, mergeLockPoints, mergeLockStats, newLockPointMerge, newLockStats, type LockClassStats } from '../sync/lock_stat.js';
import { LOCK_CLASS_COUNT } from '../sync/lockdep.js';
import { MODELS } from '../models/index.js';
import {
  ST_ACCESSES, ST_COUNT, ST_COW_PTE_COPIED, ST_COW_PTE_REUSED, ST_COW_PTE_SHARED, ST_FAULTS, ST_FAULT_ALLOC, ST_FAULT_MAP, ST_FAULT_OOM,
  ST_FAULT_RETRY, ST_FAULT_SHARED_PMD, ST_FAULT_SIGSEGV, ST_FAULT_SPURIOUS, ST_FAULT_WP, ST_FORKS, ST_FORK_MS, ST_GUP_FAST, ST_GUP_SLOW,
  ST_IPIS_SENT, ST_IPIS_TAKEN, ST_LOADS, ST_TABLE_SYNCS,
  ST_SHOOTDOWNS, ST_STORES, ST_TLB_FLUSHES, ST_WALKS, ST_CTX_SWITCHES,
  ST_AS_GRANTS, ST_AS_GRANT_MS, ST_AS_REVOKES, ST_AS_REVOKE_MS,
  ST_UFFD_SYSCALLS, ST_UFFD_ENTRY_WRITES, ST_UFFD_WAKEUPS, ST_UFFD_EVENTS, ST_VMA_LOCK_ABORT, ST_VMA_LOCK_MISS, ST_VMA_LOCK_SUCCESS,
  ST_RECLAIM_ACCESSED, ST_RECLAIM_PAGES, ST_RECLAIM_PTES, ST_MIGRATE_FAILED, ST_MIGRATE_PAGES, ST_MIGRATE_WAITS,
} from '../mm/percpu.js';
import { runMachine } from '../proc/orchestrator.js';
import type { Machine } from '../shm/machine.js';
import { progressBar } from './shard.js';
import type { OpResult } from '../proc/program.js';
import type { Piscina } from 'piscina';
import { verdict, type ViolationReport } from '../check/index.js';
import { resolveScenario } from '../scenarios/index.js';
import { setupSchedule, type SchedSetup } from '../sched/strategy.js';
import { pageWordsFor, scaledSize, type ScenarioOptions } from '../scenarios/common.js';
import { type RunOptions, UsageError } from './options.js';

export interface RunReport {
  ok: boolean;
  scenario: string;
  model: string;
  bug: string | null;
  /** The mmap_lock protocol (--mmap-lock): rwsem, qrwlock, or a lock plugin's path. */
  mmap_lock: string;
  /** The host mms' mmap_lock protocol (--host-lock; sharing models), the fault path's lock (--fault-lock) and the PTE-table locks (--ptl). */
  host_lock: string;
  fault_lock: 'mmap' | 'per-vma';
  tlb_flush: 'ipi' | 'broadcast';
  unshare_flush: 'per-unshare' | 'batched';
  ptl: 'split' | 'mm';
  seed: number;
  cpus: number;
  procs: number;
  cores: number;
  size: number;
  ops: number;
  seconds: number;
  faults: {
    total: number;
    pte_from_page_cache: number;
    page_allocated: number;
    write_protect: number;
    shared_pmd_copied: number;
    spurious: number;
    retried: number;
    sigsegv: number;
    oom: number;
  };
  faults_per_s: number;
  /**
   * The scenario's measured phase (its `phase`): its length, faults/s over it, and each task's
   * faults/s from the phase's start to its own arrival at the closing barrier, with locktorture's
   * fairness figures (max/min, unfair when max/2 > min). Absent when the scenario has no phase.
   */
  phase?: { what: string; seconds: number; faults: number; faults_per_s: number; per_task_faults_per_s: number[]; fairness?: { max_over_min: number; unfair: boolean } };
  /** Per-VMA locks (/proc/vmstat vma_lock_*): faults done under the VMA's lock, fallbacks to mmap_lock, VMAs found detached. */
  vma_lock: { success: number; abort: number; miss: number };
  accesses: { loads: number; stores: number; tlb_walks: number };
  /** table_syncs: tlb_remove_table_sync_one broadcasts (IPIs to every other CPU, counted in ipis_sent too). */
  tlb: { local_flushes: number; shootdowns: number; ipis_sent: number; ipis_taken: number; table_syncs: number; context_switches: number };
  /** get_user_pages_fast: pages the lockless walk took, and fallbacks to the slow path. */
  gup: { fast: number; slow: number };
  /** When the programs forked: forks done, IPIs sent over the run per fork (shootdowns and table syncs), fork latency (µs, HdrHistogram). */
  forks?: number;
  ipis_per_fork?: number;
  fork_latency_us?: { p50: number; p99: number; mean: number };
  pgtables_bytes: { total: number; host: number; guests: number; per_process: number; measured_at: string; peak: number };
  /** The budget, its peak use, and the VM_FAULT_OOMs: the first one's process and what memory held then (all of it charged, and in page tables). */
  memory: { budget_bytes: number; peak_bytes: number; oom: { count: number; first_process: number | null; at_first: { charged_bytes: number; pgtables_bytes: number } | null } };
  processes: { total: number; killed_by_signal: number; oom_killed: number; signals_taken: number };
  /**
   * Names (/dev/shm, msharefs, container and address-space names) still linked when the last
   * process exited: in Linux they simply live on; ptlab releases them then, as unmounting would,
   * so what they held is not counted as a leak.
   */
  names_left_linked: number;
  /**
   * What every op did, in the order they ran: {proc, index, op, ret, errno, signal, code, at,
   * value, status}, keys absent where they do not apply (src/proc/program.ts OpResult). At most
   * OP_RESULTS_SHOWN; op_results_total says how many ops ran.
   */
  op_results: OpResult[];
  op_results_total: number;
  /** Bytes of data each 4 KiB page keeps (4096: loads return exactly what was stored; fewer: a page's words fold onto them). */
  page_data_bytes: number;
  locks: LockClassStats[];
  /** What lock_stat covers: the whole run, or the scenario's phase (each CPU clears it when it first runs a task past the phase's opening barrier). */
  lock_stat_over: string;
  violations: ViolationReport[];
  notes: string[];
  machine_bytes: number;
  /** Controlled runs: the decisions the strategy made (and, with RunControl.keepLog, which CPU each chose). */
  schedule?: { decisions: number; switches: number; log?: number[] };
  /** address-space's AS_MMAP (grant) and AS_MUNMAP (revoke, its shootdown wait included): counts and mean wall time; zeros when unused. */
  address_space: { grants: number; grant_us_avg: number; revokes: number; revoke_us_avg: number };
  /** uffd-wp's costs: ioctls (register, write-protect, the handler's unprotects), PTEs and page flags written, writers woken, events queued. */
  uffd: { syscalls: number; entry_writes: number; wakeups: number; events: number };
  /**
   * Reclaim through rmap (the `reclaim` op: shrink_folio_list / try_to_unmap): page-cache pages
   * left mapped nowhere, PTEs cleared, and of those the ones whose accessed bit was set
   * (page_referenced's count: one PTE shared by N processes is one reference, N unshared PTEs N).
   */
  reclaim: { pages: number; ptes_cleared: number; accessed_bits: number };
  /** Page migration (the `migrate` op): pages moved, pages that could not be, and faults that waited on a migration entry. */
  migrate: { pages: number; failed: number; waits: number };
  /** cow-pte: PTE tables fork shared instead of copying, and COW breaks that copied one or gave it back to its last user. */
  cow_pte: { tables_shared: number; breaks_copied: number; breaks_reused: number; forks: number; fork_ms: number };
  /** A scenario's own section (sga-1500: the prediction, the OOM and the 1/1 extrapolation). */
  scenario_report?: { key: string; json: unknown; lines: string[] };
  /** The scale of a scaled scenario (--scale). */
  scale?: number;
}

export const DEFAULT_SEED = 1;
/** Op results a report lists at most (the rest are counted: op_results_total). */
export const OP_RESULTS_SHOWN = 10_000;

export function scenarioOptions(scenario: string, o: RunOptions): ScenarioOptions {
  const sc = resolveScenario(scenario);
  const d = sc.defaults;
  const scale = o.scale ?? d.scale ?? 1;
  const scaled = sc.scaled ? scaledSize(sc.scaled, scale) : undefined;
  return {
    procs: o.procs ?? d.procs ?? 4,
    size: o.size ?? scaled?.size ?? d.size ?? 64 * 1024 * 1024,
    ops: o.ops ?? d.ops ?? 4,
    seed: o.seed ?? DEFAULT_SEED,
    cpus: o.cpus ?? d.cpus ?? Math.min(2, availableParallelism()),
    mem: o.mem ?? scaled?.mem ?? 512 * 1024 ** 3,
    model: o.model,
    scale,
  };
}

/** Controlled mode for one run: the strategy's setup (src/sched/strategy.ts). */
export interface RunControl {
  sched: SchedSetup;
  /** Return every decision (for shrinking and tokens). */
  keepLog?: boolean;
  /** A pool of CPU workers to reuse (as many as the run's CPUs). */
  pool?: Piscina;
  /** Record a trace; it is handed over here, one event list per CPU (src/trace/ring.ts). */
  onTrace?: (cpus: number[][]) => void;
}

/**
 * A progress bar for a free run on a terminal (stderr), shown after 2 s: the programs' ops
 * completed (G_OP_SEQ, polled from machine memory four times a second) over the ops the programs
 * hold (a fork's child runs its own: the count is capped). Nothing on a pipe.
 */
function progressWatch(ops: number): (m: Machine) => () => void {
  return (m) => {
    const bar = progressBar('run (ops)', ops, true);
    const poll = setInterval(() => bar.update(Math.min(ops, Atomics.load(m.i32, G_OP_SEQ))), 250);
    poll.unref();
    return () => {
      clearInterval(poll);
      bar.stop();
    };
  };
}

function scheduleOf(i32: Int32Array, l: Layout, keepLog: boolean): { decisions: number; switches: number; log?: number[] } {
  const decisions = Atomics.load(i32, G_DECISIONS);
  const switches = Atomics.load(i32, G_SCHED_NREC);
  if (!keepLog) return { decisions, switches };
  const n = Math.min(switches * 2, l.schedLogCap & ~1);
  return { decisions, switches, log: Array.from(i32.subarray(l.schedLog, l.schedLog + n)) };
}

export const SCHED_LOG_DECISIONS = 1 << 18;

/** `progress`: a progress bar on a terminal for a free run (the CLI's run; never under --json). */
export async function runScenario(scenario: string, o: RunOptions, control?: RunControl, progress = false): Promise<RunReport> {
  const so = scenarioOptions(scenario, o);
  const sc = resolveScenario(scenario);
  // A plugin built on a catalog model gets the programs written for that model (its mmap flags,
  // its madvise hints, its recipes for the shared segment).
  const { programs, config } = sc.build({ ...so, model: MODELS[so.model]?.basedOn ?? so.model });
  // Page data: whole pages unless the machine is too big for them (or --page-data says).
  config.payloadWords = o.pageData !== undefined ? pageWordsFor(config.frames, o.pageData) : pageWordsFor(config.frames);
  const words = computeLayout(config).words;
  if (words > MAX_MACHINE_WORDS) {
    throw new UsageError(`scenario '${scenario}' at these options needs ${(words / 2 ** 28).toFixed(1)} GiB of machine memory, past ptlab's limit of 8 GiB ` +
      `(word offsets are 31-bit): use a smaller ${sc.scaled ? '--scale' : '--size or --procs'}`);
  }
  const deadlineMs = o.deadline ?? 20_000;
  if (control) config.schedLog = SCHED_LOG_DECISIONS;
  const run = await runMachine({
    controlled: control ? (m) => setupSchedule(m.i32, m.layout, control.sched) : undefined,
    watch: control === undefined && progress ? progressWatch(programs.reduce((n, p) => n + p.length, 0)) : undefined,
    trace: control?.onTrace !== undefined,
    cooperative: o.cooperative,
    cpus: so.cpus,
    config,
    programs,
    model: o.model,
    bug: o.bug ?? '',
    deadlineMs,
    lockStatTiming: o.lockStat ?? true,
    mmapLock: o.mmapLock ?? 'rwsem',
    hostLock: o.hostLock ?? o.mmapLock ?? 'rwsem',
    faultLock: o.faultLock ?? 'mmap',
    ptl: o.ptl ?? 'split',
    tlbFlush: o.tlbFlush ?? 'ipi',
    unshareFlush: o.unshareFlush ?? 'batched',
    // The lockset checks: asked for, or a controlled run (explore, replay, shrink) — never a benchmark.
    lockset: o.lockset ?? control !== undefined,
    slice: 4,
    lockStatFrom: sc.phase?.from,
    lockStatTo: sc.phase?.to,
    runTimeoutMs: Math.max(120_000, deadlineMs * 3),
  }, control?.pool);
  const { violations, notes } = verdict(run);
  control?.onTrace?.(run.cpus.map((c) => c.trace ?? []));
  const st = new Float64Array(ST_COUNT);
  const ls = newLockStats();
  const waitHist: (LockHistogram | null)[] = new Array<LockHistogram | null>(LOCK_CLASS_COUNT * 2).fill(null);
  const holdHist: (LockHistogram | null)[] = new Array<LockHistogram | null>(LOCK_CLASS_COUNT * 2).fill(null);
  const points = newLockPointMerge();
  for (const c of run.cpus) {
    for (let i = 0; i < ST_COUNT; i++) st[i] += c.stats[i];
    mergeLockStats(ls, c.lockStats);
    if (c.lockPoints) mergeLockPoints(points, c.lockPoints);
    if (c.lockHist) {
      mergeLockHistograms(waitHist, c.lockHist.wait);
      mergeLockHistograms(holdHist, c.lockHist.hold);
    }
  }
  const { i32, layout } = run.machine;
  const snaps = Atomics.load(i32, G_SNAPS);
  const peakTables = Atomics.load(i32, poolsOf(layout).ptps.hdr + PL_PEAK);
  const tables = snaps > 0 ? Atomics.load(i32, G_PT_SNAP) : peakTables;
  const hostTables = snaps > 0 ? Atomics.load(i32, G_PT_SNAP_HOST) : 0;
  if (snaps === 0) notes.push('no barrier saw every process: pgtables_bytes.total is the peak of page-table pages alive at once');
  // A scenario file run under a sharing model that shared nothing: say so, rather than a silent 1.0x.
  if (scenario.endsWith('.json') && o.model !== 'none' && st[ST_FAULT_SHARED_PMD] === 0 && hostTables === 0) {
    notes.push(`nothing was shared: the programs map nothing the way ${o.model} shares page tables (${o.model === 'pt-hint' ? 'MAP_SHARED shmem with madvise(MADV_SHARE_PT)' : o.model === 'map-shared-pt' ? 'MAP_SHARED | MAP_SHARED_PT, PMD-aligned' : 'its own device or msharefs files'}; see ptlab list)`);
  }
  let killed = 0;
  let oomKilled = 0;
  let signals = 0;
  for (let t = 0; t < programs.length; t++) {
    const tb = layout.tasks + t * TASK_WORDS;
    const k = Atomics.load(i32, tb + T_KILLED);
    if (k === 9) oomKilled++;
    else if (k !== 0) killed++;
    signals += Atomics.load(i32, tb + T_SIGNALS);
  }
  const firstOom = Atomics.load(i32, G_OOM_FIRST_TASK);
  const namesLeft = Atomics.load(i32, G_NAMES_LEFT);
  const opTotal = Atomics.load(i32, G_OP_SEQ);
  const opResults: OpResult[] = run.cpus.flatMap((c) => c.opResults ?? []).sort((a, b) => a.seq - b.seq).slice(0, OP_RESULTS_SHOWN)
    .map(({ seq: _seq, ...r }) => r);
  if (opTotal > opResults.length) notes.push(`op_results: the first ${opResults.length} of ${opTotal} ops`);
  if (config.payloadWords < 1024) {
    notes.push(`page data: ${config.payloadWords * 4} B of 4 KiB per page (the machine's ${config.frames} frames would not hold whole pages; ` +
      `a page's words fold onto ${config.payloadWords}: a load may return a store made at another offset of its page; --page-data full keeps whole pages)`);
  }
  if (namesLeft > 0) notes.push(`${namesLeft} name(s) left linked at the end (never unlinked): released then, as unmounting would, and not counted as leaks`);
  const oomCount = Atomics.load(i32, G_OOM_COUNT);
  const faults = st[ST_FAULTS];
  const busy = Math.max(1e-9, run.seconds);
  const phase = sc.phase ? phaseOf(i32, layout, programs.length, sc.phase) : undefined;
  const scenarioReport = sc.report?.(so, {
    procs: programs.length,
    pgtablesHost: hostTables * 4096,
    pgtablesGuests: (tables - hostTables) * 4096,
    oomCount,
    oomKilled,
    killed,
    firstOom: firstOom > 0 ? { process: firstOom - 1, ptPages: Atomics.load(i32, G_OOM_FIRST_PT) } : null,
  });
  return {
    ok: violations.length === 0,
    scenario,
    model: o.model,
    bug: o.bug ?? null,
    mmap_lock: o.mmapLock ?? 'rwsem',
    host_lock: o.hostLock ?? o.mmapLock ?? 'rwsem',
    fault_lock: o.faultLock ?? 'mmap',
    ptl: o.ptl ?? 'split',
    tlb_flush: o.tlbFlush ?? 'ipi',
    unshare_flush: o.unshareFlush ?? 'batched',
    seed: so.seed,
    cpus: so.cpus,
    procs: so.procs,
    cores: run.cores,
    size: so.size,
    ops: so.ops,
    seconds: round(run.seconds, 3),
    faults: {
      total: faults,
      pte_from_page_cache: st[ST_FAULT_MAP],
      page_allocated: st[ST_FAULT_ALLOC],
      write_protect: st[ST_FAULT_WP],
      shared_pmd_copied: st[ST_FAULT_SHARED_PMD],
      spurious: st[ST_FAULT_SPURIOUS],
      retried: st[ST_FAULT_RETRY],
      sigsegv: st[ST_FAULT_SIGSEGV],
      oom: st[ST_FAULT_OOM],
    },
    faults_per_s: phase ? phase.faults_per_s : Math.round(faults / busy),
    ...(phase ? { phase } : {}),
    vma_lock: { success: st[ST_VMA_LOCK_SUCCESS], abort: st[ST_VMA_LOCK_ABORT], miss: st[ST_VMA_LOCK_MISS] },
    accesses: { loads: st[ST_LOADS], stores: st[ST_STORES], tlb_walks: st[ST_WALKS] },
    tlb: { local_flushes: st[ST_TLB_FLUSHES], shootdowns: st[ST_SHOOTDOWNS], ipis_sent: st[ST_IPIS_SENT], ipis_taken: st[ST_IPIS_TAKEN], table_syncs: st[ST_TABLE_SYNCS], context_switches: st[ST_CTX_SWITCHES] },
    gup: { fast: st[ST_GUP_FAST], slow: st[ST_GUP_SLOW] },
    ...forkFigures(st, run.cpus.flatMap((c) => c.forkUs ?? [])),
    pgtables_bytes: {
      total: tables * 4096,
      host: hostTables * 4096,
      guests: (tables - hostTables) * 4096,
      per_process: Math.round(((tables - hostTables) * 4096) / Math.max(1, snaps > 0 ? Atomics.load(i32, G_SNAP_TASKS) : so.procs)),
      measured_at: snaps > 0 ? 'the last barrier every live process reached' : 'peak',
      peak: peakTables * 4096,
    },
    memory: {
      budget_bytes: config.memBytes,
      peak_bytes: Atomics.load(i32, G_MEM_PEAK) * 4096,
      oom: {
        count: oomCount,
        first_process: firstOom > 0 ? firstOom - 1 : null,
        at_first: firstOom > 0 ? { charged_bytes: Atomics.load(i32, G_OOM_FIRST_USED) * 4096, pgtables_bytes: Atomics.load(i32, G_OOM_FIRST_PT) * 4096 } : null,
      },
    },
    processes: { total: programs.length, killed_by_signal: killed, oom_killed: oomKilled, signals_taken: signals },
    names_left_linked: namesLeft,
    op_results: opResults,
    op_results_total: opTotal,
    page_data_bytes: config.payloadWords * 4,
    locks: lockStatRows(ls, waitHist, holdHist, points),
    lock_stat_over: sc.phase ? sc.phase.what : 'the whole run',
    violations,
    notes,
    machine_bytes: run.machine.sab.byteLength,
    schedule: control ? scheduleOf(run.machine.i32, run.machine.layout, control.keepLog === true) : undefined,
    address_space: {
      grants: st[ST_AS_GRANTS],
      grant_us_avg: st[ST_AS_GRANTS] > 0 ? round((st[ST_AS_GRANT_MS] * 1000) / st[ST_AS_GRANTS], 2) : 0,
      revokes: st[ST_AS_REVOKES],
      revoke_us_avg: st[ST_AS_REVOKES] > 0 ? round((st[ST_AS_REVOKE_MS] * 1000) / st[ST_AS_REVOKES], 2) : 0,
    },
    uffd: { syscalls: st[ST_UFFD_SYSCALLS], entry_writes: st[ST_UFFD_ENTRY_WRITES], wakeups: st[ST_UFFD_WAKEUPS], events: st[ST_UFFD_EVENTS] },
    reclaim: { pages: st[ST_RECLAIM_PAGES], ptes_cleared: st[ST_RECLAIM_PTES], accessed_bits: st[ST_RECLAIM_ACCESSED] },
    migrate: { pages: st[ST_MIGRATE_PAGES], failed: st[ST_MIGRATE_FAILED], waits: st[ST_MIGRATE_WAITS] },
    cow_pte: { tables_shared: st[ST_COW_PTE_SHARED], breaks_copied: st[ST_COW_PTE_COPIED], breaks_reused: st[ST_COW_PTE_REUSED], forks: st[ST_FORKS], fork_ms: round(st[ST_FORK_MS], 3) },
    ...(sc.scaled ? { scale: so.scale } : {}),
    ...(scenarioReport ? { scenario_report: scenarioReport } : {}),
  };
  void ST_ACCESSES;
}

/** The phase between barriers `from` and `to`: see RunReport.phase. */
function phaseOf(i32: Int32Array, l: Layout, tasks: number, p: { from: number; to: number; what: string; fairness?: boolean }): NonNullable<RunReport['phase']> {
  const t0 = Atomics.load(i32, l.barriers + p.from * BARRIER_WORDS + B_RELEASE_US);
  const t1 = Atomics.load(i32, l.barriers + p.to * BARRIER_WORDS + B_RELEASE_US);
  const seconds = Math.max(1e-6, (t1 - t0) / 1e6);
  const rates: number[] = [];
  let faults = 0;
  for (let t = 0; t < tasks; t++) {
    // The phase's closing barrier is the last one a task meets, its opening one the one before.
    const tb = l.tasks + t * TASK_WORDS;
    const s = Math.max(1e-6, (Atomics.load(i32, tb + T_ARRIVE_US) - t0) / 1e6);
    const f = Atomics.load(i32, tb + T_ARRIVE_FAULTS) - Atomics.load(i32, tb + T_PREV_ARRIVE_FAULTS);
    faults += f;
    rates.push(Math.round(f / s));
  }
  const max = Math.max(...rates);
  const min = Math.min(...rates);
  const fairness = p.fairness ? { max_over_min: min > 0 ? round(max / min, 2) : Infinity, unfair: max / 2 > min } : undefined;
  return { what: p.what, seconds: round(seconds, 4), faults, faults_per_s: Math.round(faults / seconds), per_task_faults_per_s: rates, ...(fairness ? { fairness } : {}) };
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

/** The fork figures of a run that forked (issue "Sharing under fire", item 5): none otherwise. */
function forkFigures(st: Float64Array, samples: number[]): Pick<RunReport, 'forks' | 'ipis_per_fork' | 'fork_latency_us'> {
  const forks = st[ST_FORKS];
  if (forks === 0) return {};
  const h = hdr.build({ useWebAssembly: false, lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  for (const us of samples) h.recordValue(Math.max(1, Math.round(us)));
  const lat = { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), mean: round(h.mean, 1) };
  h.destroy();
  return { forks, ipis_per_fork: round(st[ST_IPIS_SENT] / forks, 2), fork_latency_us: lat };
}
