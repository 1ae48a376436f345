/**
 * dax-window — Stefan Hajnoczi's virtio-fs DAX window (seed 002): "The virtiofsd vhost-user
 * process handles guest file map/unmap messages ... Today virtiofsd sends a message to the VMM
 * over a UNIX domain socket asking for an mmap/munmap ... The new mechanism would allow virtiofsd
 * to map/unmap without extra coordination with the VMM. The VMM only needs to perform an initial
 * mmap of the DAX window."
 *
 * Process 0 is virtiofsd: it opens a file of the shared filesystem (a /dev/shm file of twice the
 * window's size, which it also maps itself to serve read/write requests) and creates the DAX
 * window, a named address space of `--size` (rounded up to 2 MiB) cut into 256 KiB slots. It maps
 * file chunks into slots (FUSE_SETUPMAPPING -> AS_MMAP) and unmaps them (FUSE_REMOVEMAPPING ->
 * AS_MUNMAP) on its own; the other processes are guests (their VMM's one mmap of the window) that
 * load and store through the window. Barriers (ids 2..6) order each round:
 *
 *   guests: every mapped slot read/written (ok), every empty slot loaded (SIGSEGV); virtiofsd
 *   writes the file through its own mapping  | barrier 5 |  virtiofsd remaps seeded slots (unmap,
 *   map another chunk, or map an empty slot) while the guests touch seeded slots (racing: `any`)
 *   | barrier 4 |  the next round.
 *
 * Checkers: expectation (a mapped slot is reachable, an empty one raises SIGSEGV); lost-write
 * (every store through the window, whichever chunk the slot held at the time, and every store by
 * virtiofsd lands in the one file: the window's backing_file_id names it); stale-tlb-write (a
 * store through a slot after AS_MUNMAP returned); use-after-free / invariants / leak (shared and
 * orphaned PTE tables, the host mm and the file go with their last holder). That loads see the
 * file's data through the window is unit-tested (test/models/address_space.test.ts).
 *
 * Model-specific (`models.only`): `ptlab run` refuses another model as bad input (exit 2). Run
 * anyway through the library, it fails fast: virtiofsd's open('/dev/address_space/dax') gives
 * ENOENT, an expectation violation that stops the machine.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, rng, sizeMachine, type Scenario } from './common.js';

const SLOT = 256 * 1024;
const WIN_PATH = '/dev/address_space/dax';
const FILE_NAME = '/virtiofs-file';
const STRIDE = 32 * 1024;

export const daxWindow: Scenario = {
  name: 'dax-window',
  summary: 'virtio-fs DAX: virtiofsd maps and unmaps file ranges in a window (an address space) that guests map; empty slots raise SIGSEGV',
  details: 'seed 002 (Stefan Hajnoczi); checkers: expectation (mapped slots reachable, empty slots -> SIGSEGV), lost-write (stores through the window land in the file), ' +
    'stale-tlb-write (a store through a slot after its AS_MUNMAP returned), use-after-free, invariants, leak; ' +
    'address-space only (another model: exit 2; forced through the library, the open of /dev/address_space gives ENOENT, an expectation violation)',
  defaults: { procs: 2, size: 8 * MiB, ops: 6 },
  models: { only: ['address-space'], why: 'it drives address_space_create/mmap/munmap (open /dev/address_space, AS_MMAP, AS_MUNMAP), which only address-space has' },
  build(o) {
    const rand = rng(o.seed);
    const winSize = Math.max(PMD, Math.ceil(o.size / PMD) * PMD);
    const slots = winSize / SLOT;
    const fileSize = 2 * winSize;
    const chunks = fileSize / SLOT;
    const pick = (max: number) => Math.floor(rand() * max);
    // What each slot holds: a file chunk, or -1. Chosen here, so the programs know what to expect.
    const held: number[] = Array.from({ length: slots }, (_, s) => (s === 0 || rand() < 0.5 ? pick(chunks) : -1));
    const map = (s: number, chunk: number): Op => ({
      op: 'ioctl', fd: 'win', cmd: 'AS_MMAP', args: { addr: s * SLOT, fd: 'file', offset: chunk * SLOT, size: SLOT, prot: 3 },
    });
    const unmap = (s: number): Op => ({ op: 'ioctl', fd: 'win', cmd: 'AS_MUNMAP', args: { addr: s * SLOT, size: SLOT } });

    const daemon: Op[] = [
      { op: 'shm_open', name: FILE_NAME, create: true, excl: true, as: 'file' },
      { op: 'ftruncate', fd: 'file', size: fileSize },
      { op: 'mmap', len: fileSize, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED'], fd: 'file', as: 'fmap' },
      { op: 'open', path: WIN_PATH, create: true, excl: true, as: 'win' },
      { op: 'ftruncate', fd: 'win', size: winSize },
    ];
    held.forEach((c, s) => {
      if (c >= 0) daemon.push(map(s, c));
    });
    daemon.push({ op: 'barrier', id: 2 }, { op: 'barrier', id: 3 }, { op: 'unlink', path: WIN_PATH }, { op: 'shm_unlink', name: FILE_NAME });
    const guests: Op[][] = [];
    for (let p = 1; p < o.procs; p++) {
      guests.push([
        { op: 'barrier', id: 2 },
        { op: 'open', path: WIN_PATH, as: 'win' },
        { op: 'mmap', len: winSize, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED'], fd: 'win', as: 'w' },
        { op: 'close', fd: 'win' },
        { op: 'barrier', id: 3 },
      ]);
    }
    for (let round = 0; round < Math.max(1, o.ops); round++) {
      daemon.push({ op: 'barrier', id: 4 });
      // virtiofsd serves a write(2) to the file meanwhile (not through the window).
      daemon.push({ op: 'touch', region: 'fmap', offset: pick(chunks) * SLOT, len: SLOT, stride: STRIDE, write: true, value: 1000 + round });
      guests.forEach((g, i) => {
        const p = i + 1;
        g.push({ op: 'barrier', id: 4 });
        for (let s = 0; s < slots; s++) {
          if (held[s] >= 0) {
            g.push({ op: 'touch', region: 'w', offset: s * SLOT + ((p * 4096) % STRIDE), len: SLOT - STRIDE, stride: STRIDE, write: true, value: p });
            g.push({ op: 'load', region: 'w', offset: s * SLOT + SLOT - 4096 });
          } else {
            g.push({ op: 'load', region: 'w', offset: s * SLOT + pick(SLOT / 4096) * 4096, expect: 'SIGSEGV' });
          }
        }
      });
      daemon.push({ op: 'barrier', id: 5 });
      // FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING on seeded slots, racing the guests' touches.
      for (let s = 0; s < slots; s++) {
        if (rand() >= 0.3) continue;
        if (held[s] >= 0) daemon.push(unmap(s));
        held[s] = held[s] >= 0 && rand() < 0.5 ? -1 : pick(chunks);
        if (held[s] >= 0) daemon.push(map(s, held[s]));
      }
      guests.forEach((g, i) => {
        g.push({ op: 'barrier', id: 5 });
        for (let n = 0; n < 4; n++) {
          g.push({ op: 'touch', region: 'w', offset: pick(slots) * SLOT, len: SLOT, stride: STRIDE, write: rand() < 0.5, value: i + 1, expect: 'any' });
        }
      });
    }
    daemon.push({ op: 'barrier', id: 4 }, { op: 'barrier', id: 6 }, { op: 'exit', code: 0 });
    for (const g of guests) g.push({ op: 'barrier', id: 4 }, { op: 'barrier', id: 6 }, { op: 'munmap', region: 'w', len: winSize }, { op: 'exit', code: 0 });
    const programs: Program[] = [daemon, ...guests];
    const config = sizeMachine({ cpus: o.cpus, procs: o.procs, sharedBytes: fileSize, privateBytes: 0, files: 2, vmasPerProc: 2, mem: o.mem });
    // The window's host holds up to one VMA per slot (and splits on the way).
    config.vmas += 2 * slots + 16;
    return { programs, config };
  },
};
