/**
 * A process's program is data: a list of operations with symbolic names for their results (an
 * fd, a mapped region). Scenario code builds programs in TypeScript; scenario files give them as
 * JSON, validated here with zod. Every op may say what it expects: `ok` (the default), an errno
 * name (`EINVAL`), a signal (`SIGSEGV`, `SIGBUS`), or `any` (record the outcome, go on). An
 * outcome other than the expected one is a violation of the scenario's own assertion.
 */
import { ERRNO } from '../mm/errno.js';
import { z } from 'zod';

export const SIGNALS: Record<string, number> = { SIGBUS: 7, SIGKILL: 9, SIGSEGV: 11 };

const name = z.string().min(1).max(32);
/** Addresses, lengths and offsets stay below 2^52 (2^47 of user space plus any offset) so that an address is always an exact JS number. */
export const MAX_NUMBER = 2 ** 52;
/**
 * An integer in [min, max], written as a JSON number or a string: decimal, or hex with 0x
 * ("0x1000", "-0x10").
 */
const int = (min: number, max: number) =>
  z.union([z.number(), z.string().regex(/^-?(0x[0-9a-fA-F]+|\d+)$/, { message: 'expected a number, or a string of one (decimal or 0x hex)' })])
    .transform((v) => (typeof v === 'number' ? v : v.startsWith('-') ? -Number(v.slice(1)) : Number(v)))
    .pipe(z.number().refine((n) => Number.isSafeInteger(n) && n >= min && n <= max, { message: `expected an integer from ${min} to ${max === MAX_NUMBER ? '2^52' : max}` }));
const expect = z.string().refine((e) => /^(ok|any)$/.test(e) || e in SIGNALS || e in ERRNO, {
  message: 'expected ok, any, a signal (SIGSEGV, SIGBUS, SIGKILL) or an errno name ptlab knows (EINVAL, ENOMEM, ...)',
}).optional();
const prot = z.array(z.enum(['PROT_READ', 'PROT_WRITE', 'PROT_EXEC', 'PROT_NONE'])).default(['PROT_READ', 'PROT_WRITE']);
const size = int(0, MAX_NUMBER);
const offset = int(-MAX_NUMBER, MAX_NUMBER).default(0);
/** A value a store writes: one 32-bit word (signed or unsigned). */
const word = int(-(2 ** 31), 2 ** 32 - 1);
const count = int(0, 2 ** 31 - 1);
const task = int(0, 4095);
/**
 * An address: a number, or a region name with an optional offset ("m", "m+0x1000", "m-4096"),
 * resolved when the op runs (a region's address is whatever its mmap returned).
 */
const addrExpr = z.union([size, z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*([+-](0x[0-9a-fA-F]+|\d+))?$/, { message: 'expected an address: a number, or a region name with an optional +/- offset ("m+0x1000")' })]);
/** si_codes a program may assert (include/uapi/asm-generic/siginfo.h). */
export const SI_CODES: Record<string, number> = { SEGV_MAPERR: 1, SEGV_ACCERR: 2, BUS_ADRALN: 1, BUS_ADRERR: 2, BUS_OBJERR: 3, SI_KERNEL: 0x80 };
/**
 * What an op may assert beside `expect` (every one is checked and reported, none stops the run):
 * a signal's si_code and si_addr (relative to a region: "m+0x1000"), a syscall's return value
 * (a number, or an address relative to a region for mremap), a wait's status (an exit code or
 * the signal that killed the child).
 */
