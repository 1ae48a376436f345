/**
 * lock_stat's text (src/cli/render.ts renderLockStat): 120 columns by default, /proc/lock_stat's
 * own widths with --wide (kernel/locking/lockdep_proc.c seq_stats), the rows in lock_stat_cmp's
 * order either way, and each class's contention points after its rows.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { renderLockStat } from '../../src/cli/render.js';
import type { LockClassStats } from '../../src/sync/lock_stat.js';

function row(cls: string, mode: 'W' | 'R', contentions: number, extra: Partial<LockClassStats> = {}): LockClassStats {
  return {
    class: cls, mode, acquisitions: 1000 + contentions, contentions,
    waittime_min: 0.5, waittime_max: 123456.78, waittime_total: 98765432.1, waittime_avg: 12.34,
    holdtime_min: 0.1, holdtime_max: 9.99, holdtime_total: 5000.5, holdtime_avg: 1.25,
    waittime_p50: 3.5, waittime_p99: 99.99, holdtime_p50: 1, holdtime_p99: 8, ...extra,
  };
}

const ROWS: LockClassStats[] = [
  row('zone->lock', 'W', 3),
  row('&mm->mmap_lock', 'W', 40, { contention_points: [{ site: 'do_mprotect_pkey', count: 40 }], contending_points: [{ site: 'handle_mm_fault', count: 7 }] }),
  row('&mm->mmap_lock', 'R', 2, { contention_points: [{ site: 'handle_mm_fault', count: 2 }] }),
  row('userfaultfd wait (handle_userfault / read)', 'W', 9),
  row('ptlock_ptr(ptdesc)', 'W', 0),
];

/** The `<name>: <contentions>` rows: the first number after ': '. */
function parsed(text: string): { name: string; contentions: number }[] {
  return text.split('\n').flatMap((l) => {
    const m = /^\s*(\S.*?): +(\d+) /.exec(l);
    return m ? [{ name: m[1], contentions: Number(m[2]) }] : [];
  });
}

describe('renderLockStat', () => {
  it('default: no line past 120 columns, contentions first after ": ", sorted as lock_stat_cmp sorts classes', () => {
    const text = renderLockStat(ROWS);
    for (const l of text.split('\n')) expect(l.length).toBeLessThanOrEqual(120);
    expect(text).toMatch(/class name +contentions +waittime-max +waittime-total +waittime-avg +acquisitions +holdtime-avg +waittime-p99/);
    const rows = parsed(text);
    expect(rows.map((r) => r.name)).toEqual(['&mm->mmap_lock-W', '&mm->mmap_lock-R', '~ (handle_userfault / read)', 'zone->lock', 'ptlock_ptr(ptdesc)']);
    // Classes by contentions, read and write together (42, 9, 3, 0); a class's -W before its -R.
    expect(rows.map((r) => r.contentions)).toEqual([40, 2, 9, 3, 0]);
    // A long name is cut from the left, to the column's 27 characters.
    expect(text).toMatch(/^~ \(handle_userfault \/ read\): +9 /m);
  });

  it('default: the class\'s contention points, then its contending points, after its rows (compact)', () => {
    const lines = renderLockStat(ROWS).split('\n');
    const at = lines.findIndex((l) => /^ +&mm->mmap_lock-R:/.test(l));
    expect(lines.slice(at + 1, at + 9)).toEqual([
      ' '.repeat(27 - 16) + '-'.repeat(16),
      `${'&mm->mmap_lock'.padStart(27)} ${'40'.padStart(11)} do_mprotect_pkey`,
      `${'&mm->mmap_lock'.padStart(27)} ${'2'.padStart(11)} handle_mm_fault`,
      ' '.repeat(27 - 16) + '-'.repeat(16),
      `${'&mm->mmap_lock'.padStart(27)} ${'7'.padStart(11)} handle_mm_fault`,
      '',
      '.'.repeat(120),
      '',
    ]);
  });

  it('--wide: lockdep_proc.c\'s widths (%40s: %14lu, %14s times), every column, the points as seq_stats prints them', () => {
    const text = renderLockStat(ROWS, true);
    const lines = text.split('\n');
    expect(lines[1]).toBe('-'.repeat(41 + 14 * 15));
    expect(lines[2]).toBe('class name'.padStart(40) + ' ' + ['contentions', 'waittime-min', 'waittime-max', 'waittime-total', 'waittime-avg', 'acquisitions', 'holdtime-min',
      'holdtime-max', 'holdtime-total', 'holdtime-avg', 'waittime-p50', 'waittime-p99', 'holdtime-p50', 'holdtime-p99'].map((c) => c.padStart(14)).join(' '));
    const w = lines.find((l) => l.startsWith(' '.repeat(24) + '&mm->mmap_lock-W:'))!;
    expect(w).toBe(`${'&mm->mmap_lock-W'.padStart(40)}: ${'40'.padStart(14)} ${'0.50'.padStart(14)} ${'123456.78'.padStart(14)} ${'98765432.10'.padStart(14)} ` +
      `${'12.34'.padStart(14)} ${'1040'.padStart(14)} ${'0.10'.padStart(14)} ${'9.99'.padStart(14)} ${'5000.50'.padStart(14)} ${'1.25'.padStart(14)} ` +
      `${'3.50'.padStart(14)} ${'99.99'.padStart(14)} ${'1.00'.padStart(14)} ${'8.00'.padStart(14)}`);
    // seq_line('-', 40 - namelen, namelen) with namelen + 2 for -W/-R, then "%40s %14lu" and the site.
    const at = lines.indexOf(lines.find((l) => /^ +&mm->mmap_lock-R:/.test(l))!);
    expect(lines[at + 1]).toBe(' '.repeat(24) + '-'.repeat(16));
    expect(lines[at + 2]).toBe(`${'&mm->mmap_lock'.padStart(40)} ${'40'.padStart(14)} do_mprotect_pkey`);
    expect(lines[at + 7]).toBe('.'.repeat(41 + 14 * 15));
    // A class without points has no dashed line; one with contention points only, no dotted rule.
    const only = renderLockStat([row('zone->lock', 'W', 5, { contention_points: [{ site: 'pool_alloc', count: 5 }] })], true).split('\n');
    expect(only.slice(4)).toEqual([
      `${'zone->lock'.padStart(40)}: ${'5'.padStart(14)}${only[4].slice(56)}`,
      ' '.repeat(30) + '-'.repeat(10),
      `${'zone->lock'.padStart(40)} ${'5'.padStart(14)} pool_alloc`,
      '-'.repeat(251),
    ]);
  });

  it('a time too wide for its default column loses decimals rather than the line its width', () => {
    const text = renderLockStat([row('zone->lock', 'W', 1, { waittime_total: 123456789012.5, waittime_max: 98765432109.25 })]);
    for (const l of text.split('\n')) expect(l.length).toBeLessThanOrEqual(120);
    expect(text).toMatch(/zone->lock: +1 +98765432109 +123456789012\.5 /);
  });
});

