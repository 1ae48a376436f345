/**
 * kernel-minor-fault: the real kernel's figure for what minor-fault measures in ptlab. Compiles
 * kernel_fault.c (next to this file) with the system C compiler into a temporary directory, runs
 * it, and passes its JSON line on with the core count. Without a C compiler (or off Linux), the
 * record says skipped and why.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cores, MiB, type BenchRecord } from './common.js';
import { MINOR_FAULT_DEFAULTS } from './minor_fault.js';

export interface KernelFaultOptions {
  rounds: number;
  fileMiB: number;
}

/** The same file size and rounds as ptlab's minor-fault. */
export const KERNEL_FAULT_DEFAULTS = { rounds: MINOR_FAULT_DEFAULTS.rounds, fileMiB: MINOR_FAULT_DEFAULTS.fileBytes / MiB };

/** bench/kernel_fault.c, found from this module (bench/*.ts under tsx, or dist/bench.mjs). */
function sourcePath(): string | null {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    for (const p of [join(dir, 'kernel_fault.c'), join(dir, 'bench', 'kernel_fault.c')]) if (existsSync(p)) return p;
    if (dirname(dir) === dir) return null;
  }
}

function findCompiler(): string | null {
  for (const cc of ['cc', 'gcc', 'clang']) {
    const r = spawnSync(cc, ['--version'], { stdio: 'ignore' });
    if (r.status === 0) return cc;
  }
  return null;
}

function skipped(reason: string): BenchRecord {
  return { bench: 'kernel-minor-fault', model: 'linux', threads: 1, ops: 0, seconds: 0, rate_per_s: 0, cores: cores(), skipped: true, reason };
}

export function benchKernelMinorFault(o: KernelFaultOptions): BenchRecord {
  if (process.platform !== 'linux') return skipped(`not Linux (${process.platform})`);
  const cc = findCompiler();
  if (!cc) return skipped('no C compiler (cc, gcc or clang) on PATH');
  const src = sourcePath();
  if (!src) return skipped('bench/kernel_fault.c not found');
  const dir = mkdtempSync(join(tmpdir(), 'ptlab-bench-'));
  try {
    const exe = join(dir, 'kernel_fault');
    const c = spawnSync(cc, ['-O2', '-o', exe, src], { encoding: 'utf8' });
    if (c.status !== 0) return skipped(`${cc} failed: ${(c.stderr || c.error?.message || '').trim().split('\n')[0]}`);
    const r = spawnSync(exe, [String(o.rounds), String(o.fileMiB)], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) return skipped(`kernel_fault failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as BenchRecord;
    return {
      ...out,
      cores: cores(),
      compiler: cc,
      counts_check: out.ops === out.expected_faults ? 'ok' : `MISMATCH: ${out.ops} minor faults, expected ${String(out.expected_faults)}`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
