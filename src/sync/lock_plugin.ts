/**
 * Lock protocols from outside ptlab: `--mmap-lock ./my_lock.mjs` imports an ES module whose
 * default export is a factory `(api) => protocol`: `api` is LOCK_API (below; also exported by the
 * package's ./model entry), `protocol` is { name, words, read_lock, read_unlock, write_lock,
 * write_unlock } operating on `words` Int32 words of machine memory with Atomics, all zero when
 * the mm is made (zero must mean free). Like a model plugin (src/models/plugin.ts) it is loaded in
 * the CLI — checked with zod and tried once on a scratch lock, so a plugin that cannot work is bad
 * input — and again in every CPU worker under the same key: the absolute path (or package name).
 *
 * What ptlab does around a plugin's functions (plugin_read_lock and friends): the schedule points
 * (controlled mode), lockdep's held-lock stack and its order checks, lock_stat (a wait is what
 * went through api.wait; its clock starts at the first one), the watchdog (api.wait is
 * LockCpu.waitStep: every wait has the run's deadline), so a plugin only moves its words.
 *
 * An mm's lock protocol is in its M_FLAGS (mm/mmap_lock.ts): MMF_QRWLOCK with a plugin slot in
 * MMF_LOCK_PLUGIN — slot 1 the run's --mmap-lock plugin, slot 2 its --host-lock plugin.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { type LockClass, LockMode } from './lockdep.js';
import { SchedPoint } from './schedpoint.js';
import type { LockCpu } from './wait.js';

/** Words a protocol may use from the lock's word: an mm's M_MMAP_LOCK up to M_PAGE_TABLE_LOCK (shm/layout.ts). */
export const LOCK_PLUGIN_WORDS_MAX = 16;

/** A lock protocol as a plugin gives it (`cpu` is the waiting CPU: cpu.i32 is machine memory, cpu.cpu its number). */
export interface LockProtocol {
  name: string;
  words: number;
  read_lock(cpu: LockCpu, lock: number): void;
  /** Returns true when it saw a waiter (lock_stat's contending point), else anything. */
  read_unlock(cpu: LockCpu, lock: number): unknown;
  write_lock(cpu: LockCpu, lock: number): void;
  write_unlock(cpu: LockCpu, lock: number): unknown;
}

/** What a lock plugin's factory is given. */
export const LOCK_API = Object.freeze({
  WORDS_MAX: LOCK_PLUGIN_WORDS_MAX,
  /**
   * One step of a bounded wait for cpu.i32[word] to change from `expected` (LockCpu.waitStep):
   * spins while `iter` < cpu.spinLimit, then sleeps in 1 ms slices, taking the CPU's interrupts
   * (TLB shootdowns) all along; past the run's deadline it stops the machine with a watchdog
   * report instead of hanging. In controlled mode another CPU runs until this one can go on.
   * Every loop that waits calls it once a turn, with the loop's count as `iter`.
   */
  wait(cpu: LockCpu, word: number, expected: number, iter: number): void {
    if (cpu.pluginSince < 0) {
      cpu.contended(cpu.pluginClass, cpu.pluginMode, true); // the first wait: __lock_contended
      cpu.pluginSince = performance.now();
    }
    cpu.waitStep(word, expected, iter, cpu.pluginSince, cpu.pluginClass, cpu.pluginMode, -1);
  },
  /** Wakes the CPUs asleep in wait() on `word` (a wait also wakes by itself every millisecond). */
  wake(cpu: LockCpu, word: number): void {
    Atomics.notify(cpu.i32, word);
  },
});

export type LockApi = typeof LOCK_API;

/** Loaded protocols by key (absolute path or package name). */
const LOCK_PLUGINS = new Map<string, LockProtocol>();
/** The protocols an mm's MMF_LOCK_PLUGIN slot names in this thread: [unused, --mmap-lock's, --host-lock's]. */
export const LOCK_PLUGIN_SLOTS: (LockProtocol | null)[] = [null, null, null];

/** A --mmap-lock / --host-lock value that names a plugin (a path or a package) rather than rwsem or qrwlock. */
export function isLockPluginSpec(spec: string): boolean {
  return spec.startsWith('./') || spec.startsWith('../') || isAbsolute(spec) || /\.m?js$/.test(spec) || spec.includes('/');
}

/** A protocol name the options accept: rwsem, qrwlock, or a loaded plugin's key. */
export function isMmapLockProtocol(s: string): boolean {
  return s === 'rwsem' || s === 'qrwlock' || LOCK_PLUGINS.has(s);
}

export function lockPlugin(key: string): LockProtocol | undefined {
  return LOCK_PLUGINS.get(key);
}

/** Puts the plugin `key` (loaded) in MMF_LOCK_PLUGIN slot `slot`, or empties the slot. */
export function setLockPluginSlot(slot: 1 | 2, key: string | null): void {
  LOCK_PLUGIN_SLOTS[slot] = key === null ? null : (LOCK_PLUGINS.get(key) ?? null);
}

const fn = (what: string) => z.custom<(...a: never[]) => unknown>((v) => typeof v === 'function', { message: `${what} must be a function (cpu, lock)` });

