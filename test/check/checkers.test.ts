/**
 * The checkers can fail: each is shown a machine with one planted inconsistency and must name it;
 * a clean machine must pass.
 */
import { switch_mm } from '../../src/mm/tlb.js';
import { describe, expect, it } from 'vitest';
import { F_MAPCOUNT, M_PGTABLES, T_FILE_STORES, T_STATE, TASK_EXITED, FRAME_ANON } from '../../src/shm/layout.js';
import { checkInvariants, InvariantCode } from '../../src/check/invariants.js';
import { verdict } from '../../src/check/index.js';
import { mmput } from '../../src/mm/fork.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { ACCESS_OK, mmu_store } from '../../src/mm/mmu.js';
import { alloc_frame, frameBase } from '../../src/mm/page_alloc.js';
import type { MachineRun } from '../../src/proc/orchestrator.js';
import { sys_close, sys_ftruncate, sys_memfd_create, sys_mmap } from '../../src/proc/syscalls.js';
import { runOn, testMachine, type TestMachine } from '../helpers/kernel.js';

function fakeRun(t: TestMachine): MachineRun {
  const tasks = t.m.layout.config.tasks;
  return {
    spec: { cpus: 1, config: t.m.layout.config, programs: Array.from({ length: tasks }, () => []), model: 'none', bug: '', deadlineMs: 200, lockStatTiming: false, slice: 4, runTimeoutMs: 1000 },
    machine: t.m, cpus: [], seconds: 0, cores: 2, workerErrors: [], timedOut: false,
  };
}

/** Task 0 maps a memfd, stores into 16 pages, and returns the mapping's state. */
function populated() {
  const t = testMachine();
  const k = t.cpus[0];
  const mm = runOn(k, 0);
  const fd = sys_memfd_create(k);
  sys_ftruncate(k, fd, 16 * 4096);
  const a = sys_mmap(k, 0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  for (let i = 0; i < 16; i++) expect(mmu_store(k, a + i * 4096, 1)).toBe(ACCESS_OK);
  return { t, k, mm, fd };
}

function exitAll(t: TestMachine, k: TestMachine['cpus'][0], mm: number, fd: number) {
  sys_close(k, fd);
  switch_mm(k, -1);
  mmput(k, mm);
  for (let task = 0; task < t.m.layout.config.tasks; task++) Atomics.store(t.m.i32, k.taskBase(task) + T_STATE, TASK_EXITED);
}

describe('invariants at quiescence', () => {
  it('a consistent machine has no findings', () => {
    const { t } = populated();
    expect(checkInvariants(t.m.i32, t.m.layout).findings).toEqual([]);
  });

  it('finds a frame whose map count disagrees with its PTEs', () => {
    const { t, k } = populated();
    Atomics.add(t.m.i32, frameBase(k, 0) + F_MAPCOUNT, 1);
    const f = checkInvariants(t.m.i32, t.m.layout).findings;
    expect(f.map((x) => x.code)).toContain(InvariantCode.MapCount);
  });

  it('finds pgtables_bytes that disagree with the tables the mm owns', () => {
    const { t, k, mm } = populated();
    Atomics.add(t.m.i32, k.mmBase(mm) + M_PGTABLES, 1);
    expect(checkInvariants(t.m.i32, t.m.layout).findings.map((x) => x.code)).toEqual([InvariantCode.PgtablesBytes]);
  });
});

describe('end-of-run verdict', () => {
  it('a clean exit passes', () => {
    const { t, k, mm, fd } = populated();
    exitAll(t, k, mm, fd);
    expect(verdict(fakeRun(t)).violations).toEqual([]);
  });

  it('reports a frame still allocated after every process exited as a leak', () => {
    const { t, k, mm, fd } = populated();
    exitAll(t, k, mm, fd);
    alloc_frame(k, FRAME_ANON, 0, 0, 0);
    const v = verdict(fakeRun(t)).violations;
    expect(v.map((x) => x.checker)).toContain('leak');
    expect(v.some((x) => /1 frames still allocated/.test(x.message))).toBe(true);
  });

  it('reports a store the pages never received as a lost write', () => {
    const { t, k, mm, fd } = populated();
    // The process claims one more store into the file than its pages received.
    Atomics.store(t.m.i32, k.taskBase(0) + T_FILE_STORES, 1);
    Atomics.store(t.m.i32, k.taskBase(0) + T_FILE_STORES + 2, 17);
    exitAll(t, k, mm, fd);
    const v = verdict(fakeRun(t)).violations;
    expect(v).toEqual([{ checker: 'lost-write', message: 'processes stored 17 into file #1, but its pages held 16 when it was freed' }]);
  });
});
