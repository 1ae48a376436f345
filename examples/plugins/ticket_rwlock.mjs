// An example lock plugin: `ptlab run sga --mmap-lock ./examples/plugins/ticket_rwlock.mjs`,
// `ptlab torture --lock mmap_lock/./examples/plugins/ticket_rwlock.mjs`.
//
// A ticket reader-writer lock, fair in arrival order (a writer waits for the readers ahead of it
// to leave, readers behind a writer wait for it; consecutive readers share the lock). Three words
// of machine memory, all zero when the lock is made (zero is free):
//   NEXT     the next ticket to hand out
//   SERVING  the ticket whose turn it is
//   READERS  readers inside
// A reader takes a ticket, waits for its turn, enters and passes the turn on at once; a writer
// takes a ticket, waits for its turn, then for the readers inside to leave, and passes the turn
// on when it unlocks. Every wait goes through api.wait: bounded by the run's deadline (the
// watchdog), spinning first, then sleeping, and in controlled mode a point where another CPU runs.
//
// The module's default export is a factory: ptlab calls it with its lock API (api.wait, api.wake,
// api.WORDS_MAX) and takes the protocol it returns. cpu.i32 is the machine's memory, `lock` the
// word offset of the lock's first word; unlock functions return true when they saw a waiter
// (lock_stat's contending point).
const NEXT = 0;
const SERVING = 1;
const READERS = 2;

export default function ticketRwlock(api) {
  /** Waits, boundedly, until i32[word] === want. */
  function waitFor(cpu, word, want) {
    for (let iter = 0; ; iter++) {
      const v = Atomics.load(cpu.i32, word);
      if (v === want) return;
      api.wait(cpu, word, v, iter);
    }
  }
  /** Someone holds a ticket after the one being served. */
  const queued = (i32, lock) => Atomics.load(i32, lock + NEXT) !== Atomics.load(i32, lock + SERVING);

  return {
    name: 'ticket-rwlock',
    words: 3,
    read_lock(cpu, lock) {
      const ticket = Atomics.add(cpu.i32, lock + NEXT, 1);
      waitFor(cpu, lock + SERVING, ticket);
      Atomics.add(cpu.i32, lock + READERS, 1);
      // The next ticket's turn: another reader enters beside this one, a writer waits for READERS.
      Atomics.add(cpu.i32, lock + SERVING, 1);
      api.wake(cpu, lock + SERVING);
    },
    read_unlock(cpu, lock) {
      if (Atomics.sub(cpu.i32, lock + READERS, 1) === 1) api.wake(cpu, lock + READERS);
      return queued(cpu.i32, lock);
    },
    write_lock(cpu, lock) {
      const ticket = Atomics.add(cpu.i32, lock + NEXT, 1);
      waitFor(cpu, lock + SERVING, ticket);
      waitFor(cpu, lock + READERS, 0);
    },
    write_unlock(cpu, lock) {
      const waiters = Atomics.load(cpu.i32, lock + NEXT) !== Atomics.load(cpu.i32, lock + SERVING) + 1;
      Atomics.add(cpu.i32, lock + SERVING, 1);
      api.wake(cpu, lock + SERVING);
      return waiters;
    },
  };
}