const asserts = {
  expect,
  code: z.enum(Object.keys(SI_CODES) as [string, ...string[]]).optional(),
  at: z.string().regex(/^([A-Za-z_][A-Za-z0-9_]*([+-](0x[0-9a-fA-F]+|\d+))?|0x[0-9a-fA-F]+|\d+)$/, { message: 'expected a region name with an optional +/- offset ("m+0x1000"), or an address' }).optional(),
  ret: z.union([int(-MAX_NUMBER, MAX_NUMBER), z.string().max(64)]).optional(),
};
/** An op's schema: unknown keys are refused (and a near key suggested), not dropped. */
const op = <L extends string, S extends z.ZodRawShape>(literal: L, shape: S) => z.strictObject({ op: z.literal(literal), ...asserts, ...shape });
const access = z.enum(['O_RDONLY', 'O_WRONLY', 'O_RDWR']).default('O_RDWR');
export const MMAP_FLAGS = ['MAP_SHARED', 'MAP_PRIVATE', 'MAP_SHARED_VALIDATE', 'MAP_FIXED', 'MAP_ANONYMOUS', 'MAP_FIXED_NOREPLACE', 'MAP_POPULATE', 'MAP_NORESERVE',
  'MAP_LOCKED', 'MAP_SHARED_PT'] as const;
export const MADVICES = ['MADV_NORMAL', 'MADV_RANDOM', 'MADV_SEQUENTIAL', 'MADV_WILLNEED', 'MADV_DONTNEED', 'MADV_FREE', 'MADV_REMOVE', 'MADV_DONTFORK', 'MADV_DOFORK',
  'MADV_WIPEONFORK', 'MADV_KEEPONFORK', 'MADV_POPULATE_READ', 'MADV_POPULATE_WRITE', 'MADV_SHARE_PT'] as const;

