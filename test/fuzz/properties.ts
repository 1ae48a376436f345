/**
 * The fuzz properties of "bad input never corrupts the machine", shared by `npm test`
 * (test/fuzz/fuzz.test.ts, a small budget) and `npm run fuzz -- --seconds N` (test/fuzz/main.ts,
 * as long as asked). Each generator makes one kind of input a user can hand ptlab; each check
 * runs one and says which outcome class it fell in, or what promise it broke.
 *
 * The promises: exit 0, 1 or 2 only; exit 2 is one line on stderr and nothing on stdout; --json
 * prints exactly one JSON object; a program with no --bug makes no checker fire but `expectation`
 * (its own assertions) and `watchdog`/`deadlock` (its own unreachable barrier); nothing outlives
 * its deadline; a bad file or token is refused in one line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseRunOptions, UsageError } from '../../src/cli/options.js';
import { tokenRunOptions } from '../../src/cli/explore.js';
import { runScenario } from '../../src/cli/run.js';
import { MODELS } from '../../src/models/index.js';
import { TASK_SIZE } from '../../src/mm/pgtable.js';
import { loadScenarioFile } from '../../src/scenarios/file.js';
import { decodeToken, encodeToken, TokenError } from '../../src/sched/token.js';

export interface Verdict {
  /** The outcome class (counted by npm run fuzz). */
  cls: string;
  /** A broken promise, or undefined. */
  problem?: string;
}

const dir = mkdtempSync(join(tmpdir(), 'ptlab-fuzz-'));
let fileSeq = 0;
/** A new path each time: scenario files are cached by path. */
export function tempFile(text: string, ext = '.json'): string {
  const p = join(dir, `f${process.pid}-${fileSeq++}${ext}`);
  writeFileSync(p, text);
  return p;
}

export const MODEL_NAMES = Object.keys(MODELS);

// ---- scenario programs: schema-valid but nasty ----

const G = 2 ** 30;
const nastyAddr = fc.constantFrom(0, 4096, 5000, G, 2 * G, TASK_SIZE - 4096, TASK_SIZE, 2 ** 47, 2 ** 48, 2 ** 48 + G, 2 ** 52);
const nastyLen = fc.constantFrom(0, 1, 4095, 4096, 8192, 2 ** 21, 2 ** 21 + 4096, G, 2 ** 46, 2 ** 52);
const nastyOffset = fc.constantFrom(0, 8, 4095, 4096, 8192, 2 ** 21, -8, -4096, TASK_SIZE, 2 ** 47, 2 ** 48, 2 ** 48 - G, 2 ** 52, -(2 ** 52));
const nastySize = fc.constantFrom(0, 1, 4096, 5000, 8192, 2 ** 21, 2 ** 22, 2 ** 40, 2 ** 52);
const region = fc.constantFrom('r0', 'r1', 'r2');
const fd = fc.constantFrom('f0', 'f1', 'f2', 'r0');
const expect = fc.constantFrom('any', 'any', 'any', 'any', 'ok', 'EINVAL', 'ENOMEM', 'SIGSEGV', 'SIGBUS');
const prot = fc.subarray(['PROT_READ', 'PROT_WRITE', 'PROT_EXEC', 'PROT_NONE']);
const flags = fc.subarray(['MAP_SHARED', 'MAP_PRIVATE', 'MAP_FIXED', 'MAP_ANONYMOUS', 'MAP_SHARED_PT'], { minLength: 1 });
const path = fc.constantFrom('/dev/shm/fz', '/dev/shm/', '/dev/shm', '/dev/shm/a/b', '/dev/ptcontainer', '/dev/ptcontainer/c', '/dev/address_space',
  '/dev/address_space/s', '/sys/fs/mshare/m', '/sys/fs/mshare', '/etc/passwd', 'relative');
const shmName = fc.constantFrom('/fz', '/', '//', 'fz', '/a/b', '/other');

type JsonOp = Record<string, unknown>;

const advice = fc.constantFrom('MADV_SHARE_PT', 'MADV_DONTNEED', 'MADV_BOGUS', 'MADV_REMOVE', 'MADV_FREE', 'MADV_WILLNEED', 'MADV_DONTFORK', 'MADV_WIPEONFORK',
  'MADV_POPULATE_READ', 'MADV_POPULATE_WRITE', 'MADV_RANDOM');
