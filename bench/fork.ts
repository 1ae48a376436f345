/**
 * fork, model `none`: forks per second of a process with 64 MiB mapped MAP_SHARED (a memfd) and
 * 64 MiB MAP_PRIVATE anonymous, every page written, as kernel/fork.c's dup_mmap copies it (the
 * shared range's tables are not copied; the private range's PTEs are, write-protected in both).
 * Each child exits at once and the parent waits for it; only the fork ops are timed (ST_FORK_MS).
 * bench/kernel_fork.c does the same on the real kernel (kernel-fork), run beside it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import type { Op, Program } from '../src/proc/program.js';
import { ST_COW_PTE_COPIED, ST_COW_PTE_REUSED, ST_COW_PTE_SHARED, ST_FORK_MS, ST_FORKS } from '../src/mm/percpu.js';
import { B_RELEASE_US, BARRIER_WORDS, G_PT_SNAP, G_SNAPS, PL_PEAK, T_ARRIVE_FAULTS, T_FAULTS, T_PREV_ARRIVE_FAULTS, TASK_WORDS } from '../src/shm/layout.js';
import { poolsOf } from '../src/shm/machine.js';
import { countTasks } from '../src/proc/program.js';
import { cowPteOptIn, pageWordsFor, sizeMachine } from '../src/scenarios/common.js';
import { BENCH_MEM, cores, MiB, PAGE, round, runBench, sum, type BenchRecord } from './common.js';

export const FORK_DEFAULTS = { rounds: 20, sharedMiB: 64, privateMiB: 64 };
export interface ForkOptions { rounds: number; sharedMiB: number; privateMiB: number }

function program(o: ForkOptions): Program {
  const shared = o.sharedMiB * MiB;
  const priv = o.privateMiB * MiB;
  const prog: Op[] = [
    { op: 'memfd_create', name: 'bench-fork', as: 'fd' },
    { op: 'ftruncate', fd: 'fd', size: shared },
    { op: 'mmap', len: shared, flags: ['MAP_SHARED'], fd: 'fd', as: 's' },
    { op: 'mmap', len: priv, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS'], as: 'p' },
    { op: 'touch', region: 's', len: shared, write: true },
    { op: 'touch', region: 'p', len: priv, write: true },
  ];
  for (let i = 0; i < o.rounds; i++) prog.push({ op: 'fork', as: 'c', child: [{ op: 'exit', code: 0 }] }, { op: 'wait', pid: 'c' });
  return prog;
}

export async function benchFork(o: ForkOptions): Promise<BenchRecord> {
  const programs = [program(o)];
  const config = sizeMachine({ cpus: 1, procs: countTasks(programs), sharedBytes: o.sharedMiB * MiB, privateBytes: o.privateMiB * MiB + MiB, files: 1, vmasPerProc: 4, mem: BENCH_MEM });
  const run = await runBench('none', 1, config, programs);
  const forks = sum(run, ST_FORKS);
  const seconds = sum(run, ST_FORK_MS) / 1000;
  return {
    bench: 'fork', model: 'none', threads: 1, ops: forks, seconds: round(seconds, 4), rate_per_s: Math.round(forks / seconds), cores: cores(),
    ...(forks === o.rounds ? {} : { mismatch: `${forks} forks of ${o.rounds}` }),
  } as BenchRecord;
}

function sourcePath(): string | null {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    for (const p of [join(dir, 'kernel_fork.c'), join(dir, 'bench', 'kernel_fork.c')]) if (existsSync(p)) return p;
    if (dirname(dir) === dir) return null;
  }
}

/** The real kernel's forks/s for the same process (bench/kernel_fork.c, compiled here with cc). */
export function benchKernelFork(o: ForkOptions): BenchRecord {
  const skip = (reason: string): BenchRecord => ({ bench: 'kernel-fork', model: 'linux', threads: 1, ops: 0, seconds: 0, rate_per_s: 0, cores: cores(), skipped: true, reason });
  if (process.platform !== 'linux') return skip(`not Linux (${process.platform})`);
  const src = sourcePath();
  if (!src) return skip('bench/kernel_fork.c not found');
  const dir = mkdtempSync(join(tmpdir(), 'ptlab-bench-'));
  try {
    const exe = join(dir, 'kernel_fork');
    const c = spawnSync('cc', ['-O2', '-o', exe, src], { encoding: 'utf8' });
    if (c.status !== 0) return skip(`cc failed: ${(c.stderr || c.error?.message || '').trim().split('\n')[0]}`);
    const r = spawnSync(exe, [String(o.rounds), String(o.sharedMiB), String(o.privateMiB)], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) return skip(`kernel_fork failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`);
    return { ...(JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as BenchRecord), cores: cores() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// cow-pte against none: fork of a process with N MiB of private anonymous memory mapped and
// every page written (MAP_POPULATE, not timed), then the child's first read of every page and its
// first write to every page, each timed between two barriers only the child meets. The page
// tables are counted at barrier 1, which parent and child both reach right after the fork. The
// timed fork comes after FORK_COW_WARMUPS untimed ones (each child exits at once; the parent then
// writes a page of every 2 MiB, so its tables are its own and writable again, as at first): a run
// is a fresh machine with fresh worker threads, and a single cold fork would time the JIT more
// than the fork (none's 64 MiB fork took 1.8 µs per PTE cold, 0.3 µs at 1 GiB).

/** Mapped sizes (MiB) of the cow-pte rows: 64 MiB .. 1 GiB. */
export const FORK_COW_SIZES_MIB = [64, 256, 512, 1024];
export const FORK_COW_MODELS = ['none', 'cow-pte'] as const;
export const FORK_COW_WARMUPS = 3;
/** Simulated page data in every fork-cow run, whatever the size (a write fault copies it). */
export const FORK_COW_PAGE_DATA = 256;
export interface ForkCowOptions { model: string; mib: number }

function cowProgram(model: string, mib: number): Program[] {
  const len = mib * MiB;
  const prog: Op[] = [...cowPteOptIn(model), { op: 'mmap', len, flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS', 'MAP_POPULATE'], as: 'm' }];
  for (let i = 0; i < FORK_COW_WARMUPS; i++) {
    prog.push(
      { op: 'fork', as: 'w', child: [{ op: 'exit', code: 0 }] },
      { op: 'wait', pid: 'w', status: 0 },
      { op: 'touch', region: 'm', len, stride: 2 * MiB, write: true, value: 1 },
    );
  }
  prog.push(
    { op: 'barrier', id: 5, count: 1 },
    {
      op: 'fork', as: 'c', child: [
        { op: 'barrier', id: 1, count: 2 },
        { op: 'barrier', id: 2, count: 1 },
        { op: 'touch', region: 'm', len, write: false },
        { op: 'barrier', id: 3, count: 1 },
        { op: 'touch', region: 'm', len, write: true, value: 9 },
        { op: 'barrier', id: 4, count: 1 },
        { op: 'exit', code: 0 },
      ],
    },
    { op: 'barrier', id: 6, count: 1 },
    { op: 'barrier', id: 1, count: 2 },
    { op: 'wait', pid: 'c', status: 0 },
  );
  return [prog];
}

/**
 * One fork of an `o.mib` MiB process under `o.model`: the fork's latency, the page-table bytes
 * just after it (both processes, x86-64 accounting, as `ptlab run --json` pgtables_bytes.total)
 * and at their peak, and the cost per page of the child's first read and first write.
 */
export async function benchForkCow(o: ForkCowOptions): Promise<BenchRecord> {
  const programs = cowProgram(o.model, o.mib);
  const config = sizeMachine({ cpus: 1, procs: countTasks(programs), sharedBytes: 0, privateBytes: o.mib * MiB + MiB, files: 1, vmasPerProc: 4, mem: BENCH_MEM });
  config.payloadWords = pageWordsFor(config.frames, FORK_COW_PAGE_DATA);
  const run = await runBench(o.model, 1, config, programs);
  const { i32, layout } = run.machine;
  const forks = sum(run, ST_FORKS);
  const rel = (b: number) => Atomics.load(i32, layout.barriers + b * BARRIER_WORDS + B_RELEASE_US);
  // The timed fork: from the parent's barrier 5 to its barrier 6 (µs clock).
  const forkMs = (rel(6) - rel(5)) / 1000;
  // The timed fork's child is the last task record (the warm-up children come first).
  const child = layout.tasks + (countTasks(programs) - 1) * TASK_WORDS;
  const writeFaults = Atomics.load(i32, child + T_ARRIVE_FAULTS) - Atomics.load(i32, child + T_PREV_ARRIVE_FAULTS);
  const readFaults = Atomics.load(i32, child + T_FAULTS) - writeFaults;
  const pages = (o.mib * MiB) / PAGE;
  const snaps = Atomics.load(i32, G_SNAPS);
  return {
    bench: 'fork-cow', model: o.model, threads: 1, mapped_mib: o.mib,
    ops: 1, seconds: round(forkMs / 1000, 6), rate_per_s: Math.round(1 / Math.max(1e-9, forkMs / 1000)),
    fork_ms: round(forkMs, 3),
    pgtables_after_fork_bytes: snaps > 0 ? Atomics.load(i32, G_PT_SNAP) * 4096 : null,
    pgtables_peak_bytes: Atomics.load(i32, poolsOf(layout).ptps.hdr + PL_PEAK) * 4096,
    first_read_ns_per_page: round(((rel(3) - rel(2)) * 1000) / pages, 1),
    first_read_faults: readFaults,
    first_write_ns_per_page: round(((rel(4) - rel(3)) * 1000) / pages, 1),
    first_write_faults: writeFaults,
    tables_shared: sum(run, ST_COW_PTE_SHARED),
    tables_copied: sum(run, ST_COW_PTE_COPIED),
    tables_reused: sum(run, ST_COW_PTE_REUSED),
    page_data_bytes: config.payloadWords * 4,
    cores: cores(),
    warmup_forks: FORK_COW_WARMUPS,
    ...(forks === FORK_COW_WARMUPS + 1 ? {} : { mismatch: `${forks} forks of ${FORK_COW_WARMUPS + 1}` }),
  } as BenchRecord;
}

/** The rows side by side: one line per size, none and cow-pte, and their ratios. */
export function renderForkCow(records: BenchRecord[]): string {
  const t = new Table({
    head: ['mapped', 'model', 'fork (ms)', 'page tables after fork', 'peak', 'first read (ns/page, faults)', 'first write (ns/page, faults)', 'tables shared / copied / reused (whole run)', 'page data'],
    style: { head: [], border: [] },
    colAligns: ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  });
  const kib = (b: unknown) => (typeof b === 'number' ? `${(b / 1024).toLocaleString('en-US')} KiB` : 'n/a');
  const sizes = [...new Set(records.map((r) => r.mapped_mib as number))];
  const ratios: string[] = [];
  for (const mib of sizes) {
    const rows = records.filter((r) => r.mapped_mib === mib);
    for (const r of rows) {
      t.push([`${mib} MiB`, r.model, String(r.fork_ms), kib(r.pgtables_after_fork_bytes), kib(r.pgtables_peak_bytes),
        `${String(r.first_read_ns_per_page)} (${String(r.first_read_faults)})`, `${String(r.first_write_ns_per_page)} (${String(r.first_write_faults)})`,
        `${String(r.tables_shared)} / ${String(r.tables_copied)} / ${String(r.tables_reused)}`, `${String(r.page_data_bytes)} B`]);
    }
    const none = rows.find((r) => r.model === 'none');
    const cow = rows.find((r) => r.model === 'cow-pte');
    if (none && cow) {
      const x = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
      ratios.push(`${mib} MiB: fork none/cow-pte ${x(none.fork_ms as number, cow.fork_ms as number)}, page tables after fork none/cow-pte ` +
        `${x(none.pgtables_after_fork_bytes as number, cow.pgtables_after_fork_bytes as number)}, first write cow-pte/none ` +
        `${x(cow.first_write_ns_per_page as number, none.first_write_ns_per_page as number)}, first read cow-pte/none ${x(cow.first_read_ns_per_page as number, none.first_read_ns_per_page as number)}`);
    }
  }
  return [t.toString(), ...ratios].join('\n');
}