const OPS = [
  op('memfd_create', { name: z.string().max(64).default('memfd'), as: name, expect }),
  op('shm_open', { name: z.string().min(1).max(64), create: z.boolean().default(false), excl: z.boolean().default(false), access, as: name, expect }),
  op('shm_unlink', { name: z.string().min(1).max(64), expect }),
  op('open', { path: z.string().min(1).max(128), create: z.boolean().default(false), excl: z.boolean().default(false), access, as: name, expect }),
  op('unlink', { path: z.string().min(1).max(128), expect }),
  op('ioctl', {
    fd: name,
    cmd: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
    // A string names an earlier result (an fd, an address); numbers are taken as they are.
    args: z.record(z.string(), z.union([z.number().int().refine((n) => Math.abs(n) <= MAX_NUMBER, { message: 'expected an integer of at most 2^52' }), name])).default({}),
    as: name.optional(),
    expect,
  }),
  op('madvise', { region: name, offset, len: size, advice: z.string().regex(/^MADV_[A-Z_]+$/), expect }),
  // File I/O through the page cache (shmem_file_read_iter / shmem_file_write_iter): `len` bytes
  // at file offset `offset`; pwrite writes `value`'s four bytes (little-endian) over and over;
  // pread's `value` is the first 32-bit word read. `ret` is the byte count.
  op('pread', { fd: name, offset: size.default(0), len: size.default(4), value: word.optional() }),
  op('pwrite', { fd: name, offset: size.default(0), len: size.default(4), value: word.default(1) }),
  op('mremap', {
    region: name, offset, old_len: size, new_len: size,
    flags: z.array(z.enum(['MREMAP_MAYMOVE', 'MREMAP_FIXED', 'MREMAP_DONTUNMAP'])).default([]),
    new_addr: addrExpr.optional(),
    as: name,
  }),
  op('mlock', { region: name, offset, len: size, onfault: z.boolean().default(false) }),
  op('munlock', { region: name, offset, len: size }),
  // mincore: `value` is the residency of the range's first 32 pages, page i in bit i.
  op('mincore', { region: name, offset, len: size, value: word.optional() }),
  op('msync', { region: name, offset, len: size, flags: z.array(z.enum(['MS_ASYNC', 'MS_SYNC', 'MS_INVALIDATE'])).default(['MS_SYNC']) }),
  // reclaim: the page-cache pages this mapping maps in [offset, offset + len) are reclaimed as
  // kswapd would (mm/vmscan.c): unmapped from every mapping of the file through rmap
  // (try_to_unmap), kept in the page cache (no swap), so the next access faults them back in. A
  // MADV_PAGEOUT-like trigger with madvise's errnos (EINVAL for private anonymous memory).
  op('reclaim', { region: name, offset, len: size, expect }),
  // migrate: the page-cache pages this mapping maps in [offset, offset + len) move to new frames
  // (mm/migrate.c, as move_pages(2) would ask): migration entries in every mapping through rmap,
  // faults on them wait, then PTEs of the new frames. Returns the pages not moved; the reclaim
  // op's errnos (EINVAL for private anonymous memory).
  op('migrate', { region: name, offset, len: size, expect }),
  // prctl: PR_SET_COW_PTE opts the caller's process in to COW page tables at fork (Lin's COW PTE
  // v4); EINVAL under every model but cow-pte (an option this kernel does not know).
  op('prctl', { option: z.enum(['PR_SET_COW_PTE']), expect }),
  // fork: the child runs `child` (with every name the parent has so far) and exits at its end;
  // `as` names the child (the parent's result, for wait).
  op('fork', { child: z.array(z.unknown()).max(100_000), as: name.optional() }).superRefine((o, ctx) => {
    // The child's ops are a program of their own (checked here, so the types stay flat).
    const r = ProgramSchema.safeParse(o.child);
    if (!r.success) for (const i of r.error.issues) ctx.addIssue({ ...i, path: ['child', ...i.path] } as never);
    else o.child = r.data;
  }),
  // wait4 for the child named `pid` (a fork's `as`), or any child: ECHILD when there is none.
  // `status` asserts the child's exit code, or the signal that killed it.
  op('wait', { pid: name.optional(), status: z.union([int(0, 255), z.enum(['SIGKILL', 'SIGSEGV', 'SIGBUS'])]).optional() }),
  op('mshare', { name: z.string().min(1).max(64), addr: size, len: size, create: z.boolean().default(false), excl: z.boolean().default(false), expect }),
  op('mshare_unlink', { name: z.string().min(1).max(64), expect }),
  op('ftruncate', { fd: name, size, expect }),
  op('close', { fd: name, expect }),
  op('mmap', {
    addr: addrExpr.default(0),
    len: size,
    prot,
    flags: z.array(z.enum(MMAP_FLAGS)).min(1),
    fd: name.optional(),
    offset: size.default(0),
    as: name,
    expect,
  }),
  op('munmap', { region: name, offset, len: size, expect }),
  op('mprotect', { region: name, offset, len: size, prot, expect }),
  op('load', { region: name, offset, value: word.optional(), expect }),
  op('store', { region: name, offset, value: word.default(1), expect }),
  op('touch', {
    region: name,
    offset,
    len: size,
    stride: int(1, MAX_NUMBER).default(4096),
    write: z.boolean().default(false),
    passes: int(1, 1_000_000).default(1),
    value: word.default(1),
    expect,
  }),
  // userfaultfd write-protect (seed 003): per-process PTE markers, and the file-level flavour.
  op('uffd_register', { region: name, offset, len: size, expect }),
  op('uffd_wp', { region: name, offset, len: size, protect: z.boolean().default(true), expect }),
  op('uffd_register_file', { fd: name, expect }),
  op('uffd_wp_file', { fd: name, protect: z.boolean().default(true), expect }),
  // The handler: until `writers` tasks arrived at barrier `until_barrier` (and no event is left), or `count` events.
  op('uffd_handle', { until_barrier: count.optional(), writers: count.default(0), count: count.default(0), expect }),
  op('uffd_snapshot_end', { expect }),
  op('barrier', { id: count.default(0), count: int(1, 4096).optional() }), // (no id: barrier 0)
  z.strictObject({ op: z.literal('exit'), code: int(0, 255).default(0) }), // (its `code` is the exit status, not a si_code)
  // clone(CLONE_VM) seen from the child: this task becomes a thread of `task`'s process — its own
  // (empty) address space goes and `task`'s is used from now on (EAGAIN if that has none yet).
  op('join_mm', { task, expect }),
  // Names an address the program knows (a pointer another thread handed over): no syscall.
  op('let', { as: name, addr: addrExpr }),
  // A fault on `task`'s address space from this one (process_vm_writev's get_user_pages_remote /
  // fixup_user_fault): ESRCH without such an mm, EFAULT where nothing (writable) is mapped.
  op('fault_remote', { task, addr: size, write: z.boolean().default(true), expect }),
  // get_user_pages_fast of the page at region+offset (an O_DIRECT or device pin): the lockless
  // walk with interrupts off, the slow path (a fault) when it finds nothing; EFAULT as GUP gives it.
  op('gup_fast', { region: name, offset, write: z.boolean().default(false), expect }),
  // One pass of kcompactd's pfn scanner over the page-table pages (speculative references taken
  // and dropped: mm/compaction.ts). No syscall does it; a scenario runs it as a background task.
  op('compact', { expect }),
] as const;

