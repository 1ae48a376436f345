/**
 * What a schedule point costs when no scheduler is installed: the minor-fault loop of
 * minor_fault.ts, on one CPU driven from this thread, with `k.sched` null (free mode, one branch
 * per point) and with a scheduler whose point() does nothing (the branch taken and a call made).
 * A fault passes about ten points (lock acquires and releases, fault:after-walk,
 * fault:before-pte-install); the ratio of the two rates bounds what the points cost.
 */
import { createMachine } from '../src/shm/machine.js';
import { mm_alloc } from '../src/mm/fork.js';
import { Kernel } from '../src/mm/percpu.js';
import { mmu_store } from '../src/mm/mmu.js';
import { switch_mm } from '../src/mm/tlb.js';
import { MODELS } from '../src/models/index.js';
import { initTasks } from '../src/proc/orchestrator.js';
import { sys_ftruncate, sys_memfd_create, sys_mmap, sys_munmap } from '../src/proc/syscalls.js';
import { sizeMachine } from '../src/scenarios/common.js';
import type { Scheduler } from '../src/sync/schedpoint.js';
import { BENCH_MEM, cores, MiB, PAGE, type BenchRecord } from './common.js';

const noop: Scheduler = { start() {}, point() {}, wait() {}, done() {} };

function faultRate(installed: boolean, rounds: number, bytes: number): { faults: number; seconds: number } {
  const config = sizeMachine({ cpus: 1, procs: 1, sharedBytes: bytes, privateBytes: 0, files: 1, vmasPerProc: 2, mem: BENCH_MEM });
  const m = createMachine(config);
  initTasks(m, 1);
  const k = new Kernel(m.i32, m.layout, 0, { spinLimit: 100, deadlineMs: 20_000, lockStatTiming: false, bug: '' });
  k.model = MODELS.none.create('');
  k.task = 0;
  k.taskOff = k.taskBase(0);
  const mm = mm_alloc(k, 0, 0);
  Atomics.store(m.i32, k.taskOff + 3 /* T_MM */, mm);
  switch_mm(k, mm);
  const fd = sys_memfd_create(k);
  sys_ftruncate(k, fd, bytes);
  let a = sys_mmap(k, 0, bytes, 3, 1, fd, 0);
  for (let off = 0; off < bytes; off += PAGE) mmu_store(k, a + off, 1); // populate the page cache
  sys_munmap(k, a, bytes);
  k.sched = installed ? noop : null;
  let faults = 0;
  let ms = 0;
  for (let r = 0; r < rounds; r++) {
    a = sys_mmap(k, 0, bytes, 3, 1, fd, 0);
    const t0 = performance.now();
    for (let off = 0; off < bytes; off += PAGE) mmu_store(k, a + off, 1);
    ms += performance.now() - t0;
    faults += bytes / PAGE;
    sys_munmap(k, a, bytes);
  }
  return { faults, seconds: ms / 1000 };
}

export const SCHED_POINT_DEFAULTS = { rounds: 120, bytes: 8 * MiB };

export async function benchSchedPoint(o: { installed: boolean; rounds: number; bytes: number }): Promise<BenchRecord> {
  const r = faultRate(o.installed, o.rounds, o.bytes);
  return {
    bench: 'sched-point',
    model: 'none',
    threads: 1,
    ops: r.faults,
    seconds: Math.round(r.seconds * 1e4) / 1e4,
    rate_per_s: Math.round(r.faults / r.seconds),
    cores: cores(),
    scheduler: o.installed ? 'a no-op scheduler installed (branch taken, call made)' : 'none (free mode: one branch per point)',
  };
}
