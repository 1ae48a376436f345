import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { G_STOP, G_STOP_CLASS, G_STOP_CPU, G_STOP_HOLDER, StopReason } from '../../src/shm/layout.js';
import { createMachine } from '../../src/shm/machine.js';
import { LockClass } from '../../src/sync/lockdep.js';
import { LS_ACQ, LS_CON, LS_FIELDS } from '../../src/sync/lock_stat.js';
import { refcount_dec_and_test, refcount_inc_not_zero, REFCOUNT_UNDERFLOW, REFCOUNT_ZERO } from '../../src/sync/refcount.js';
import { down_read, down_read_trylock, down_write, down_write_trylock, rwsem_handoff_bits, rwsem_handoff_cpu, up_read, up_write } from '../../src/sync/rwsem.js';
import { QR_CNTS, QR_NEXT, QR_OWNER, queued_read_lock, queued_read_unlock, queued_write_lock, queued_write_unlock } from '../../src/sync/qrwlock.js';
import { read_seqcount_begin, read_seqcount_retry, write_seqcount_begin, write_seqcount_end } from '../../src/sync/seqcount.js';
import { spin_lock, spin_owner, spin_trylock, spin_unlock } from '../../src/sync/spinlock.js';
import { LockCpu, MachineStop } from '../../src/sync/wait.js';
import { sizeMachine } from '../../src/scenarios/common.js';

function machine(cpus = 2) {
  const config = sizeMachine({ cpus, procs: 1, sharedBytes: 4096, privateBytes: 0, files: 1, vmasPerProc: 1, mem: 2 ** 30 });
  return { config, m: createMachine(config) };
}
// Free words for the tests: the page-cache ledger is unused here.
const word = (m: ReturnType<typeof machine>['m'], i: number) => m.layout.fileLedger + 16 * i;

