/** The real-kernel side of the differential check: tiny programs through dist/ptkernel on this machine's Linux. */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kernelAvailable, runOnKernel, serializePrograms, unsupportedOps } from '../../src/cli/native.js';
import { ProgramSchema, type OpResult, type ParsedOp } from '../../src/proc/program.js';

const parse = (...programs: unknown[][]): ParsedOp[][] => programs.map((p) => ProgramSchema.parse(p));
const run = (...programs: unknown[][]) => runOnKernel(parse(...programs));
/** The results of one process, by op index. */
const of = (results: OpResult[], proc: number) => {
  const m = new Map<number, OpResult>();
  for (const r of results) if (r.proc === proc) m.set(r.index, r);
  return m;
};
const KEYS = ['proc', 'index', 'op', 'ret', 'errno', 'signal', 'code', 'at', 'value', 'status'];
const anon = (as: string, len = 0x4000, flags = ['MAP_PRIVATE', 'MAP_ANONYMOUS']) => ({ op: 'mmap', len, flags, as });

describe('serializing for the helper', () => {
  it('names unsupported ops, refuses names used before they are defined', () => {
    const progs = parse([anon('m'), { op: 'uffd_register', region: 'm', len: 4096 }, { op: 'join_mm', task: 0 }], [{ op: 'madvise', region: 'x', len: 1, advice: 'MADV_HWPOISON' }]);
    expect(unsupportedOps(progs)).toEqual(['uffd_register', 'join_mm', 'madvise MADV_HWPOISON']);
    expect(unsupportedOps(parse([anon('m'), { op: 'fork', child: [{ op: 'fault_remote', task: 0, addr: 0 }] }]))).toEqual(['fault_remote']);
    expect(() => serializePrograms(parse([{ op: 'load', region: 'm' }]))).toThrow(/'m' is used before an op defines it/);
    // the child inherits what the parent had at the fork, not the fork's own name
    expect(() => serializePrograms(parse([{ op: 'fork', child: [{ op: 'wait', pid: 'c' }], as: 'c' }]))).toThrow(/'c' is used before/);
    const text = serializePrograms(parse([anon('m'), { op: 'fork', child: [{ op: 'store', region: 'm', offset: '0x10', value: -1 }] }]));
    expect(text.split('\n').slice(0, 2)).toEqual(['ptkernel 1 2 1 1', 'name 0 x6d']);
    expect(text).toContain('\nstore 0 16 -1\n');
  });
});

const avail = kernelAvailable();

