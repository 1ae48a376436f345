/**
 * Lock plugins on the command line: examples/plugins/ticket_rwlock.mjs, copied to a directory of
 * its own as a user's would be, is the mmap_lock of `run`, `compare`, `explore` (and its replay)
 * and `torture --lock mmap_lock/<plugin>`, every checker passing; its planted broken variant
 * (readers that do not exclude writers) fails torture and explore (exit 1); a plugin that cannot
 * be used is bad input (one line naming the option, exit 2).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-lock-cli-'));
copyFileSync('examples/plugins/ticket_rwlock.mjs', join(dir, 'ticket_rwlock.mjs'));
copyFileSync('examples/plugins/ticket_rwlock_broken.mjs', join(dir, 'ticket_rwlock_broken.mjs'));
const bin = resolve('bin/ptlab.mjs');

/** ptlab in the plugin's directory, so ./ticket_rwlock.mjs is relative to it. */
function ptlab(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 240_000, cwd: dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('--mmap-lock ./ticket_rwlock.mjs', () => {
  it('run sga passes every checker, with the plugin as every mm\'s mmap_lock (lock_stat\'s mmap_lock rows)', () => {
    const r = ptlab('run', 'sga', '--mmap-lock', './ticket_rwlock.mjs', '--procs', '4', '--size', '8M', '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out) as { ok: boolean; mmap_lock: string; host_lock: string; locks: { class: string; acquisitions: number }[] };
    expect(o.ok).toBe(true);
    expect(o.mmap_lock).toBe(join(dir, 'ticket_rwlock.mjs'));
    expect(o.host_lock).toBe(o.mmap_lock);
    expect(o.locks.find((l) => l.class === '&mm->mmap_lock')!.acquisitions).toBeGreaterThan(0);
  });

  it('mprotect-vs-fault (writers against faulting readers) passes; so does a sharing model\'s host mm under it', () => {
    for (const args of [['mprotect-vs-fault'], ['sga', '--model', 'map-shared-pt', '--procs', '4', '--size', '8M']]) {
      const r = ptlab('run', ...args, '--mmap-lock', './ticket_rwlock.mjs');
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/OK: every checker passed/);
    }
  });

  it('explore runs it in controlled mode (every wait a scheduling point) and its token replays with the plugin', () => {
    const r = ptlab('explore', 'mprotect-vs-fault', '--mmap-lock', './ticket_rwlock.mjs', '--runs', '8', '--jobs', '1', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out) as { ok: boolean; token: string };
    expect(o.ok).toBe(true);
    const again = ptlab('replay', o.token, '--json');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.out).mmap_lock).toBe(join(dir, 'ticket_rwlock.mjs'));
  });

  it('compare takes it in its --mmap-lock list', () => {
    const r = ptlab('compare', 'sga', '--models', 'none', '--mmap-lock', 'rwsem,./ticket_rwlock.mjs', '--procs', '2', '--size', '4M', '--json');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as { runs: { mmap_lock: string }[] }).runs.map((x) => x.mmap_lock)).toEqual(['rwsem', join(dir, 'ticket_rwlock.mjs')]);
  });
});

describe('torture --lock mmap_lock/<plugin>', () => {
  it('the ticket rwlock holds mutual exclusion', () => {
    const r = ptlab('torture', '--lock', 'mmap_lock/./ticket_rwlock.mjs', '--readers', '2', '--writers', '2', '--seconds', '1');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Writes: {2}Total: \d+ /m);
    expect(r.out).toMatch(/OK: mutual exclusion held/);
  });

  it('the planted broken variant (a read_lock that does not exclude writers) is caught: exit 1', () => {
    const r = ptlab('torture', '--lock', 'mmap_lock/./ticket_rwlock_broken.mjs', '--readers', '1', '--writers', '1', '--seconds', '2', '--json');
    expect(r.code).toBe(1);
    const o = JSON.parse(r.out) as { ok: boolean; writes: { fails: number }; reads: { fails: number } };
    expect(o.ok).toBe(false);
    expect(o.writes.fails + o.reads.fails).toBeGreaterThan(0);
  });
});

describe('explore with the plugin as mmap_lock', () => {
  it('race-munmap-vs-fault: the ticket rwlock passes the hunt; the broken variant lets a fault run beside munmap, and a checker fails (exit 1)', () => {
    const hunt = (plugin: string) => ptlab('explore', 'race-munmap-vs-fault', '--model', 'none', '--mmap-lock', plugin, '--runs', '20', '--jobs', '1', '--json');
    const good = hunt('./ticket_rwlock.mjs');
    expect(good.code).toBe(0);
    expect(JSON.parse(good.out).ok).toBe(true);
    const bad = hunt('./ticket_rwlock_broken.mjs');
    expect(bad.code).toBe(1);
    const o = JSON.parse(bad.out) as { ok: boolean; violations: { checker: string }[]; token: string };
    expect(o.violations.length).toBeGreaterThan(0);
    // The token replays it, the plugin loaded from the token's path.
    const again = ptlab('replay', o.token, '--json');
    expect(again.code).toBe(1);
    expect(JSON.parse(again.out).violations[0].checker).toBe(o.violations[0].checker);
  });
});

describe('a lock plugin that cannot be used', () => {
  it('is bad input: one line naming the option, exit 2', () => {
    writeFileSync(join(dir, 'nowords.mjs'), 'export default () => ({ name: "x", read_lock() {}, read_unlock() {}, write_lock() {}, write_unlock() {} });');
    for (const [args, why] of [
      [['run', 'sga', '--mmap-lock', './nowords.mjs'], /^ptlab: --mmap-lock \.\/nowords\.mjs: words: /],
      [['run', 'sga', '--mmap-lock', './missing.mjs'], /^ptlab: --mmap-lock \.\/missing\.mjs: no such file$/],
      [['run', 'sga', '--host-lock', './missing.mjs'], /^ptlab: --host-lock \.\/missing\.mjs: no such file$/],
      [['run', 'sga', '--mmap-lock', 'mcs'], /^ptlab: --mmap-lock must be rwsem or qrwlock$/],
      [['torture', '--lock', 'mmap_lock/./nowords.mjs'], /^ptlab: --lock \.\/nowords\.mjs: words: /],
      [['torture', '--lock', 'mmap_lock/mcs'], /^ptlab: --lock must be one of /],
    ] as const) {
      const r = ptlab(...args);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err.trim()).toMatch(why);
    }
  });
});
