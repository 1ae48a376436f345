/**
 * cow-pte: copy-on-write PTE tables at fork (On-Demand-Fork, Lin's COW PTE v4).
 *
 * - Its promise, as pt-hint's: no program can tell. fast-check generates programs that fork
 *   (a child, sometimes a grandchild) around private anonymous and private file mappings that
 *   share PTE tables, and write, read, touch, munmap (partial too), mprotect, MADV_DONTNEED,
 *   mremap, mmap over, exit; each runs on one CPU under `none` and under `cow-pte` (one CPU and a
 *   FIFO run queue: the same interleaving both times). Every op's outcome and every loaded value
 *   must be equal; at a barrier parent and child both reach (tables shared, or half broken) and at
 *   the end every invariant must hold under cow-pte, with the lockset checks on.
 * - The page-table figures of `ptlab run --json` (pgtables_bytes.total): after the fork of a
 *   process with N MiB of touched private anonymous memory, the child holds only its PGD, PUD and
 *   PMD pages; a write in the child copies the one table it writes into.
 * - The planted bugs are caught.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { checkInvariants, runQuiescentChecks } from '../../src/check/invariants.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { runScenario } from '../../src/cli/run.js';
import { read_violations } from '../../src/mm/mmdebug.js';
import { ST_COW_PTE_COPIED, ST_COW_PTE_REUSED, ST_COW_PTE_SHARED } from '../../src/mm/percpu.js';
import { MODELS } from '../../src/models/index.js';
import { Cpu } from '../../src/proc/cpu.js';
import { initTasks } from '../../src/proc/orchestrator.js';
import { countTasks, type Op, type Program } from '../../src/proc/program.js';
import { sizeMachine } from '../../src/scenarios/common.js';
import { createMachine } from '../../src/shm/machine.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`cow-pte differential property test: FC_SEED=${seed}`);

const MiB = 1024 * 1024;
const PAGE = 4096;
const BASE = 0x40000000;
const any = 'any' as const;

interface Obs { obs: string[]; violations: string[]; findings: number; shared: number; copied: number; reused: number }

/** Runs `programs` on one CPU under `model` (lockset on, invariants at every all-task barrier). */
function observe(model: string, programs: Program[], bug = ''): Obs {
  const config = sizeMachine({ cpus: 1, procs: countTasks(programs), sharedBytes: 4 * MiB, privateBytes: 16 * MiB, files: 1, vmasPerProc: 24, mem: 2 ** 30 });
  const m = createMachine(config);
  initTasks(m, programs.length);
  const obs: string[] = [];
  const cpu = new Cpu(
    { sab: m.sab, config, cpu: 0, programs, model, bug, deadlineMs: 2000, lockStatTiming: false, spin: true, slice: 4, lockset: true },
    MODELS[model].create(bug),
    (k) => runQuiescentChecks(k),
    // (process 0's op 0 is the prctl opt-in: 0 under cow-pte, EINVAL under none; not compared)
    (t, pc, outcome, value) => (t === 0 && pc === 0 ? undefined : obs.push(`${t}:${pc}:${outcome}:${value}`)),
  );
  const r = cpu.run();
  if (r.error) throw new Error(r.error);
  return {
    obs,
    violations: read_violations(m.i32, m.layout).map((v) => JSON.stringify(v)),
    findings: checkInvariants(m.i32, m.layout, { model }).findings.length,
    shared: r.stats[ST_COW_PTE_SHARED],
    copied: r.stats[ST_COW_PTE_COPIED],
    reused: r.stats[ST_COW_PTE_REUSED],
  };
}

/**
 * The parent's mappings, made before anything forks: r0 private anonymous over three PTE tables
 * (the last one partly), r1 private anonymous and r2 a private file mapping in one table, r3 a
 * shared file mapping (its table is never shared: fork does not copy it).
 */
const SETUP: Op[] = [
  { op: 'prctl', option: 'PR_SET_COW_PTE', expect: any }, // cow-pte's opt-in; EINVAL under none
  { op: 'shm_open', name: '/cow', create: true, as: 'fd' },
  { op: 'ftruncate', fd: 'fd', size: 4 * MiB },
  { op: 'mmap', addr: BASE, len: 4 * MiB + 3 * PAGE, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'r0' },
  { op: 'mmap', addr: BASE + 6 * MiB, len: MiB, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'r1' },
  { op: 'mmap', addr: BASE + 7 * MiB, len: MiB, flags: ['MAP_PRIVATE', 'MAP_FIXED'], fd: 'fd', as: 'r2' },
  { op: 'mmap', addr: BASE + 8 * MiB, len: 2 * MiB, flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'r3' },
  { op: 'touch', region: 'r0', len: 4 * MiB + 3 * PAGE, stride: 3 * PAGE, write: true, value: 3 },
  { op: 'touch', region: 'r1', len: MiB, stride: 2 * PAGE, write: true, value: 4 },
  { op: 'touch', region: 'r2', len: MiB, stride: 5 * PAGE, write: false },
  { op: 'touch', region: 'r2', len: MiB, stride: 7 * PAGE, write: true, value: 6 },
  { op: 'touch', region: 'r3', len: 2 * MiB, stride: 11 * PAGE, write: true, value: 7 },
];
const LEN = [4 * MiB + 3 * PAGE, MiB, MiB, 2 * MiB];