describe.skipIf(!avail.ok)(`on the real kernel${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  it('a store then a load returns the value; the output lines have their keys in order', async () => {
    const r = await run([anon('m'), { op: 'store', region: 'm', offset: 0x1004, value: 7 }, { op: 'load', region: 'm', offset: 0x1006 }, { op: 'store', region: 'm', value: -1 }, { op: 'load', region: 'm' }]);
    expect(r.uname).toMatch(/^\S+ x86_64$/);
    expect(r.blocked).toEqual([]);
    expect(r.results).toEqual([
      { proc: 0, index: 0, op: 'mmap' },
      { proc: 0, index: 1, op: 'store' },
      { proc: 0, index: 2, op: 'load', value: 7 },
      { proc: 0, index: 3, op: 'store' },
      { proc: 0, index: 4, op: 'load', value: 0xffffffff },
    ]);
  });

  it('a load past EOF of a shared memfd mapping is SIGBUS BUS_ADRERR at the word; SIGSEGV MAPERR/ACCERR; #GP is SI_KERNEL at 0x0', async () => {
    const r = await run([
      { op: 'memfd_create', as: 'f' },
      { op: 'ftruncate', fd: 'f', size: 4096 },
      { op: 'mmap', len: 8192, flags: ['MAP_SHARED'], fd: 'f', as: 'm' },
      { op: 'load', region: 'm', offset: 4096 + 6 },
      { op: 'load', region: 'm', offset: -8 },
      { op: 'mprotect', region: 'm', len: 4096, prot: ['PROT_READ'] },
      { op: 'store', region: 'm', offset: 8 },
      { op: 'let', as: 'nc', addr: 2 ** 47 },
      { op: 'load', region: 'nc' },
      { op: 'touch', region: 'm', len: 8192, stride: 1024 },
    ]);
    const p = of(r.results, 0);
    expect(p.get(3)).toEqual({ proc: 0, index: 3, op: 'load', signal: 'SIGBUS', code: 'BUS_ADRERR', at: 'm+0x1004' });
    expect(p.get(4)).toMatchObject({ signal: 'SIGSEGV', code: 'SEGV_MAPERR', at: 'm-0x8' });
    expect(p.get(6)).toMatchObject({ signal: 'SIGSEGV', code: 'SEGV_ACCERR', at: 'm+0x8' });
    expect(p.get(7)).toEqual({ proc: 0, index: 7, op: 'let' });
    expect(p.get(8)).toMatchObject({ signal: 'SIGSEGV', code: 'SI_KERNEL', at: '0x0' });
    expect(p.get(9)).toMatchObject({ signal: 'SIGBUS', code: 'BUS_ADRERR', at: 'm+0x1000' }); // the touch stops at the first signal
    for (const res of r.results) {
      const keys = Object.keys(res);
      expect(keys.slice(0, 3)).toEqual(['proc', 'index', 'op']);
      expect(keys.map((k) => KEYS.indexOf(k))).toEqual([...keys.map((k) => KEYS.indexOf(k))].sort((a, b) => a - b));
      expect(keys.every((k) => KEYS.includes(k))).toBe(true);
    }
  });

  it('mprotect over a hole is ENOMEM; MADV_DONTNEED on private anonymous memory reads 0 after; mremap says where it went', async () => {
    const r = await run([
      anon('m', 0x3000),
      { op: 'munmap', region: 'm', offset: 0x1000, len: 0x1000 },
      { op: 'mprotect', region: 'm', len: 0x3000, prot: ['PROT_READ'] },
      { op: 'store', region: 'm', value: 5 },
      { op: 'madvise', region: 'm', len: 0x1000, advice: 'MADV_DONTNEED' },
      { op: 'load', region: 'm' },
      { op: 'madvise', region: 'm', len: 0x1000, advice: 'MADV_SHARE_PT' },
      { op: 'mremap', region: 'm', old_len: 0x1000, new_len: 0x800, as: 'n' },
      { op: 'mremap', region: 'm', old_len: 0x1000, new_len: 0x100000, flags: ['MREMAP_MAYMOVE'], as: 'o' },
      { op: 'mincore', region: 'o', len: 0x3000 },
    ]);
    const p = of(r.results, 0);
    expect(p.get(2)).toEqual({ proc: 0, index: 2, op: 'mprotect', errno: 'ENOMEM' });
    expect(p.get(5)).toEqual({ proc: 0, index: 5, op: 'load', value: 0 });
    expect(p.get(6)).toMatchObject({ errno: 'EINVAL' });
    expect(p.get(7)).toEqual({ proc: 0, index: 7, op: 'mremap', ret: 'm+0x0' });
    expect(p.get(8)).toEqual({ proc: 0, index: 8, op: 'mremap', ret: 'moved' });
    // the load after DONTNEED mapped the zero page: resident, and its PTE moved with the mapping; the grown part is not
    expect(p.get(9)).toEqual({ proc: 0, index: 9, op: 'mincore', value: 1 });
  });

  it('fork: the child sees private data; its private stores stay its own, its shared ones reach the parent; wait gives the status', async () => {
    const r = await run([
      anon('p'),
      anon('s', 0x4000, ['MAP_SHARED', 'MAP_ANONYMOUS']),
      { op: 'store', region: 'p', value: 11 },
      { op: 'store', region: 's', value: 12 },
      { op: 'fork', as: 'c', child: [
        { op: 'load', region: 'p' },
        { op: 'store', region: 'p', value: 21 },
        { op: 'store', region: 's', value: 22 },
        { op: 'exit', code: 7 },
      ] },
      { op: 'wait', pid: 'c' },
      { op: 'load', region: 'p' },
      { op: 'load', region: 's' },
      { op: 'wait' },
    ]);
    expect(r.results.map((x) => [x.proc, x.index])).toEqual([[0, 0], [0, 1], [0, 2], [0, 3], [0, 4], [1, 0], [1, 1], [1, 2], [0, 5], [0, 6], [0, 7], [0, 8]]);
    const p = of(r.results, 0);
    expect(p.get(4)).toEqual({ proc: 0, index: 4, op: 'fork', ret: 1 });
    expect(of(r.results, 1).get(0)).toEqual({ proc: 1, index: 0, op: 'load', value: 11 });
    // the parent blocked in wait until the child exited (the child ran only then)
    expect(p.get(5)).toEqual({ proc: 0, index: 5, op: 'wait', ret: 1, status: 7 });
    expect(p.get(6)).toMatchObject({ value: 11 });
    expect(p.get(7)).toMatchObject({ value: 22 });
    expect(p.get(8)).toEqual({ proc: 0, index: 8, op: 'wait', errno: 'ECHILD' });
  });

  it('barriers hand the turn over in order; processes that can never go on are reported blocked', async () => {
    const r = await run(
      [{ op: 'barrier', id: 1 }, anon('a'), { op: 'barrier', id: 2, count: 3 }],
      [anon('b'), { op: 'barrier', id: 1 }, anon('c')],
    );
    expect(r.results.map((x) => [x.proc, x.index])).toEqual([[1, 0], [1, 2], [0, 1]]);
    expect(r.blocked).toEqual([0]);
  });

  it('/dev/shm: names are this run\'s, removed at the end; other paths are ENOENT; the directory itself is EISDIR for O_RDWR', async () => {
    const r = await run([
      { op: 'shm_open', name: '/ptlab-test', create: true, as: 'f' },
      { op: 'pwrite', fd: 'f', offset: 4096, len: 10, value: 0x01020304 },
      { op: 'pread', fd: 'f', offset: 4096, len: 100 },
      { op: 'open', path: '/dev/shm/ptlab-test', as: 'g' },
      { op: 'pread', fd: 'g', offset: 4094, len: 8 },
      { op: 'open', path: '/etc/passwd', access: 'O_RDONLY', as: 'h' },
      { op: 'open', path: '/dev/shm', as: 'h' },
      { op: 'shm_open', name: 'a/b', as: 'h' },
      { op: 'ioctl', fd: 'f', cmd: 'PTSHARE' },
      { op: 'close', fd: 'f' },
      { op: 'close', fd: 'f' },
      { op: 'mshare', name: 'x', addr: 0, len: 4096 },
    ]);
    const p = of(r.results, 0);
    expect(p.get(1)).toMatchObject({ ret: 10 });
    expect(p.get(2)).toEqual({ proc: 0, index: 2, op: 'pread', ret: 10, value: 0x01020304 });
    expect(p.get(4)).toEqual({ proc: 0, index: 4, op: 'pread', ret: 8, value: 0x03040000 });
    expect(p.get(5)).toMatchObject({ errno: 'ENOENT' });
    expect(p.get(6)).toMatchObject({ errno: 'EISDIR' });
    expect(p.get(7)).toMatchObject({ errno: 'EINVAL' });
    expect(p.get(8)).toMatchObject({ errno: 'ENOTTY' });
    expect(p.get(9)).toEqual({ proc: 0, index: 9, op: 'close' });
    expect(p.get(10)).toMatchObject({ errno: 'EBADF' });
    expect(p.get(11)).toMatchObject({ errno: 'ENOSYS' });
    expect(readdirSync('/dev/shm').filter((e) => /^ptlab-\d+-/.test(e))).toEqual([]);
  });

  it('refuses an op that would touch the helper\'s own memory, and what it cannot run', async () => {
    await expect(run([{ op: 'let', as: 'w', addr: 0x100000 }, { op: 'munmap', region: 'w', len: 2 ** 47 - 0x100000 }])).rejects.toThrow(/^the kernel helper refused: proc 0 op 1 \(munmap\).*helper's own memory$/);
    await expect(run([anon('m'), { op: 'mmap', addr: 'm', len: 2 ** 47, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'x' }])).rejects.toThrow(/refused/);
    await expect(run([anon('m'), { op: 'uffd_register', region: 'm', len: 4096 }])).rejects.toThrow(/cannot run uffd_register/);
    // the helper keeps room under its own memory: just past a first mapping is nothing, as in the simulator
    const past = await run([anon('m'), { op: 'load', region: 'm', offset: 0x4000 }, { op: 'store', region: 'm', offset: 0x4000 + 0x80000 }]);
    expect(past.results.slice(1)).toEqual([
      { proc: 0, index: 1, op: 'load', signal: 'SIGSEGV', code: 'SEGV_MAPERR', at: 'm+0x4000' },
      { proc: 0, index: 2, op: 'store', signal: 'SIGSEGV', code: 'SEGV_MAPERR', at: 'm+0x84000' },
    ]);
    // past 2^47 the kernel says no by itself
    const r = await run([{ op: 'let', as: 'k', addr: 2 ** 47 }, { op: 'munmap', region: 'k', len: 4096 }, { op: 'mmap', addr: 'k', len: 4096, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_FIXED'], as: 'x' }]);
    expect(of(r.results, 0).get(1)).toMatchObject({ errno: 'EINVAL' });
    expect(of(r.results, 0).get(2)).toMatchObject({ errno: 'ENOMEM' });
  });
});
