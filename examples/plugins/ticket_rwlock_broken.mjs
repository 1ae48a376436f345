// ticket_rwlock.mjs with a planted bug, for the test that torture catches it:
// `ptlab torture --lock mmap_lock/./examples/plugins/ticket_rwlock_broken.mjs` exits 1.
//
// read_lock counts itself in READERS without taking a ticket or waiting for its turn, so a reader
// walks in while a writer holds the lock (a writer still waits for the readers it finds inside).
import ticketRwlock from './ticket_rwlock.mjs';

export default function brokenTicketRwlock(api) {
  const good = ticketRwlock(api);
  return {
    ...good,
    name: 'ticket-rwlock-broken',
    read_lock(cpu, lock) {
      Atomics.add(cpu.i32, lock + 2, 1); // READERS, no ticket: does not exclude a writer
    },
    read_unlock(cpu, lock) {
      Atomics.sub(cpu.i32, lock + 2, 1);
      api.wake(cpu, lock + 2);
    },
  };
}