const opArb = fc.oneof(
  fc.record({ kind: fc.constant('load' as const), r: fc.nat(3), page: fc.nat(1100) }),
  fc.record({ kind: fc.constant('store' as const), r: fc.nat(3), page: fc.nat(1100), value: fc.integer({ min: 10, max: 99 }) }),
  fc.record({ kind: fc.constant('touch' as const), r: fc.nat(3), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 600 }), write: fc.boolean(), value: fc.integer({ min: 10, max: 99 }) }),
  fc.record({ kind: fc.constant('munmap' as const), r: fc.nat(3), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 700 }) }),
  fc.record({ kind: fc.constant('mprotect' as const), r: fc.nat(3), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 700 }), prot: fc.constantFrom('r', 'rw', 'none') }),
  fc.record({ kind: fc.constant('dontneed' as const), r: fc.nat(3), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 700 }) }),
  fc.record({ kind: fc.constant('mremap' as const), r: fc.nat(3), page: fc.nat(256), pages: fc.integer({ min: 1, max: 256 }), grow: fc.integer({ min: -1, max: 2 }) }),
  fc.record({ kind: fc.constant('mmap' as const), r: fc.nat(3), page: fc.nat(1024), pages: fc.integer({ min: 1, max: 600 }) }),
);
const opsArb = fc.array(opArb, { maxLength: 10 });

type GenOp = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/**
 * The ops a generated list stands for; `tag` keeps the one name a list defines (each mremap or
 * mmap names its result `x<tag>` again: a program has at most 16 names) its own.
 */
function ops(list: GenOp[], tag: string): Op[] {
  const out: Op[] = [];
  const name = `x${tag}`;
  for (const o of list) {
    const r = `r${o.r}`;
    const off = (o.page * PAGE) % (LEN[o.r] + 2 * MiB);
    switch (o.kind) {
      case 'load': out.push({ op: 'load', region: r, offset: off + 8, expect: any }); break;
      case 'store': out.push({ op: 'store', region: r, offset: off + 8, value: o.value, expect: any }); break;
      case 'touch': out.push({ op: 'touch', region: r, offset: off, len: o.pages * PAGE, write: o.write, value: o.value, expect: any }); break;
      case 'munmap': out.push({ op: 'munmap', region: r, offset: off, len: o.pages * PAGE, expect: any }); break;
      case 'mprotect': {
        const prot = o.prot === 'r' ? ['PROT_READ' as const] : o.prot === 'rw' ? ['PROT_READ' as const, 'PROT_WRITE' as const] : ['PROT_NONE' as const];
        out.push({ op: 'mprotect', region: r, offset: off, len: o.pages * PAGE, prot, expect: any });
        break;
      }
      case 'dontneed': out.push({ op: 'madvise', region: r, offset: off, len: o.pages * PAGE, advice: 'MADV_DONTNEED', expect: any }); break;
      case 'mremap': {
        out.push({
          op: 'mremap', region: r, offset: off, old_len: o.pages * PAGE, new_len: Math.max(1, o.pages + o.grow * 64) * PAGE,
          flags: ['MREMAP_MAYMOVE'], as: name, expect: any,
        });
        out.push({ op: 'load', region: name, offset: 8, expect: any }, { op: 'store', region: name, offset: 8, value: 77, expect: any });
        break;
      }
      case 'mmap': out.push({ op: 'mmap', addr: `${r}+${off}`, len: o.pages * PAGE, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: name, expect: any }); break;
    }
  }
  return out;
}

/** Loads every region at a few places: what each process sees at the end of its part. */
function survey(): Op[] {
  const out: Op[] = [];
  for (let r = 0; r < 4; r++) for (const p of [0, 1, 255, 256, 511, 512, 700, 1024]) out.push({ op: 'load', region: `r${r}`, offset: p * PAGE + 8, expect: any });
  return out;
}

