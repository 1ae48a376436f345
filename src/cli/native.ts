/**
 * The real-kernel side of the differential check: runs parsed programs on this machine's Linux
 * through the C helper dist/ptkernel (native/ptkernel.c, built at npm ci when `cc` is there) and
 * returns what every op did, in the simulator's own OpResult form. The helper's input format and
 * its rules are in native/README.md.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OpResult, ParsedOp } from '../proc/program.js';

/** The package's root (this file runs from src/cli or bundled into dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'ptlab') return dir;
      } catch {
        // not ours: go on up
      }
    }
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/** Where the helper's binary is (dist/ptkernel). */
export function nativeHelperPath(): string {
  return join(packageRoot(), 'dist', 'ptkernel');
}

/** Why the build left no helper (scripts/build.mjs writes it next to where the binary would be). */
function whyMissing(): string {
  const why = join(packageRoot(), 'dist', 'ptkernel.why');
  if (existsSync(why)) return readFileSync(why, 'utf8').trim();
  return 'dist/ptkernel was not built (npm run build compiles it with cc)';
}

/** Can programs run on the real kernel here: Linux on x86-64 with the helper built. */
export function kernelAvailable(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== 'linux') return { ok: false, why: `the differential check needs Linux (this is ${process.platform})` };
  if (process.arch !== 'x64') return { ok: false, why: `the differential check needs x86-64 (this is ${process.arch})` };
  const bin = nativeHelperPath();
  if (!existsSync(bin)) return { ok: false, why: whyMissing() };
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    return { ok: false, why: `${bin} is not executable` };
  }
  return { ok: true };
}

/** Ops the helper cannot run on a real kernel. */
const UNSUPPORTED = new Set(['uffd_register', 'uffd_wp', 'uffd_register_file', 'uffd_wp_file', 'uffd_handle', 'uffd_snapshot_end', 'join_mm', 'fault_remote']);

const PROT: Record<string, number> = { PROT_NONE: 0, PROT_READ: 1, PROT_WRITE: 2, PROT_EXEC: 4 };
const MAP: Record<string, number> = {
  MAP_SHARED: 0x01, MAP_PRIVATE: 0x02, MAP_SHARED_VALIDATE: 0x03, MAP_FIXED: 0x10, MAP_ANONYMOUS: 0x20, MAP_NORESERVE: 0x4000,
  MAP_LOCKED: 0x2000, MAP_POPULATE: 0x8000, MAP_FIXED_NOREPLACE: 0x100000, MAP_SHARED_PT: 0x200000,
};
/** Advice Linux does not know (MADV_SHARE_PT, and any name ptlab has no number for): Linux says EINVAL. */
const MADV_UNKNOWN = 200;
const MADV: Record<string, number> = {
  MADV_NORMAL: 0, MADV_RANDOM: 1, MADV_SEQUENTIAL: 2, MADV_WILLNEED: 3, MADV_DONTNEED: 4, MADV_FREE: 8, MADV_REMOVE: 9,
  MADV_DONTFORK: 10, MADV_DOFORK: 11, MADV_MERGEABLE: 12, MADV_UNMERGEABLE: 13, MADV_HUGEPAGE: 14, MADV_NOHUGEPAGE: 15,
  MADV_DONTDUMP: 16, MADV_DODUMP: 17, MADV_WIPEONFORK: 18, MADV_KEEPONFORK: 19, MADV_COLD: 20, MADV_PAGEOUT: 21,
  MADV_POPULATE_READ: 22, MADV_POPULATE_WRITE: 23, MADV_DONTNEED_LOCKED: 24, MADV_COLLAPSE: 25, MADV_GUARD_INSTALL: 102,
  MADV_GUARD_REMOVE: 103,
};
/** Advice the helper will not give the machine it runs on (they act on physical pages). */
const MADV_REFUSED = new Set(['MADV_HWPOISON', 'MADV_SOFT_OFFLINE']);
const MREMAP: Record<string, number> = { MREMAP_MAYMOVE: 1, MREMAP_FIXED: 2, MREMAP_DONTUNMAP: 4 };
const MSYNC: Record<string, number> = { MS_ASYNC: 1, MS_INVALIDATE: 2, MS_SYNC: 4 };
const ACCESS: Record<string, number> = { O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2 };

