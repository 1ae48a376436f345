/** Reports for people: cli-table3 tables, lock_stat columns, the checkers' verdict. */
import Table from 'cli-table3';
import type { LockClassStats } from '../sync/lock_stat.js';
import type { RunReport } from './run.js';

const n = (x: number) => x.toLocaleString('en-US');
/**
 * cli-table3 borders in ASCII: a table's width is the same in characters and bytes, so it fits a
 * 120-column terminal whatever the locale of the tool that measures it (awk, less -S, a log).
 */
export const ASCII_TABLE = {
  chars: {
    top: '-', 'top-mid': '+', 'top-left': '+', 'top-right': '+', bottom: '-', 'bottom-mid': '+', 'bottom-left': '+', 'bottom-right': '+',
    left: '|', 'left-mid': '+', mid: '-', 'mid-mid': '+', right: '|', 'right-mid': '+', middle: '|',
  },
  style: { head: [] as string[], border: [] as string[], compact: true },
};

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
    // A scenario file's programs say what they map: --size means nothing there.
    `${r.procs} processes on ${r.cpus} CPUs (${r.cores} cores), ${r.scenario.endsWith('.json') ? 'a scenario file' : `${bytes(r.size)} shared`}, ${r.seconds} s`);
  const t = new Table({ head: ['figure', 'value'], ...ASCII_TABLE });
  t.push(
    ['faults', `${n(r.faults.total)} (${n(r.faults_per_s)}/s)`],
    ['  PTE from page cache / new page', `${n(r.faults.pte_from_page_cache)} / ${n(r.faults.page_allocated)}`],
    ['  shared PMD copied / write-protect', `${n(r.faults.shared_pmd_copied)} / ${n(r.faults.write_protect)}`],
    ['  spurious / SIGSEGV / OOM', `${n(r.faults.spurious)} / ${n(r.faults.sigsegv)} / ${n(r.faults.oom)}`],
    ['loads / stores / TLB walks', `${n(r.accesses.loads)} / ${n(r.accesses.stores)} / ${n(r.accesses.tlb_walks)}`],
    ['TLB shootdowns / IPIs sent', `${n(r.tlb.shootdowns)} / ${n(r.tlb.ipis_sent)}`],
    ...(r.tlb.table_syncs > 0 ? [['  table syncs (tlb_remove_table_sync_one)', n(r.tlb.table_syncs)] as [string, string]] : []),
    ...(r.gup.fast + r.gup.slow > 0 ? [['gup_fast: lockless / slow path', `${n(r.gup.fast)} / ${n(r.gup.slow)}`] as [string, string]] : []),
    ...(r.forks !== undefined && r.fork_latency_us ? [['forks / IPIs per fork / latency p50, p99', `${n(r.forks)} / ${r.ipis_per_fork} / ${r.fork_latency_us.p50} µs, ${r.fork_latency_us.p99} µs`] as [string, string]] : []),
    ['page tables (x86-64 bytes)', `${bytes(r.pgtables_bytes.total)} = host ${bytes(r.pgtables_bytes.host)} + guests ${bytes(r.pgtables_bytes.guests)}`],
    ['  per process (guest)', bytes(r.pgtables_bytes.per_process)],
    ['physical memory peak / budget', `${bytes(r.memory.peak_bytes)} / ${bytes(r.memory.budget_bytes)}`],
    ['VM_FAULT_OOM', r.memory.oom.count ? `${r.memory.oom.count}, first in process ${r.memory.oom.first_process}` +
      (r.memory.oom.at_first ? ` (then ${bytes(r.memory.oom.at_first.charged_bytes)} charged, ${bytes(r.memory.oom.at_first.pgtables_bytes)} of it page tables)` : '') : 'none'],
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
  if (r.reclaim.pages > 0 || r.reclaim.ptes_cleared > 0) {
    t.push(['reclaim: pages / PTEs cleared / accessed bits', `${n(r.reclaim.pages)} / ${n(r.reclaim.ptes_cleared)} / ${n(r.reclaim.accessed_bits)}`]);
  }
  if (r.migrate.pages > 0 || r.migrate.failed > 0) {
    t.push(['migrate: pages moved / not moved / faults that waited', `${n(r.migrate.pages)} / ${n(r.migrate.failed)} / ${n(r.migrate.waits)}`]);
  }
  out.push(t.toString());
  if (r.locks.length > 0) out.push(`lock_stat over ${r.lock_stat_over}:`, renderLockStat(r.locks));
  if (r.scenario_report) out.push(...r.scenario_report.lines);
  for (const note of r.notes) out.push(`note: ${note}`);
  if (r.ok) out.push(`OK: every checker passed (seed ${r.seed})`);
  else {
    // Seed only: a free-mode run is not replayed exactly (`ptlab explore` gives a token that is).
    out.push(`FAILED: ${r.violations.length} violation(s) (seed ${r.seed}):`);
    for (const v of r.violations.slice(0, 20)) out.push(`  [${v.checker}] ${v.message}`);
  }
  return out.join('\n');
}

/**
 * /proc/lock_stat's layout (kernel/locking/lockdep_proc.c, lock_stat version 0.4): one line per
 * class and mode ("-W" / "-R"), times in µs with two decimals. ptlab does not count cacheline
 * bounces, so con-bounces and acq-bounces are left out; the percentiles come after the kernel's
 * columns.
 */
export function renderLockStat(rows: LockClassStats[]): string {
  const cols = ['contentions', 'waittime-min', 'waittime-max', 'waittime-total', 'waittime-avg', 'acquisitions', 'holdtime-min', 'holdtime-max', 'holdtime-total', 'holdtime-avg',
    'waittime-p50', 'waittime-p99', 'holdtime-p50', 'holdtime-p99'];
  const rule = '-'.repeat(41 + cols.length * 15);
  const head = 'class name'.padStart(40) + ' ' + cols.map((c) => c.padStart(14)).join(' ');
  const t = (x: number) => x.toFixed(2).padStart(14);
  const lines = ['lock_stat version 0.4 (ptlab: no bounce counts; percentiles from HdrHistogram)', rule, head, rule];
  // lockdep_proc.c's lock_stat_open sorts classes by contentions (read and write waits together),
  // most first; seq_stats names a class plainly when it was only written, -W and -R when it was read-held too.
  const classes = [...new Set(rows.map((l) => l.class))];
  const contended = (c: string) => rows.filter((l) => l.class === c).reduce((n, l) => n + l.contentions, 0);
  const order = classes.map((c, i) => ({ c, i, n: contended(c) })).sort((a, b) => b.n - a.n || a.i - b.i).map((x) => x.c);
  const sorted = order.flatMap((c) => ['W', 'R'].flatMap((m) => rows.filter((l) => l.class === c && l.mode === m)));
  for (const l of sorted) {
    const suffixed = l.mode === 'R' || rows.some((x) => x.class === l.class && x.mode === 'R');
    lines.push(`${(suffixed ? l.class + '-' + l.mode : l.class).padStart(40)}: ${[
      String(l.contentions).padStart(14), t(l.waittime_min), t(l.waittime_max), t(l.waittime_total), t(l.waittime_avg),
      String(l.acquisitions).padStart(14), t(l.holdtime_min), t(l.holdtime_max), t(l.holdtime_total), t(l.holdtime_avg),
      t(l.waittime_p50), t(l.waittime_p99), t(l.holdtime_p50), t(l.holdtime_p99),
    ].join(' ')}`);
  }
  lines.push(rule);
  return lines.join('\n');
}
