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
import type { Op, Program } from '../src/proc/program.js';
import { ST_FORK_MS, ST_FORKS } from '../src/mm/percpu.js';
import { countTasks } from '../src/proc/program.js';
import { sizeMachine } from '../src/scenarios/common.js';
import { BENCH_MEM, cores, MiB, round, runBench, sum, type BenchRecord } from './common.js';

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
