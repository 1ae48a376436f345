/**
 * Controlled mode: the same token gives the same run, decision for decision; explore finds the
 * RFC's exit bug and its token replays the same violation; the fixed exit path survives.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { explore, replay, runToken } from '../../src/cli/explore.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { shrink } from '../../src/cli/shrink.js';
import { decodeSchedule, decodeToken, encodeSchedule, encodeToken, type ReplayToken } from '../../src/sched/token.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`controlled-mode tests: FC_SEED=${seed}`);

const token = (over: Partial<ReplayToken> = {}): ReplayToken => ({
  scenario: 'exit-vs-fault', model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', opts: { lockStat: false },
  strategy: 'random', seed: 7, depth: 3, steps: 1000, ...over,
});

describe('controlled mode', () => {
  it('is deterministic: one token, the same decisions and the same events, every time', async () => {
    for (const t of [token(), token({ bug: undefined, strategy: 'pct', seed: 11 })]) {
      const a = await runToken(t, true);
      const b = await runToken(t, true);
      expect(a.schedule?.decisions).toBeGreaterThan(100);
      expect(b.schedule).toEqual(a.schedule);
      expect(b.violations).toEqual(a.violations);
      expect([b.faults, b.accesses, b.tlb]).toEqual([a.faults, a.accesses, a.tlb]);
    }
  });

  it('replaying the recorded switches (a schedule in the token) gives the same run', async () => {
    const a = await runToken(token(), true);
    const t = token({ strategy: 'replay', schedule: encodeSchedule(a.schedule!.log!) });
    const b = await replay(encodeToken(t));
    expect(b.violations).toEqual(a.violations);
    expect(b.faults).toEqual(a.faults);
  });

  it('explore finds the RFC v2 exit bug and the token replays the same violation, three times', async () => {
    const o = parseRunOptions('exit-vs-fault', { model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', lockStat: false });
    const r = await explore('exit-vs-fault', o, { strategy: 'pct', depth: 3, runs: 20, seed: 1, raw: { lockStat: false } });
    expect(r.ok).toBe(false);
    expect(r.violations[0].checker).toBe('use-after-free');
    for (let i = 0; i < 3; i++) {
      const again = await replay(r.token!);
      expect(again.violations).toEqual(r.violations);
    }
  });

  it('shrinking keeps the failure (same checker) with no more decisions than the failing run', async () => {
    const r = await shrink(token({ opts: { lockStat: false, size: '4M' } }), 60);
    expect(r.to).toBeLessThanOrEqual(r.from);
    const again = await replay(r.token);
    expect(again.ok).toBe(false);
    expect(again.violations[0].checker).toBe(r.checker);
  });

  it('the fixed exit path survives controlled runs', async () => {
    const o = parseRunOptions('exit-vs-fault', { model: 'map-shared-pt', lockStat: false });
    const r = await explore('exit-vs-fault', o, { strategy: 'random', depth: 1, runs: 8, seed: 3, raw: { lockStat: false } });
    expect([r.ok, r.violations]).toEqual([true, []]);
  });
});

describe('replay tokens', () => {
  it('schedules (decision, cpu) switch pairs survive encoding', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: -1, max: 1e6 }), fc.nat(31)), { maxLength: 300 }), (ps) => {
      const flat = ps.flat();
      expect(decodeSchedule(encodeSchedule(flat))).toEqual(flat);
    }), { seed });
  });

  it('a damaged token is refused with a message', () => {
    expect(() => decodeToken('nope')).toThrow(/starts with/);
    expect(() => decodeToken('ptlab1.@@@')).toThrow(/damaged/);
    const t = encodeToken(token());
    expect(decodeToken(t)).toEqual(token());
  });
});