describe('locks on one thread', () => {
  it('spinlock: exclusive, owner recorded, trylock fails while held, lock_stat counts', () => {
    const { m } = machine();
    const c0 = new LockCpu(m.i32, m.layout, 0, { spinLimit: 10, deadlineMs: 100, lockStatTiming: true });
    const w = word(m, 0);
    spin_lock(c0, w, LockClass.Test);
    expect(spin_owner(m.i32, w)).toBe(0);
    expect(c0.holds(w)).toBe(true);
    const c1 = new LockCpu(m.i32, m.layout, 1, { spinLimit: 10, deadlineMs: 100, lockStatTiming: true });
    expect(spin_trylock(c1, w, LockClass.Test)).toBe(false);
    spin_unlock(c0, w);
    expect(spin_owner(m.i32, w)).toBe(-1);
    expect(c0.holds(w)).toBe(false);
    expect(spin_trylock(c1, w, LockClass.Test)).toBe(true);
    expect(c0.lockStats[LockClass.Test * 2 * LS_FIELDS + LS_ACQ]).toBe(1);
  });

  it('rwsem handoff: once a waiter holds the next turn, no reader, writer or trylock gets in before it; it takes the lock and the handoff ends', () => {
    const { m } = machine(3);
    const c = [0, 1, 2].map((i) => new LockCpu(m.i32, m.layout, i, { spinLimit: 10, deadlineMs: 100, lockStatTiming: false }));
    const sem = word(m, 3);
    down_read(c[0], sem, LockClass.Test);
    Atomics.or(m.i32, sem, rwsem_handoff_bits(1)); // what CPU 1's set_handoff does after RWSEM_WAIT_TIMEOUT
    expect(rwsem_handoff_cpu(m.i32, sem)).toBe(1);
    expect(down_read_trylock(c[2], sem, LockClass.Test)).toBe(false);
    up_read(c[0], sem);
    expect(down_write_trylock(c[2], sem, LockClass.Test)).toBe(false);
    expect(down_read_trylock(c[2], sem, LockClass.Test)).toBe(false);
    down_write(c[1], sem, LockClass.Test); // free, and handed to CPU 1: taken at once
    expect(rwsem_handoff_cpu(m.i32, sem)).toBe(-1);
    expect(down_read_trylock(c[2], sem, LockClass.Test)).toBe(false);
    up_write(c[1], sem);
    expect(down_read_trylock(c[2], sem, LockClass.Test)).toBe(true);
  });

  it('rwsem: readers share, a writer excludes, a waiting writer holds off new readers', () => {
    const { m } = machine();
    const c = new LockCpu(m.i32, m.layout, 0, { spinLimit: 10, deadlineMs: 100, lockStatTiming: false });
    const sem = word(m, 1);
    down_read(c, sem, LockClass.Test);
    expect(down_read_trylock(c, sem, LockClass.Test)).toBe(true);
    expect(down_write_trylock(c, sem, LockClass.Test)).toBe(false);
    up_read(c, sem);
    up_read(c, sem);
    down_write(c, sem, LockClass.Test);
    expect(down_read_trylock(c, sem, LockClass.Test)).toBe(false);
    up_write(c, sem);
    expect(down_read_trylock(c, sem, LockClass.Test)).toBe(true);
    up_read(c, sem);
  });

  it('seqcount: a reader inside a write section retries', () => {
    const { m } = machine();
    const s = word(m, 2);
    const start = read_seqcount_begin(m.i32, s);
    expect(read_seqcount_retry(m.i32, s, start)).toBe(false);
    write_seqcount_begin(m.i32, s);
    expect(read_seqcount_retry(m.i32, s, start)).toBe(true);
    expect(read_seqcount_retry(m.i32, s, read_seqcount_begin(m.i32, s))).toBe(true);
    write_seqcount_end(m.i32, s);
    expect(read_seqcount_retry(m.i32, s, read_seqcount_begin(m.i32, s))).toBe(false);
  });

  it('refcount: no increment from zero, underflow is reported', () => {
    const { m } = machine();
    const r = word(m, 3);
    expect(refcount_inc_not_zero(m.i32, r)).toBe(false);
    Atomics.store(m.i32, r, 1);
    expect(refcount_inc_not_zero(m.i32, r)).toBe(true);
    refcount_dec_and_test(m.i32, r);
    expect(refcount_dec_and_test(m.i32, r)).toBe(REFCOUNT_ZERO);
    expect(refcount_dec_and_test(m.i32, r)).toBe(REFCOUNT_UNDERFLOW);
  });

  it('qrwlock: readers share, a writer excludes readers (a waiting reader queues, then hits the deadline)', () => {
    const { m } = machine();
    const a = new LockCpu(m.i32, m.layout, 1, { spinLimit: 10, deadlineMs: 30, lockStatTiming: false });
    const b = new LockCpu(m.i32, m.layout, 0, { spinLimit: 10, deadlineMs: 30, lockStatTiming: false });
    const q = word(m, 6);
    queued_read_lock(a, q, LockClass.Test);
    queued_read_lock(b, q, LockClass.Test);
    expect(Atomics.load(m.i32, q + QR_CNTS)).toBe(2 << 9);
    queued_read_unlock(a, q);
    queued_read_unlock(b, q);
    queued_write_lock(a, q, LockClass.Test);
    expect(Atomics.load(m.i32, q + QR_CNTS)).toBe(0xff);
    queued_write_unlock(a, q);
    expect([Atomics.load(m.i32, q + QR_CNTS), Atomics.load(m.i32, q + QR_NEXT), Atomics.load(m.i32, q + QR_OWNER)]).toEqual([0, 0, 0]);
    queued_write_lock(a, q, LockClass.Test);
    expect(() => queued_read_lock(b, q, LockClass.Test)).toThrow(MachineStop);
    expect(Atomics.load(m.i32, q + QR_NEXT)).toBe(1); // it had queued on wait_lock
  });

  it('lockdep: an order seen both ways is a cycle, reported with both chains; a trylock adds no dependency', () => {
    const { m } = machine();
    const c = new LockCpu(m.i32, m.layout, 0, { spinLimit: 10, deadlineMs: 30, lockStatTiming: false });
    const cycles: number[][] = [];
    c.lockdepReport = (from, to, path) => cycles.push([from, to, ...path]);
    const [a, b, t] = [word(m, 7), word(m, 8), word(m, 9)];
    spin_lock(c, a, LockClass.MmapLock);
    spin_lock(c, b, LockClass.PageTableLock); // mmap_lock -> page_table_lock
    spin_unlock(c, b);
    spin_unlock(c, a);
    spin_lock(c, b, LockClass.PageTableLock);
    expect(spin_trylock(c, t, LockClass.XaLock)).toBe(true); // no page_table_lock -> xa_lock edge
    spin_unlock(c, t);
    expect(cycles).toEqual([]);
    spin_lock(c, a, LockClass.MmapLock); // page_table_lock -> mmap_lock closes the cycle
    expect(cycles).toEqual([[LockClass.PageTableLock, LockClass.MmapLock, LockClass.MmapLock, LockClass.PageTableLock]]);
    spin_unlock(c, a);
    spin_unlock(c, b);
    spin_lock(c, a, LockClass.XaLock);
    spin_lock(c, b, LockClass.PageTableLock); // xa_lock -> page_table_lock: new, no cycle (the trylock left no edge)
    expect(cycles).toHaveLength(1);
  });

  it('a wait past its deadline stops the machine with a watchdog report naming waiter and holder', () => {
    const { m } = machine();
    const holder = new LockCpu(m.i32, m.layout, 1, { spinLimit: 10, deadlineMs: 30, lockStatTiming: false });
    const waiter = new LockCpu(m.i32, m.layout, 0, { spinLimit: 10, deadlineMs: 30, lockStatTiming: false });
    const w = word(m, 4);
    spin_lock(holder, w, LockClass.PageTableLock);
    expect(() => spin_lock(waiter, w, LockClass.PageTableLock)).toThrow(MachineStop);
    expect(Atomics.load(m.i32, G_STOP)).toBe(StopReason.Watchdog);
    expect(Atomics.load(m.i32, G_STOP_CPU)).toBe(0);
    expect(Atomics.load(m.i32, G_STOP_HOLDER)).toBe(1);
    expect(Atomics.load(m.i32, G_STOP_CLASS)).toBe(LockClass.PageTableLock);
    // Every other waiter now stops too, instead of waiting out its own deadline.
    const sem = word(m, 5);
    down_write(holder, sem, LockClass.Test);
    expect(() => down_read(waiter, sem, LockClass.Test)).toThrow(MachineStop);
  });
});

