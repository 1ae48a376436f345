/**
 * Catch what nobody planted (items 3 and 5): the scenarios that reach the lock-free windows, each
 * shown able to fail — an existing planted bug found by explore through it — and the window
 * points named.
 */
import { describe, expect, it } from 'vitest';
import { explore } from '../../src/cli/explore.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { runScenario } from '../../src/cli/run.js';
import { SCHED_POINT_NAMES, FIRST_WINDOW_POINT, SchedPoint } from '../../src/sync/schedpoint.js';

const raw = { lockStat: false };

describe('window schedule points', () => {
  it('every point has a name, the window points from FIRST_WINDOW_POINT on', () => {
    expect(SCHED_POINT_NAMES.length).toBe(SchedPoint.MigrateUnmapped + 1);
    expect(new Set(SCHED_POINT_NAMES).size).toBe(SCHED_POINT_NAMES.length);
    expect(SCHED_POINT_NAMES[FIRST_WINDOW_POINT]).toBe('vma:after-lookup');
  });
});

describe('scenarios that reach the windows: a planted bug is found through each', () => {
  const cases = [
    { scenario: 'race-owner-exit-vs-share', model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', checkers: ['use-after-free'], strategy: 'pct' as const },
    { scenario: 'race-munmap-vs-fault', model: 'none', bug: 'munmap-skips-vma-write-lock', checkers: ['lockdep:assert', 'invariant:free-pgtables', 'use-after-free', 'invariant:mapcount', 'leak'], strategy: 'random' as const },
    { scenario: 'threads-share-unshare', model: 'map-shared-pt', bug: 'shootdown-forgets-sharers', checkers: ['stale-tlb-write'], strategy: 'random' as const },
  ];
  for (const c of cases) {
    it(`${c.scenario}: ${c.strategy} finds ${c.model} --bug ${c.bug}; the fixed model survives a few runs`, async () => {
      const bugged = parseRunOptions(c.scenario, { model: c.model, bug: c.bug, lockStat: false });
      const found = await explore(c.scenario, bugged, { strategy: c.strategy, depth: 3, runs: 100, seed: 1, raw });
      expect(found.ok).toBe(false);
      expect(c.checkers).toContain(found.violations[0].checker);
      const fixed = parseRunOptions(c.scenario, { model: c.model, lockStat: false });
      const ok = await explore(c.scenario, fixed, { strategy: c.strategy, depth: 3, runs: 10, seed: 2, raw });
      expect([ok.ok, ok.violations]).toEqual([true, []]);
    });
  }

  it('each runs under every model it applies to, with both fault locks; the others are refused', async () => {
    for (const [scenario, models] of [
      ['threads-share-unshare', ['none', 'pt-hint', 'map-shared-pt']],
      ['race-owner-exit-vs-share', ['none', 'pt-hint', 'map-shared-pt']],
      ['race-munmap-vs-fault', ['none']],
    ] as const) {
      for (const model of models) {
        for (const faultLock of ['mmap', 'per-vma']) {
          const r = await runScenario(scenario, parseRunOptions(scenario, { model, faultLock, ops: '1', lockStat: false }));
          expect([scenario, model, faultLock, r.violations]).toEqual([scenario, model, faultLock, []]);
        }
      }
      expect(() => parseRunOptions(scenario, { model: 'mshare' })).toThrow(/does not apply/);
    }
  });
});
