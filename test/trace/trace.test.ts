/** Traces of controlled runs: valid Chrome trace JSON with slices nested per CPU, flows paired. */
import { describe, expect, it } from 'vitest';
import { runToken } from '../../src/cli/explore.js';
import { OP_NAMES } from '../../src/proc/program.js';
import type { ReplayToken } from '../../src/sched/token.js';
import { toChromeTrace } from '../../src/trace/chrome.js';

const token: ReplayToken = {
  scenario: 'mprotect-vs-fault', model: 'map-shared-pt', opts: { procs: '2', cpus: '2', ops: '2', size: '2M', lockStat: false },
  strategy: 'pct', seed: 5, depth: 3, steps: 1000,
};

describe('trace', () => {
  it('has one track per CPU, nested slices, monotonic time, and a flow per shootdown', async () => {
    let cpus: number[][] = [];
    const r = await runToken(token, false, undefined, (c) => (cpus = c));
    expect(r.ok).toBe(true);
    const t = JSON.parse(JSON.stringify(toChromeTrace(cpus, OP_NAMES, 'test'))) as ReturnType<typeof toChromeTrace>;
    const ev = t.traceEvents;
    expect(new Set(ev.filter((e) => e.ph !== 'M').map((e) => e.tid))).toEqual(new Set([0, 1]));
    const stack = new Map<number, string[]>();
    const last = new Map<number, number>();
    for (const e of ev) {
      if (e.ph === 'M') continue;
      expect(e.ts).toBeGreaterThanOrEqual(last.get(e.tid) ?? 0);
      last.set(e.tid, e.ts);
      const s = stack.get(e.tid) ?? [];
      stack.set(e.tid, s);
      if (e.ph === 'B') s.push(e.name);
      if (e.ph === 'E') expect(s.pop()).toBe(e.name);
    }
    for (const s of stack.values()) expect(s).toEqual([]);
    expect(ev.some((e) => e.ph === 'B' && e.name.startsWith('fault '))).toBe(true);
    expect(ev.some((e) => e.ph === 'B' && e.name === '&mm->mmap_lock')).toBe(true);
    expect(ev.some((e) => e.ph === 'i' && e.name.startsWith('point '))).toBe(true);
    expect(ev.some((e) => e.ph === 'C')).toBe(true);
    const out = ev.filter((e) => e.ph === 's').map((e) => e.id).sort();
    const inn = ev.filter((e) => e.ph === 'f').map((e) => e.id).sort();
    expect(out.length).toBe(r.tlb.ipis_sent);
    expect(inn).toEqual(out);
  });
});
