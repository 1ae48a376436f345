/**
 * pt-hint's promise: no program can tell that page tables are shared. fast-check generates
 * programs of several processes — mmap (fixed and not, shared and private, at offsets), the
 * sharing hint, mprotect, munmap (partial too), loads, stores, touches, exits — and runs each on
 * one CPU of a machine under `none` and under `pt-hint`. One CPU with a FIFO run queue gives
 * the same interleaving both times, so every op's outcome (return value class, errno, signal)
 * and every value loaded must be equal, and pt-hint's tables must pass every invariant.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/check/invariants.js';
import { read_violations } from '../../src/mm/mmdebug.js';
import { MODELS } from '../../src/models/index.js';
import { ST_FAULT_SHARED_PMD } from '../../src/mm/percpu.js';
import { Cpu } from '../../src/proc/cpu.js';
import { initTasks } from '../../src/proc/orchestrator.js';
import type { Op, Program } from '../../src/proc/program.js';
import { sizeMachine } from '../../src/scenarios/common.js';
import { createMachine } from '../../src/shm/machine.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`differential property test: FC_SEED=${seed}`);

const MiB = 1024 * 1024;
const FILE = 8 * MiB;
const BASES = [0x40000000, 0x40200000, 0x40400000, 0x40800000];

type Obs = string[];

/** Runs `programs` on one CPU under `model`; returns every op's observation, in order. */
function observe(model: string, programs: Program[]): { obs: Obs; findings: number; violations: number; sharedFaults: number } {
  const config = sizeMachine({ cpus: 1, procs: programs.length, sharedBytes: FILE, privateBytes: 8 * MiB, files: 1, vmasPerProc: 16, mem: 2 ** 30 });
  const m = createMachine(config);
  initTasks(m, programs.length);
  const obs: Obs = [];
  const cpu = new Cpu(
    { sab: m.sab, config, cpu: 0, programs, model, bug: '', deadlineMs: 2000, lockStatTiming: false, spin: true, slice: 4 },
    MODELS[model].create(''),
    null,
    (t, pc, outcome, value) => {
      if (programs[t][pc].op !== 'madvise') obs.push(`${t}:${pc}:${outcome}:${value}`);
    },
  );
  const r = cpu.run();
  if (r.error) throw new Error(r.error);
  return { obs, findings: checkInvariants(m.i32, m.layout, { model }).findings.length, violations: read_violations(m.i32, m.layout).length, sharedFaults: r.stats[ST_FAULT_SHARED_PMD] };
}

const region = (i: number) => `r${i}`;
const any = 'any' as const;

/** One process's program after the common set-up: `n` random ops over up to 6 regions. */
const procOps = fc.array(
  fc.oneof(
    { depthSize: 'small' },
    fc.record({
      kind: fc.constant('mmap' as const),
      base: fc.constantFrom(...BASES, 0),
      pmds: fc.integer({ min: 1, max: 3 }),
      extraPages: fc.constantFrom(0, 0, 3),
      offPmds: fc.integer({ min: 0, max: 1 }),
      priv: fc.boolean(),
      ro: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('hint' as const), r: fc.nat(5) }),
    fc.record({ kind: fc.constant('touch' as const), r: fc.constant(0), pages: fc.integer({ min: 1, max: 1200 }), write: fc.boolean() }),
    fc.record({ kind: fc.constant('mprotect' as const), r: fc.nat(5), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 1024 }), ro: fc.boolean() }),
    fc.record({ kind: fc.constant('munmap' as const), r: fc.nat(5), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 1024 }) }),
    fc.record({ kind: fc.constant('load' as const), r: fc.nat(5), page: fc.nat(1600) }),
    fc.record({ kind: fc.constant('store' as const), r: fc.nat(5), page: fc.nat(1600), value: fc.integer({ min: 1, max: 9 }) }),
    fc.record({ kind: fc.constant('touch' as const), r: fc.nat(5), pages: fc.integer({ min: 1, max: 1200 }), write: fc.boolean() }),
    // Reclaim through rmap: shared tables cleared once, every sharer flushed, the data kept.
    fc.record({ kind: fc.constant('reclaim' as const), r: fc.nat(5), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 1024 }) }),
    // Migration through rmap: migration entries, faults waiting on them, the data moved.
    fc.record({ kind: fc.constant('migrate' as const), r: fc.nat(5), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 1024 }) }),
  ),
  { minLength: 1, maxLength: 24 },
);

