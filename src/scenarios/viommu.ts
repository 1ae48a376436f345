/**
 * viommu — Stefan Hajnoczi's enforcing vIOMMU (seed 002): "the VMM passes all guest RAM fds to the
 * device emulation process and has no way of restricting access or revoking it later. The new
 * mechanism would allow the VMM to add/remove mappings so that the device emulation process can
 * only access ranges of memory programmed by the guest vIOMMU. Accesses to unmapped addresses
 * would raise a signal."
 *
 * Process 0 is the VMM: it creates guest RAM (a /dev/shm file it maps itself) and a named address
 * space (the IOVA space, RAM rounded up to 2 MiB), then, round after round, grants (AS_MMAP) a
 * read-write range and a read-only range of guest RAM at seeded IOVAs (GPA offsets chosen apart
 * from them: IOVA != GPA, as a vIOMMU translates) and revokes them (AS_MUNMAP). The other
 * processes are device emulators (vhost-user / vfio-user backends): they open the space by name,
 * map it, and DMA through it. Barriers (ids 2..7) order each round:
 *
 *   VMM: write RAM, grant R (rw) + Q (ro)  | barrier 4 |  devices: R read/write ok, Q read ok,
 *   Q write SIGSEGV, an IOVA never granted SIGSEGV  | barrier 5 |  VMM revokes R and Q while the
 *   devices keep writing R (racing: outcome `any`)  | barrier 6 |  devices: R and Q SIGSEGV
 *   | barrier 7 |  the next round's grants (which may cover this round's IOVAs again).
 *
 * Checkers: expectation (every access whose outcome the barriers make certain: granted -> ok,
 * read-only -> SIGSEGV on write, never granted or revoked -> SIGSEGV); stale-tlb-write (a DMA write
 * that gets through a TLB entry after AS_MUNMAP returned: the revoke's shootdown missed a device's
 * CPU); lost-write (every successful DMA write and every VMM write lands in the guest-RAM file:
 * the space's backing_file_id names it); use-after-free / invariants / leak (the shared and
 * orphaned tables, the host mm and the RAM file go when the last holder does).
 *
 * Model-specific (`models.only`): `ptlab run` refuses another model as bad input (exit 2). Run
 * anyway through the library, it fails fast: the VMM's open('/dev/address_space/viommu') gives
 * ENOENT, an expectation violation that stops the machine.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, rng, sizeMachine, type Scenario } from './common.js';

const PAGE = 4096;
const AS_PATH = '/dev/address_space/viommu';
const RAM_NAME = '/viommu-ram';

interface Grant {
  iova: number;
  gpa: number;
  len: number;
}

export const viommu: Scenario = {
  name: 'viommu',
  summary: "an enforcing vIOMMU: the VMM grants and revokes guest-RAM ranges in an address space that device processes map; revoked or never-granted DMA raises SIGSEGV",
  details: 'seed 002 (Stefan Hajnoczi); checkers: expectation (granted DMA ok, read-only grant refuses writes, never-granted or revoked IOVA -> SIGSEGV), ' +
    'stale-tlb-write (a DMA write through a TLB entry after the revoke returned), lost-write (DMA and VMM writes land in guest RAM), use-after-free, invariants, leak; ' +
    'address-space only (another model: exit 2; forced through the library, the open of /dev/address_space gives ENOENT, an expectation violation)',
  defaults: { procs: 2, size: 8 * MiB, ops: 6 },
  models: { only: ['address-space'], why: 'it drives address_space_create/mmap/munmap (open /dev/address_space, AS_MMAP, AS_MUNMAP), which only address-space has' },
  build(o) {
    const rand = rng(o.seed);
    const ramSize = Math.max(PMD, Math.ceil(o.size / PAGE) * PAGE);
    const asSize = Math.ceil(ramSize / PMD) * PMD;
    const ramPages = ramSize / PAGE;
    const halfPages = asSize / PAGE / 2;
    const pick = (max: number) => Math.floor(rand() * max);
    // A range of 1..16 pages at a seeded IOVA in [lo, lo + halfPages) and a seeded GPA.
    const range = (loPage: number): Grant => {
      const n = 1 + pick(16);
      return { iova: (loPage + pick(halfPages - n)) * PAGE, gpa: pick(ramPages - n) * PAGE, len: n * PAGE };
    };
    const rounds = Array.from({ length: Math.max(1, o.ops) }, () => {
      const r = range(0); // read-write, low half of the IOVA space
      const q = range(halfPages); // read-only, high half
      // An IOVA never granted this round: just below R, or just above it.
      const never = r.iova >= PAGE ? r.iova - PAGE : r.iova + r.len;
      return { r, q, never };
    });
    const grant = (g: Grant, prot: number): Op => ({ op: 'ioctl', fd: 'as', cmd: 'AS_MMAP', args: { addr: g.iova, fd: 'ram', offset: g.gpa, size: g.len, prot } });
    const revoke = (g: Grant): Op => ({ op: 'ioctl', fd: 'as', cmd: 'AS_MUNMAP', args: { addr: g.iova, size: g.len } });

    const programs: Program[] = [];
    // ---- process 0: the VMM ----
    const vmm: Op[] = [
      { op: 'shm_open', name: RAM_NAME, create: true, excl: true, as: 'ram' },
      { op: 'ftruncate', fd: 'ram', size: ramSize },
      { op: 'mmap', len: ramSize, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED'], fd: 'ram', as: 'gram' },
      { op: 'shm_unlink', name: RAM_NAME },
      { op: 'open', path: AS_PATH, create: true, excl: true, as: 'as' },
      { op: 'ftruncate', fd: 'as', size: asSize },
    ];
    rounds.forEach(({ r, q }, i) => {
      // The guest fills the DMA buffer, then programs the vIOMMU.
      vmm.push({ op: 'touch', region: 'gram', offset: r.gpa, len: r.len, write: true, value: 100 + i });
      vmm.push(grant(r, 3), grant(q, 1));
      if (i === 0) {
        // The devices map the space once something is inside (backing_file_id names guest RAM).
        vmm.push({ op: 'barrier', id: 2 }, { op: 'barrier', id: 3 }, { op: 'unlink', path: AS_PATH });
      }
      vmm.push({ op: 'barrier', id: 4 });
      vmm.push({ op: 'touch', region: 'gram', offset: r.gpa, len: r.len, write: false }); // the guest reads what the devices wrote
      vmm.push({ op: 'barrier', id: 5 });
      vmm.push(revoke(r), revoke(q)); // while the devices still write R
      // The next round's grants wait until the devices have checked this round's revocation.
      vmm.push({ op: 'barrier', id: 6 }, { op: 'barrier', id: 7 });
    });
    vmm.push({ op: 'munmap', region: 'gram', len: ramSize }, { op: 'exit', code: 0 });
    programs.push(vmm);

    // ---- processes 1..: device emulators ----
    for (let p = 1; p < o.procs; p++) {
      const dev: Op[] = [
        { op: 'barrier', id: 2 },
        { op: 'open', path: AS_PATH, as: 'as' },
        { op: 'mmap', len: asSize, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED'], fd: 'as', as: 'dma' },
        { op: 'close', fd: 'as' },
        { op: 'barrier', id: 3 },
      ];
      for (const { r, q, never } of rounds) {
        dev.push({ op: 'barrier', id: 4 });
        dev.push({ op: 'touch', region: 'dma', offset: r.iova, len: r.len, write: true, value: p });
        dev.push({ op: 'touch', region: 'dma', offset: r.iova, len: r.len, write: false });
        dev.push({ op: 'load', region: 'dma', offset: q.iova + pick(q.len / PAGE) * PAGE });
        dev.push({ op: 'store', region: 'dma', offset: q.iova, value: p, expect: 'SIGSEGV' }); // read-only mapping
        dev.push({ op: 'load', region: 'dma', offset: never, expect: 'SIGSEGV' });
        dev.push({ op: 'barrier', id: 5 });
        // DMA racing the revoke: each write either lands before AS_MUNMAP's flush or faults.
        dev.push({ op: 'touch', region: 'dma', offset: r.iova, len: r.len, write: true, passes: 1024, value: p, expect: 'any' });
        dev.push({ op: 'barrier', id: 6 });
        dev.push({ op: 'store', region: 'dma', offset: r.iova + pick(r.len / PAGE) * PAGE, value: p, expect: 'SIGSEGV' });
        dev.push({ op: 'load', region: 'dma', offset: q.iova, expect: 'SIGSEGV' });
        dev.push({ op: 'barrier', id: 7 });
      }
      dev.push({ op: 'munmap', region: 'dma', len: asSize }, { op: 'exit', code: 0 });
      programs.push(dev);
    }
    const config = sizeMachine({ cpus: o.cpus, procs: o.procs, sharedBytes: asSize, privateBytes: 0, files: 2, vmasPerProc: 2, mem: o.mem });
    return { programs, config };
  },
};
