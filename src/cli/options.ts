/**
 * Command-line options, validated at the edge with zod: one bad field gives one line naming it
 * (exit 2); inside, everything is plain numbers.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { MODELS } from '../models/index.js';
import { parseScale } from '../scenarios/common.js';
import { resolveScenario } from '../scenarios/index.js';
import { MAX_CPUS } from '../shm/layout.js';
import { isMmapLockProtocol } from '../sync/lock_plugin.js';

export class UsageError extends Error {}

const PMD_BYTES = 2 * 1024 * 1024;

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "64M", "1.5G", "4096" -> bytes; NaN when it is not a size. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)(?:i?B)?$/i.exec(s.trim());
  if (!m) return NaN;
  return Math.round(Number(m[1]) * UNITS[m[2].toUpperCase()]);
}

const intString = (what: string, min: number, max: number) =>
  z.string().refine((s) => /^\d+$/.test(s.trim()) && Number(s) >= min && Number(s) <= max, {
    message: `${what} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer${max < Number.MAX_SAFE_INTEGER ? ` (at most ${max})` : ''}`,
  }).transform(Number);

const sizeString = (what: string, max: number, maxText: string) =>
  z.string().refine((s) => {
    const n = parseSize(s);
    return Number.isFinite(n) && n > 0 && n % 4096 === 0;
  }, { message: `${what} must be a size in bytes, a positive multiple of 4096 (e.g. 64M, 1G)` })
    .refine((s) => parseSize(s) <= max, { message: `${what} must be at most ${maxText}` }).transform(parseSize);

/** Seeds are 32-bit everywhere (run, compare, explore, tokens). */
export const SEED_MAX = 2 ** 32 - 1;
/**
 * Simulated memory is counted in 4 KiB pages in 31-bit words (G_MEM_LIMIT): 4 TiB keeps every
 * count, the peak and the OOM figures exact.
 */
export const MEM_MAX = 4 * 1024 ** 4;
/** Sizes of a mapping: past 2^46 (64 TiB) no two of them fit in a 47-bit address space. */
export const SIZE_MAX = 2 ** 46;
/** The per-wait deadline bound, and the runs explore may take. */
const DEADLINE_MAX = 3_600_000;
export const RUNS_MAX = 10_000_000;

export const seedString = (what: string) => intString(what, 0, SEED_MAX);
export { intString };

export const RunOptionsSchema = z.object({
  model: z.string().refine((m) => m in MODELS, { message: `--model must be one of: ${Object.keys(MODELS).join(', ')}` }),
  cpus: intString('--cpus', 1, MAX_CPUS).optional(),
  procs: intString('--procs', 1, 4096).optional(),
  size: sizeString('--size', SIZE_MAX, '64T').optional(),
  ops: intString('--ops', 0, 1_000_000).optional(),
  seed: seedString('--seed').optional(),
  bug: z.string().optional(),
  mem: sizeString('--mem', MEM_MAX, '4T (ptlab counts pages in 31 bits)').optional(),
  deadline: intString('--deadline', 1, DEADLINE_MAX).optional(),
  lockStat: z.boolean().optional(),
  scale: z.string().refine((s) => !Number.isNaN(parseScale(s)), { message: '--scale must be a fraction in (0, 1], e.g. 1/100 or 0.01' }).transform(parseScale).optional(),
  // rwsem, qrwlock, or a lock plugin the CLI loaded (sync/lock_plugin.ts; its key is its absolute path).
  mmapLock: z.string().refine(isMmapLockProtocol, { message: '--mmap-lock must be rwsem or qrwlock' }).optional(),
  hostLock: z.string().refine(isMmapLockProtocol, { message: '--host-lock must be rwsem or qrwlock' }).optional(),
  faultLock: z.enum(['mmap', 'per-vma'], { message: '--fault-lock must be mmap or per-vma' }).optional(),
  ptl: z.enum(['split', 'mm'], { message: '--ptl must be split or mm' }).optional(),
  tlbFlush: z.enum(['ipi', 'broadcast'], { message: '--tlb-flush must be ipi or broadcast' }).optional(),
  unshareFlush: z.enum(['per-unshare', 'batched'], { message: '--unshare-flush must be per-unshare or batched' }).optional(),
  pageData: z.string().refine((s) => s === 'full' || (/^\d+$/.test(s) && Number(s) >= 4 && Number(s) <= 4096 && (Number(s) & (Number(s) - 1)) === 0), {
    message: '--page-data must be full or a power of two from 4 to 4096 (bytes of data kept per 4 KiB page)',
  }).transform((s) => (s === 'full' ? 4096 : Number(s))).optional(),
  json: z.boolean().optional(),
  /** --lockset: check each guarded kernel write against its declared lock (slower; explore always does). */
  lockset: z.boolean().optional(),
  /** diff-kernel: one CPU, each task until it blocks or exits (native/ptkernel.c's order). Not a CLI option. */
  cooperative: z.boolean().optional(),
  models: z.undefined().optional(),
});

