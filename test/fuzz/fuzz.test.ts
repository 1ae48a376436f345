/**
 * Bad input never corrupts the machine: the fuzz properties (test/fuzz/properties.ts) on a small
 * budget, and the reproducers of the issue that found the holes. `npm run fuzz -- --seconds N`
 * runs the same properties for longer. fast-check prints the seed and the shrunk input of a
 * failure (replay it with { seed, path }).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { argvArb, brokenFileArb, checkArgv, checkBrokenFile, checkProgram, checkToken, programArb, tokenArb } from './properties.js';

const seed = Number(process.env.PTLAB_FUZZ_SEED ?? 20261203);

describe('fuzz: bad input never corrupts the machine', () => {
  it('scenario files, broken: loaded, or refused in one line', () => {
    fc.assert(fc.property(brokenFileArb, (text) => checkBrokenFile(text).problem === undefined), { seed, numRuns: 300 });
  });

  it('replay tokens: whole, or refused in one line naming the field', () => {
    fc.assert(fc.property(tokenArb, (t) => checkToken(t).problem === undefined), { seed, numRuns: 400 });
  });

  it('schema-valid nasty programs under every model: no checker but the program\'s own fires', async () => {
    await fc.assert(fc.asyncProperty(programArb, async (p) => {
      const v = await checkProgram(p);
      if (v.problem) throw new Error(`${p.model}: ${v.problem}\n${JSON.stringify(p.file)}`);
    }), { seed, numRuns: 16 });
  }, 240_000);

  it('command lines: exit 0, 1 or 2; exit 2 is one line; --json is one object', () => {
    fc.assert(fc.property(argvArb, (argv) => {
      const v = checkArgv(argv);
      if (v.problem) throw new Error(v.problem);
    }), { seed, numRuns: 16 });
  }, 240_000);
});

describe('the reproducers', () => {
  const prog = (ops: object[], model = 'none') => checkProgram({ file: { programs: [ops as never] }, model });
  const files = [
    { op: 'memfd_create', as: 'fa' }, { op: 'ftruncate', fd: 'fa', size: 2097152 },
    { op: 'memfd_create', as: 'fb' }, { op: 'ftruncate', fd: 'fb', size: 2097152 },
    { op: 'mmap', addr: 1073741824, len: 2097152, flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fa', as: 'a' },
    { op: 'mmap', addr: 2147483648, len: 2097152, flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fb', as: 'b' },
  ];

  it.each(['none', 'map-shared-pt', 'pt-hint'])('an access at or past TASK_SIZE faults, and never aliases a mapped page (%s)', async (model) => {
    const v = await prog([...files,
      { op: 'store', region: 'a', offset: 0, value: 1 },
      { op: 'store', region: 'a', offset: 2 ** 48, value: 1, expect: 'SIGSEGV' },
      { op: 'load', region: 'a', offset: 2 ** 48, expect: 'SIGSEGV' },
      { op: 'store', region: 'b', offset: 2 ** 48 - 2 ** 30, value: 7, expect: 'SIGSEGV' },
      { op: 'store', region: 'a', offset: 0x7ffffffff000 - 2 ** 30, value: 1, expect: 'SIGSEGV' },
      { op: 'mmap', addr: 0x7ffffffff000, len: 8192, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'x', expect: 'ENOMEM' },
      { op: 'munmap', region: 'a', offset: 2 ** 47, len: 4096, expect: 'EINVAL' },
      { op: 'mprotect', region: 'a', offset: 2 ** 47, len: 4096, expect: 'ENOMEM' },
    ], model);
    expect(v).toEqual({ cls: 'pass' });
  });

  it('a name left linked is not a leak; /dev/shm/ itself is a directory', async () => {
    expect(await prog([
      { op: 'shm_open', name: '/left', create: true, as: 'f' }, { op: 'ftruncate', fd: 'f', size: 4096 },
      { op: 'mmap', len: 4096, flags: ['MAP_SHARED'], fd: 'f', as: 'm' }, { op: 'store', region: 'm', value: 3 },
      { op: 'open', path: '/dev/shm/', create: true, as: 'd', expect: 'EISDIR' },
      { op: 'shm_open', name: '/', create: true, as: 'e', expect: 'EINVAL' },
    ])).toEqual({ cls: 'pass' });
  });

  it.each([
    ['container-fd', [{ op: 'open', path: '/dev/ptcontainer/left', create: true, as: 'c' }]],
    ['address-space', [{ op: 'open', path: '/dev/address_space/left', create: true, as: 's' }]],
    ['mshare', [{ op: 'open', path: '/sys/fs/mshare/left', create: true, as: 'r' }]],
  ])('%s: a model name left linked is released at the end, not a leak', async (model, ops) => {
    expect(await prog(ops, model)).toEqual({ cls: 'pass' });
  });

  it.each([
    [['run', 'sga', '--mem', '8T']], [['run', 'sga', '--mem', '999999999999999999999999999999T']], [['run', 'sga-1500', '--scale', '1/1000000000']],
    [['explore', 'exit-vs-fault', '--seed', '99999999999999999999999']], [['trace', 'ptlab1.bm90IGpzb24', '-o', '/tmp']],
  ])('%j: exit 2 in one line', (argv) => {
    expect(checkArgv(argv)).toEqual({ cls: 'exit 2' });
  });
});
