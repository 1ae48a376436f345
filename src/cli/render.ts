/** Reports for people: cli-table3 tables, lock_stat columns, the checkers' verdict. */
import Table from 'cli-table3';
import prettyBytes from 'pretty-bytes';
import { type LockClassStats, type LockPoint, LOCKSTAT_POINTS } from '../sync/lock_stat.js';
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

/** Bytes in binary units as the kernel's tools print them: "512 B", "64.00 MiB" (pretty-bytes). */
export const bytes = (b: number): string =>
  prettyBytes(b, { binary: true, ...(Math.abs(b) >= 1024 ? { minimumFractionDigits: 2, maximumFractionDigits: 2 } : {}) });

/** A model or lock protocol as a table names it: a plugin (keyed by its absolute path) by its file name. */
export const shortName = (key: string): string => (key.startsWith('/') ? key.slice(key.lastIndexOf('/') + 1) : key);

const plural = new Intl.PluralRules('en-US');
/** "1 process", "8 processes" (Intl.PluralRules). */
export const count = (n: number, one: string, many: string): string => `${n} ${plural.select(n) === 'one' ? one : many}`;

export function renderRun(r: RunReport, wide = false): string {
  const out: string[] = [];
  out.push(`ptlab run ${r.scenario} --model ${r.model}${r.bug ? ` --bug ${r.bug}` : ''}${r.mmap_lock !== 'rwsem' ? ` --mmap-lock ${r.mmap_lock}` : ''} --seed ${r.seed}: ` +
    // A scenario file's programs say what they map: --size means nothing there.
    `${count(r.procs, 'process', 'processes')} on ${count(r.cpus, 'CPU', 'CPUs')} (${count(r.cores, 'core', 'cores')}), ${r.scenario.endsWith('.json') ? 'a scenario file' : `${bytes(r.size)} shared`}, ${r.seconds} s`);
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
  if (r.locks.length > 0) out.push(`lock_stat over ${r.lock_stat_over}:`, renderLockStat(r.locks, wide));
  if (r.scenario_report) out.push(...r.scenario_report.lines);
  for (const note of r.notes) out.push(...wrap(`note: ${note}`, 120, '      '));
  if (r.ok) out.push(`OK: every checker passed (seed ${r.seed})`);
  else {
    // Seed only: a free-mode run is not replayed exactly (`ptlab explore` gives a token that is).
    out.push(`FAILED: ${r.violations.length} violation(s) (seed ${r.seed}):`);
    for (const v of r.violations.slice(0, 20)) out.push(`  [${v.checker}] ${v.message}`);
  }
  return out.join('\n');
}

/** `text` in lines of at most `width` columns, broken at spaces; the lines after the first start with `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines;
}

/** The class names in lock_stat_cmp's order (contentions, read and write together, most first) and each row's printed name. */
function lockStatOrder(rows: LockClassStats[]): { row: LockClassStats; name: string; last: boolean }[] {
  // lockdep_proc.c's lock_stat_open sorts classes by contentions (read and write waits together),
  // most first; seq_stats names a class plainly when it was only written, -W and -R when it was read-held too.
  const classes = [...new Set(rows.map((l) => l.class))];
  const contended = (c: string) => rows.filter((l) => l.class === c).reduce((n, l) => n + l.contentions, 0);
  const order = classes.map((c, i) => ({ c, i, n: contended(c) })).sort((a, b) => b.n - a.n || a.i - b.i).map((x) => x.c);
  return order.flatMap((c) => {
    const mine = ['W', 'R'].flatMap((m) => rows.filter((l) => l.class === c && l.mode === m));
    const suffixed = mine.some((l) => l.mode === 'R');
    return mine.map((row, i) => ({ row, name: suffixed ? `${row.class}-${row.mode}` : row.class, last: i === mine.length - 1 }));
  });
}

/**
 * A class's contention points (where its waiters waited) and contending points (where the holder
 * they waited for held it), both modes together, the LOCKSTAT_POINTS most counted of each.
 */
function classPoints(rows: LockClassStats[], cls: string, which: 'contention_points' | 'contending_points'): LockPoint[] {
  const by = new Map<string, number>();
  for (const l of rows) if (l.class === cls) for (const p of l[which] ?? []) by.set(p.site, (by.get(p.site) ?? 0) + p.count);
  return [...by].map(([site, count]) => ({ site, count })).sort((a, b) => b.count - a.count || (a.site < b.site ? -1 : 1)).slice(0, LOCKSTAT_POINTS);
}

/**
 * seq_stats' lines under a class: a dashed line under the name, then `%40s %14lu %29s %pS` per
 * contention point and, after a second dashed line, per contending point; a blank line and a
 * dotted rule close the class. ptlab has no instruction pointers: the `[<ip>]` (%29s) column is
 * left out and the site — the ptlab function that waited, named as the kernel function it
 * follows — is printed where %pS prints the symbol. `nameW` is the width of the name column and
 * `rule` the dotted rule's length (the kernel's is its row's width, 40 + 1 + 12 * 15; ptlab's rows
 * have other columns, so the rule is as wide as ptlab's rows). `countW` and `width`: the
 * default layout's narrower count column, and its lines cut to 120 columns.
 */