/** The Linux-fidelity calls (file I/O, mremap, mlock, mincore, msync, wait), and ptlab's reclaim trigger. */
const linuxOpArb: fc.Arbitrary<JsonOp> = fc.oneof(
  fc.record({ op: fc.constant('pread'), fd, offset: nastySize, len: fc.constantFrom(0, 1, 4, 4096, 2 ** 21), expect }),
  fc.record({ op: fc.constant('pwrite'), fd, offset: fc.constantFrom(0, 3, 4096, 8190, 2 ** 21), len: fc.constantFrom(0, 1, 4, 4097), value: fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), expect }),
  fc.record({ op: fc.constant('mremap'), region, offset: nastyOffset, old_len: nastyLen, new_len: nastyLen, flags: fc.subarray(['MREMAP_MAYMOVE', 'MREMAP_FIXED', 'MREMAP_DONTUNMAP']),
    new_addr: fc.option(fc.oneof(nastyAddr, fc.constantFrom('r0', 'r1+0x200000', 'r2-0x1000')), { nil: undefined }), as: region, expect }),
  fc.record({ op: fc.constant('mlock'), region, offset: nastyOffset, len: fc.constantFrom(0, 4096, 8192, 2 ** 21), onfault: fc.boolean(), expect }),
  fc.record({ op: fc.constant('munlock'), region, offset: nastyOffset, len: nastyLen, expect }),
  fc.record({ op: fc.constant('mincore'), region, offset: nastyOffset, len: fc.constantFrom(0, 4096, 8192, 2 ** 21), expect }),
  fc.record({ op: fc.constant('msync'), region, offset: nastyOffset, len: nastyLen, flags: fc.subarray(['MS_ASYNC', 'MS_SYNC', 'MS_INVALIDATE']), expect }),
  fc.record({ op: fc.constant('reclaim'), region, offset: nastyOffset, len: nastyLen, expect }),
  fc.record({ op: fc.constant('migrate'), region, offset: nastyOffset, len: nastyLen, expect }),
  fc.record({ op: fc.constant('prctl'), option: fc.constant('PR_SET_COW_PTE'), expect }),
  fc.record({ op: fc.constant('wait'), expect }),
  fc.record({ op: fc.constant('gup_fast'), region, offset: nastyOffset, write: fc.boolean(), expect }),
  fc.record({ op: fc.constant('compact'), expect }),
);

const opArb: fc.Arbitrary<JsonOp> = fc.oneof(
  linuxOpArb,
  fc.record({ op: fc.constant('mmap'), addr: nastyAddr, len: nastyLen, prot, flags, fd: fc.option(fd, { nil: undefined }), offset: fc.constantFrom(0, 4096, 5000, 2 ** 40), as: region, expect }, { requiredKeys: ['op', 'len', 'flags', 'as', 'expect'] }),
  fc.record({ op: fc.constant('munmap'), region, offset: nastyOffset, len: nastyLen, expect }),
  fc.record({ op: fc.constant('mprotect'), region, offset: nastyOffset, len: nastyLen, prot, expect }),
  fc.record({ op: fc.constant('madvise'), region, offset: nastyOffset, len: nastyLen, advice, expect }),
  fc.record({ op: fc.constant('load'), region, offset: nastyOffset, expect }),
  fc.record({ op: fc.constant('store'), region, offset: nastyOffset, value: fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }), expect }),
  fc.record({ op: fc.constant('touch'), region, offset: nastyOffset, len: fc.constantFrom(0, 4096, 2 ** 21), stride: fc.constantFrom(8, 4096, 2 ** 21), write: fc.boolean(), expect }),
  fc.record({ op: fc.constant('ftruncate'), fd, size: nastySize, expect }),
  fc.record({ op: fc.constant('close'), fd, expect }),
  fc.record({ op: fc.constant('memfd_create'), as: fd, expect }),
  fc.record({ op: fc.constant('shm_open'), name: shmName, create: fc.boolean(), excl: fc.boolean(), as: fd, expect }),
  fc.record({ op: fc.constant('shm_unlink'), name: shmName, expect }),
  fc.record({ op: fc.constant('open'), path, create: fc.boolean(), excl: fc.boolean(), as: fd, expect }),
  fc.record({ op: fc.constant('unlink'), path, expect }),
  fc.record({ op: fc.constant('ioctl'), fd, cmd: fc.constantFrom('CONTAINER_MAP', 'CONTAINER_UNMAP', 'MSHAREFS_CREATE_MAPPING', 'AS_MMAP', 'BOGUS'),
    args: fc.dictionary(fc.constantFrom('offset', 'size', 'fd', 'addr', 'len', 'prot', 'flags', 'region_offset'), fc.oneof(fc.constantFrom(0, 4096, 2 ** 21, 2 ** 48, -1), fc.constant('f0'))), expect }),
  fc.record({ op: fc.constant('mshare'), name: shmName, addr: nastyAddr, len: nastyLen, create: fc.boolean(), excl: fc.boolean(), expect }),
  fc.record({ op: fc.constant('mshare_unlink'), name: shmName, expect }),
  fc.record({ op: fc.constant('uffd_register'), region, offset: nastyOffset, len: nastyLen, expect }),
  fc.record({ op: fc.constant('uffd_wp'), region, offset: nastyOffset, len: nastyLen, protect: fc.boolean(), expect }),
  fc.record({ op: fc.constant('barrier'), id: fc.integer({ min: 0, max: 2 }), count: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }) }),
  fc.record({ op: fc.constant('exit'), code: fc.integer({ min: -3, max: 300 }) }),
  fc.record({ op: fc.constant('join_mm'), task: fc.integer({ min: 0, max: 4 }), expect }),
  fc.record({ op: fc.constant('let'), as: region, addr: nastyAddr }),
  fc.record({ op: fc.constant('fault_remote'), task: fc.integer({ min: 0, max: 5 }), addr: nastyAddr, write: fc.boolean(), expect }),
);