export const OpSchema = z.discriminatedUnion('op', OPS);

/** Each op's keys (for the "did you mean" of an unknown key). */
const OP_KEYS: Record<string, string[]> = Object.fromEntries(OPS.map((o) => [o.shape.op.value, Object.keys(o.shape)]));

/** Levenshtein distance (short keys only). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length];
}

/** The known key an unknown one most likely meant ("length" -> "len"), or null. */
export function nearestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.startsWith(key) || key.startsWith(k) ? Math.abs(k.length - key.length) * 0.5 : distance(key, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best !== null && bestD <= Math.max(2, key.length / 2) ? best : null;
}

/**
 * One zod issue as one line naming the field: `programs.0.2.len: expected ...`. `input` is what
 * was parsed (to name an op's known keys when one is unknown).
 */
export function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = issue.path.map(String).join('.');
  const at = (p: string) => (p === '' ? '(top)' : p);
  const oneLine = (m: string) => m.replace(/\s+/g, ' ').trim();
  if (issue.code === 'unrecognized_keys') {
    const target = issue.path.reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined), input);
    const opName = target !== null && typeof target === 'object' ? (target as Record<string, unknown>).op : undefined;
    const known = typeof opName === 'string' ? OP_KEYS[opName] : undefined;
    const key = issue.keys[0];
    const near = known ? nearestKey(key, known.filter((k) => k !== 'op')) : null;
    const where = path === '' ? '' : `${path}.`;
    return `${where}${key}: unknown key${typeof opName === 'string' ? ` in a '${opName}' op` : ''}` +
      (near ? ` (did you mean '${near}'?)` : known ? ` (its keys: ${known.join(', ')})` : '');
  }
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator === 'op') {
    return `${at(path)}: not an op ptlab knows: one of ${Object.keys(OP_KEYS).join(', ')}`;
  }
  return `${at(path)}: ${oneLine(issue.message)}`;
}

/**
 * What one op did, as `ptlab run --json` (op_results) and the real-kernel helper (native/) both
 * print it; keys are absent where they do not apply. `proc` numbers processes: the programs'
 * processes 0..n-1, then forked children in the order the forks happened; `index` is the op's
 * place in its own program (a fork's child program for a child).
 */
export interface OpResult {
  proc: number;
  index: number;
  op: string;
  /** The syscall's return value where it says more than success: pread/pwrite bytes, fork/wait a proc number, mremap an address ("m+0x2000", or "moved"). */
  ret?: number | string;
  /** The errno's name when the syscall failed. */
  errno?: string;
  /** The signal the access raised (the program goes on, as a handler would), its si_code and its si_addr relative to the op's region ("m+0x1000"; "0x0" for SI_KERNEL). */
  signal?: string;
  code?: string;
  at?: string;
  /** A load's word (unsigned 32-bit), pread's first word, mincore's residency bits. */
  value?: number;
  /** wait: the child's exit code, or the signal that killed it. */
  status?: number | string;
}

export type Op = z.input<typeof OpSchema>;
export type ParsedOp = z.output<typeof OpSchema>;
export const ProgramSchema = z.array(OpSchema).max(100_000);
export type Program = Op[];