function build(pre: GenOp[], child: GenOp[], grandchild: GenOp[] | null, after: GenOp[], post: GenOp[]): Program[] {
  const kid: Op[] = [...ops(child, 'c')];
  if (grandchild !== null) {
    kid.push({ op: 'fork', as: 'g', child: [...ops(grandchild, 'g'), ...survey()] });
    kid.push(...ops(after, 'a'), { op: 'wait', pid: 'g', expect: any });
  }
  // Parent and child meet at barrier 1 (the invariants run there, tables shared or half broken).
  kid.push({ op: 'barrier', id: 1, count: 2 }, ...survey());
  return [[
    ...SETUP, ...ops(pre, 'p'),
    { op: 'fork', as: 'c', child: kid },
    ...ops(post, 'q'),
    { op: 'barrier', id: 1, count: 2 },
    ...survey(),
    { op: 'wait', pid: 'c', expect: any },
    ...survey(),
  ]];
}

describe('cow-pte is invisible to programs', () => {
  it.runIf(process.env.COW_CE !== undefined)('replays a counterexample (COW_CE, dumped to COW_DUMP)', () => {
    const [pre, child, grandchild, after, post] = JSON.parse(process.env.COW_CE ?? '[]') as [GenOp[], GenOp[], GenOp[] | null, GenOp[], GenOp[]];
    const programs = build(pre, child, grandchild, after, post);
    if (process.env.COW_DUMP) writeFileSync(process.env.COW_DUMP, JSON.stringify({ summary: 'cow-pte counterexample', programs }, null, 1));
    const none = observe('none', programs);
    const cow = observe('cow-pte', programs);
    expect(cow.violations).toEqual(none.violations);
    expect(cow.obs).toEqual(none.obs);
  });
  it('gives exactly what none gives, op by op, and keeps its tables consistent', () => {
    const runs = Number(process.env.FC_RUNS ?? 40);
    let shared = 0;
    let copied = 0;
    let reused = 0;
    fc.assert(
      fc.property(opsArb, opsArb, fc.option(opsArb, { nil: null }), opsArb, opsArb, (pre, child, grandchild, after, post) => {
        const programs = build(pre, child, grandchild, after, post);
        const none = observe('none', programs);
        const cow = observe('cow-pte', programs);
        expect(none.violations).toEqual([]);
        expect(cow.violations).toEqual([]);
        expect(cow.findings).toBe(0);
        expect(cow.obs).toEqual(none.obs);
        if (cow.shared > 0) shared++;
        if (cow.copied > 0) copied++;
        if (cow.reused > 0) reused++;
      }),
      { seed, numRuns: runs },
    );
    console.log(`cow-pte runs: ${shared} shared tables at fork, ${copied} copied one, ${reused} gave one back, of ${runs}`);
    // The property means something only if tables were shared and broken both ways.
    expect(shared).toBe(runs);
    expect(copied).toBeGreaterThanOrEqual(runs / 4);
    expect(reused).toBeGreaterThanOrEqual(runs / 4);
  });
});

// ---- the page-table figures of `ptlab run --json`, and the planted bugs ----