function build(procs: (typeof procOps extends fc.Arbitrary<infer T> ? T : never)[]): Program[] {
  return procs.map((ops, p) => {
    const prog: Op[] = p === 0
      ? [{ op: 'shm_open', name: '/d', create: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size: FILE }, { op: 'barrier', id: 0 }]
      : [{ op: 'barrier', id: 0 }, { op: 'shm_open', name: '/d', as: 'fd' }];
    // Every process starts with the same hinted shared mapping, so tables get shared; the
    // random ops then map, protect and unmap around and inside it.
    prog.push(
      { op: 'mmap', addr: BASES[0], len: 4 * MiB, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: region(0), expect: any },
      { op: 'madvise', region: region(0), len: 4 * MiB, advice: 'MADV_SHARE_PT', expect: any },
      { op: 'touch', region: region(0), len: 4 * MiB, stride: 64 * 1024, write: p % 2 === 0, expect: any },
    );
    let regions = 1;
    for (const o of ops) {
      if (o.kind === 'mmap') {
        if (regions === 6) continue;
        const flags: ('MAP_SHARED' | 'MAP_PRIVATE' | 'MAP_FIXED')[] = [o.priv ? 'MAP_PRIVATE' : 'MAP_SHARED'];
        if (o.base !== 0) flags.push('MAP_FIXED');
        prog.push({
          op: 'mmap', addr: o.base, len: o.pmds * 2 * MiB + o.extraPages * 4096, offset: o.offPmds * 2 * MiB,
          prot: o.ro ? ['PROT_READ'] : ['PROT_READ', 'PROT_WRITE'], flags, fd: 'fd', as: region(regions++), expect: any,
        });
        continue;
      }
      if (regions === 0) continue;
      const r = region(o.r % regions);
      switch (o.kind) {
        case 'hint': prog.push({ op: 'madvise', region: r, len: 8 * MiB, advice: 'MADV_SHARE_PT', expect: any }); break;
        case 'mprotect': prog.push({ op: 'mprotect', region: r, offset: o.page * 4096, len: o.pages * 4096, prot: o.ro ? ['PROT_READ'] : ['PROT_READ', 'PROT_WRITE'], expect: any }); break;
        case 'munmap': prog.push({ op: 'munmap', region: r, offset: o.page * 4096, len: o.pages * 4096, expect: any }); break;
        case 'load': prog.push({ op: 'load', region: r, offset: o.page * 4096 + 8, expect: any }); break;
        case 'store': prog.push({ op: 'store', region: r, offset: o.page * 4096 + 8, value: o.value, expect: any }); break;
        case 'touch': prog.push({ op: 'touch', region: r, len: o.pages * 4096, write: o.write, expect: any }); break;
        case 'reclaim': prog.push({ op: 'reclaim', region: r, offset: o.page * 4096, len: o.pages * 4096, expect: any }); break;
        case 'migrate': prog.push({ op: 'migrate', region: r, offset: o.page * 4096, len: o.pages * 4096, expect: any }); break;
      }
    }
    // Everyone's mappings live until all are done, so sharers overlap in time.
    prog.push({ op: 'barrier', id: 1 });
    return prog;
  });
}

describe('pt-hint is invisible to programs', () => {
  it('gives exactly what none gives, op by op, and keeps its tables consistent', () => {
    let runsThatShared = 0;
    fc.assert(
      fc.property(fc.array(procOps, { minLength: 2, maxLength: 3 }), (procs) => {
        const programs = build(procs);
        const none = observe('none', programs);
        const hint = observe('pt-hint', programs);
        expect(none.violations).toBe(0);
        expect(hint.violations).toBe(0);
        expect(hint.findings).toBe(0);
        expect(hint.obs).toEqual(none.obs);
        if (hint.sharedFaults > 0) runsThatShared++;
      }),
      { seed, numRuns: Number(process.env.FC_RUNS ?? 60) },
    );
    // The property means something only if tables were really shared in a fair share of runs.
    console.log(`pt-hint shared page tables in ${runsThatShared} of ${process.env.FC_RUNS ?? 60} generated runs`);
    expect(runsThatShared).toBeGreaterThanOrEqual(Number(process.env.FC_RUNS ?? 60) / 10);
  });
});