// ---- compiled form: numbers only, built once per worker ----
export const enum OpCode {
  MemfdCreate = 1,
  ShmOpen,
  ShmUnlink,
  Ftruncate,
  Close,
  Mmap,
  Munmap,
  Mprotect,
  Load,
  Store,
  Touch,
  Barrier,
  Exit,
  Open,
  Unlink,
  Ioctl,
  Madvise,
  Mshare,
  MshareUnlink,
  UffdRegister,
  UffdWp,
  UffdRegisterFile,
  UffdWpFile,
  UffdHandle,
  UffdSnapshotEnd,
  JoinMm,
  Let,
  FaultRemote,
  Pread,
  Pwrite,
  Mremap,
  Mlock,
  Munlock,
  Mincore,
  Msync,
  Fork,
  Wait,
  GupFast,
  Compact,
  Reclaim,
  Migrate,
  Prctl,
}

/** Op names by OpCode (traces and reports). */
export const OP_NAMES: readonly string[] = ['', 'memfd_create', 'shm_open', 'shm_unlink', 'ftruncate', 'close', 'mmap', 'munmap', 'mprotect', 'load', 'store', 'touch',
  'barrier', 'exit', 'open', 'unlink', 'ioctl', 'madvise', 'mshare', 'mshare_unlink', 'uffd_register', 'uffd_wp', 'uffd_register_file', 'uffd_wp_file', 'uffd_handle',
  'uffd_snapshot_end', 'join_mm', 'let', 'fault_remote', 'pread', 'pwrite', 'mremap', 'mlock', 'munlock', 'mincore', 'msync', 'fork', 'wait', 'gup_fast', 'compact', 'reclaim', 'migrate', 'prctl'];

/** Expected outcome: EXPECT_OK, EXPECT_ANY, a positive errno, or -signal. */
export const EXPECT_OK = 0;
export const EXPECT_ANY = 0x7fffffff;

/** An address the op computes when it runs: `slot`'s value plus `off`, or `off` alone (slot -1). */
export interface AddrRef {
  slot: number;
  off: number;
  name: string;
}

/** What an op asserts beside its outcome (src/proc/cpu.ts checks each, none stops the run). */
export interface Assertions {
  value?: number;
  code?: number;
  at?: AddrRef;
  ret?: number | string;
  status?: number | string;
}

export interface CompiledOp {
  code: OpCode;
  /** Slot of the fd or region the op reads, or -1. */
  slot: number;
  /** The name in that slot (a region's name, for si_addr and mremap's ret relative to it). */
  slotName: string;
  /** Slot it writes its result to, or -1. */
  out: number;
  a: number; // addr / offset / size / id / code
  b: number; // len
  c: number; // prot
  d: number; // flags / stride / count / value
  e: number; // passes / value / offset
  f: number; // mremap's new_len
  /** mmap's, let's and mremap's address expression (slot -1: `off` is the address). */
  addr: AddrRef | null;
  write: boolean;
  str: string;
  /** ioctl arguments: numbers, or slots to read at run time. */
  args: [string, number | { slot: number }][];
  expect: number;
  /** Assertions beyond `expect`, or null. */
  want: Assertions | null;
  /** fork: the task that runs the child program. */
  child: number;
  text: string;
}

export { ERRNO };
export const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(ERRNO).map(([k, v]) => [v, k]));
export const SIGNAL_NAMES: Record<number, string> = Object.fromEntries(Object.entries(SIGNALS).map(([k, v]) => [v, k]));
export const SI_CODE_NAMES: Record<string, Record<number, string>> = {
  SIGSEGV: { 1: 'SEGV_MAPERR', 2: 'SEGV_ACCERR', 0x80: 'SI_KERNEL' },
  SIGBUS: { 1: 'BUS_ADRALN', 2: 'BUS_ADRERR', 3: 'BUS_OBJERR', 0x80: 'SI_KERNEL' },
};

