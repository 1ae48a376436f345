/**
 * Kernel contexts on the test's own thread: a machine, one Kernel per simulated CPU, tasks
 * with mms. Lets unit tests drive syscalls and the MMU step by step, deterministically. (Several
 * CPUs on one thread cannot wait for each other: a shootdown that needs another CPU's ack would
 * run into the watchdog, so such tests use one CPU, or a model bug that sends no IPI.)
 */
import { switch_mm } from '../../src/mm/tlb.js';
import { FL_PRIV, MAX_FDS, T_FD, T_MM, T_MM_GEN } from '../../src/shm/layout.js';
import { expect } from 'vitest';
import { FD_BASE, fdget } from '../../src/mm/fdtable.js';
import { fileBase } from '../../src/mm/filemap.js';
import { ACCESS_OK, mmu_load, mmu_store } from '../../src/mm/mmu.js';
import { sys_close, sys_ftruncate, sys_madvise, sys_memfd_create, sys_mmap, sys_shm_open } from '../../src/proc/syscalls.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { createMachine, type Machine } from '../../src/shm/machine.js';
import { mm_alloc, mm_gen, mmput } from '../../src/mm/fork.js';
import { Kernel, type KernelOptions } from '../../src/mm/percpu.js';
import { MODELS } from '../../src/models/index.js';
import { initTasks } from '../../src/proc/orchestrator.js';
import { sizeMachine } from '../../src/scenarios/common.js';

export interface TestMachine {
  m: Machine;
  cpus: Kernel[];
}

export function testMachine(model = 'none', bug = '', opts: { cpus?: number; tasks?: number; mem?: number; kernel?: Partial<KernelOptions> } = {}): TestMachine {
  const cpus = opts.cpus ?? 1;
  const tasks = opts.tasks ?? 2;
  const config = sizeMachine({ cpus, procs: tasks, sharedBytes: 16 * 1024 * 1024, privateBytes: 4 * 1024 * 1024, files: 2, vmasPerProc: 8, mem: opts.mem ?? 2 ** 30 });
  config.uffdPages = 4096; // uffd-wp's snapshot side array: the 16 MiB of shared memory
  const m = createMachine(config);
  initTasks(m, tasks);
  const ks = Array.from({ length: cpus }, (_, c) => {
    const k = new Kernel(m.i32, m.layout, c, { spinLimit: 0, deadlineMs: 200, lockStatTiming: false, bug, lockset: true, ...opts.kernel });
    k.model = MODELS[model].create(bug);
    return k;
  });
  return { m, cpus: ks };
}

/** Makes `k` run task `t` (creating its mm on first use), as the CPU loop does. */
export function runOn(k: Kernel, t: number): number {
  const to = k.taskBase(t);
  let mm = Atomics.load(k.i32, to + T_MM);
  if (mm < 0) {
    mm = mm_alloc(k, t, 0);
    Atomics.store(k.i32, to + T_MM, mm);
    Atomics.store(k.i32, to + T_MM_GEN, mm_gen(k, mm));
  }
  k.task = t;
  k.taskOff = to;
  if (k.mm !== mm) switch_mm(k, mm);
  return mm;
}

/** memfd_create + ftruncate: an fd for `size` bytes of shmem. */
export function memfd(k: Kernel, size: number): number {
  const fd = sys_memfd_create(k);
  expect(fd).toBeGreaterThanOrEqual(FD_BASE);
  expect(sys_ftruncate(k, fd, size)).toBe(0);
  return fd;
}

/** A load or store (of `value`) on each page of [a, a + len): ACCESS_OK, or the first other outcome. */
export function touchPages(k: Kernel, a: number, len: number, write: boolean, value = 1): number {
  for (let off = 0; off < len; off += 4096) {
    const r = write ? mmu_store(k, a + off, value) : mmu_load(k, a + off);
    if (r !== ACCESS_OK) return r;
  }
  return ACCESS_OK;
}

/** The host mm of the model file open as `fd` (its FL_PRIV). */
export function hostOf(k: Kernel, fd: number): number {
  return Atomics.load(k.i32, fileBase(k, fdget(k, fd)) + FL_PRIV) - 1;
}

/** The running task exits: its fds close, its mm is unloaded and dropped. */
export function exitTask(k: Kernel): void {
  for (let i = 0; i < MAX_FDS; i++) if (Atomics.load(k.i32, k.taskOff + T_FD + 2 * i) >= 0) sys_close(k, FD_BASE + i);
  const mm = Atomics.load(k.i32, k.taskOff + T_MM);
  switch_mm(k, -1);
  mmput(k, mm);
}

/** Task `t` maps the 2 MiB shmem file `name` MAP_SHARED at `addr` (task 0 creates it), with pt-hint's MADV_SHARE_PT when `hint`; returns the fd. */
export function mapSharedFile(k: Kernel, t: number, name: string, addr: number, hint: boolean): number {
  runOn(k, t);
  const fd = sys_shm_open(k, name, t === 0, false);
  if (t === 0) expect(sys_ftruncate(k, fd, 2 * 1024 * 1024)).toBe(0);
  expect(sys_mmap(k, addr, 2 * 1024 * 1024, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0)).toBe(addr);
  if (hint) expect(sys_madvise(k, addr, 2 * 1024 * 1024, 'MADV_SHARE_PT')).toBe(0);
  return fd;
}

/** Three tasks map `name` at `addr`; task 0 stores 10 + page into the first `pages` pages, tasks 1 and 2 load them. */
export function threeSharers(k: Kernel, name: string, addr: number, pages: number, hint: boolean): void {
  for (let p = 0; p < 3; p++) {
    mapSharedFile(k, p, name, addr, hint);
    for (let i = 0; i < pages; i++) {
      if (p === 0) expect(mmu_store(k, addr + i * 4096, 10 + i)).toBe(ACCESS_OK);
      else expect(mmu_load(k, addr + i * 4096)).toBe(ACCESS_OK);
    }
  }
}