/** Every name the random ops use is defined first (a use before definition is bad input, tried elsewhere). */
const PROLOGUE: JsonOp[] = [
  { op: 'memfd_create', as: 'f0', expect: 'any' },
  { op: 'ftruncate', fd: 'f0', size: 8192, expect: 'any' },
  { op: 'shm_open', name: '/fz', create: true, as: 'f1', expect: 'any' },
  { op: 'ftruncate', fd: 'f1', size: 2 ** 21, expect: 'any' },
  { op: 'memfd_create', as: 'f2', expect: 'any' },
  { op: 'mmap', len: 8192, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS'], as: 'r0', expect: 'any' },
  { op: 'mmap', len: 8192, flags: ['MAP_SHARED'], fd: 'f0', as: 'r1', expect: 'any' },
  { op: 'mmap', len: 2 ** 21, flags: ['MAP_SHARED'], fd: 'f1', as: 'r2', expect: 'any' },
];

/** A program that forks once: the child runs a few of the same ops (it has every name the parent has). */
const withFork = (ops: JsonOp[], child: JsonOp[], at: number): JsonOp[] =>
  [...ops.slice(0, at), { op: 'fork', as: 'kid', child, expect: 'any' }, ...ops.slice(at), { op: 'wait', pid: 'kid', expect: 'any' }];

export interface FuzzProgram {
  file: { programs: JsonOp[][] };
  model: string;
}

export const programArb: fc.Arbitrary<FuzzProgram> = fc.record({
  file: fc.record({
    programs: fc.array(
      fc.tuple(fc.array(opArb, { maxLength: 12 }), fc.option(fc.array(opArb, { maxLength: 6 }), { nil: undefined }), fc.nat(12))
        .map(([ops, child, at]) => [...PROLOGUE, ...(child === undefined ? ops : withFork(ops, child, Math.min(at, ops.length)))]),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  model: fc.constantFrom(...MODEL_NAMES),
});

/** Checkers a program with no --bug may make fire: its own assertions, and its own unreachable barrier. */
const ALLOWED = new Set(['expectation', 'watchdog', 'deadlock']);

/** Runs a program in this process (a pool of workers of its own); never longer than `limitMs`. */
export async function checkProgram(p: FuzzProgram, limitMs = 60_000): Promise<Verdict> {
  const file = tempFile(JSON.stringify(p.file));
  let timer: NodeJS.Timeout | undefined;
  try {
    const o = parseRunOptions(file, { model: p.model, deadline: '400', lockStat: false });
    const run = runScenario(file, o);
    const r = await Promise.race([run, new Promise<null>((res) => (timer = setTimeout(() => res(null), limitMs)))]);
    if (r === null) return { cls: 'outlived', problem: `the run outlived ${limitMs} ms` };
    const bad = r.violations.filter((v) => !ALLOWED.has(v.checker));
    // A machine stopped by the watchdog skips the end checks but may say a process did not exit.
    const stopped = r.violations.some((v) => v.checker === 'watchdog' || v.checker === 'deadlock');
    const real = bad.filter((v) => !(stopped && v.checker === 'harness'));
    if (real.length > 0) return { cls: 'violation', problem: `[${real[0].checker}] ${real[0].message}` };
    return { cls: r.ok ? 'pass' : r.violations[0].checker };
  } catch (e) {
    if (e instanceof UsageError) return oneLine('bad-input', e.message);
    return { cls: 'crash', problem: `threw ${e instanceof Error ? e.stack : String(e)}` };
  } finally {
    clearTimeout(timer);
  }
}

function oneLine(cls: string, msg: string): Verdict {
  return msg.includes('\n') || msg.trim() === '' ? { cls, problem: `message is not one line: ${JSON.stringify(msg)}` } : { cls };
}

// ---- scenario files: structurally broken ----

const validOp = fc.constantFrom<JsonOp>(
  { op: 'mmap', len: 4096, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS'], as: 'm' },
  { op: 'store', region: 'm', offset: 0, value: 1 },
  { op: 'memfd_create', as: 'f' },
);
/** A valid op with one thing wrong: a misspelt key, a wrong type, a value out of range, a name never defined. */
const brokenOp = fc.tuple(validOp, fc.constantFrom('length', 'lenn', 'ofset', 'adress', 'flag'), fc.oneof(fc.string(), fc.integer(), fc.double(), fc.constant(null), fc.constant('0xzz'), fc.constant(2 ** 60), fc.constant(-1)))
  .chain(([op, key, v]) => fc.constantFrom<JsonOp>({ ...op, [key]: v }, { ...op, len: v }, { ...op, offset: v }, { ...op, region: 'never' }, { ...op, op: 'nosuchop' }, { ...op, expect: 'EWHAT' }));

export const brokenFileArb: fc.Arbitrary<string> = fc.oneof(
  fc.json(),
  fc.string(),
  fc.constant('// hi\n{"programs":[[]]}\n'),
  fc.constant('{"programs":[[]]'),
  fc.array(fc.array(fc.oneof(validOp, brokenOp), { maxLength: 4 }), { maxLength: 3 }).map((programs) => JSON.stringify({ programs })),
  fc.record({ programs: fc.array(fc.array(brokenOp, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 2 }), extra: fc.option(fc.string(), { nil: undefined }) }).map((o) => JSON.stringify(o)),
);

/** Loads a scenario file in this process: it loads, or it is refused in one line. */
export function checkBrokenFile(text: string): Verdict {
  const file = tempFile(text);
  try {
    loadScenarioFile(file);
    return { cls: 'loaded' };
  } catch (e) {
    return oneLine('refused', e instanceof Error ? e.message : String(e));
  }
}

// ---- replay tokens ----

const baseToken = {
  scenario: 'exit-vs-fault', model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', opts: { size: '4M', lockStat: false } as Record<string, unknown>,
  strategy: 'pct', seed: 1, depth: 3, steps: 100, schedule: undefined as unknown,
};
const tokenField = fc.constantFrom('scenario', 'model', 'bug', 'opts', 'strategy', 'seed', 'depth', 'steps', 'schedule', 'extra');
const tokenValue = fc.oneof(
  fc.constantFrom('x:y', '-1:1.40:0', '0:99', '1:1.2:3', '', 'replay', 'pct', 'random', -1, 0, 1.5, 2 ** 32, 2 ** 53, 17, 1e9, null, true),
  fc.constant({ procs: 3 }), fc.constant({ cpus: '99' }), fc.constant({ procs: '2', bogus: '1' }), fc.constant({ size: '1000' }),
  fc.string(), fc.integer(),
);

export const tokenArb: fc.Arbitrary<string> = fc.oneof(
  fc.array(fc.tuple(tokenField, tokenValue), { maxLength: 3 }).map((edits) => {
    const t: Record<string, unknown> = { ...baseToken, opts: { ...baseToken.opts } };
    for (const [k, v] of edits) t[k] = v;
    return encodeToken(t as never);
  }),
  fc.string().map((s) => 'ptlab1.' + Buffer.from(s).toString('base64url')),
  fc.string().map((s) => 'ptlab1.' + s),
  fc.string(),
);

/** Decodes a token and checks it against its run options, in this process: it is whole, or refused in one line. */
export function checkToken(token: string): Verdict {
  try {
    tokenRunOptions(decodeToken(token));
    return { cls: 'whole' };
  } catch (e) {
    if (e instanceof TokenError || e instanceof UsageError) return oneLine('refused', e.message);
    return { cls: 'crash', problem: `threw ${e instanceof Error ? e.stack : String(e)}` };
  }
}

// ---- command lines ----

const quickScenario = fc.constantFrom('sga', 'exit-vs-fault', 'mprotect-vs-fault', 'nosuch', 'sga-1500');
const opt = (name: string, values: readonly string[]) => fc.constantFrom(...values).map((v) => [name, v]);
const numberish = ['0', '1', '2', '-1', 'x', '1.5', '0x10', '', '99999999999999999999999', '1e3'];
const optionArb = fc.oneof(
  opt('--procs', numberish), opt('--cpus', numberish), opt('--ops', numberish), opt('--seed', [...numberish, '4294967295', '4294967296']),
  opt('--size', ['8M', '1000', '0', '64T', '128T', '1e3', 'abc', '999999999999999999999999999999T']),
  opt('--mem', ['1G', '8T', '0', '4T', '999999999999999999999999999999T', 'x']),
  opt('--scale', ['1/1000000000', '1/100000', '0', '2', '1/0', 'x', '-1']),
  opt('--model', [...MODEL_NAMES, 'bogus', '']), opt('--bug', ['rfc-v2-free-shared-pmd', 'nosuch', '']),
  opt('--deadline', ['0', '5', '1000', 'x', '-5']), opt('--mmap-lock', ['rwsem', 'qrwlock', 'mcs']), opt('--fault-lock', ['per-vma', 'mmap', 'x']),
  opt('--ptl', ['split', 'mm', 'x']), opt('--frobnicate', ['1']), fc.constant(['--json']),
);
const tokenArg = fc.constantFrom('', 'ptlab1.', 'ptlab1.bm90IGpzb24', 'garbage', encodeToken({ ...baseToken, schedule: 'x:y', strategy: 'replay' } as never),
  encodeToken({ ...baseToken, opts: { procs: 3 } } as never));

export const argvArb: fc.Arbitrary<string[]> = fc.oneof(
  fc.tuple(fc.constantFrom('run', 'compare'), quickScenario, fc.array(optionArb, { maxLength: 4 })).map(([c, s, o]) => [c, s, '--size', '4M', '--procs', '2', ...o.flat()]),
  fc.tuple(quickScenario, fc.array(optionArb, { maxLength: 3 }), fc.constantFrom('0', '2', '-3', 'x', '10000001'), fc.constantFrom('0', '3', '17', 'x'))
    .map(([s, o, runs, depth]) => ['explore', s, '--size', '4M', ...o.flat(), '--runs', runs, '--depth', depth]),
  fc.tuple(fc.constantFrom('replay', 'shrink', 'trace'), tokenArg, fc.constantFrom('/nonexistent-dir/t.json', '/tmp', '/proc/ptlab-fuzz.json', ''), fc.boolean())
    .map(([c, t, o, json]) => [c, t, ...(c === 'trace' && o ? ['-o', o] : []), ...(json && c !== 'trace' ? ['--json'] : [])]),
  fc.tuple(fc.constantFrom('0', '1', '2', '65', '-1', 'x'), fc.constantFrom('0', '1', '2', 'x'), fc.constantFrom('0', '0.2', '-1', 'x', '4000'), fc.constantFrom('5', '1000', 'x'), fc.boolean())
    .map(([w, r, s, d, json]) => ['torture', '--writers', w, '--readers', r, '--seconds', s, '--deadline', d, ...(json ? ['--json'] : [])]),
  fc.array(fc.constantFrom('list', '--json', 'bogus', '--help', '-x', 'run'), { minLength: 0, maxLength: 3 }),
);

/** The package root (the tests run there; so does npm run fuzz). */
const root = process.cwd();

/** Runs the CLI as a user would and checks the exit-status contract. */
export function checkArgv(argv: string[], limitMs = 120_000): Verdict {
  const r = spawnSync(process.execPath, [join(root, 'bin/ptlab.mjs'), ...argv], { encoding: 'utf8', timeout: limitMs, env: { ...process.env, PTLAB_LOG: 'silent' } });
  if (r.error || r.status === null) return { cls: 'outlived', problem: `ptlab ${argv.join(' ')}: no exit within ${limitMs} ms (${r.signal ?? r.error?.message})` };
  const code = r.status;
  const cls = `exit ${code}`;
  if (code !== 0 && code !== 1 && code !== 2) return { cls, problem: `ptlab ${argv.join(' ')}: exit ${code}: ${r.stderr.slice(0, 300)}` };
  const errLines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  if (code === 2) {
    if (errLines.length !== 1) return { cls, problem: `ptlab ${argv.join(' ')}: exit 2 with ${errLines.length} lines on stderr: ${r.stderr.slice(0, 300)}` };
    if (r.stdout !== '' && !argv.includes('--help')) return { cls, problem: `ptlab ${argv.join(' ')}: exit 2 printed on stdout` };
  }
  if (argv.includes('--json') && code !== 2 && !argv.includes('--help')) {
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    try {
      if (lines.length !== 1 || typeof JSON.parse(lines[0]) !== 'object') throw new Error('not one object');
    } catch {
      return { cls, problem: `ptlab ${argv.join(' ')}: --json printed ${lines.length} lines, not one JSON object` };
    }
  }
  return { cls };
}