const LockPluginSchema = z.object({
  name: z.string().min(1),
  words: z.number().int().min(1).max(LOCK_PLUGIN_WORDS_MAX),
  read_lock: fn('read_lock'),
  read_unlock: fn('read_unlock'),
  write_lock: fn('write_lock'),
  write_unlock: fn('write_unlock'),
});

/** Thrown for a lock plugin that cannot be used (the CLI makes it bad input, exit 2). */
export class LockPluginError extends Error {}

/** The scratch CPU a plugin is tried on at load: any wait on a free lock is an error. */
class ProbeWait extends Error {}
function probe(p: LockProtocol): string | null {
  const cpu = {
    i32: new Int32Array(new SharedArrayBuffer(LOCK_PLUGIN_WORDS_MAX * 4 * 2)), cpu: 0, ownerTag: 1, spinLimit: 0, sched: null,
    pluginSince: -1, pluginClass: 0, pluginMode: 0,
    contended() {},
    waitStep() {
      throw new ProbeWait();
    },
  } as unknown as LockCpu;
  const lock = LOCK_PLUGIN_WORDS_MAX;
  const steps: [string, (c: LockCpu, l: number) => unknown][] = [
    ['write_lock', p.write_lock], ['write_unlock', p.write_unlock], ['read_lock', p.read_lock], ['read_lock', p.read_lock],
    ['read_unlock', p.read_unlock], ['read_unlock', p.read_unlock], ['write_lock', p.write_lock], ['write_unlock', p.write_unlock],
  ];
  for (const [name, f] of steps) {
    try {
      f.call(p, cpu, lock);
    } catch (e) {
      if (e instanceof ProbeWait) return `${name} waited on a lock nobody held (tried on one CPU: write, two reads, write)`;
      return `${name} threw (${e instanceof Error ? e.message : String(e)})`;
    }
  }
  return null;
}

/**
 * Loads the lock plugin at `spec` (a path, relative to the working directory, or a package name),
 * checks it and registers it; returns its key. `option` names the option in messages. Loading
 * the same key twice is a no-op.
 */
export async function loadLockPlugin(spec: string, option = '--mmap-lock'): Promise<string> {
  const path = spec.startsWith('.') || isAbsolute(spec) || /\.m?js$/.test(spec) ? resolve(spec) : null;
  const key = path ?? spec;
  if (LOCK_PLUGINS.has(key)) return key;
  if (path !== null && !existsSync(path)) throw new LockPluginError(`${option} ${spec}: no such file`);
  let mod: { default?: unknown };
  try {
    mod = (await import(path !== null ? pathToFileURL(path).href : spec)) as { default?: unknown };
  } catch (e) {
    throw new LockPluginError(`${option} ${spec}: the module could not be loaded (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  if (typeof mod.default !== 'function') throw new LockPluginError(`${option} ${spec}: its default export must be a function (api) => lock protocol`);
  let made: unknown;
  try {
    made = (mod.default as (api: LockApi) => unknown)(LOCK_API);
  } catch (e) {
    throw new LockPluginError(`${option} ${spec}: its factory threw (${e instanceof Error ? e.message : String(e)})`);
  }
  const r = LockPluginSchema.safeParse(made);
  if (!r.success) throw new LockPluginError(`${option} ${spec}: ${r.error.issues[0].path.join('.') || 'the protocol'}: ${r.error.issues[0].message}`);
  const p = made as LockProtocol;
  const bad = probe(p);
  if (bad !== null) throw new LockPluginError(`${option} ${spec}: ${bad}`);
  LOCK_PLUGINS.set(key, p);
  return key;
}

// ---- the wrappers mmap_lock.ts dispatches to (down_read()'s part around a plugin's read_lock) ----

export function plugin_read_lock(c: LockCpu, p: LockProtocol, lock: number, cls: LockClass): void {
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockAcquire);
  c.pluginSince = -1;
  c.pluginClass = cls;
  c.pluginMode = LockMode.Read;
  p.read_lock(c, lock);
  const since = c.pluginSince;
  if (since >= 0) c.waitDone();
  c.acquired(lock, cls, LockMode.Read, since);
}

export function plugin_write_lock(c: LockCpu, p: LockProtocol, lock: number, cls: LockClass): void {
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockAcquire);
  c.pluginSince = -1;
  c.pluginClass = cls;
  c.pluginMode = LockMode.Write;
  p.write_lock(c, lock);
  const since = c.pluginSince;
  if (since >= 0) c.waitDone();
  c.acquired(lock, cls, LockMode.Write, since);
}

export function plugin_read_unlock(c: LockCpu, p: LockProtocol, lock: number): void {
  c.released(lock);
  if (p.read_unlock(c, lock) === true) c.contendedRelease();
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockRelease);
}

export function plugin_write_unlock(c: LockCpu, p: LockProtocol, lock: number): void {
  c.released(lock);
  if (p.write_unlock(c, lock) === true) c.contendedRelease();
  if (c.sched !== null) c.sched.point(c, SchedPoint.LockRelease);
}
