/**
 * A worker for multi-thread lock tests (built to dist/test/lock_worker.mjs by the test setup):
 * hammers one lock with a read-modify-write made of two separate atomics, which loses updates
 * unless the lock really excludes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createMachine, attachMachine } from '../../src/shm/machine.js';
import { LockClass } from '../../src/sync/lockdep.js';
import { down_read, down_write, up_read, up_write } from '../../src/sync/rwsem.js';
import { spin_lock, spin_unlock } from '../../src/sync/spinlock.js';
import { LockCpu } from '../../src/sync/wait.js';

void createMachine;
const { sab, config, cpu, iterations, kind, lockWord, counterWord, inWriterWord } = workerData as {
  sab: SharedArrayBuffer; config: Parameters<typeof attachMachine>[1]; cpu: number; iterations: number;
  kind: 'spin' | 'rwsem'; lockWord: number; counterWord: number; inWriterWord: number;
};
const m = attachMachine(sab, config);
const c = new LockCpu(m.i32, m.layout, cpu, { spinLimit: 200, deadlineMs: 10_000, lockStatTiming: true });
const i32 = m.i32;
let readerSawWriter = 0;
let reads = 0;
for (let i = 0; i < iterations; i++) {
  if (kind === 'spin') {
    spin_lock(c, lockWord, LockClass.Test);
    Atomics.store(i32, counterWord, Atomics.load(i32, counterWord) + 1);
    spin_unlock(c, lockWord);
  } else if (i % 4 === 0) {
    down_write(c, lockWord, LockClass.Test);
    Atomics.store(i32, inWriterWord, 1);
    Atomics.store(i32, counterWord, Atomics.load(i32, counterWord) + 1);
    Atomics.store(i32, inWriterWord, 0);
    up_write(c, lockWord);
  } else {
    down_read(c, lockWord, LockClass.Test);
    if (Atomics.load(i32, inWriterWord) !== 0) readerSawWriter++;
    reads++;
    up_read(c, lockWord);
  }
}
parentPort!.postMessage({ readerSawWriter, reads, lockStats: Array.from(c.lockStats) });