describe('ptlab run', () => {
  const ptlab = (...args: string[]) => spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 180_000 });

  it('sga --procs 8 and fault-storm fit 120 columns; --wide prints the kernel\'s widths; --json has each class\'s contention points', () => {
    const r = ptlab('run', 'sga', '--procs', '8', '--size', '16M');
    expect(r.status).toBe(0);
    for (const l of r.stdout.split('\n')) expect(l.length).toBeLessThanOrEqual(120);
    const rows = parsed(r.stdout.slice(r.stdout.indexOf('lock_stat version')));
    expect(rows.length).toBeGreaterThan(3);
    // Sorted by class contentions (a class's -W and -R rows together).
    const byClass = new Map<string, number>();
    for (const x of rows) byClass.set(x.name.replace(/-[WR]$/, ''), (byClass.get(x.name.replace(/-[WR]$/, '')) ?? 0) + x.contentions);
    const counts = [...byClass.values()];
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
    const wide = ptlab('run', 'sga', '--procs', '2', '--size', '4M', '--wide');
    expect(wide.status).toBe(0);
    expect(wide.stdout).toMatch(/class name +contentions +waittime-min/);
    expect(wide.stdout).toMatch(/^ {24}&mm->mmap_lock-R: +\d+ /m);
    // fault-storm's report has a long note (page data folded): wrapped, like every other line.
    const storm = ptlab('run', 'fault-storm');
    expect(storm.status).toBe(0);
    expect(storm.stdout).toMatch(/^note: page data: /m);
    for (const l of storm.stdout.split('\n')) expect(l.length).toBeLessThanOrEqual(120);
    const json = ptlab('run', 'sga', '--procs', '8', '--size', '16M', '--json');
    const o = JSON.parse(json.stdout) as { locks: LockClassStats[] };
    for (const l of o.locks) {
      const n = (l.contention_points ?? []).reduce((a, p) => a + p.count, 0);
      expect(n).toBeLessThanOrEqual(l.contentions);
      if (l.contentions > 0) expect(l.contention_points?.length).toBeGreaterThan(0);
      for (const p of [...(l.contention_points ?? []), ...(l.contending_points ?? [])]) expect(p.site).toMatch(/^[A-Za-z_$][\w$]*$/);
    }
  });
});
