/**
 * qemu-snapshot / qemu-snapshot-file — seed 003's background snapshot of a VM's guest RAM, done
 * the two ways Peter Xu and David Hildenbrand discuss.
 *
 * QEMU (process 0) and N device / vCPU processes map guest RAM (a /dev/shm segment, each the
 * model's way) and populate it. Then:
 * - `qemu-snapshot` (per-process markers, Linux's uffd-wp): every process registers its mapping
 *   (UFFDIO_REGISTER, MODE_WP) and write-protects all of it (UFFDIO_WRITEPROTECT), handing its
 *   uffd to QEMU. On an event QEMU saves the page and unprotects it in EVERY registered process.
 * - `qemu-snapshot-file` (tracking in the page cache): QEMU alone registers the memfd and
 *   write-protects the whole file; on an event it saves the page and clears its one flag.
 * The writers keep storing at seeded pages during the snapshot; QEMU handles events until every
 * writer reached barrier 3, then ends the snapshot (the snapshot checker: no page saved twice,
 * none written before it was saved, none changed and never saved) and unregisters. The report's
 * `uffd` figures (syscalls, entry writes, wake-ups, events) compare the two.
 *
 * A writer waiting for QEMU holds its CPU, so the scenario needs procs <= cpus (each process on
 * its own CPU); its default is 3 processes on 3 CPUs.
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, MiB, rng, sizeMachine, unmapSharedSegment, type Scenario, type ScenarioOptions } from './common.js';

const MODELS_OK = {
  only: ['none', 'map-shared-pt', 'pt-hint'],
  why: 'uffd-wp registration takes shmem MAP_SHARED (and anonymous private) mappings; mshare, container-fd and address-space map a model file (EINVAL)',
};

function build(o: ScenarioOptions, file: boolean): { programs: Program[]; config: ReturnType<typeof sizeMachine> } {
  const rand = rng(o.seed);
  const pages = Math.floor(o.size / 4096);
  const programs: Program[] = [];
  for (let p = 0; p < o.procs; p++) {
    const prog: Op[] = mapSharedSegment(p, '/guest-ram', o.size, 'ram', o.model);
    if (p === 0 && file) prog.push({ op: 'shm_open', name: '/guest-ram', as: 'g' });
    // 1a. register (pt-hint unshares here), 1b. every process faults in all of guest memory.
    if (!file) prog.push({ op: 'uffd_register', region: 'ram', len: o.size });
    prog.push({ op: 'barrier', id: 7 });
    prog.push({ op: 'touch', region: 'ram', len: o.size, write: true });
    prog.push({ op: 'barrier', id: 1 });
    if (p === 0) prog.push({ op: 'shm_unlink', name: '/guest-ram' });
    // 1c. write-protect: every process its own range, or QEMU the whole file.
    if (!file) prog.push({ op: 'uffd_wp', region: 'ram', len: o.size, protect: true });
    else if (p === 0) prog.push({ op: 'uffd_register_file', fd: 'g' }, { op: 'uffd_wp_file', fd: 'g', protect: true });
    prog.push({ op: 'barrier', id: 2 });
    if (p === 0) {
      // 2. QEMU's loop until every writer is done, then 3. the end of the snapshot.
      prog.push({ op: 'uffd_handle', until_barrier: 3, writers: o.procs - 1 });
      prog.push({ op: 'barrier', id: 3 });
      prog.push({ op: 'uffd_snapshot_end' });
      if (file) prog.push({ op: 'close', fd: 'g' });
    } else {
      for (let i = 0; i < o.ops; i++) {
        const first = Math.floor(rand() * pages);
        const n = 1 + Math.floor(rand() * Math.min(16, pages - first));
        prog.push({ op: 'touch', region: 'ram', offset: first * 4096, len: n * 4096, write: true, value: 1 + (p % 5) });
        prog.push({ op: 'load', region: 'ram', offset: Math.floor(rand() * pages) * 4096 });
      }
      prog.push({ op: 'barrier', id: 3 });
    }
    prog.push({ op: 'barrier', id: 4 });
    // After the snapshot, guest RAM is writable again without events.
    if (p > 0) prog.push({ op: 'touch', region: 'ram', len: Math.min(o.size, 16 * 4096), write: true });
    prog.push({ op: 'barrier', id: 5 });
    prog.push(...unmapSharedSegment('ram', o.size, o.model));
    prog.push({ op: 'exit', code: 0 });
    programs.push(prog);
  }
  const config = sizeMachine({ cpus: o.cpus, procs: o.procs, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem });
  config.uffdPages = pages;
  return { programs, config };
}

const common = {
  defaults: { procs: 3, cpus: 3, size: 4 * MiB, ops: 24 },
  models: MODELS_OK,
  pinned: 'a writer waiting for the uffd handler holds its CPU: the snapshot needs --procs <= --cpus',
};

export const qemuSnapshot: Scenario = {
  name: 'qemu-snapshot',
  summary: 'QEMU background snapshot with per-process uffd-wp markers: every process registers and write-protects, QEMU unprotects in each',
  details: 'checkers: snapshot (a page saved twice, written before it was saved, or changed and never saved), stale-tlb-write; report: uffd {syscalls, entry_writes, wakeups, events}. On a shared table (map-shared-pt) one process\'s markers hit every sharer',
  ...common,
  build: (o) => build(o, false),
};

export const qemuSnapshotFile: Scenario = {
  name: 'qemu-snapshot-file',
  summary: 'QEMU background snapshot with file-level uffd-wp in the page cache: QEMU alone registers and write-protects the memfd',
  details: 'checkers: snapshot, stale-tlb-write; report: uffd {syscalls, entry_writes, wakeups, events}, to compare with qemu-snapshot',
  ...common,
  build: (o) => build(o, true),
};