function hammer(kind: 'spin' | 'rwsem', threads: number, iterations: number) {
  const { config, m } = machine(threads);
  const lockWord = word(m, 0);
  const counterWord = word(m, 1);
  const inWriterWord = word(m, 2);
  const url = new URL('../../dist/test/lock_worker.mjs', import.meta.url);
  return Promise.all(
    Array.from({ length: threads }, (_, cpu) => new Promise<{ readerSawWriter: number; reads: number; lockStats: number[] }>((resolve, reject) => {
      const w = new Worker(url, { workerData: { sab: m.sab, config, cpu, iterations, kind, lockWord, counterWord, inWriterWord } });
      w.once('message', resolve);
      w.once('error', reject);
    })),
  ).then((rs) => ({ rs, counter: Atomics.load(m.i32, counterWord) }));
}

describe('locks across worker threads', () => {
  it('a spinlock loses no update of a two-step read-modify-write', async () => {
    const { rs, counter } = await hammer('spin', 2, 100_000);
    expect(counter).toBe(200_000);
    const acq = rs.reduce((s, r) => s + r.lockStats[LockClass.Test * 2 * LS_FIELDS + LS_ACQ], 0);
    expect(acq).toBe(200_000);
    console.log(`spinlock contentions: ${rs.reduce((s, r) => s + r.lockStats[LockClass.Test * 2 * LS_FIELDS + LS_CON], 0)}`);
  });

  it('an rwsem never lets a reader in with a writer, nor two writers together', async () => {
    const { rs, counter } = await hammer('rwsem', 3, 40_000);
    expect(counter).toBe(3 * 10_000);
    expect(rs.reduce((s, r) => s + r.readerSawWriter, 0)).toBe(0);
    expect(rs.reduce((s, r) => s + r.reads, 0)).toBe(3 * 30_000);
  });
});
