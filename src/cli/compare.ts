/**
 * `ptlab compare`: the same scenario, options and seed under each model, one after the other,
 * and one table of what differs — faults by kind, faults per second, page-table bytes (host and
 * guests apart), TLB shootdowns and CPUs interrupted, lock contention. With several mmap_lock
 * protocols (--mmap-lock rwsem,qrwlock) each model runs under each, and the table adds the
 * mmap_lock's contentions and wait times (lock_stat's, µs).
 */
import Table from 'cli-table3';
import { bytes } from './render.js';
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
  out.push(`ptlab compare ${c.scenario} --seed ${c.seed}: ${first.procs} processes on ${first.cpus} CPUs (${c.cores} cores), ${bytes(first.size)} shared`);
  const t = new Table({
    head: ['model', 'ok', 'faults', 'faults/s', 'new page / from cache / PMD copied / wp', 'page tables', 'host + guests', 'vs none', 'shootdowns', 'IPIs', 'lock contentions', 'mmap_lock contended: waits, avg / max µs'],
    style: { head: [], border: [], compact: true },
  });
  const base = c.runs.find((r) => r.model === 'none')?.pgtables_bytes.total;
  const protocols = new Set(c.runs.map((r) => r.mmap_lock)).size > 1;
  for (const r of c.runs) {
    const f = r.faults;
    t.push([
      protocols ? `${r.model} / ${r.mmap_lock}` : r.model,
      r.ok ? 'ok' : `FAIL (${r.violations.length})`,
      n(f.total),
      n(r.faults_per_s),
      `${n(f.page_allocated)} / ${n(f.pte_from_page_cache)} / ${n(f.shared_pmd_copied)} / ${n(f.write_protect)}`,
      bytes(r.pgtables_bytes.total),
      `${bytes(r.pgtables_bytes.host)} + ${bytes(r.pgtables_bytes.guests)}`,
      base ? `${(base / Math.max(1, r.pgtables_bytes.total)).toFixed(1)}x less` : '-',
      n(r.tlb.shootdowns),
      n(r.tlb.ipis_sent),
      n(r.locks.reduce((s, l) => s + l.contentions, 0)),
      mmapLockWaits(r),
    ]);
  }
  out.push(t.toString());
  for (const r of c.runs) for (const v of r.violations.slice(0, 5)) out.push(`  ${r.model} / ${r.mmap_lock}: [${v.checker}] ${v.message}`);
  return out.join('\n');
}

/** The mmap_lock rows of lock_stat (both modes): contended acquisitions, their average and longest wait. */
function mmapLockWaits(r: RunReport): string {
  const rows = r.locks.filter((l) => l.class === '&mm->mmap_lock');
  const con = rows.reduce((s, l) => s + l.contentions, 0);
  if (con === 0) return '0';
  const total = rows.reduce((s, l) => s + l.waittime_total, 0);
  const max = Math.max(...rows.map((l) => l.waittime_max));
  return `${n(con)}, ${(total / con).toFixed(1)} / ${max.toFixed(1)}`;
}