function pointLines(rows: LockClassStats[], cls: string, name: string, nameW: number, countW: number, rule: number, width: number): string[] {
  const out: string[] = [];
  const namelen = Math.min(name.length, nameW);
  let contending = 0;
  for (const which of ['contention_points', 'contending_points'] as const) {
    const pts = classPoints(rows, cls, which);
    if (pts.length === 0) continue;
    out.push(' '.repeat(nameW - namelen) + '-'.repeat(namelen));
    for (const p of pts) out.push(`${fitName(cls, nameW)} ${String(p.count).padStart(countW)} ${p.site}`.slice(0, width));
    if (which === 'contending_points') contending = pts.length;
  }
  // seq_stats closes the class only after contending points (its `if (i)` is the second loop's).
  if (contending > 0) out.push('', '.'.repeat(rule), '');
  return out;
}

/** A name in a column of `w`: cut from the left when longer (the -W/-R suffix and the lock's own name stay). */
function fitName(name: string, w: number): string {
  return name.length <= w ? name.padStart(w) : '~' + name.slice(name.length - w + 1);
}

/** A time (µs, two decimals as snprint_time prints it) in `w` columns: fewer decimals when it would not fit. */
function fitTime(x: number, w: number): string {
  for (const d of [2, 1, 0]) {
    const s = x.toFixed(d);
    if (s.length <= w) return s.padStart(w);
  }
  return x.toExponential(1).padStart(w);
}

/**
 * /proc/lock_stat's layout (kernel/locking/lockdep_proc.c, lock_stat version 0.4): one line per
 * class and mode ("-W" / "-R"), times in µs with two decimals, then each class's contention
 * points. ptlab does not count cacheline bounces, so con-bounces and acq-bounces are left out.
 *
 * `wide`: seq_stats' own widths (`%40s: %14lu ...`, 251 columns) with every column, the
 * percentiles after the kernel's. Default: 120 columns — the class name in 27 (a longer one cut
 * from the left, "~" marking the cut), then the columns read first: contentions (still the first
 * number after ": "), waittime-max, waittime-total, waittime-avg, acquisitions, holdtime-avg and
 * the wait p99; the rows in lock_stat_cmp's order either way.
 */
export function renderLockStat(rows: LockClassStats[], wide = false): string {
  const sorted = lockStatOrder(rows);
  const lines: string[] = [];
  if (wide) {
    const cols = ['contentions', 'waittime-min', 'waittime-max', 'waittime-total', 'waittime-avg', 'acquisitions', 'holdtime-min', 'holdtime-max', 'holdtime-total', 'holdtime-avg',
      'waittime-p50', 'waittime-p99', 'holdtime-p50', 'holdtime-p99'];
    const width = 41 + cols.length * 15;
    const rule = '-'.repeat(width);
    const head = 'class name'.padStart(40) + ' ' + cols.map((c) => c.padStart(14)).join(' ');
    const t = (x: number) => x.toFixed(2).padStart(14);
    lines.push('lock_stat version 0.4 (ptlab: no bounce counts; percentiles from HdrHistogram)', rule, head, rule);
    for (const { row: l, name, last } of sorted) {
      lines.push(`${name.padStart(40)}: ${[
        String(l.contentions).padStart(14), t(l.waittime_min), t(l.waittime_max), t(l.waittime_total), t(l.waittime_avg),
        String(l.acquisitions).padStart(14), t(l.holdtime_min), t(l.holdtime_max), t(l.holdtime_total), t(l.holdtime_avg),
        t(l.waittime_p50), t(l.waittime_p99), t(l.holdtime_p50), t(l.holdtime_p99),
      ].join(' ')}`);
      if (last) lines.push(...pointLines(rows, l.class, name, 40, 14, width, Infinity));
    }
    lines.push(rule);
    return lines.join('\n');
  }
  const NAME = 27;
  const cols: [string, number][] = [['contentions', 11], ['waittime-max', 12], ['waittime-total', 14], ['waittime-avg', 12], ['acquisitions', 12], ['holdtime-avg', 12], ['waittime-p99', 12]];
  const width = NAME + 2 + cols.reduce((a, [, w]) => a + w + 1, -1);
  const rule = '-'.repeat(width);
  lines.push('lock_stat version 0.4 (ptlab, 120 columns: --wide for every column; times in us)', rule,
    'class name'.padStart(NAME) + '  ' + cols.map(([c, w]) => c.padStart(w)).join(' '), rule);
  for (const { row: l, name, last } of sorted) {
    const w = (i: number) => cols[i][1];
    lines.push(`${fitName(name, NAME)}: ${[
      String(l.contentions).padStart(w(0)), fitTime(l.waittime_max, w(1)), fitTime(l.waittime_total, w(2)), fitTime(l.waittime_avg, w(3)),
      String(l.acquisitions).padStart(w(4)), fitTime(l.holdtime_avg, w(5)), fitTime(l.waittime_p99, w(6)),
    ].join(' ')}`);
    if (last) lines.push(...pointLines(rows, l.class, name, NAME, 11, width, 120));
  }
  lines.push(rule);
  return lines.join('\n');
}