export type RunOptionsInput = z.input<typeof RunOptionsSchema>;
export type RunOptions = z.output<typeof RunOptionsSchema>;

/** Validates `run` options for `scenario`; throws UsageError with one line naming the field. */
export function parseRunOptions(scenario: string, raw: Record<string, unknown>): RunOptions {
  let sc;
  try {
    sc = resolveScenario(scenario);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  // A scenario written for one model (a catalog race, viommu) runs under it unless told otherwise.
  const only = sc.models?.only;
  // --bug without --model, on a scenario written for some models: the one of them that knows the bug.
  const knows = typeof raw.bug === 'string' && only ? only.find((m) => MODELS[m] !== undefined && (raw.bug as string) in MODELS[m].bugs) : undefined;
  if (raw.model === undefined) raw = { ...raw, model: knows ?? (only && !only.includes('none') ? only[0] : 'none') };
  if (raw.faultLock === undefined && sc.faultLock) raw = { ...raw, faultLock: sc.faultLock };
  if (raw.tlbFlush === undefined && sc.tlbFlush) raw = { ...raw, tlbFlush: sc.tlbFlush };
  const r = RunOptionsSchema.safeParse(raw);
  if (!r.success) throw new UsageError(r.error.issues[0].message);
  const o = r.data;
  // (a plugin built on a catalog model runs wherever that model does)
  if (only && !only.includes(o.model) && !only.includes(MODELS[o.model]?.basedOn ?? '')) {
    throw new UsageError(`scenario '${scenario}' does not apply to --model ${o.model}: ${sc.models!.why}`);
  }
  if (o.ptl === 'mm' && o.model === 'pt-hint') {
    // Linux shares page tables between mms only with split locks (huge_pte_lockptr -> pmd_lockptr):
    // a table that changes owners cannot be guarded by one owner's page_table_lock.
    throw new UsageError('--ptl mm does not apply to --model pt-hint: its shared tables change owners, and only split PTE locks guard them');
  }
  if (o.scale !== undefined && !sc.scaled) throw new UsageError(`--scale applies only to scaled scenarios (sga-1500), not '${scenario}'`);
  if (o.scale !== undefined && sc.scaled) {
    // The scaled machine must hold something: an SGA of at least one PMD (2 MiB) and a memory of
    // at least that SGA. Below that the figures (OOMs, the 1/1 extrapolation) mean nothing.
    const least = Math.max(PMD_BYTES / sc.scaled.size, PMD_BYTES / sc.scaled.mem);
    if (o.scale < least) throw new UsageError(`--scale must be at least 1/${Math.floor(1 / least)} for '${scenario}' (a smaller scale leaves an SGA under 2 MiB)`);
  }
  if (sc.pinned) {
    const procs = o.procs ?? sc.defaults.procs ?? 4;
    const cpus = o.cpus ?? sc.defaults.cpus ?? Math.min(2, availableParallelism());
    if (procs > cpus) throw new UsageError(`scenario '${scenario}' needs --procs <= --cpus (${procs} > ${cpus}): ${sc.pinned}`);
  }
  if (o.bug !== undefined && !(o.bug in MODELS[o.model].bugs)) {
    const known = Object.keys(MODELS[o.model].bugs);
    throw new UsageError(`--bug must be one the model '${o.model}' knows: ${known.length ? known.join(', ') : '(none)'}`);
  }
  return o;
}
