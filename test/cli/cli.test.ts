/** The command as a user meets it: exit codes, one-line errors, JSON on stdout. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function ptlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('ptlab', () => {
  it.each([
    [['run', 'sga', '--procs', '-1'], /--procs must be a positive integer/],
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

  it('list names every scenario and model', () => {
    const r = ptlab('list', '--json');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o.scenarios.map((s: { name: string }) => s.name)).toEqual(['sga', 'exit-vs-fault', 'mprotect-vs-fault']);
    expect(o.models.map((m: { name: string }) => m.name)).toEqual(['none', 'map-shared-pt']);
  });
});
