/**
 * The part of the output for people: one table of every benchmark's median run, then the ratios
 * the benchmarks exist to answer, each against its target. Ratios are also printed as JSON lines
 * ({"ratio": ...}) for machines. Nothing here asserts: a missed target is reported, not fatal.
 */
import Table from 'cli-table3';
import { ASCII_TABLE } from '../src/cli/render.js';
import { cores } from './common.js';
import { LOCK_STAT_TIMING, round, type BenchRecord } from './common.js';

export interface Ratio {
  ratio: string;
  value: number | null;
  target: string;
  meets_target: boolean | null;
  why?: string;
  paired_runs_min?: number;
  paired_runs_max?: number;
}

function find(records: BenchRecord[], bench: string, threads: number, extra?: (r: BenchRecord) => boolean): BenchRecord | undefined {
  return records.find((r) => r.bench === bench && r.threads === threads && !r.skipped && (extra ? extra(r) : true));
}

function ratio(name: string, num: BenchRecord | undefined, den: BenchRecord | number | undefined, atLeast: number | null, why?: string): Ratio {
  const d = typeof den === 'number' ? den : den?.rate_per_s;
  const exact = num && d ? num.rate_per_s / d : null;
  const r: Ratio = {
    ratio: name,
    value: exact === null ? null : round(exact, 2),
    target: atLeast === null ? 'none (informative)' : `>= ${atLeast}`,
    // Judged on the exact ratio, not the rounded one printed.
    meets_target: exact === null || atLeast === null ? null : exact >= atLeast,
  };
  if (exact === null) r.why = why ?? 'a run is missing or was skipped';
  // Interleaved runs pair up (run i of one with run i of the other): the spread of those ratios.
  const a = num?.rate_per_s_runs as number[] | undefined;
  const b = typeof den === 'object' ? (den.rate_per_s_runs as number[] | undefined) : undefined;
  if (exact !== null && a && b && a.length === b.length) {
    const pairs = a.map((x, i) => x / b[i]);
    r.paired_runs_min = round(Math.min(...pairs), 2);
    r.paired_runs_max = round(Math.max(...pairs), 2);
  }
  return r;
}

export function ratios(records: BenchRecord[]): Ratio[] {
  const mf1 = find(records, 'minor-fault', 1);
  const mf2 = find(records, 'minor-fault', 2);
  const kernel = find(records, 'kernel-minor-fault', 1);
  return [
    ratio('minor-fault: 2 threads (aggregate) / 1 thread', mf2, mf1, 1.7),
    ratio('minor-fault: ptlab none 1 thread / kernel 1 thread', mf1, kernel, 2, 'kernel-minor-fault was skipped'),
    ratio('shared-pmd-fault: 2 threads (aggregate) / 1 thread', find(records, 'shared-pmd-fault', 2), find(records, 'shared-pmd-fault', 1), null),
    ratio('fork: ptlab none / kernel (64 MiB shared + 64 MiB private, touched)', find(records, 'fork', 1), find(records, 'kernel-fork', 1), null, 'kernel-fork was skipped'),
    ratio('fork-cow: cow-pte forks/s / none forks/s (64 MiB private, touched; npm run bench:fork for 64 MiB .. 1 GiB)',
      find(records, 'fork-cow', 1, (r) => r.model === 'cow-pte'), find(records, 'fork-cow', 1, (r) => r.model === 'none'), null),
    ratio('tlb-hit load: rate / 50 M/s target', find(records, 'tlb-hit', 1, (r) => r.access === 'load'), 50e6, 1),
    ratio('tlb-hit store: rate / 50 M/s target', find(records, 'tlb-hit', 1, (r) => r.access === 'store'), 50e6, 1),
    ratio(`explore: controlled runs/s at --jobs ${Math.max(2, cores())} / --jobs 1 (${cores()} cores)`, find(records, 'explore-jobs', Math.max(2, cores())), find(records, 'explore-jobs', 1), null),
    ratio('sched-point: faults/s with no scheduler / with a no-op scheduler (what the points cost when off: at most this)',
      find(records, 'sched-point', 1, (r) => String(r.scheduler).startsWith('none')), find(records, 'sched-point', 1, (r) => String(r.scheduler).startsWith('a no-op')), null),
  ];
}

const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 });
/** A rate as people read it, any size: "924.6K/s", "1.09M/s", "29.6/s" (Intl's compact notation). */
const rate = (r: number): string => `${compact.format(r)}/s`;

/** The table and the ratios, as text. */
export function renderReport(records: BenchRecord[], rs: Ratio[]): string {
  const t = new Table({
    head: ['bench', 'model', 'what', 'threads', 'cores', 'ops', 'seconds', 'rate (median)', 'runs (min..max)', 'check'],
    ...ASCII_TABLE,
    colAligns: ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  });
  for (const r of records) {
    if (r.skipped) {
      t.push([r.bench, r.model, `skipped: ${String(r.reason)}`, r.threads, r.cores, '', '', '', '', '']);
      continue;
    }
    const all = (r.rate_per_s_runs as number[] | undefined) ?? [r.rate_per_s];
    const what = r.bench === 'tlb-hit' ? `${String(r.access)}s`
      : r.bench === 'shared-pmd-fault' ? `${String(r.guests)} guests, PMD copies`
      : r.bench === 'fork-cow' ? `forks of ${String(r.mapped_mib)} MiB private`
      : r.bench === 'fork' || r.bench === 'kernel-fork' ? 'forks, 64+64 MiB touched'
      : r.bench === 'sched-point' ? (String(r.scheduler).startsWith('none') ? 'no scheduler' : 'no-op scheduler')
      : r.bench === 'explore-jobs' ? `--jobs ${r.threads}, runs`
      : r.bench === 'explore-shards' ? '2 shards merged, runs'
      : 'page-cache hits';
    t.push([
      r.bench, r.model, what, r.oversubscribed ? `${r.threads} (oversubscribed)` : r.threads, r.cores, r.ops, r.seconds.toFixed(3), rate(r.rate_per_s),
      `${rate(Math.min(...all))} .. ${rate(Math.max(...all))} (${all.length})`, String(r.counts_check ?? ''),
    ]);
  }
  const lines = [t.toString(), ''];
  for (const x of rs) {
    const spread = x.paired_runs_min === undefined ? '' : ` (run by run: ${x.paired_runs_min.toFixed(2)}..${x.paired_runs_max?.toFixed(2)})`;
    const v = x.value === null ? `n/a (${x.why})` : `${x.value.toFixed(2)}x${spread}`;
    const verdict = x.meets_target === null ? '' : x.meets_target ? '  meets target' : '  BELOW target';
    lines.push(`${x.ratio}: ${v}   target ${x.target}${verdict}`);
  }
  lines.push('');
  lines.push(`lock_stat timing: ${LOCK_STAT_TIMING ? 'on' : 'off'} in every ptlab run (no clock reads around lock waits and holds).`);
  lines.push('seconds = time inside the timed ops (ptlab: touch ops; kernel: the touch loops), not whole-run wall time;');
  lines.push('2-thread rates are aggregates: total ops / the longest per-thread time.');
  return lines.join('\n');
}