export const PROT_BITS: Record<string, number> = { PROT_NONE: 0, PROT_READ: 1, PROT_WRITE: 2, PROT_EXEC: 4 };
/** include/uapi/linux/mman.h and asm-generic/mman(-common).h; MAP_SHARED_PT is map-shared-pt's (seed 001), unknown to Linux. */
export const MAP_BITS: Record<string, number> = {
  MAP_SHARED: 0x01, MAP_PRIVATE: 0x02, MAP_SHARED_VALIDATE: 0x03, MAP_FIXED: 0x10, MAP_ANONYMOUS: 0x20, MAP_NORESERVE: 0x4000, MAP_LOCKED: 0x2000,
  MAP_POPULATE: 0x8000, MAP_FIXED_NOREPLACE: 0x100000, MAP_SHARED_PT: 0x200000,
};
export const MREMAP_BITS: Record<string, number> = { MREMAP_MAYMOVE: 1, MREMAP_FIXED: 2, MREMAP_DONTUNMAP: 4 };
export const MS_BITS: Record<string, number> = { MS_ASYNC: 1, MS_INVALIDATE: 2, MS_SYNC: 4 };
export const ACCESS_MODES: Record<string, number> = { O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2 };

function expectCode(e: string | undefined): number {
  if (e === undefined || e === 'ok') return EXPECT_OK;
  if (e === 'any') return EXPECT_ANY;
  if (e in SIGNALS) return -SIGNALS[e];
  if (e in ERRNO) return ERRNO[e];
  throw new Error(`unknown expectation ${e}`); // the schema refused it already
}

/** Describes an outcome code (0, errno, -signal) for people. */
export function outcomeName(v: number): string {
  if (v === 0) return 'ok';
  if (v === EXPECT_ANY) return 'any';
  if (v < 0) return SIGNAL_NAMES[-v] ?? `signal ${-v}`;
  return ERRNO_NAMES[v] ?? `errno ${v}`;
}

/** "m+0x1000" / "m-0x8" / "0x2000": an address as a program names it. */
export function addrName(name: string, off: number): string {
  if (name === '') return `0x${off.toString(16)}`;
  return `${name}${off < 0 ? '-' : '+'}0x${Math.abs(off).toString(16)}`;
}

const ADDR_EXPR = /^([A-Za-z_][A-Za-z0-9_]*)(?:([+-])(0x[0-9a-fA-F]+|\d+))?$/;

/**
 * A whole machine's programs compiled: the programs' processes first (task i runs programs[i]),
 * then one task per fork op (its child program), numbered in the order compile meets them.
 */
export interface CompiledPrograms {
  tasks: CompiledOp[][];
  /** How many of them are the programs' own processes (the rest start only when forked). */
  initial: number;
}

/** How many tasks `programs` may need: one per process and one per fork op (each runs at most once). */
export function countTasks(programs: readonly Program[]): number {
  const forks = (ops: readonly unknown[]): number => ops.reduce<number>((n, o) => {
    const op = o as { op?: string; child?: unknown[] };
    return n + (op.op === 'fork' && Array.isArray(op.child) ? 1 + forks(op.child) : 0);
  }, 0);
  return programs.reduce((n, p) => n + 1 + forks(p), 0);
}

export function compilePrograms(programs: readonly Program[], maxSlots: number): CompiledPrograms {
  const tasks: CompiledOp[][] = programs.map(() => []);
  programs.forEach((p, i) => (tasks[i] = compileInto(ProgramSchema.parse(p), new Map(), maxSlots, tasks)));
  return { tasks, initial: programs.length };
}

/**
 * Compiles one program: names become slots (at most `maxSlots`, shared by fds and regions).
 * Throws on an unknown name or too many names — scenario errors, found before the run.
 */
export function compileProgram(program: Program, maxSlots: number): CompiledOp[] {
  return compilePrograms([program], maxSlots).tasks[0];
}

