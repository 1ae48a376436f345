/**
 * `ptlab compare`: the same scenario, options and seed under each model, one after the other,
 * and one table of what differs — faults by kind, faults per second (over the scenario's phase
 * when it has one), page-table bytes (host and guests apart), TLB shootdowns, lock contention,
 * mmap_lock waits and the fault path's read-side waits (count, p50 / p99 from lock_stat's
 * histograms), and fairness (max/min of the tasks' faults/s, locktorture's ??? when max/2 > min).
 * Each model runs under each combination of --mmap-lock, --fault-lock and --ptl given.
 */
import Table from 'cli-table3';
import { bytes } from './render.js';
import type { LockClassStats } from '../sync/lock_stat.js';
import type { RunReport } from './run.js';

export interface CompareReport {
  scenario: string;
  seed: number;
  cores: number;
  runs: RunReport[];
}

const n = (x: number) => x.toLocaleString('en-US');

export function renderCompare(c: CompareReport): string {
  const out: string[] = [];
  const first = c.runs[0];
  out.push(`ptlab compare ${c.scenario} --seed ${c.seed}: ${first.procs} processes on ${first.cpus} CPUs (${c.cores} cores), ${bytes(first.size)} shared` +
    (first.phase ? `; faults/s over ${first.phase.what}` : ''));
  const t = new Table({
    head: ['run', 'ok', 'faults', 'faults/s', 'new page / from cache / PMD copied / wp', 'page tables', 'host + guests', 'vs none', 'shootdowns',
      'contentions (all locks)', 'mmap_lock waits: n, p50 / p99 µs', 'fault-lock read waits: n, p50 / p99 µs', 'fairness: max/min faults/s per task'],
    style: { head: [], border: [], compact: true },
  });
  const models = new Set(c.runs.map((r) => r.model)).size > 1;
  const base = models ? c.runs.find((r) => r.model === 'none')?.pgtables_bytes.total : undefined;
  for (const r of c.runs) {
    const f = r.faults;
    t.push([
      runLabel(c, r),
      r.ok ? 'ok' : `FAIL (${r.violations.length})`,
      n(f.total),
      n(r.faults_per_s),
      `${n(f.page_allocated)} / ${n(f.pte_from_page_cache)} / ${n(f.shared_pmd_copied)} / ${n(f.write_protect)}`,
      bytes(r.pgtables_bytes.total),
      `${bytes(r.pgtables_bytes.host)} + ${bytes(r.pgtables_bytes.guests)}`,
      base ? ratioText(base / Math.max(1, r.pgtables_bytes.total)) : '-',
      n(r.tlb.shootdowns),
      n(r.locks.reduce((s, l) => s + l.contentions, 0)),
      waits(r.locks.filter((l) => l.class === '&mm->mmap_lock')),
      waits(r.locks.filter((l) => l.mode === 'R' && l.class === (r.fault_lock === 'per-vma' ? '&vma->vm_lock->lock' : '&mm->mmap_lock'))),
      r.phase?.fairness ? `${r.phase.fairness.max_over_min.toFixed(2)}${r.phase.fairness.unfair ? ' ???' : ''}` : '-',
    ]);
  }
  out.push(t.toString());
  for (const r of c.runs) for (const v of r.violations.slice(0, 5)) out.push(`  ${runLabel(c, r)}: [${v.checker}] ${v.message}`);
  return out.join('\n');
}

/** The run's name in the table: its model and whichever lock choices vary across the runs. */
function runLabel(c: CompareReport, r: RunReport): string {
  const varies = (k: 'mmap_lock' | 'fault_lock' | 'ptl') => new Set(c.runs.map((x) => x[k])).size > 1;
  const parts = [r.model];
  if (varies('mmap_lock')) parts.push(r.mmap_lock);
  if (c.runs.some((x) => x.host_lock !== x.mmap_lock)) parts.push(`host ${r.host_lock}`);
  if (varies('fault_lock')) parts.push(r.fault_lock === 'per-vma' ? 'per-vma' : 'mmap-fault');
  if (varies('ptl')) parts.push(`ptl ${r.ptl}`);
  return parts.join(' / ');
}

/**
 * Contended acquisitions of the given lock_stat rows, and their wait percentiles (the larger of
 * the rows' p50 and p99: with one row, exactly its own).
 */
function waits(rows: LockClassStats[]): string {
  const con = rows.reduce((s, l) => s + l.contentions, 0);
  if (con === 0) return '0';
  const p50 = Math.max(...rows.map((l) => l.waittime_p50));
  const p99 = Math.max(...rows.map((l) => l.waittime_p99));
  return `${n(con)}, ${p50.toFixed(1)} / ${p99.toFixed(1)}`;
}

/** Page-table bytes against the baseline's: "3.2x less", "1.5x more", or "same" (within 5%). */
function ratioText(x: number): string {
  if (x > 0.95 && x < 1.05) return 'same';
  return x >= 1 ? `${x.toFixed(1)}x less` : `${(1 / x).toFixed(1)}x more`;
}
