/**
 * Controlled mode's strategies, one interface (after awslabs/shuttle's Scheduler): given the CPUs
 * that can run at decision `d`, pick one. All their state lives in machine memory, because the
 * CPU that decides changes from one decision to the next; the main thread sets it up before the
 * CPUs start, from the seed alone, so a seed always gives the same decisions.
 */
import {
  C_PRIO, CPU_WORDS, G_SCHED_CHANGE, G_SCHED_DEPTH, G_SCHED_LEN, G_SCHED_MODE, G_SCHED_RNG, G_SCHED_STEPS, G_TURN,
  G_DECISIONS, type Layout,
} from '../shm/layout.js';

export const enum SchedMode {
  Free = 0,
  Random = 1,
  Pct = 2,
  Replay = 3,
}
export const STRATEGIES = { random: SchedMode.Random, pct: SchedMode.Pct } as const;
export type StrategyName = keyof typeof STRATEGIES;
export const MAX_PCT_DEPTH = 16;

/** xorshift32 on the word at `at`: the next value, never 0. */
export function xorshift(i32: Int32Array, at: number): number {
  let x = Atomics.load(i32, at);
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  Atomics.store(i32, at, x);
  return x >>> 0;
}

export interface SchedSetup {
  mode: SchedMode;
  seed: number;
  /** PCT: the bug depth d (d - 1 priority change points). */
  depth: number;
  /** PCT: the steps (decisions) a run is expected to take, k in the paper. */
  steps: number;
  /** Replay: the decisions to follow, in order. */
  schedule?: number[];
}

/**
 * Machine-memory state for a controlled run, written before any CPU starts (plain writes are
 * allowed then). PCT (Burckhardt et al., ASPLOS 2010): the n CPUs get distinct random priorities
 * d .. d+n-1; d-1 change points are drawn from 1..k; at change point i the running CPU's priority
 * drops to i (below every initial one). ptlab departs from the paper in one way: its "threads"
 * are CPUs, and a CPU blocked on a lock or a flush ack is simply not enabled.
 */
export function setupSchedule(i32: Int32Array, l: Layout, s: SchedSetup): void {
  const n = l.config.cpus;
  i32[G_SCHED_MODE] = s.mode;
  i32[G_SCHED_RNG] = (s.seed * 2654435761 + 0x9e3779b9) | 0 || 1;
  i32[G_SCHED_DEPTH] = Math.min(Math.max(s.depth, 1), MAX_PCT_DEPTH);
  i32[G_SCHED_STEPS] = Math.max(1, s.steps);
  i32[G_DECISIONS] = 0;
  const rand = () => xorshift(i32, G_SCHED_RNG);
  // Distinct priorities d .. d+n-1 in a random order (Fisher-Yates).
  const prios = Array.from({ length: n }, (_, c) => i32[G_SCHED_DEPTH] + c);
  for (let c = n - 1; c > 0; c--) {
    const j = rand() % (c + 1);
    [prios[c], prios[j]] = [prios[j], prios[c]];
  }
  for (let c = 0; c < n; c++) i32[l.cpu + c * CPU_WORDS + C_PRIO] = prios[c];
  for (let j = 0; j < MAX_PCT_DEPTH; j++) i32[G_SCHED_CHANGE + j] = j < i32[G_SCHED_DEPTH] - 1 ? 1 + (rand() % i32[G_SCHED_STEPS]) : -1;
  const sched = s.schedule ?? [];
  i32[G_SCHED_LEN] = Math.min(sched.length, l.schedLogCap);
  for (let d = 0; d < i32[G_SCHED_LEN]; d++) i32[l.schedLog + d] = sched[d];
  // The first turn: the replayed first decision, PCT's highest priority, else a random CPU.
  i32[G_TURN] = s.mode === SchedMode.Replay && sched.length > 0 ? sched[0] % n
    : s.mode === SchedMode.Pct ? prios.indexOf(Math.max(...prios)) : rand() % n;
}

/**
 * The decision: which of `enabled` (CPU ids, ascending, at least one) runs next. `current` is the
 * CPU deciding (PCT's "running thread" for the priority drop). Records the choice in the log.
 */
export function pick(i32: Int32Array, l: Layout, enabled: number[], current: number): number {
  const d = Atomics.add(i32, G_DECISIONS, 1);
  let chosen: number;
  switch (Atomics.load(i32, G_SCHED_MODE)) {
    case SchedMode.Pct: {
      for (let j = 0; j < MAX_PCT_DEPTH; j++) {
        if (Atomics.load(i32, G_SCHED_CHANGE + j) === d) Atomics.store(i32, l.cpu + current * CPU_WORDS + C_PRIO, j);
      }
      chosen = enabled[0];
      let best = -1;
      for (const c of enabled) {
        const p = Atomics.load(i32, l.cpu + c * CPU_WORDS + C_PRIO);
        if (p > best) {
          best = p;
          chosen = c;
        }
      }
      break;
    }
    case SchedMode.Replay: {
      // The given decision if that CPU can run; past the schedule's end (or if it cannot), the
      // lowest enabled CPU — a deterministic default, so a shrunk schedule still replays exactly.
      const want = d < Atomics.load(i32, G_SCHED_LEN) ? Atomics.load(i32, l.schedLog + d) : -1;
      chosen = enabled.includes(want) ? want : enabled[0];
      break;
    }
    default:
      chosen = enabled[xorshift(i32, G_SCHED_RNG) % enabled.length];
  }
  if (d < l.schedLogCap && Atomics.load(i32, G_SCHED_MODE) !== SchedMode.Replay) Atomics.store(i32, l.schedLog + d, chosen);
  return chosen;
}