function compileInto(parsed: ParsedOp[], slots: Map<string, number>, maxSlots: number, tasks: CompiledOp[][]): CompiledOp[] {
  const def = (n: string): number => {
    let s = slots.get(n);
    if (s === undefined) {
      s = slots.size;
      if (s >= maxSlots) throw new Error(`too many names in one program (at most ${maxSlots})`);
      slots.set(n, s);
    }
    return s;
  };
  const use = (n: string | undefined): number => {
    if (n === undefined) return -1;
    const s = slots.get(n);
    if (s === undefined) throw new Error(`'${n}' is used before an op defines it`);
    return s;
  };
  const ref = (x: number | string): AddrRef => {
    if (typeof x === 'number') return { slot: -1, off: x, name: '' };
    const m = ADDR_EXPR.exec(x);
    if (!m) throw new Error(`'${x}' is not an address`);
    const off = m[3] === undefined ? 0 : Number(m[3]);
    return { slot: use(m[1]), off: m[2] === '-' ? -off : off, name: m[1] };
  };
  const bits = (xs: readonly string[], table: Record<string, number>) => xs.reduce((acc, x) => acc | table[x], 0);
  return parsed.map((o): CompiledOp => {
    const c: CompiledOp = {
      code: 0 as OpCode, slot: -1, slotName: '', out: -1, a: 0, b: 0, c: 0, d: 0, e: 0, f: 0, addr: null, write: false, str: '', args: [], expect: EXPECT_OK, want: null,
      child: -1, text: JSON.stringify(o.op === 'fork' ? { ...o, child: `[${o.child.length} ops]` } : o),
    };
    if ('expect' in o) c.expect = expectCode(o.expect);
    if (o.op !== 'exit' && o.op !== 'barrier') {
      const w: Assertions = {};
      if ('value' in o && o.value !== undefined && (o.op === 'load' || o.op === 'pread' || o.op === 'mincore')) w.value = o.value >>> 0;
      if (o.code !== undefined) w.code = SI_CODES[o.code];
      if (o.at !== undefined) w.at = /^(0x[0-9a-fA-F]+|\d+)$/.test(o.at) ? { slot: -1, off: Number(o.at), name: '' } : ref(o.at);
      if (o.ret !== undefined) w.ret = o.ret;
      if (o.op === 'wait' && o.status !== undefined) w.status = o.status;
      if (Object.keys(w).length > 0) c.want = w;
    }
    const region = (n: string) => {
      c.slot = use(n);
      c.slotName = n;
    };
    switch (o.op) {
      case 'memfd_create': c.code = OpCode.MemfdCreate; c.str = o.name; c.out = def(o.as); break;
      case 'shm_open': c.code = OpCode.ShmOpen; c.str = o.name; c.a = (o.create ? 1 : 0) | (o.excl ? 2 : 0); c.b = ACCESS_MODES[o.access]; c.out = def(o.as); break;
      case 'shm_unlink': c.code = OpCode.ShmUnlink; c.str = o.name; break;
      case 'open': c.code = OpCode.Open; c.str = o.path; c.a = (o.create ? 1 : 0) | (o.excl ? 2 : 0); c.b = ACCESS_MODES[o.access]; c.out = def(o.as); break;
      case 'unlink': c.code = OpCode.Unlink; c.str = o.path; break;
      case 'ioctl':
        c.code = OpCode.Ioctl; c.slot = use(o.fd); c.str = o.cmd;
        c.args = Object.entries(o.args).map(([key, v]) => [key, typeof v === 'number' ? v : { slot: use(v) }]);
        if (o.as !== undefined) c.out = def(o.as);
        break;
      case 'madvise': c.code = OpCode.Madvise; region(o.region); c.a = o.offset; c.b = o.len; c.str = o.advice; break;
      case 'mshare': c.code = OpCode.Mshare; c.str = o.name; c.a = o.addr; c.b = o.len; c.c = (o.create ? 1 : 0) | (o.excl ? 2 : 0); break;
      case 'mshare_unlink': c.code = OpCode.MshareUnlink; c.str = o.name; break;
      case 'ftruncate': c.code = OpCode.Ftruncate; c.slot = use(o.fd); c.a = o.size; break;
      case 'close': c.code = OpCode.Close; c.slot = use(o.fd); break;
      case 'mmap':
        c.code = OpCode.Mmap; c.addr = ref(o.addr); c.b = o.len; c.c = bits(o.prot, PROT_BITS); c.d = bits(o.flags, MAP_BITS);
        c.slot = use(o.fd); c.e = o.offset; c.out = def(o.as); break;
      case 'munmap': c.code = OpCode.Munmap; region(o.region); c.a = o.offset; c.b = o.len; break;
      case 'mprotect': c.code = OpCode.Mprotect; region(o.region); c.a = o.offset; c.b = o.len; c.c = bits(o.prot, PROT_BITS); break;
      case 'load': c.code = OpCode.Load; region(o.region); c.a = o.offset; break;
      case 'store': c.code = OpCode.Store; region(o.region); c.a = o.offset; c.d = o.value | 0; break;
      case 'touch':
        c.code = OpCode.Touch; region(o.region); c.a = o.offset; c.b = o.len; c.d = o.stride; c.e = o.passes;
        c.c = o.value | 0; c.write = o.write; break;
      case 'pread': c.code = OpCode.Pread; c.slot = use(o.fd); c.a = o.offset; c.b = o.len; break;
      case 'pwrite': c.code = OpCode.Pwrite; c.slot = use(o.fd); c.a = o.offset; c.b = o.len; c.d = o.value | 0; break;
      case 'mremap':
        c.code = OpCode.Mremap; region(o.region); c.a = o.offset; c.b = o.old_len; c.f = o.new_len; c.d = bits(o.flags, MREMAP_BITS);
        c.addr = o.new_addr === undefined ? null : ref(o.new_addr); c.out = def(o.as); break;
      case 'mlock': c.code = OpCode.Mlock; region(o.region); c.a = o.offset; c.b = o.len; c.write = o.onfault; break;
      case 'munlock': c.code = OpCode.Munlock; region(o.region); c.a = o.offset; c.b = o.len; break;
      case 'mincore': c.code = OpCode.Mincore; region(o.region); c.a = o.offset; c.b = o.len; break;
      case 'compact': c.code = OpCode.Compact; break;
      case 'gup_fast': c.code = OpCode.GupFast; region(o.region); c.a = o.offset; c.write = o.write; break;
      case 'msync': c.code = OpCode.Msync; region(o.region); c.a = o.offset; c.b = o.len; c.d = bits(o.flags, MS_BITS); break;
      case 'reclaim': c.code = OpCode.Reclaim; region(o.region); c.a = o.offset; c.b = o.len; break;
      case 'migrate': c.code = OpCode.Migrate; region(o.region); c.a = o.offset; c.b = o.len; break;
      case 'prctl': c.code = OpCode.Prctl; c.a = 0; break; // PR_SET_COW_PTE, the one option
      case 'fork': {
        c.code = OpCode.Fork;
        if (o.as !== undefined) c.out = def(o.as);
        c.child = tasks.length;
        tasks.push([]); // the slot first: a fork inside the child takes the next one
        tasks[c.child] = compileInto(o.child as ParsedOp[], new Map(slots), maxSlots, tasks);
        break;
      }
      case 'wait': c.code = OpCode.Wait; c.slot = use(o.pid); break;
      case 'uffd_register': c.code = OpCode.UffdRegister; region(o.region); c.a = o.offset; c.b = o.len; break;
      case 'uffd_wp': c.code = OpCode.UffdWp; region(o.region); c.a = o.offset; c.b = o.len; c.write = o.protect; break;
      case 'uffd_register_file': c.code = OpCode.UffdRegisterFile; c.slot = use(o.fd); break;
      case 'uffd_wp_file': c.code = OpCode.UffdWpFile; c.slot = use(o.fd); c.write = o.protect; break;
      case 'uffd_handle': c.code = OpCode.UffdHandle; c.a = o.until_barrier ?? -1; c.d = o.writers; c.e = o.count; break;
      case 'uffd_snapshot_end': c.code = OpCode.UffdSnapshotEnd; break;
      case 'join_mm': c.code = OpCode.JoinMm; c.a = o.task; break;
      case 'let': c.code = OpCode.Let; c.addr = ref(o.addr); c.out = def(o.as); break;
      case 'fault_remote': c.code = OpCode.FaultRemote; c.a = o.task; c.b = o.addr; c.write = o.write; break;
      case 'barrier': c.code = OpCode.Barrier; c.a = o.id; c.d = o.count ?? 0; break;
      case 'exit': c.code = OpCode.Exit; c.a = o.code; break;
    }
    return c;
  });
}