const childOf = (o: Extract<ParsedOp, { op: 'fork' }>): ParsedOp[] => o.child as ParsedOp[];

/**
 * The ops of `programs` (fork children included) the helper cannot run, each once, in the order
 * met: "uffd_register", "join_mm", "madvise MADV_HWPOISON". Empty when it can run them all.
 */
export function unsupportedOps(programs: ParsedOp[][]): string[] {
  const out = new Set<string>();
  const walk = (prog: ParsedOp[]) => {
    for (const o of prog) {
      const op = o.op as string;
      if (UNSUPPORTED.has(op)) out.add(op);
      else if (o.op === 'madvise' && MADV_REFUSED.has(o.advice)) out.add(`madvise ${o.advice}`);
      else if (o.op === 'fork') walk(childOf(o));
      else if (!KNOWN.has(op)) out.add(op);
    }
  };
  programs.forEach(walk);
  return [...out];
}

const KNOWN = new Set(['memfd_create', 'shm_open', 'shm_unlink', 'open', 'unlink', 'ioctl', 'madvise', 'pread', 'pwrite', 'mremap', 'mlock',
  'munlock', 'mincore', 'msync', 'fork', 'wait', 'mshare', 'mshare_unlink', 'ftruncate', 'close', 'mmap', 'munmap', 'mprotect', 'load',
  'store', 'touch', 'barrier', 'exit', 'let']);

const hex = (s: string): string => {
  if (s.includes('\0')) throw new Error(`the kernel check cannot pass a string holding a NUL (${JSON.stringify(s)})`);
  return 'x' + Buffer.from(s, 'utf8').toString('hex');
};

/** An address expression: [slot, offset], slot -1 for a plain number. */
type AddrRef = [number, number];

/**
 * The helper's input (native/README.md): names become slots, strings hex, flags numbers.
 * Throws on a name used before an op (of the process, or of its parent before the fork) defines it.
 */
