/**
 * `ptlab diff-kernel FILE [--model M]`: the differential check. The same program runs on ptlab
 * (one CPU, each process until it blocks or exits: the order native/ptkernel.c keeps with pipes)
 * and on this machine's Linux (dist/ptkernel); every op's result is compared, key by key
 * (ret, errno, signal, si_code, si_addr, value, status). Linux is the judge.
 */
import { ProgramSchema, type OpResult, type ParsedOp } from '../proc/program.js';
import { resolveScenario } from '../scenarios/index.js';
import { kernelAvailable, runOnKernel, unsupportedOps } from './native.js';
import { parseRunOptions, UsageError } from './options.js';
import { runScenario } from './run.js';

export interface DiffReport {
  ok: boolean;
  file: string;
  model: string;
  kernel: string;
  ops: number;
  /** The ops where ptlab and the kernel differ: what each said. */
  differences: { proc: number; index: number; op: string; ptlab: OpResult | null; kernel: OpResult | null }[];
  /** What ptlab's checkers found besides (a program's own unmet expectations are not differences). */
  ptlab_violations: string[];
}

const KEYS = ['op', 'ret', 'errno', 'signal', 'code', 'at', 'value', 'status'] as const;

function same(a: OpResult, b: OpResult): boolean {
  return KEYS.every((k) => a[k] === b[k]);
}

export async function diffKernel(file: string, model: string | undefined): Promise<DiffReport> {
  const avail = kernelAvailable();
  if (!avail.ok) throw new UsageError(`diff-kernel cannot run here: ${avail.why}`);
  const o = parseRunOptions(file, { model, cpus: '1', lockStat: false, cooperative: true, deadline: '5000' });
  const sc = resolveScenario(file);
  const programs = sc.build({ procs: 1, size: 0, ops: 0, seed: 1, cpus: 1, mem: 2 ** 30, model: o.model, scale: 1 }).programs;
  const parsed = programs.map((p) => ProgramSchema.parse(p) as ParsedOp[]);
  const unsupported = unsupportedOps(parsed);
  if (unsupported.length > 0) throw new UsageError(`diff-kernel: ${file} uses ops no real kernel has: ${unsupported.join(', ')}`);
  const sim = await runScenario(file, o);
  let real;
  try {
    real = await runOnKernel(parsed);
  } catch (e) {
    throw new UsageError(`diff-kernel: the real kernel could not run ${file}: ${(e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ')}`);
  }
  const key = (r: OpResult) => `${r.proc}/${r.index}`;
  const fromKernel = new Map(real.results.map((r) => [key(r), r]));
  const differences: DiffReport['differences'] = [];
  const seen = new Set<string>();
  for (const r of sim.op_results) {
    seen.add(key(r));
    const k = fromKernel.get(key(r)) ?? null;
    if (k === null || !same(r, k)) differences.push({ proc: r.proc, index: r.index, op: r.op, ptlab: r, kernel: k });
  }
  for (const k of real.results) if (!seen.has(key(k))) differences.push({ proc: k.proc, index: k.index, op: k.op, ptlab: null, kernel: k });
  differences.sort((a, b) => a.proc - b.proc || a.index - b.index);
  return {
    ok: differences.length === 0,
    file,
    model: o.model,
    kernel: real.uname,
    ops: sim.op_results.length,
    differences,
    ptlab_violations: sim.violations.filter((v) => v.checker !== 'expectation').map((v) => `[${v.checker}] ${v.message}`),
  };
}

/** One line per difference: what each side said, the keys that differ first. */
export function renderDiff(r: DiffReport): string {
  const show = (x: OpResult | null) => (x === null ? 'nothing (the op did not run)' : JSON.stringify(Object.fromEntries(KEYS.filter((k) => x[k] !== undefined).map((k) => [k, x[k]]))));
  const lines = [`ptlab diff-kernel ${r.file} --model ${r.model} against Linux ${r.kernel}: ${r.ops} ops`];
  for (const d of r.differences.slice(0, 50)) lines.push(`  process ${d.proc} op #${d.index} ${d.op}: ptlab ${show(d.ptlab)}, kernel ${show(d.kernel)}`);
  if (r.differences.length > 50) lines.push(`  ... and ${r.differences.length - 50} more`);
  for (const v of r.ptlab_violations) lines.push(`  ptlab's checkers: ${v}`);
  lines.push(r.ok ? 'agree' : `DIFFER on ${r.differences.length} op(s)`);
  return lines.join('\n');
}
