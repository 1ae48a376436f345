/** The command as a user meets it: exit codes, one-line errors, JSON on stdout. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { decodeToken } from '../../src/sched/token.js';

function ptlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('ptlab', () => {
  it.each([
    [['run', 'sga', '--procs', '-1'], /--procs must be a positive integer/],
    [['run', 'sga', '--mmap-lock', 'mcs'], /--mmap-lock must be rwsem or qrwlock/],
    [['run', 'sga', '--procs', 'many'], /--procs must be a positive integer/],
    [['run', 'sga', '--cpus', '0'], /--cpus must be a positive integer/],
    [['run', 'sga', '--size', '1000'], /--size must be a size/],
    [['run', 'sga', '--model', 'nonsense'], /--model must be one of/],
    [['run', 'nosuch'], /unknown scenario 'nosuch'/],
    [['run', 'sga', '--bug', 'rfc-v2-free-shared-pmd'], /--bug must be one the model 'none' knows/],
    [['run', 'sga', '--frobnicate'], /unknown option/],
  ])('bad input %j: one line, exit 2', (args, msg) => {
    const r = ptlab(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.out).toBe('');
  });

  it('run --json prints one object with the documented fields', () => {
    const r = ptlab('run', 'sga', '--model', 'map-shared-pt', '--procs', '4', '--size', '8M', '--ops', '2', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    for (const k of ['ok', 'violations', 'faults_per_s', 'cpus', 'procs', 'model', 'seed', 'locks']) expect(o).toHaveProperty(k);
    expect(o.ok).toBe(true);
    expect(typeof o.faults.total).toBe('number');
    expect(o.pgtables_bytes.total).toBe((4 + 3 + 4 * 3) * 4096); // host: 4 PTE + PMD + PUD + PGD
    expect(o.locks.some((l: { class: string }) => l.class === '&mm->mmap_lock')).toBe(true);
  });

  it('a scenario whose syscall fails reports the errno as a violation: exit 1', () => {
    const r = ptlab('run', 'sga', '--model', 'map-shared-pt', '--procs', '2', '--size', '3M', '--json');
    expect(r.code).toBe(1);
    const o = JSON.parse(r.out);
    expect(o.violations[0].checker).toBe('expectation');
    expect(o.violations[0].message).toMatch(/expected ok, got EINVAL/);
  });

  it('compare --json runs each model on the same workload and seed: {runs: [...]}', () => {
    const r = ptlab('compare', 'sga', '--models', 'none,map-shared-pt,pt-hint', '--procs', '8', '--size', '8M', '--ops', '2', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.runs.map((x: { model: string }) => x.model)).toEqual(['none', 'map-shared-pt', 'pt-hint']);
    for (const run of o.runs) {
      expect(run.ok).toBe(true);
      expect(run.seed).toBe(1);
      for (const k of ['faults', 'faults_per_s', 'pgtables_bytes', 'tlb', 'locks']) expect(run).toHaveProperty(k);
    }
    const [none, mspt, hint] = o.runs.map((x: { pgtables_bytes: { total: number } }) => x.pgtables_bytes.total);
    expect(none).toBe(8 * 7 * 4096); // 8 processes x (4 PTE + PMD + PUD + PGD)
    expect(mspt).toBe((7 + 8 * 3) * 4096);
    // pt-hint shares a sibling's table only if the sibling built it first: two CPUs faulting the
    // same range at once may each build one. At best one set of PTE tables serves everyone.
    expect(hint).toBeGreaterThanOrEqual((7 + 7 * 3) * 4096);
    expect(hint).toBeLessThan(none);
  });

  it('compare sweeps --procs 1,2,4 (CSV: one row per point, will-it-scale\'s linear column); the table fits 120 columns', () => {
    const r = ptlab('compare', 'sga', '--models', 'none,map-shared-pt', '--procs', '1,2,4', '--size', '8M', '--ops', '2', '--csv');
    expect(r.code).toBe(0);
    const rows = parse(r.out, { columns: true, cast: true }) as Record<string, string | number>[];
    expect(rows.map((x) => `${x.model}:${x.procs}`)).toEqual(['none:1', 'none:2', 'none:4', 'map-shared-pt:1', 'map-shared-pt:2', 'map-shared-pt:4']);
    for (const x of rows) {
      const base = rows.find((y) => y.model === x.model && y.procs === 1)!;
      expect(x.linear_faults_per_s).toBe(Math.round((Number(base.faults_per_s) * Number(x.procs)) / 1));
      expect(x.ok).toBe(1);
    }
    // page tables grow with the task count under none (each its own), far less under the model
    expect(rows[2].pgtables_bytes).toBe(4 * 7 * 4096);
    const t = ptlab('compare', 'sga', '--models', 'none,map-shared-pt,pt-hint', '--procs', '8', '--size', '8M', '--ops', '2');
    expect(t.code).toBe(0);
    expect(Math.max(...t.out.split('\n').map((l) => Buffer.byteLength(l)))).toBeLessThanOrEqual(120);
    expect(t.out).toMatch(/\| none +\| ok +\|.*\| 1\.0x +\|/);
    const wide = ptlab('compare', 'sga', '--models', 'none', '--procs', '2', '--size', '8M', '--ops', '2', '--wide', '--repeat', '2');
    expect(wide.out).toMatch(/median of 2 runs per point/);
    expect(wide.out).toMatch(/new page \/ from cache/);
    expect(ptlab('compare', 'sga', '--procs', '2,x').code).toBe(2);
  });

  it('compare refuses an unknown model in the list: exit 2', () => {
    const r = ptlab('compare', 'sga', '--models', 'none,nope');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--models: each must be one of/);
  });

  /** An example's program without its `models` (which would refuse another model, exit 2). */
  const anyModel = (file: string): string => {
    const { models: _models, ...rest } = JSON.parse(readFileSync(file, 'utf8'));
    const out = join(mkdtempSync(join(tmpdir(), 'ptlab-')), 'program.json');
    writeFileSync(out, JSON.stringify(rest));
    return out;
  };

  it('runs a scenario file: map-shared-pt\'s errnos from a program, exit 0; the same program under none breaks its expectations, exit 1', () => {
    expect(ptlab('run', 'examples/errnos.json').code).toBe(0);
    expect(ptlab('run', 'examples/errnos.json', '--model', 'none').code).toBe(2); // the file is written for map-shared-pt
    const r = ptlab('run', anyModel('examples/errnos.json'), '--model', 'none', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).violations[0].message).toMatch(/expected EINVAL, got ok/);
  });

  it('runs mshare v1 from a scenario file under mshare; other models have no mshare() (ENOSYS): exit 1', () => {
    expect(ptlab('run', 'examples/mshare_v1.json', '--model', 'mshare').code).toBe(0);
    const r = ptlab('run', anyModel('examples/mshare_v1.json'), '--model', 'none', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).violations[0].message).toMatch(/expected ok, got ENOSYS/);
  });

  it.each([
    ['examples/errnos.json', 'map-shared-pt'],
    ['examples/mshare_errnos.json', 'mshare'],
    ['examples/mshare_v1.json', 'mshare'],
    ['examples/container_errnos.json', 'container-fd'],
    ['examples/address_space_errnos.json', 'address-space'],
    ['examples/pt_hint_errnos.json', 'pt-hint'],
    ['examples/threads.json', 'none'],
    ['examples/guest_threads.json', 'map-shared-pt'],
  ])('%s: every errno and signal the program expects under %s', (file, model) => {
    const r = ptlab('run', file, '--model', model, '--json');
    expect([r.code, JSON.parse(r.out).violations]).toEqual([0, []]);
  });

  it('a bad scenario file is bad input: one line naming the field, exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptlab-'));
    const f = join(dir, 'bad.json');
    writeFileSync(f, JSON.stringify({ programs: [[{ op: 'mmap', len: -1, flags: ['MAP_SHARED'], as: 'x' }]] }));
    const r = ptlab('run', f);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/programs\.0\.0\.len/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('list names every scenario and model', () => {
    const r = ptlab('list', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.scenarios.map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(['sga', 'exit-vs-fault', 'mprotect-vs-fault']));
    expect(o.models.map((m: { name: string }) => m.name)).toEqual(expect.arrayContaining(['none', 'map-shared-pt', 'pt-hint']));
    for (const m of o.models) expect(m.seed.length * m.rules.length).toBeGreaterThan(0);
  });

  it('explore takes a scenario\'s own strategy and options when the command line gives none', () => {
    const r = ptlab('explore', 'race-mshare-peek', '--bug', 'peek-without-host-lock', '--json');
    expect(r.code).toBe(1);
    const o = JSON.parse(r.out);
    const t = decodeToken(o.token);
    expect([t.strategy, t.scenario]).toEqual(['random', 'race-mshare-peek']);
    const m = ptlab('explore', 'mprotect-vs-fault', '--model', 'map-shared-pt', '--bug', 'shootdown-forgets-sharers', '--json');
    expect(m.code).toBe(1);
    const mt = decodeToken(JSON.parse(m.out).token);
    expect([mt.strategy, mt.opts]).toMatchObject(['random', { procs: '2', cpus: '2', ops: '4', size: '2M' }]);
  });

  it('torture: mutual exclusion holds on the rwsem and the spinlock, and the planted broken rwsem is caught', () => {
    const ok = ptlab('torture', '--readers', '1', '--writers', '1', '--seconds', '0.3', '--json');
    expect(ok.code).toBe(0);
    const r = JSON.parse(ok.out);
    expect([r.ok, r.writes.fails, r.reads.fails]).toEqual([true, 0, 0]);
    expect(r.writes.total * r.reads.total).toBeGreaterThan(0);
    const q = JSON.parse(ptlab('torture', '--lock', 'mmap_lock/qrwlock', '--readers', '2', '--writers', '2', '--seconds', '0.5', '--json').out);
    expect([q.ok, q.writes.fails, q.reads.fails]).toEqual([true, 0, 0]);
    expect(q.writes.min * q.reads.min).toBeGreaterThan(0); // FIFO: nobody starves
    const spin = JSON.parse(ptlab('torture', '--lock', 'page_table_lock/spinlock', '--readers', '0', '--writers', '2', '--seconds', '0.3', '--json').out);
    expect([spin.ok, spin.reads, spin.writes.per_thread.length]).toEqual([true, null, 2]);
    const bad = ptlab('torture', '--readers', '2', '--writers', '1', '--seconds', '1', '--bug', 'broken-rwsem');
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/Fail: 1 !!!/);
    expect(bad.out).toMatch(/FAILED: mutual exclusion broke/);
    const inv = ptlab('torture', '--readers', '0', '--writers', '2', '--seconds', '0.3', '--bug', 'lock-inversion', '--json');
    expect(inv.code).toBe(1);
    // Which order closes the cycle depends on which thread ran first: either is the report.
    expect(JSON.parse(inv.out).lockdep).toMatch(/possible circular locking dependency: &mm->(mmap_lock taken while holding &mm->page_table_lock|page_table_lock taken while holding &mm->mmap_lock)/);
  });

  it.each([
    [['torture', '--lock', 'big/kernel-lock'], /--lock must be one of mmap_lock\/rwsem/],
    [['torture', '--lock', 'page_table_lock/spinlock', '--readers', '1'], /--readers: page_table_lock\/spinlock has no readers/],
    [['torture', '--seconds', 'soon'], /--seconds must be/],
    [['torture', '--bug', 'nope'], /--bug must be one of broken-rwsem/],
  ])('torture: bad input %j is one line naming the option, exit 2', (args, msg) => {
    const r = ptlab(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('compare --mmap-lock runs each model under each protocol, same seed; a bad protocol is bad input', () => {
    const r = ptlab('compare', 'sga', '--models', 'none,map-shared-pt', '--mmap-lock', 'rwsem,qrwlock', '--procs', '4', '--size', '4M', '--json');
    expect(r.code).toBe(0);
    const runs = JSON.parse(r.out).runs as { model: string; mmap_lock: string; ok: boolean; pgtables_bytes: { total: number } }[];
    expect(runs.map((x) => `${x.model}/${x.mmap_lock}`)).toEqual(['none/rwsem', 'none/qrwlock', 'map-shared-pt/rwsem', 'map-shared-pt/qrwlock']);
    expect(runs.every((x) => x.ok)).toBe(true);
    expect(runs[0].pgtables_bytes.total).toBe(runs[1].pgtables_bytes.total);
    const table = ptlab('compare', 'sga', '--models', 'none', '--mmap-lock', 'rwsem,qrwlock', '--procs', '2', '--size', '2M');
    expect(table.out).toMatch(/none \/ qrwlock/);
    const bad = ptlab('compare', 'sga', '--mmap-lock', 'rwsem,ticket');
    expect([bad.code, bad.err.trim()]).toEqual([2, 'ptlab: --mmap-lock must be rwsem or qrwlock']);
  });

  it('compare fault-storm --mmap-lock x --fault-lock: one run per protocol pair, faults/s over the storm, wait percentiles, fairness', () => {
    const r = ptlab('compare', 'fault-storm', '--mmap-lock', 'rwsem,qrwlock', '--fault-lock', 'mmap,per-vma', '--size', '16M', '--json');
    expect(r.code).toBe(0);
    const runs = JSON.parse(r.out).runs as {
      model: string; mmap_lock: string; fault_lock: string; ok: boolean; faults_per_s: number; vma_lock: { success: number };
      phase: { faults: number; per_task_faults_per_s: number[]; fairness: { max_over_min: number } };
      locks: { class: string; mode: string; waittime_p50: number; waittime_p99: number; holdtime_p50: number; holdtime_p99: number; acquisitions: number }[];
    }[];
    // Only the models the scenario applies to (none), under each pair, same seed.
    expect(runs.map((x) => `${x.model}/${x.mmap_lock}/${x.fault_lock}`)).toEqual(['none/rwsem/mmap', 'none/rwsem/per-vma', 'none/qrwlock/mmap', 'none/qrwlock/per-vma']);
    for (const x of runs) {
      expect(x.ok).toBe(true);
      expect(x.faults_per_s).toBeGreaterThan(0);
      expect(x.phase.per_task_faults_per_s).toHaveLength(2);
      expect(x.vma_lock.success > 0).toBe(x.fault_lock === 'per-vma');
      for (const l of x.locks) expect(l.holdtime_p99).toBeGreaterThanOrEqual(l.holdtime_p50);
    }
    const table = ptlab('compare', 'fault-storm', '--fault-lock', 'mmap,per-vma', '--size', '8M');
    expect(table.out).toMatch(/none \/ per-vma/);
    expect(table.out).toMatch(/fairness/);
    const bad = ptlab('compare', 'fault-storm', '--fault-lock', 'mmap,rcu');
    expect([bad.code, bad.err.trim()]).toEqual([2, 'ptlab: --fault-lock must be mmap or per-vma']);
    const wrong = ptlab('compare', 'fault-storm', '--models', 'map-shared-pt');
    expect(wrong.code).toBe(2);
  });

  it('run --wide prints lock_stat in /proc/lock_stat\'s layout, with p50 / p99 columns', () => {
    const r = ptlab('run', 'sga', '--procs', '2', '--size', '2M', '--wide');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/lock_stat version 0\.4/);
    expect(r.out).toMatch(/class name +contentions +waittime-min/);
    expect(r.out).toMatch(/waittime-p50 +waittime-p99 +holdtime-p50 +holdtime-p99/);
    expect(r.out).toMatch(/&mm->mmap_lock-R: +\d+/);
  });

  it('explore takes the lock protocols: mprotect-vs-fault under per-VMA locks passes controlled runs, and a found race replays with them', () => {
    const r = ptlab('explore', 'mprotect-vs-fault', '--model', 'none', '--fault-lock', 'per-vma', '--mmap-lock', 'qrwlock', '--runs', '20', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).ok).toBe(true);
    const bug = ptlab('explore', 'race-vma-lock', '--bug', 'munmap-skips-vma-write-lock', '--mmap-lock', 'qrwlock', '--runs', '300', '--json');
    expect(bug.code).toBe(1);
    const token = JSON.parse(bug.out).token as string;
    const again = ptlab('replay', token, '--json');
    expect(again.code).toBe(1);
    const rep = JSON.parse(again.out) as { mmap_lock: string; fault_lock: string; violations: { checker: string }[] };
    expect([rep.mmap_lock, rep.fault_lock]).toEqual(['qrwlock', 'per-vma']);
  });

  it('a machine past 8 GiB (31-bit word offsets) is bad input naming the option, before anything is allocated', () => {
    const r = ptlab('run', 'sga-1500', '--scale', '1/10');
    expect(r.code).toBe(2);
    expect(r.err.trim()).toMatch(/^ptlab: scenario 'sga-1500' at these options needs \d+\.\d GiB of machine memory, past ptlab's limit of 8 GiB .*--scale$/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
});
