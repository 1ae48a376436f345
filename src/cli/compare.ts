/**
 * `ptlab compare`: the same scenario, options and seed under each model, one after the other,
 * and one table of what differs — faults by kind, faults per second, page-table bytes (host and
 * guests apart), TLB shootdowns and CPUs interrupted, lock contention.
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
    head: ['model', 'ok', 'faults', 'faults/s', 'new page / from cache / PMD copied / wp', 'page tables', 'host + guests', 'vs none', 'shootdowns', 'IPIs', 'lock contentions'],
    style: { head: [], border: [], compact: true },
  });
  const base = c.runs.find((r) => r.model === 'none')?.pgtables_bytes.total;
  for (const r of c.runs) {
    const f = r.faults;
    t.push([
      r.model,
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
    ]);
  }
  out.push(t.toString());
  for (const r of c.runs) for (const v of r.violations.slice(0, 5)) out.push(`  ${r.model}: [${v.checker}] ${v.message}`);
  return out.join('\n');
}
