/**
 * Kernel contexts on the test's own thread: a machine, one Kernel per simulated CPU, tasks
 * with mms. Lets unit tests drive syscalls and the MMU step by step, deterministically. (Several
 * CPUs on one thread cannot wait for each other: a shootdown that needs another CPU's ack would
 * run into the watchdog, so such tests use one CPU, or a model bug that sends no IPI.)
 */
import { switch_mm } from '../../src/mm/tlb.js';
import { T_MM, T_MM_GEN } from '../../src/shm/layout.js';
import { createMachine, type Machine } from '../../src/shm/machine.js';
import { mm_alloc, mm_gen } from '../../src/mm/fork.js';
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
    const k = new Kernel(m.i32, m.layout, c, { spinLimit: 0, deadlineMs: 200, lockStatTiming: false, bug, ...opts.kernel });
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
