/**
 * Model plugins (src/models/plugin.ts): `--model ./file.mjs` loads a model from outside ptlab —
 * here examples/plugins/lazy_shootdown.mjs, copied to a directory of its own as a user's would be
 * — checks it (one line, exit 2, for a plugin that cannot be used), runs the catalog's workloads
 * under it in free mode, and lets explore find the plugin's own planted bug.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-plugin-'));
const plugin = join(dir, 'lazy_shootdown.mjs');
copyFileSync('examples/plugins/lazy_shootdown.mjs', plugin);

function ptlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('a model plugin from another directory', () => {
  it.each(['sga', 'exit-vs-fault', 'race-stale-tlb', 'race-owner-exit-vs-share', 'threads-share-unshare'])('%s runs under it (built on map-shared-pt) and passes every checker', (scenario) => {
    const r = ptlab('run', scenario, '--model', plugin, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.ok).toBe(true);
    expect(o.model).toBe(plugin);
  });

  it('explore finds the plugin\'s planted bug (--bug lazy: guests\' CPUs are not flushed) and the token replays it', () => {
    const r = ptlab('explore', 'threads-share-unshare', '--model', plugin, '--bug', 'lazy', '--strategy', 'random', '--runs', '100', '--json');
    expect(r.code).toBe(1);
    const o = JSON.parse(r.out);
    expect(['stale-tlb-write', 'stale-tlb']).toContain(o.violations[0].checker);
    const again = ptlab('replay', o.token, '--json');
    expect(again.code).toBe(1);
    expect(JSON.parse(again.out).violations[0].checker).toBe(o.violations[0].checker);
  });

  it('a plugin that cannot be used is bad input: one line naming it, exit 2', () => {
    const bad = (name: string, body: string) => {
      const f = join(dir, name);
      writeFileSync(f, body);
      return ptlab('run', 'sga', '--model', f);
    };
    for (const [name, body, why] of [
      ['nodefault.mjs', 'export const x = 1;', /default export must be a function/],
      ['norules.mjs', 'export default () => ({ name: "x", create: () => ({}) });', /rules/],
      ['throws.mjs', 'export default () => { throw new Error("boom"); };', /factory threw \(boom\)/],
      ['syntax.mjs', 'export default (', /could not be loaded/],
      ['badbase.mjs', 'export default () => ({ name: "x", rules: "r", basedOn: "nope", create: () => ({}) });', /basedOn names no catalog model/],
    ] as const) {
      const r = bad(name, body);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(why);
    }
    expect(ptlab('run', 'sga', '--model', join(dir, 'missing.mjs')).err).toMatch(/no such file/);
    expect(ptlab('run', 'sga', '--model', plugin, '--bug', 'nope').code).toBe(2);
  });
});