export function serializePrograms(programs: ParsedOp[][]): string {
  const slotOf = new Map<string, number>();
  const names: string[] = [];
  const progLines: string[][] = [];
  const slot = (n: string): number => {
    let s = slotOf.get(n);
    if (s === undefined) {
      s = names.length;
      slotOf.set(n, s);
      names.push(n);
    }
    return s;
  };
  // programs[0..n-1] first, then fork children in the order they are met (ids handed out as met)
  const queue: { prog: ParsedOp[]; id: number; defined: Set<string>; where: string }[] = [];
  let nextId = programs.length;
  programs.forEach((prog, i) => queue.push({ prog, id: i, defined: new Set(), where: `program ${i}` }));
  for (let qi = 0; qi < queue.length; qi++) {
    const { prog, id, defined, where } = queue[qi];
    const lines: string[] = [];
    prog.forEach((o, i) => {
      const opName: string = o.op;
      const at = `${where}, op ${i} (${opName})`;
      const use = (n: string): number => {
        if (!defined.has(n)) throw new Error(`${at}: '${n}' is used before an op defines it`);
        return slot(n);
      };
      const def = (n: string): number => {
        defined.add(n);
        return slot(n);
      };
      const addr = (a: number | string): AddrRef => {
        if (typeof a === 'number') return [-1, a];
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:([+-])(0x[0-9a-fA-F]+|\d+))?$/.exec(a);
        if (!m) throw new Error(`${at}: bad address '${a}'`);
        const off = m[3] === undefined ? 0 : Number(m[3]);
        return [use(m[1]), m[2] === '-' ? -off : off];
      };
      const bits = (xs: readonly string[], table: Record<string, number>) => xs.reduce((acc, x) => acc | (table[x] ?? 0), 0);
      const b = (x: boolean) => (x ? 1 : 0);
      let line: (string | number)[];
      switch (o.op) {
        case 'memfd_create': line = [def(o.as), hex(o.name)]; break;
        case 'shm_open': line = [def(o.as), hex(o.name), ACCESS[o.access], b(o.create), b(o.excl)]; break;
        case 'shm_unlink': line = [hex(o.name)]; break;
        case 'open': line = [def(o.as), hex(o.path), ACCESS[o.access], b(o.create), b(o.excl)]; break;
        case 'unlink': line = [hex(o.path)]; break;
        case 'ioctl': {
          const fd = use(o.fd);
          for (const v of Object.values(o.args)) if (typeof v === 'string') use(v);
          line = [fd, o.as === undefined ? -1 : def(o.as)];
          break;
        }
        case 'madvise':
          if (MADV_REFUSED.has(o.advice)) throw new Error(`${at}: the kernel check does not give ${o.advice}`);
          line = [use(o.region), o.offset, o.len, MADV[o.advice] ?? MADV_UNKNOWN];
          break;
        case 'pread': line = [use(o.fd), o.offset, o.len]; break;
        case 'pwrite': line = [use(o.fd), o.offset, o.len, o.value]; break;
        case 'mremap': {
          const region = use(o.region);
          const na: AddrRef = o.new_addr === undefined ? [-2, 0] : addr(o.new_addr);
          line = [region, o.offset, o.old_len, o.new_len, bits(o.flags, MREMAP), na[0], na[1], def(o.as)];
          break;
        }
        case 'mlock': line = [use(o.region), o.offset, o.len, b(o.onfault)]; break;
        case 'munlock': line = [use(o.region), o.offset, o.len]; break;
        case 'mincore': line = [use(o.region), o.offset, o.len]; break;
        case 'msync': line = [use(o.region), o.offset, o.len, bits(o.flags, MSYNC)]; break;
        case 'fork': {
          const child = nextId++;
          queue.push({ prog: childOf(o), id: child, defined: new Set(defined), where: `${where}, op ${i}'s child` });
          line = [child, o.as === undefined ? -1 : def(o.as)];
          break;
        }
        case 'wait': line = [o.pid === undefined ? -1 : use(o.pid)]; break;
        case 'mshare': line = []; break;
        case 'mshare_unlink': line = []; break;
        case 'ftruncate': line = [use(o.fd), o.size]; break;
        case 'close': line = [use(o.fd)]; break;
        case 'mmap': {
          const a = addr(o.addr);
          const fd = o.fd === undefined ? -1 : use(o.fd);
          line = [a[0], a[1], o.len, bits(o.prot, PROT), bits(o.flags, MAP), fd, o.offset, def(o.as)];
          break;
        }
        case 'munmap': line = [use(o.region), o.offset, o.len]; break;
        case 'mprotect': line = [use(o.region), o.offset, o.len, bits(o.prot, PROT)]; break;
        case 'load': line = [use(o.region), o.offset]; break;
        case 'store': line = [use(o.region), o.offset, o.value]; break;
        case 'touch': line = [use(o.region), o.offset, o.len, o.stride, b(o.write), o.passes, o.value]; break;
        case 'barrier': line = [o.id, o.count ?? 0]; break;
        case 'exit': line = [o.code]; break;
        case 'let': {
          const a = addr(o.addr);
          line = [def(o.as), a[0], a[1]];
          break;
        }
        default:
          throw new Error(`${at}: the kernel check cannot run ${opName}`);
      }
      lines.push([opName, ...line].join(' '));
    });
    progLines[id] = [`prog ${id} ${prog.length}`, ...lines];
  }
  const out = [`ptkernel 1 ${progLines.length} ${programs.length} ${names.length}`];
  names.forEach((n, s) => out.push(`name ${s} ${hex(n)}`));
  for (const p of progLines) out.push(...p);
  out.push('end', '');
  return out.join('\n');
}

