/**
 * locktorture's periodic statistics (`ptlab torture --stat-interval S`, after locktorture.c's
 * lock_torture_stats thread and __torture_print_stats): every S seconds the Writes and Reads
 * lines, byte for byte the kernel's format; the final summary as before.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { tortureStatsLine } from '../../src/cli/torture.js';

const ptlab = (...args: string[]) => spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
/** The acceptance check's pattern for a Writes line. */
const WRITES = /^Writes: {2}Total: [0-9]+ {2}Max\/Min: [0-9]+\/[0-9]+ (\?\?\?)? {2}Fail: [01] ?(!!!)?$/;
const READS = /^Reads : {2}Total: [0-9]+ {2}Max\/Min: [0-9]+\/[0-9]+ (\?\?\?)? {2}Fail: [01] ?(!!!)?$/;

describe('__torture_print_stats', () => {
  it('"%s:  Total: %lld  Max/Min: %ld/%ld %s  Fail: %d %s": a trailing space without "!!!", "???" when max / 2 > min in longs', () => {
    expect(tortureStatsLine(true, [10, 7], [0, 0])).toBe('Writes:  Total: 17  Max/Min: 10/7   Fail: 0 ');
    expect(tortureStatsLine(false, [9, 3], [0, 0])).toBe('Reads :  Total: 12  Max/Min: 9/3 ???  Fail: 0 ');
    // 5 / 2 is 2 in C's longs: not above 2, so not unfair (2.5 would be).
    expect(tortureStatsLine(true, [5, 2], [0, 0])).toBe('Writes:  Total: 7  Max/Min: 5/2   Fail: 0 ');
    expect(tortureStatsLine(true, [3, 3], [0, 2])).toBe('Writes:  Total: 6  Max/Min: 3/3   Fail: 1 !!!');
    for (const l of [tortureStatsLine(true, [10, 7], [0, 0]), tortureStatsLine(true, [9, 1], [1, 0])]) expect(l).toMatch(WRITES);
  });
});

describe('ptlab torture --stat-interval', () => {
  it('prints the lines every interval inside the run, then the final summary as before', () => {
    const r = ptlab('torture', '--seconds', '1.3', '--stat-interval', '0.4', '--readers', '1', '--writers', '2');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    const head = lines.findIndex((l) => l.startsWith('ptlab torture --lock mmap_lock/rwsem'));
    // At 0.4, 0.8 and 1.2 s: Writes, then Reads (the lock has readers).
    const periodic = lines.slice(0, head);
    expect(periodic).toHaveLength(6);
    periodic.forEach((l, i) => expect(l).toMatch(i % 2 === 0 ? WRITES : READS));
    expect(periodic.every((l) => / {2}Fail: 0 $/.test(l))).toBe(true);
    // The totals only grow.
    const totals = periodic.filter((_, i) => i % 2 === 0).map((l) => Number(/Total: (\d+)/.exec(l)![1]));
    expect(totals).toEqual([...totals].sort((a, b) => a - b));
    // The final summary keeps its form (trimmed, as before).
    expect(lines[head + 1]).toMatch(/^Writes: {2}Total: \d+ {2}Max\/Min: \d+\/\d+ (\?\?\?)? {2}Fail: 0$/);
    expect(lines.at(-2)).toBe('OK: mutual exclusion held');
  });

  it('the kernel\'s default, 60 s: a shorter run prints nothing periodic; 0 prints none; --json keeps them in `periodic`', () => {
    const r = ptlab('torture', '--seconds', '0.5', '--writers', '1', '--readers', '0', '--lock', 'page_table_lock/spinlock');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^ptlab torture --lock page_table_lock\/spinlock: /);
    const none = ptlab('torture', '--seconds', '0.5', '--stat-interval', '0');
    expect(none.stdout.split('\n')[0]).toMatch(/^ptlab torture /);
    const j = ptlab('torture', '--seconds', '0.7', '--stat-interval', '0.3', '--readers', '0', '--writers', '2', '--json');
    expect(j.status).toBe(0);
    const o = JSON.parse(j.stdout) as { periodic: { seconds: number; lines: string[] }[] };
    expect(o.periodic.map((p) => p.seconds)).toEqual([0.3, 0.6]);
    for (const p of o.periodic) {
      expect(p.lines).toHaveLength(1);
      expect(p.lines[0]).toMatch(WRITES);
    }
  });

  it('a bad interval is bad input: one line naming it, exit 2', () => {
    for (const v of ['x', '-1', '4000']) {
      const r = ptlab('torture', '--seconds', '0.5', '--stat-interval', v);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/--stat-interval/);
    }
  });
});
