/** What every scenario takes and gives, the seeded random numbers, and machine sizing. */
import type { MachineConfig } from '../shm/layout.js';
import type { Op, Program } from '../proc/program.js';
import { segmentRecipe } from './segments.js';

export interface ScenarioOptions {
  procs: number;
  /** Bytes of the shared mapping. */
  size: number;
  /** Operations each process performs after setting up (the scenario says what one is). */
  ops: number;
  seed: number;
  cpus: number;
  /** Simulated physical memory, bytes. */
  mem: number;
  /** The sharing model the run uses: scenarios map their shared segment the model's way. */
  model: string;
  /** A scaled scenario's factor (`--scale`; sga-1500): its size and memory are `scaled` times this. */
  scale: number;
}

/** What a scenario's own report section reads from a finished run. */
export interface RunOutcome {
  procs: number;
  pgtablesHost: number;
  pgtablesGuests: number;
  oomCount: number;
  oomKilled: number;
  killed: number;
  /** The first VM_FAULT_OOM: its process and the page-table pages alive then. */
  firstOom: { process: number; ptPages: number } | null;
}

export interface Scenario {
  name: string;
  summary: string;
  /** What it shows and which checker catches what, for `ptlab list` and the README. */
  details: string;
  defaults: Partial<ScenarioOptions>;
  /** The models whose rules allow this workload, when not every model's do (and why not). */
  models?: { only: string[]; why: string };
  /** The fault-path lock the scenario runs under unless told otherwise (`--fault-lock`). */
  faultLock?: 'mmap' | 'per-vma';
  /** The TLB flush this scenario runs under unless told otherwise (--tlb-flush). */
  tlbFlush?: 'ipi' | 'broadcast';
  /** Set when the scenario needs every process on its own CPU (procs <= cpus): why. */
  pinned?: string;
  /**
   * What `explore` uses when the command line does not say, where that differs from `run`: the
   * strategy (a race whose window needs more exactly placed switches than PCT's change points
   * give) and options (a smaller machine, so a run is a few thousand decisions), and why.
   */
  explore?: { strategy?: 'random' | 'mix'; opts?: Record<string, string>; why: string };
  /**
   * The phase whose speed the scenario is about, between two barriers: faults/s and per-task
   * fairness are measured over it (set-up and teardown left out), and `what` names it. `fairness`:
   * the tasks do like work in it, so their rates compare (not so in sga, where the first toucher
   * of a page does what the others then find done).
   */
  phase?: { from: number; to: number; what: string; fairness?: boolean };
  /** A scaled scenario: `size` and `mem` at scale 1 (each run multiplies them by its `scale`). */
  scaled?: { size: number; mem: number };
  build(o: ScenarioOptions): { programs: Program[]; config: MachineConfig };
  /** The scenario's own report section: JSON under `key`, and lines for people. */
  report?(o: ScenarioOptions, r: RunOutcome): { key: string; json: unknown; lines: string[] };
}

export const MiB = 1024 * 1024;
export const PMD = 2 * MiB;

/** mulberry32: a small seeded generator, so a scenario's programs are a function of its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** "1/100", "0.01" → 0.01; NaN when it is not a scale in (0, 1]. */
export function parseScale(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(\d+(?:\.\d+)?))?\s*$/.exec(s);
  if (!m) return NaN;
  const v = m[2] === undefined ? Number(m[1]) : Number(m[1]) / Number(m[2]);
  return v > 0 && v <= 1 ? v : NaN;
}

/** A scaled scenario's size and memory at `scale`, rounded down to whole 2 MiB and 4 KiB. */
export function scaledSize(at1: { size: number; mem: number }, scale: number): { size: number; mem: number } {
  return { size: Math.max(PMD, Math.floor((at1.size * scale) / PMD) * PMD), mem: Math.floor((at1.mem * scale) / 4096) * 4096 };
}

export interface SizingInput {
  cpus: number;
  procs: number;
  /** Bytes of shared file memory every process maps. */
  sharedBytes: number;
  /** Bytes of private memory per process. */
  privateBytes: number;
  files: number;
  vmasPerProc: number;
  mem: number;
  /**
   * The shared memory is all resident before tables are built (sga-1500): page-table pages can
   * never exceed what the budget leaves beside it, so the pool is no bigger than that.
   */
  residentShared?: boolean;
  /**
   * Pages a process may touch far apart (a scenario file's loads and stores): each may need a
   * PTE table of its own, whatever the mapped bytes.
   */
  sparsePages?: number;
}