const dir = mkdtempSync(join(tmpdir(), 'ptlab-cow-pte-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

async function run(programs: Program[], model: string, bug?: string, cooperative = false) {
  const f = join(dir, `p${files++}.json`);
  writeFileSync(f, JSON.stringify({ summary: 'cow-pte test', programs }));
  return runScenario(f, parseRunOptions(f, { model, lockset: true, ...(bug ? { bug } : {}), ...(cooperative ? { cooperative: true } : {}) }));
}

/** A process with `mib` MiB of private anonymous memory, every page written, forks; `child` is the child's part after barrier 1. */
function forkProgram(mib: number, child: Op[], parentAfter: Op[] = []): Program[] {
  const len = mib * MiB;
  return [[
    { op: 'prctl', option: 'PR_SET_COW_PTE', expect: 'any' },
    { op: 'mmap', addr: BASE, len, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'm' },
    { op: 'touch', region: 'm', len, write: true, value: 5 },
    { op: 'fork', as: 'c', child: [{ op: 'barrier', id: 1, count: 2 }, ...child] },
    { op: 'barrier', id: 1, count: 2 },
    ...parentAfter,
    { op: 'wait', pid: 'c', status: 0 },
  ]];
}

const T = 4096; // one page-table page, as x86-64 accounts it

describe('cow-pte page tables after fork (ptlab run --json: pgtables_bytes.total)', () => {
  it('only a process that asked (prctl PR_SET_COW_PTE) forks with shared tables; the child inherits the setting', async () => {
    const asked = forkProgram(4, []);
    const notAsked: Program[] = [asked[0].slice(1)];
    expect((await run(notAsked, 'cow-pte')).cow_pte.tables_shared).toBe(0);
    expect((await run(asked, 'cow-pte')).cow_pte.tables_shared).toBe(2);
    const inherited = forkProgram(4, [{ op: 'fork', as: 'g', child: [] }, { op: 'wait', pid: 'g', status: 0 }]);
    expect((await run(inherited, 'cow-pte')).cow_pte.tables_shared).toBe(4); // the child's fork shares them again
    const none = await run(asked, 'none');
    expect(none.violations.map((v) => v.checker)).toEqual([]); // (its prctl returned EINVAL: expect "any")
  });

  it('the child of a process with 64 MiB of touched private memory holds only its PGD, PUD and PMD pages', async () => {
    const programs = forkProgram(64, []);
    const none = await run(programs, 'none');
    const cow = await run(programs, 'cow-pte');
    expect(none.ok && cow.ok).toBe(true);
    // 64 MiB: 32 PTE tables + PMD + PUD + PGD = 35 pages per process under none, for both.
    expect(none.pgtables_bytes.total).toBe(2 * 35 * T);
    // cow-pte: the parent's 35, the child's PGD, PUD and PMD; the 32 PTE tables are shared.
    expect(cow.pgtables_bytes.total).toBe((35 + 3) * T);
    expect(cow.pgtables_bytes.total).toBeLessThan(0.6 * none.pgtables_bytes.total);
    expect(cow.cow_pte.tables_shared).toBe(32);
    expect(cow.cow_pte.breaks_copied).toBe(0);
  });

  it('a write in the child copies only the table it writes into', async () => {
    const programs = forkProgram(64, [
      { op: 'store', region: 'm', offset: 5 * MiB, value: 9 },
      { op: 'load', region: 'm', offset: 5 * MiB, value: 9 },
      { op: 'load', region: 'm', offset: 6 * MiB, value: 5 },
      { op: 'barrier', id: 2, count: 2 },
    ], [
      { op: 'barrier', id: 2, count: 2 },
      { op: 'load', region: 'm', offset: 5 * MiB, value: 5 },
    ]);
    const cow = await run(programs, 'cow-pte');
    expect(cow.violations).toEqual([]);
    expect(cow.cow_pte.breaks_copied).toBe(1);
    expect(cow.pgtables_bytes.total).toBe((35 + 3 + 1) * T); // measured at barrier 2: one PTE table more
  });
});

describe('examples/cow_pte_fork.json (three processes at once, free mode, lockset on)', () => {
  it.each(['none', 'cow-pte'])('passes every checker under %s', async (model) => {
    const f = 'examples/cow_pte_fork.json';
    const r = await runScenario(f, parseRunOptions(f, { model, lockset: true, cpus: '2' }));
    expect(r.violations).toEqual([]);
    if (model === 'cow-pte') expect(r.cow_pte.tables_shared).toBe(8);
  });
});

describe('cow-pte planted bugs', () => {
  it('cow-break-keeps-share: the share count outlives the entries (invariant:pt-share / pt-owner)', async () => {
    const programs = forkProgram(4, [
      { op: 'store', region: 'm', offset: 8, value: 9 },
      { op: 'barrier', id: 2, count: 2 },
    ], [{ op: 'barrier', id: 2, count: 2 }]);
    expect((await run(programs, 'cow-pte')).ok).toBe(true);
    const r = await run(programs, 'cow-pte', 'cow-break-keeps-share');
    expect(r.ok).toBe(false);
    expect(r.violations.map((v) => v.checker)).toContain('invariant:pt-share');
  });

  it('cow-fork-no-flush: the parent\'s store after fork reaches the child (expectation, stale-tlb)', async () => {
    const programs: Program[] = [[
      { op: 'prctl', option: 'PR_SET_COW_PTE' },
      { op: 'mmap', addr: BASE, len: 2 * MiB, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'm' },
      { op: 'store', region: 'm', offset: 8, value: 1 },
      { op: 'fork', as: 'c', child: [{ op: 'barrier', id: 1, count: 2 }, { op: 'load', region: 'm', offset: 8, value: 1 }] },
      { op: 'store', region: 'm', offset: 8, value: 2 },
      { op: 'barrier', id: 1, count: 2 },
      { op: 'load', region: 'm', offset: 8, value: 2 },
      { op: 'wait', pid: 'c', status: 0 },
    ]];
    // Cooperative: the parent runs on from the fork to the store (no time slice ends between
    // them: a context switch would flush its TLB and hide the missing flush).
    expect((await run(programs, 'cow-pte', undefined, true)).ok).toBe(true);
    const r = await run(programs, 'cow-pte', 'cow-fork-no-flush', true);
    expect(r.ok).toBe(false);
    expect(r.violations.some((v) => v.checker === 'expectation' || v.checker === 'stale-tlb')).toBe(true);
  });
});
