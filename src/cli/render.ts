/** Reports for people: cli-table3 tables, lock_stat columns, the checkers' verdict. */
import Table from 'cli-table3';
import type { RunReport } from './run.js';

const n = (x: number) => x.toLocaleString('en-US');
export const bytes = (b: number): string => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) {
    b /= 1024;
    i++;
  }
  return `${i === 0 ? b : b.toFixed(2)} ${u[i]}`;
};

export function renderRun(r: RunReport): string {
  const out: string[] = [];
  out.push(`ptlab run ${r.scenario} --model ${r.model}${r.bug ? ` --bug ${r.bug}` : ''}${r.mmap_lock !== 'rwsem' ? ` --mmap-lock ${r.mmap_lock}` : ''} --seed ${r.seed}: ` +
    `${r.procs} processes on ${r.cpus} CPUs (${r.cores} cores), ${bytes(r.size)} shared, ${r.seconds} s`);
  const t = new Table({ head: ['figure', 'value'], style: { head: [], border: [], compact: true } });
  t.push(
    ['faults', `${n(r.faults.total)} (${n(r.faults_per_s)}/s)`],
    ['  PTE from page cache / new page', `${n(r.faults.pte_from_page_cache)} / ${n(r.faults.page_allocated)}`],
    ['  shared PMD copied / write-protect', `${n(r.faults.shared_pmd_copied)} / ${n(r.faults.write_protect)}`],
    ['  spurious / SIGSEGV / OOM', `${n(r.faults.spurious)} / ${n(r.faults.sigsegv)} / ${n(r.faults.oom)}`],
    ['loads / stores / TLB walks', `${n(r.accesses.loads)} / ${n(r.accesses.stores)} / ${n(r.accesses.tlb_walks)}`],
    ['TLB shootdowns / IPIs sent', `${n(r.tlb.shootdowns)} / ${n(r.tlb.ipis_sent)}`],
    ['page tables (x86-64 bytes)', `${bytes(r.pgtables_bytes.total)} = host ${bytes(r.pgtables_bytes.host)} + guests ${bytes(r.pgtables_bytes.guests)}`],
    ['  per process (guest)', bytes(r.pgtables_bytes.per_process)],
    ['physical memory peak / budget', `${bytes(r.memory.peak_bytes)} / ${bytes(r.memory.budget_bytes)}`],
    ['VM_FAULT_OOM', r.memory.oom.count ? `${r.memory.oom.count}, first in process ${r.memory.oom.first_process}` : 'none'],
    ['processes killed (signal / OOM)', `${r.processes.killed_by_signal} / ${r.processes.oom_killed}`],
    ['machine memory', bytes(r.machine_bytes)],
  );
  if (r.address_space.grants > 0 || r.address_space.revokes > 0) {
    t.push(['address space grants / revokes', `${n(r.address_space.grants)} (avg ${r.address_space.grant_us_avg.toFixed(2)} µs) / ` +
      `${n(r.address_space.revokes)} (avg ${r.address_space.revoke_us_avg.toFixed(2)} µs, shootdown included)`]);
  }
  if (r.uffd.syscalls > 0 || r.uffd.events > 0) {
    t.push(['uffd-wp syscalls / entry writes / wake-ups / events', `${n(r.uffd.syscalls)} / ${n(r.uffd.entry_writes)} / ${n(r.uffd.wakeups)} / ${n(r.uffd.events)}`]);
  }
  out.push(t.toString());
  if (r.locks.length > 0) {
    const lt = new Table({
      head: ['class', 'mode', 'contentions', 'waittime-avg', 'waittime-max', 'acquisitions', 'holdtime-avg', 'holdtime-max'],
      style: { head: [], border: [], compact: true },
    });
    for (const l of r.locks) {
      lt.push([l.class, l.mode, n(l.contentions), l.waittime_avg.toFixed(2), l.waittime_max.toFixed(2), n(l.acquisitions), l.holdtime_avg.toFixed(2), l.holdtime_max.toFixed(2)]);
    }
    out.push('lock_stat (times in µs):');
    out.push(lt.toString());
  }
  if (r.scenario_report) out.push(...r.scenario_report.lines);
  for (const note of r.notes) out.push(`note: ${note}`);
  if (r.ok) out.push(`OK: every checker passed (seed ${r.seed})`);
  else {
    out.push(`FAILED: ${r.violations.length} violation(s) (replay with --seed ${r.seed}):`);
    for (const v of r.violations.slice(0, 20)) out.push(`  [${v.checker}] ${v.message}`);
  }
  return out.join('\n');
}