export interface KernelRun {
  /** The kernel's release and machine ("6.8.0-45-generic x86_64"). */
  uname: string;
  /** One per executed op, in the order they ran. */
  results: OpResult[];
  /** Processes still blocked (in a barrier or a wait) when none could run. */
  blocked: number[];
}

/** Removes the /dev/shm names a helper with this pid left (it was killed before its own cleanup). */
function removeNames(pid: number | undefined): void {
  if (pid === undefined) return;
  const prefix = `ptlab-${pid}-`;
  let entries: string[] = [];
  try {
    entries = readdirSync('/dev/shm');
  } catch {
    return;
  }
  for (const e of entries) if (e.startsWith(prefix)) rmSync(join('/dev/shm', e), { force: true });
}

const firstLine = (s: string): string => s.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';

/**
 * Runs `programs` (each the output of ProgramSchema.parse) on this machine's kernel, one process
 * each (fork children after them), on the schedule the simulator uses. Throws an Error with a
 * one-line message when the check is unavailable, an op cannot run here, the helper refuses the
 * program (an op that would touch the helper's own memory), or it does not finish in time.
 */
export async function runOnKernel(programs: ParsedOp[][], opts: { timeoutMs?: number } = {}): Promise<KernelRun> {
  const avail = kernelAvailable();
  if (!avail.ok) throw new Error(`the kernel check is unavailable: ${avail.why}`);
  if (programs.length === 0) throw new Error('the kernel check needs at least one program');
  const bad = unsupportedOps(programs);
  if (bad.length > 0) throw new Error(`the kernel check cannot run ${bad.join(', ')}`);
  const input = serializePrograms(programs);
  const timeoutMs = opts.timeoutMs ?? 30_000;

  // The helper keeps the time itself (it kills its processes, reaps them and removes its names);
  // a few seconds later the whole process group is killed, should it not have.
  const child = spawn(nativeHelperPath(), [String(timeoutMs)], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  child.stdin.on('error', () => {}); // it may refuse before reading everything
  child.stdin.end(input);
  let timedOut = false;
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL'); // the helper and every process it started
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, timeoutMs + 5000);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve({ code: c, signal: s }));
  }).finally(() => clearTimeout(timer));
  const stderr = Buffer.concat(err).toString('utf8');
  if (timedOut || signal !== null) {
    killGroup();
    removeNames(child.pid);
    if (timedOut) throw new Error(`the kernel helper did not finish in ${timeoutMs / 1000} s and did not stop (killed)`);
    throw new Error(`the kernel helper was killed by ${signal}`);
  }
  if (code === 3) throw new Error(`the program did not finish on the kernel in ${timeoutMs / 1000} s (its processes were killed)`);
  if (code === 2) throw new Error(firstLine(stderr).replace(/^ptkernel: /, 'the kernel helper ') || 'the kernel helper refused the program');
  if (code !== 0) throw new Error(`the kernel helper failed (exit ${code}): ${firstLine(stderr) || 'no message'}`);

  const lines = Buffer.concat(out).toString('utf8').split('\n').filter((l) => l !== '');
  const parsed = lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`the kernel helper printed a line that is not JSON: ${l.slice(0, 120)}`);
    }
  });
  const head = parsed[0];
  const tail = parsed[parsed.length - 1];
  if (!head || typeof head.uname !== 'string') throw new Error('the kernel helper printed no uname line');
  if (!tail || tail.done !== true || !Array.isArray(tail.blocked)) throw new Error('the kernel helper did not finish its output');
  const results = parsed.slice(1, -1).map((r) => {
    if (typeof r.proc !== 'number' || typeof r.index !== 'number' || typeof r.op !== 'string') {
      throw new Error(`the kernel helper printed a result without proc/index/op: ${JSON.stringify(r).slice(0, 120)}`);
    }
    return r as unknown as OpResult;
  });
  return { uname: head.uname, results, blocked: tail.blocked as number[] };
}
