/**
 * Lock protocols as plugins (src/sync/lock_plugin.ts): loading checks a plugin (zod, then a try
 * on a scratch lock), the wrappers keep lockdep's held stack and lock_stat around the plugin's own
 * functions, and a plugin's wait is ptlab's bounded wait (the watchdog stops it, never a hang).
 */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { G_STOP, G_STOP_CLASS, M_MMAP_LOCK, StopReason } from '../../src/shm/layout.js';
import { createMachine } from '../../src/shm/machine.js';
import { sizeMachine } from '../../src/scenarios/common.js';
import { LockClass, LockMode } from '../../src/sync/lockdep.js';
import { LS_ACQ, LS_CON, LS_FIELDS } from '../../src/sync/lock_stat.js';
import {
  isMmapLockProtocol, loadLockPlugin, LOCK_API, LockPluginError, lockPlugin, plugin_read_lock, plugin_read_unlock, plugin_write_lock, plugin_write_unlock,
} from '../../src/sync/lock_plugin.js';
import { LOCK_API as EXPORTED_LOCK_API } from '../../src/models/api.js';
import { LockCpu, MachineStop } from '../../src/sync/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-lock-plugin-'));
const good = join(dir, 'ticket_rwlock.mjs');
copyFileSync('examples/plugins/ticket_rwlock.mjs', good);

function setup(deadlineMs = 1000) {
  const config = sizeMachine({ cpus: 2, procs: 1, sharedBytes: 4096, privateBytes: 0, files: 1, vmasPerProc: 1, mem: 2 ** 30 });
  const m = createMachine(config);
  const cpu = (n: number) => new LockCpu(m.i32, m.layout, n, { spinLimit: 5, deadlineMs, lockStatTiming: true });
  return { m, c0: cpu(0), c1: cpu(1), lock: m.layout.mms + M_MMAP_LOCK };
}

describe('loading a lock plugin', () => {
  it('registers the example under its absolute path; the options then accept that key', async () => {
    const key = await loadLockPlugin(good);
    expect(key).toBe(good);
    expect(lockPlugin(key)?.name).toBe('ticket-rwlock');
    expect(isMmapLockProtocol(key)).toBe(true);
    expect(isMmapLockProtocol('rwsem')).toBe(true);
    expect(isMmapLockProtocol('mcs')).toBe(false);
    expect(EXPORTED_LOCK_API).toBe(LOCK_API);
  });

  it('a plugin that cannot be used is a LockPluginError naming the option and what is wrong', async () => {
    const cases: [string, string, RegExp][] = [
      ['nodefault.mjs', 'export const x = 1;', /default export must be a function/],
      ['throws.mjs', 'export default () => { throw new Error("boom"); };', /factory threw \(boom\)/],
      ['syntax.mjs', 'export default (', /could not be loaded/],
      ['nowords.mjs', 'export default () => ({ name: "x", read_lock() {}, read_unlock() {}, write_lock() {}, write_unlock() {} });', /words/],
      ['toomany.mjs', 'export default () => ({ name: "x", words: 17, read_lock() {}, read_unlock() {}, write_lock() {}, write_unlock() {} });', /words/],
      ['nounlock.mjs', 'export default () => ({ name: "x", words: 1, read_lock() {}, read_unlock() {}, write_lock() {} });', /write_unlock/],
      // Waits on a lock nobody holds: it can never work.
      ['waits.mjs', 'export default (api) => ({ name: "x", words: 1, read_lock(c, l) { api.wait(c, l, 0, 0); }, read_unlock() {}, write_lock() {}, write_unlock() {} });',
        /read_lock waited on a lock nobody held/],
      ['throwsinlock.mjs', 'export default () => ({ name: "x", words: 1, read_lock() {}, read_unlock() {}, write_lock() { throw new Error("nope"); }, write_unlock() {} });',
        /write_lock threw \(nope\)/],
    ];
    for (const [name, body, why] of cases) {
      const f = join(dir, name);
      writeFileSync(f, body);
      const e = await loadLockPlugin(f, '--mmap-lock').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(LockPluginError);
      expect((e as Error).message).toMatch(/^--mmap-lock /);
      expect((e as Error).message).toMatch(why);
    }
    await expect(loadLockPlugin(join(dir, 'missing.mjs'))).rejects.toThrow(/no such file/);
  });
});

describe('the wrappers around a plugin', () => {
  it('record the acquisition (held stack, lock_stat), release it, and excludes as the plugin does', async () => {
    const p = lockPlugin(await loadLockPlugin(good))!;
    const { c0, c1, lock } = setup();
    plugin_read_lock(c0, p, lock, LockClass.MmapLock);
    plugin_read_lock(c1, p, lock, LockClass.MmapLock);
    expect(c0.holds(lock) && c1.holds(lock)).toBe(true);
    plugin_read_unlock(c0, p, lock);
    plugin_read_unlock(c1, p, lock);
    plugin_write_lock(c0, p, lock, LockClass.MmapLock);
    expect(c0.holdsWrite(lock)).toBe(true);
    plugin_write_unlock(c0, p, lock);
    expect(c0.holds(lock)).toBe(false);
    const slot = (m: LockMode) => (LockClass.MmapLock * 2 + m) * LS_FIELDS;
    expect([c0.lockStats[slot(LockMode.Read) + LS_ACQ], c0.lockStats[slot(LockMode.Write) + LS_ACQ], c0.lockStats[slot(LockMode.Read) + LS_CON]]).toEqual([1, 1, 0]);
  });

  it('a plugin\'s wait is bounded: a reader behind a writer that never leaves stops the machine (watchdog), mmap_lock named', async () => {
    const p = lockPlugin(await loadLockPlugin(good))!;
    const { m, c0, c1, lock } = setup(30);
    plugin_write_lock(c0, p, lock, LockClass.MmapLock);
    expect(() => plugin_read_lock(c1, p, lock, LockClass.MmapLock)).toThrow(MachineStop);
    expect(Atomics.load(m.i32, G_STOP)).toBe(StopReason.Watchdog);
    expect(Atomics.load(m.i32, G_STOP_CLASS)).toBe(LockClass.MmapLock);
  });
});
