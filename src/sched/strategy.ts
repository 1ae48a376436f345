/**
 * Controlled mode's strategies, one interface (after awslabs/shuttle's Scheduler): given the CPUs
 * that can run at decision `d`, pick one. All their state lives in machine memory, because the
 * CPU that decides changes from one decision to the next; the main thread sets it up before the
 * CPUs start, from the seed alone, so a seed always gives the same decisions.
 */
import {
  C_PRIO, CPU_WORDS, G_SCHED_CHANGE, G_SCHED_CURSOR, G_SCHED_DEPTH, G_SCHED_LEN, G_SCHED_MODE, G_SCHED_NREC, G_SCHED_RNG,
  G_SCHED_STEPS, G_TURN, G_DECISIONS, type Layout,
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
/**
 * The random walk at a lock-free window's point (SchedPoint >= FIRST_WINDOW_POINT): it leaves the
 * running CPU there only one time in WINDOW_SWITCH_ODDS (then picks uniformly, as elsewhere).
 * Those points come many to a fault; switching at each as often as at a lock would make a long
 * window run by one CPU (the other paused between a read and its use) exponentially rarer.
 */
export const WINDOW_SWITCH_ODDS = 32;

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
  /**
   * Replay: the switches to make, flattened (decision, cpu) pairs in decision order; decision -1
   * is the first turn. Between switches the default holds (see pick).
   */
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
  const pairs = Math.min(sched.length >> 1, l.schedLogCap >> 1);
  i32[G_SCHED_LEN] = pairs;
  for (let w = 0; w < pairs * 2; w++) i32[l.schedLog + w] = sched[w];
  i32[G_SCHED_CURSOR] = 0;
  // The first turn: a replay's decision -1 (else CPU 0), PCT's highest priority, else random.
  let first: number;
  if (s.mode === SchedMode.Replay) {
    first = pairs > 0 && sched[0] === -1 ? sched[1] % n : 0;
    if (pairs > 0 && sched[0] === -1) i32[G_SCHED_CURSOR] = 1;
  } else {
    first = s.mode === SchedMode.Pct ? prios.indexOf(Math.max(...prios)) : rand() % n;
  }
  i32[G_TURN] = first;
  // What a run records: its switches from the default, the first turn as decision -1.
  i32[G_SCHED_NREC] = 0;
  if (s.mode !== SchedMode.Replay && l.schedLogCap >= 2) {
    i32[l.schedLog] = -1;
    i32[l.schedLog + 1] = first;
    i32[G_SCHED_NREC] = 1;
  }
}

/**
 * The decision: which of `enabled` (CPU ids, ascending, at least one) runs next. `current` is the
 * CPU deciding (PCT's "running thread" for the priority drop). The default is to let `current`
 * go on if it can, else the lowest enabled CPU; a run records only where its strategy departed
 * from that default — its switches — so a schedule is as long as its preemptions, which is what
 * shrinking shortens (the idea of preemption bounding). `window`: a lock-free window's point (see
 * WINDOW_SWITCH_ODDS; PCT and replay treat every point alike).
 */
export function pick(i32: Int32Array, l: Layout, enabled: number[], current: number, window = false): number {
  const d = Atomics.add(i32, G_DECISIONS, 1);
  const def = enabled.includes(current) ? current : enabled[0];
  const mode = Atomics.load(i32, G_SCHED_MODE);
  let chosen: number;
  switch (mode) {
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
      // The next switch if it is for this decision (switches a shrunk schedule no longer reaches
      // are passed over), and the default otherwise.
      const len = Atomics.load(i32, G_SCHED_LEN);
      let cur = Atomics.load(i32, G_SCHED_CURSOR);
      while (cur < len && Atomics.load(i32, l.schedLog + 2 * cur) < d) cur++;
      chosen = def;
      if (cur < len && Atomics.load(i32, l.schedLog + 2 * cur) === d) {
        const want = Atomics.load(i32, l.schedLog + 2 * cur + 1);
        if (enabled.includes(want)) chosen = want;
        cur++;
      }
      Atomics.store(i32, G_SCHED_CURSOR, cur);
      break;
    }
    default:
      chosen = window && def === current && xorshift(i32, G_SCHED_RNG) % WINDOW_SWITCH_ODDS !== 0
        ? current
        : enabled[xorshift(i32, G_SCHED_RNG) % enabled.length];
  }
  if (mode !== SchedMode.Replay && chosen !== def) {
    const n = Atomics.add(i32, G_SCHED_NREC, 1);
    if (2 * n + 1 < l.schedLogCap) {
      Atomics.store(i32, l.schedLog + 2 * n, d);
      Atomics.store(i32, l.schedLog + 2 * n + 1, chosen);
    }
  }
  return chosen;
}
