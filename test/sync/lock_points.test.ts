/**
 * lock_stat's contention and contending points (src/sync/wait.ts, after lockdep.c
 * __lock_contended and lock_point): recorded on the contended path only, before the wait (so no
 * hold is lengthened), with lock_stat timing only, naming the first function outside the lock layer; LOCKSTAT_POINTS sites a slot; merged
 * across CPUs (lock_stat.ts) to the most counted.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/shm/machine.js';
import { sizeMachine } from '../../src/scenarios/common.js';
import { LockClass, LockMode } from '../../src/sync/lockdep.js';
import { lockStatRows, LOCKSTAT_POINTS, LS_CON, LS_FIELDS, mergeLockPoints, mergeLockStats, newLockPointMerge, newLockStats } from '../../src/sync/lock_stat.js';
import { down_read, rwsem_handoff_bits, up_read } from '../../src/sync/rwsem.js';
import { spin_lock, spin_unlock } from '../../src/sync/spinlock.js';
import { LockCpu } from '../../src/sync/wait.js';
import { LOCK_API, type LockProtocol, plugin_read_lock, plugin_read_unlock, plugin_write_lock, plugin_write_unlock } from '../../src/sync/lock_plugin.js';

function setup(timing = true) {
  const config = sizeMachine({ cpus: 2, procs: 1, sharedBytes: 4096, privateBytes: 0, files: 1, vmasPerProc: 1, mem: 2 ** 30 });
  const m = createMachine(config);
  const c = new LockCpu(m.i32, m.layout, 0, { spinLimit: 10, deadlineMs: 1000, lockStatTiming: timing });
  return { m, c, w: m.layout.fileLedger };
}

const slot = (cls: LockClass, mode: LockMode) => cls * 2 + mode;

// Named as the kernel callers they stand for: the site is the caller of the lock function.
function do_mprotect_pkey(c: LockCpu, w: number): void {
  // A contended down_read on one thread: the lock is handed off to this CPU (RWSEM_FLAG_HANDOFF),
  // so the fast path fails and the slow path takes it at once.
  Atomics.store(c.i32, w, rwsem_handoff_bits(0));
  down_read(c, w, LockClass.MmapLock);
  up_read(c, w);
}
function zap_pte_range(c: LockCpu, w: number): void {
  spin_lock(c, w, LockClass.Ptl);
  Atomics.or(c.i32, w, 1 << 30); // SPIN_SLEEPER: a waiter went to sleep on this hold
  spin_unlock(c, w);
}

describe('lock_stat points', () => {
  it('a contended acquisition counts its caller as a contention point; an uncontended one counts nothing', () => {
    const { c, w } = setup();
    do_mprotect_pkey(c, w);
    do_mprotect_pkey(c, w);
    down_read(c, w, LockClass.MmapLock); // fast path
    up_read(c, w);
    const p = c.lockPoints();
    expect(p.contention).toEqual([[slot(LockClass.MmapLock, LockMode.Read), 'do_mprotect_pkey', 2]]);
    expect(p.contending).toEqual([]);
  });

  it('an unlock that finds a sleeper counts its caller as a contending point of the class it released', () => {
    const { c, w } = setup();
    zap_pte_range(c, w);
    spin_lock(c, w, LockClass.Ptl);
    spin_unlock(c, w); // nobody waited
    expect(c.lockPoints()).toEqual({ contention: [], contending: [[slot(LockClass.Ptl, LockMode.Write), 'zap_pte_range', 1]] });
  });

  it('a lock plugin\'s wait: the site is the caller of its wrapper, whatever the plugin\'s own functions are called', () => {
    const { c, w } = setup();
    // A protocol that waits once (a spin step: it returns at once) through api.wait, from a helper of its own.
    function fetch_ticket_helper(cpu: LockCpu, l: number) {
      LOCK_API.wait(cpu, l, Atomics.load(cpu.i32, l), 0);
    }
    const p: LockProtocol = { name: 'x', words: 1, read_lock: fetch_ticket_helper, read_unlock() {}, write_lock() {}, write_unlock: () => true };
    function do_madvise(cpu: LockCpu) {
      plugin_read_lock(cpu, p, w, LockClass.MmapLock);
    }
    function exit_mmap(cpu: LockCpu) {
      plugin_write_lock(cpu, p, w, LockClass.MmapLock); // no wait: no contention point
      plugin_write_unlock(cpu, p, w); // returns true: a waiter was seen
    }
    do_madvise(c);
    plugin_read_unlock(c, p, w);
    exit_mmap(c);
    expect(c.lockPoints()).toEqual({
      contention: [[slot(LockClass.MmapLock, LockMode.Read), 'do_madvise', 1]],
      contending: [[slot(LockClass.MmapLock, LockMode.Write), 'exit_mmap', 1]],
    });
    expect(c.lockStats[slot(LockClass.MmapLock, LockMode.Read) * LS_FIELDS + LS_CON]).toBe(1);
  });

  it('nothing is recorded without lock_stat timing (--no-lock-stat)', () => {
    const { c, w } = setup(false);
    do_mprotect_pkey(c, w);
    zap_pte_range(c, w);
    expect(c.lockPoints()).toEqual({ contention: [], contending: [] });
  });

  it('lock_point: a slot keeps its first LOCKSTAT_POINTS sites; echo 0 > /proc/lock_stat clears them', () => {
    const { c } = setup();
    const sites = ['handle_mm_fault', 'do_munmap', 'do_madvise', 'do_mremap', 'do_mlock', 'do_msync'];
    for (const name of sites) {
      // Each site waits twice (__lock_contended: counted before the wait).
      const f = { [name]: () => c.contended(LockClass.MmapLock, LockMode.Write) }[name];
      f();
      f();
    }
    expect(LOCKSTAT_POINTS).toBe(4);
    expect(c.lockPoints().contention).toEqual(sites.slice(0, 4).map((s) => [slot(LockClass.MmapLock, LockMode.Write), s, 2]));
    c.clearLockStats();
    expect(c.lockPoints().contention).toEqual([]);
  });

  it('the orchestrator sums CPUs\' tables per site and reports the most counted on the class\'s row', () => {
    const into = newLockPointMerge();
    const s = slot(LockClass.MmapLock, LockMode.Read);
    mergeLockPoints(into, { contention: [[s, 'handle_mm_fault', 5], [s, 'a', 1], [s, 'b', 1]], contending: [[s, 'do_mprotect_pkey', 2]] });
    mergeLockPoints(into, { contention: [[s, 'handle_mm_fault', 3], [s, 'c', 2], [s, 'd', 4]], contending: [] });
    const ls = newLockStats();
    const one = newLockStats();
    one[s * 8] = 20; // LS_ACQ
    one[s * 8 + 1] = 16; // LS_CON
    mergeLockStats(ls, one);
    const [row] = lockStatRows(ls, [], [], into);
    expect(row.contention_points).toEqual([{ site: 'handle_mm_fault', count: 8 }, { site: 'd', count: 4 }, { site: 'c', count: 2 }, { site: 'a', count: 1 }]);
    expect(row.contending_points).toEqual([{ site: 'do_mprotect_pkey', count: 2 }]);
  });
});
