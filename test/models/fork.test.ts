/**
 * fork under every sharing model (issue "Sharing under fire", item 1): the child of a process
 * that maps a shared segment the model's way reads the parent's data, its stores reach the
 * parent, and its exit leaves the parent's mapping whole — as under none, whatever the model does
 * with the tables (pt-hint shares the parent's, the host-mm models keep the child a guest).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunOptions } from '../../src/cli/options.js';
import { runScenario } from '../../src/cli/run.js';
import { MODELS } from '../../src/models/index.js';
import type { Op } from '../../src/proc/program.js';
import { mapSharedSegment } from '../../src/scenarios/common.js';

const SIZE = 2 * 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'ptlab-fork-'));

function forkProgram(model: string): string {
  const prog: Op[] = mapSharedSegment(0, '/fk', SIZE, 'm', model);
  prog.push(
    { op: 'touch', region: 'm', len: SIZE, stride: 65536, write: true, value: 7 },
    {
      op: 'fork', as: 'kid', child: [
        { op: 'load', region: 'm', offset: 65536, value: 7 },
        { op: 'store', region: 'm', offset: 131072, value: 9 },
        { op: 'exit', code: 5 },
      ],
    },
    { op: 'wait', pid: 'kid', status: 5 },
    { op: 'load', region: 'm', offset: 131072, value: 9 },
    { op: 'load', region: 'm', offset: 0, value: 7 },
    { op: 'shm_unlink', name: '/fk' },
  );
  // The recipes' own barriers (mshare's 6, container-fd's 5): one process passes them alone.
  const file = join(dir, `${model}.json`);
  writeFileSync(file, JSON.stringify({ summary: `fork under ${model}`, programs: [prog] }));
  return file;
}

describe('fork under every model', () => {
  for (const model of Object.keys(MODELS)) {
    it(`${model}: the child sees the parent's data, its stores reach the parent, every checker passes`, async () => {
      const file = forkProgram(model);
      const r = await runScenario(file, parseRunOptions(file, { model, lockset: true, lockStat: false }));
      expect(r.violations).toEqual([]);
      expect(r.forks).toBe(1);
    });
  }
});

describe('uffd-wp after fork (can_change_pte_writable)', () => {
  it('resolving a marker leaves an anonymous page the child still maps read-only: the parent\'s store is its own', async () => {
    const prog: Op[] = [
      { op: 'mmap', len: 4096, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_PRIVATE', 'MAP_ANONYMOUS'], as: 'a' },
      { op: 'store', region: 'a', value: 7 },
      { op: 'uffd_register', region: 'a', len: 4096 },
      { op: 'uffd_wp', region: 'a', len: 4096, protect: true },
      {
        op: 'fork', as: 'kid', child: [
          { op: 'barrier', id: 1, count: 2 },
          { op: 'load', region: 'a', value: 7 },
          { op: 'exit', code: 0 },
        ],
      },
      // The page is shared copy-on-write with the child now: unprotecting must not make it writable.
      { op: 'uffd_wp', region: 'a', len: 4096, protect: false },
      { op: 'store', region: 'a', value: 9 },
      { op: 'barrier', id: 1, count: 2 },
      { op: 'wait', pid: 'kid', status: 0 },
      { op: 'load', region: 'a', value: 9 },
    ];
    const file = join(dir, 'uffd-fork.json');
    writeFileSync(file, JSON.stringify({ summary: 'uffd-wp unprotect after fork', programs: [prog] }));
    const r = await runScenario(file, parseRunOptions(file, { model: 'none', lockStat: false }));
    expect(r.violations).toEqual([]);
  });
});
