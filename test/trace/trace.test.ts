/**
 * Traces of controlled runs: valid Chrome trace JSON — complete slices (X) nested and time monotonic on every
 * track (the CPU tracks and the process tracks grouped by mm), slices named by kind with their
 * address and outcome in args, every shootdown flow paired and its end bound to a slice, and a
 * failing run's violation marked where it was found.
 */
import { describe, expect, it } from 'vitest';
import { explore, runToken } from '../../src/cli/explore.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { OP_NAMES } from '../../src/proc/program.js';
import { decodeToken, type ReplayToken } from '../../src/sched/token.js';
import { type ChromeEvent, toChromeTrace } from '../../src/trace/chrome.js';

const token: ReplayToken = {
  scenario: 'mprotect-vs-fault', model: 'map-shared-pt', opts: { procs: '2', cpus: '2', ops: '2', size: '2M', lockStat: false },
  strategy: 'pct', seed: 5, depth: 3, steps: 1000,
};

/** Nesting (complete slices inside one another) and monotonic time on every (pid, tid) track. */
function checkTracks(ev: ChromeEvent[]): void {
  const stack = new Map<string, number[]>();
  const last = new Map<string, number>();
  for (const e of ev) {
    if (e.ph === 'M' || (e.ph === 'i' && e.s === 'g')) continue;
    const key = `${e.pid}/${e.tid}`;
    expect(e.ts).toBeGreaterThanOrEqual(last.get(key) ?? 0);
    last.set(key, e.ts);
    const s = stack.get(key) ?? [];
    stack.set(key, s);
    while (s.length > 0 && s[s.length - 1] <= e.ts && !(e.ph === 'X' && e.dur === 0 && s[s.length - 1] === e.ts)) s.pop();
    if (e.ph === 'X') {
      expect(e.dur).toBeGreaterThanOrEqual(0);
      if (s.length > 0) expect(e.ts + e.dur!).toBeLessThanOrEqual(s[s.length - 1]);
      s.push(e.ts + e.dur!);
    }
  }
  expect(ev.some((e) => e.ph === 'B' || e.ph === 'E')).toBe(false);
}

describe('trace', () => {
  it('CPU tracks and process tracks under their mm, nested, slices named by kind, every flow bound at both ends', async () => {
    let cpus: number[][] = [];
    const r = await runToken(token, false, undefined, (c) => (cpus = c));
    expect(r.ok).toBe(true);
    const t = JSON.parse(JSON.stringify(toChromeTrace(cpus, OP_NAMES, 'test'))) as ReturnType<typeof toChromeTrace>;
    const ev = t.traceEvents;
    checkTracks(ev);
    const names = ev.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => `${e.pid}:${String(e.args?.name)}`);
    expect(names).toEqual(expect.arrayContaining(['1:cpu0', '1:cpu1']));
    expect(names.some((n) => /^\d+:process 0$/.test(n)) && names.some((n) => /^\d+:process 1$/.test(n))).toBe(true);
    const mms = ev.filter((e) => e.ph === 'M' && e.name === 'process_name' && e.pid > 1).map((e) => String(e.args?.name));
    expect(mms.every((n) => /^mm \d+$/.test(n)) && mms.length >= 2).toBe(true);
    // Slices by kind: faults named `fault` with their address; syscalls end with an outcome name.
    const faults = ev.filter((e) => e.ph === 'X' && e.cat === 'fault');
    expect(faults.length).toBeGreaterThan(0);
    expect(faults.every((e) => e.name === 'fault' && /^0x[0-9a-f]+$/.test(String(e.args?.address)))).toBe(true);
    const ends = ev.filter((e) => e.ph === 'X' && e.cat === 'syscall');
    expect(ends.length).toBeGreaterThan(0);
    expect(ends.every((e) => /^(ok|any|E[A-Z]+|SIG[A-Z]+|errno \d+|signal \d+)$/.test(String(e.args?.outcome)))).toBe(true);
    expect(ev.some((e) => e.ph === 'X' && e.name === '&mm->mmap_lock')).toBe(true);
    expect(ev.some((e) => e.ph === 'i' && e.name.startsWith('point '))).toBe(true);
    expect(ev.some((e) => e.ph === 'C')).toBe(true);
    // Flows on the CPU tracks: one per IPI that caused a flush, each end inside the flush slice it binds to.
    const cpuEv = ev.filter((e) => e.pid === 1);
    const out = cpuEv.filter((e) => e.ph === 's').map((e) => e.id).sort();
    const inn = cpuEv.filter((e) => e.ph === 'f');
    expect(out.length).toBeGreaterThan(0);
    expect(out.length).toBeLessThanOrEqual(r.tlb.ipis_sent);
    expect(inn.map((e) => e.id).sort()).toEqual(out);
    for (const f of inn) {
      expect(f.bp).toBe('e');
      const x = cpuEv.find((e) => e.ph === 'X' && e.tid === f.tid && e.ts <= f.ts && f.ts < e.ts + (e.dur ?? 0));
      expect(x?.name).toBe('TLB flush (IPI taken)');
    }
    // A flow's start sits inside the shootdown slice that sent it.
    for (const s of cpuEv.filter((e) => e.ph === 's')) {
      expect(cpuEv.some((e) => e.tid === s.tid && e.name === 'TLB shootdown' && e.ts <= s.ts && s.ts < e.ts + e.dur!)).toBe(true);
    }
  });

  it('a failing run: the violation is an instant on the CPU that found it and on its process track', async () => {
    const o = parseRunOptions('exit-vs-fault', { model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', size: '4M', lockStat: false });
    const found = await explore('exit-vs-fault', o, { strategy: 'pct', depth: 3, runs: 50, seed: 1, raw: { lockStat: false } });
    expect(found.ok).toBe(false);
    let cpus: number[][] = [];
    const r = await runToken(decodeToken(found.token!), false, undefined, (c) => (cpus = c));
    expect(r.ok).toBe(false);
    expect(r.violations[0].cpu).toBeGreaterThanOrEqual(0);
    const ev = toChromeTrace(cpus, OP_NAMES, 'test', r.violations).traceEvents;
    checkTracks(ev);
    const marks = ev.filter((e) => e.ph === 'i' && e.cat === 'violation');
    expect(marks.some((e) => e.pid === 1 && e.tid === r.violations[0].cpu && e.args?.message === r.violations[0].message)).toBe(true);
    expect(marks.some((e) => e.pid > 1)).toBe(true);
  });
});
