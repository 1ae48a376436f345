import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { G_STOP, PL_INUSE, R_GEN, StopReason } from '../../src/shm/layout.js';
import { read_violations, PoolId, Violation } from '../../src/mm/mmdebug.js';
import { pool_alloc, pool_check, pool_free, pool_gen } from '../../src/mm/slab.js';
import { LockClass } from '../../src/sync/lockdep.js';
import { testMachine } from '../helpers/kernel.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`slab property tests: FC_SEED=${seed}`);

describe('pools with generation numbers', () => {
  it('never hands out a live object twice, and every free bumps the generation', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 300 }), (steps) => {
        const { m, cpus: [k] } = testMachine();
        const p = k.pools.vmas;
        const live = new Map<number, number>();
        for (const alloc of steps) {
          if (alloc || live.size === 0) {
            const v = pool_alloc(k, p, LockClass.SlabPool, 1);
            if (v < 0) {
              expect(live.size).toBe(p.capacity);
              continue;
            }
            expect(live.has(v)).toBe(false);
            live.set(v, pool_gen(m.i32, p, v));
          } else {
            const [v, gen] = live.entries().next().value as [number, number];
            live.delete(v);
            expect(pool_free(k, p, LockClass.SlabPool, v, PoolId.Vmas)).toBe(true);
            expect(pool_gen(m.i32, p, v)).toBe(gen + 1);
          }
          expect(Atomics.load(m.i32, p.hdr + PL_INUSE)).toBe(live.size);
        }
        for (const [v, gen] of live) expect(pool_check(k, p, v, gen, PoolId.Vmas)).toBe(true);
      }),
      { seed, numRuns: 50 },
    );
  });

  it('reports a stale index as a use-after-free and stops the machine', () => {
    const { m, cpus: [k] } = testMachine();
    const p = k.pools.mms;
    const v = pool_alloc(k, p, LockClass.SlabPool, 1);
    const gen = Atomics.load(m.i32, p.base + v * p.stride + R_GEN);
    pool_free(k, p, LockClass.SlabPool, v, PoolId.Mms);
    expect(pool_check(k, p, v, gen, PoolId.Mms)).toBe(false);
    const [viol] = read_violations(m.i32, m.layout);
    expect(viol.kind).toBe(Violation.UafObject);
    expect(viol.args.slice(0, 4)).toEqual([PoolId.Mms, v, gen, gen + 1]);
    expect(Atomics.load(m.i32, G_STOP)).toBe(StopReason.Fatal);
  });

  it('detects a double free and leaves the pool as it was', () => {
    const { m, cpus: [k] } = testMachine();
    const p = k.pools.files;
    const f = pool_alloc(k, p, LockClass.SlabPool, 1);
    expect(pool_free(k, p, LockClass.SlabPool, f, PoolId.Files)).toBe(true);
    const inuse = Atomics.load(m.i32, p.hdr + PL_INUSE);
    expect(pool_free(k, p, LockClass.SlabPool, f, PoolId.Files)).toBe(false);
    expect(Atomics.load(m.i32, p.hdr + PL_INUSE)).toBe(inuse);
    expect(read_violations(m.i32, m.layout).map((x) => x.kind)).toEqual([Violation.DoubleFree]);
    // The freed index is handed out once, not twice.
    const a = pool_alloc(k, p, LockClass.SlabPool, 1);
    const b = pool_alloc(k, p, LockClass.SlabPool, 1);
    expect(a).not.toBe(b);
  });
});