/**
 * Pools big enough for the scenario (the physical-memory budget, not pool size, is what a
 * scenario should run out of): every process may own a full set of tables for its mappings.
 */
export function sizeMachine(s: SizingInput): MachineConfig {
  const sharedPages = Math.ceil(s.sharedBytes / 4096);
  const privPages = Math.ceil(s.privateBytes / 4096);
  const pteTablesPerProc = Math.max(Math.ceil((s.sharedBytes + s.privateBytes) / PMD), 2 * (s.sparsePages ?? 0)) + 2 * s.vmasPerProc;
  const tablesPerProc = pteTablesPerProc + 2 * s.vmasPerProc + 2;
  const hosts = s.files + 2;
  let ptPages = s.procs * tablesPerProc + hosts * (Math.ceil(s.sharedBytes / PMD) + 4) + 256;
  if (s.residentShared) ptPages = Math.min(ptPages, Math.max(256, Math.floor(s.mem / 4096) - sharedPages + 256));
  return {
    cpus: s.cpus,
    tasks: s.procs,
    frames: sharedPages + s.procs * privPages + 256,
    ptPages,
    mms: s.procs + hosts + 4,
    vmas: s.procs * (s.vmasPerProc * 3 + 4) + hosts * 4 + 16,
    files: s.files + 8,
    xaNodes: s.files * (Math.ceil(sharedPages / 512) + 4) + 16,
    payloadWords: pageWordsFor(sharedPages + s.procs * privPages + 256),
    memBytes: s.mem,
    barriers: 8,
    fileIds: (s.files + 8) * 4,
  };
}

/**
 * Process `p`'s set-up in the three-process rmap races (reclaim, migration): process 0 creates the
 * shmem file `name` (2 MiB, `size`) and lets the others in at barrier 0; every process maps it
 * MAP_SHARED at the same address `at` (MAP_FIXED: pt-hint shares a table only between mappings of
 * the same file offset at the same offset within a PMD), with MADV_SHARE_PT when `hint`.
 */
export function sharedFileAt(p: number, name: string, at: number, size: number, hint: boolean): Op[] {
  return [
    ...(p === 0
      ? [{ op: 'shm_open', name, create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size }, { op: 'barrier', id: 0 }] as Op[]
      : [{ op: 'barrier', id: 0 }, { op: 'shm_open', name, as: 'fd' }] as Op[]),
    { op: 'mmap', addr: at, len: size, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'm' },
    ...(hint ? [{ op: 'madvise', region: 'm', len: size, advice: 'MADV_SHARE_PT' }] as Op[] : []),
  ];
}

/**
 * cow-pte is opt-in per process (Lin's prctl(PR_SET_COW_PTE)): the op that opts a process in,
 * for programs run under cow-pte; nothing under the other models (where it would be EINVAL).
 */
export function cowPteOptIn(model: string): Op[] {
  return model === 'cow-pte' ? [{ op: 'prctl', option: 'PR_SET_COW_PTE' }] : [];
}

/**
 * The set-up every shared-segment scenario starts with: process 0 creates /dev/shm `name` and
 * sizes it, everyone meets at barrier 0, the others open it, and each maps all of it as `region`
 * the way `model` shares page tables (see segments.ts), and closes its fds. The name stays until
 * process 0 unlinks it, after everyone has opened it.
 */
export function mapSharedSegment(p: number, name: string, size: number, region: string, model: string): Op[] {
  const ops: Op[] = p === 0
    ? [{ op: 'shm_open', name, create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size }]
    : [];
  ops.push(...segmentRecipe(model).map(p, name, size, region));
  return ops;
}

/** Undoes mapSharedSegment's mapping of `region` the way `model` mapped it (see segments.ts). */
export function unmapSharedSegment(region: string, size: number, model: string): Op[] {
  const r = segmentRecipe(model);
  return r.unmap ? r.unmap(region, size) : [{ op: 'munmap', region, len: size }];
}

/** Page data a machine holds at most (words; 256 MiB): past it, frames keep fewer words per page. */
export const PAGE_DATA_BUDGET_WORDS = 2 ** 26;

/**
 * Words of page data per frame for `frames` frames: a whole page (1024 words) when the page data
 * fits PAGE_DATA_BUDGET_WORDS, else the largest power of two that fits (at least 16: 64 bytes).
 * `bytes` (--page-data N) asks for N bytes per page instead.
 */
export function pageWordsFor(frames: number, bytes?: number): number {
  if (bytes !== undefined) return Math.max(1, bytes / 4);
  let w = 1024;
  while (w > 16 && frames * w > PAGE_DATA_BUDGET_WORDS) w /= 2;
  return w;
}
