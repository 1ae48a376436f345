/**
 * race-revoke — seed 002's enforcing vIOMMU cut down to the race: the VMM (process 0) grants a few
 * pages of guest RAM in an address space and revokes them (AS_MUNMAP) while a device process
 * (process 1) has DMA in flight — it stores into the granted pages again and again, so their
 * translations stay hot in its TLB. Each DMA write racing the revoke either lands before the
 * revoke's shootdown or faults (SIGSEGV); once AS_MUNMAP returned, none may land. `ops` rounds of
 * grant, DMA, revoke; after each revoke the device checks that its DMA now faults.
 *
 * Checkers: stale-tlb-write (a DMA write through a TLB entry after AS_MUNMAP returned: the
 * revoke's shootdown missed the device's CPU), expectation (the DMA after the round's barrier
 * must fault). Planted bug: address-space --bug revoke-forgets-mappers.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sizeMachine, type Scenario } from './common.js';

const PAGE = 4096;
const HOT = 4; // pages granted, and kept hot in the device's TLB
const AS_PATH = '/dev/address_space/race';
const RAM = '/race-ram';

export const raceRevoke: Scenario = {
  name: 'race-revoke',
  summary: 'two processes (--procs is ignored): an address-space revoke (AS_MUNMAP) while a device process has DMA in flight through the granted pages',
  details: 'checkers: stale-tlb-write (DMA through a TLB entry after the revoke returned), expectation (DMA after the revoke must raise SIGSEGV); ' +
    'planted bug: address-space --bug revoke-forgets-mappers',
  defaults: { procs: 2, size: 2 * MiB, ops: 2 },
  models: { only: ['address-space'], why: 'it drives address_space_create/mmap/munmap, which only address-space has' },
  pinned: 'the device\'s TLB must stay its own: each process on its own CPU',
  build(o) {
    const asSize = Math.max(PMD, Math.ceil(o.size / PMD) * PMD);
    const rounds = Math.max(1, o.ops);
    const vmm: Op[] = [
      { op: 'shm_open', name: RAM, create: true, excl: true, as: 'ram' },
      { op: 'ftruncate', fd: 'ram', size: HOT * PAGE * rounds },
      { op: 'shm_unlink', name: RAM },
      { op: 'open', path: AS_PATH, create: true, excl: true, as: 'as' },
      { op: 'ftruncate', fd: 'as', size: asSize },
    ];
    const dev: Op[] = [];
    for (let i = 0; i < rounds; i++) {
      const iova = i * HOT * PAGE;
      vmm.push({ op: 'ioctl', fd: 'as', cmd: 'AS_MMAP', args: { addr: iova, fd: 'ram', offset: iova, size: HOT * PAGE, prot: 3 } });
      if (i === 0) {
        // The device maps the space once something is inside (backing_file_id names the RAM).
        vmm.push({ op: 'barrier', id: 1 }, { op: 'barrier', id: 2 }, { op: 'unlink', path: AS_PATH });
        dev.push(
          { op: 'barrier', id: 1 },
          { op: 'open', path: AS_PATH, as: 'as' },
          { op: 'mmap', len: asSize, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED'], fd: 'as', as: 'dma' },
          { op: 'close', fd: 'as' },
          { op: 'barrier', id: 2 },
        );
      }
      vmm.push({ op: 'barrier', id: 3 + 2 * i });
      vmm.push({ op: 'ioctl', fd: 'as', cmd: 'AS_MUNMAP', args: { addr: iova, size: HOT * PAGE } }); // the revoke
      vmm.push({ op: 'barrier', id: 4 + 2 * i });
      dev.push({ op: 'barrier', id: 3 + 2 * i });
      // DMA in flight: the first pass fills the TLB, the rest hit it, racing the revoke.
      for (let j = 0; j < 6; j++) {
        dev.push({ op: 'touch', region: 'dma', offset: iova, len: HOT * PAGE, write: true, value: 1, expect: 'any' });
      }
      dev.push({ op: 'barrier', id: 4 + 2 * i });
      dev.push({ op: 'store', region: 'dma', offset: iova, value: 1, expect: 'SIGSEGV' });
    }
    vmm.push({ op: 'exit', code: 0 });
    dev.push({ op: 'munmap', region: 'dma', len: asSize }, { op: 'exit', code: 0 });
    const programs: Program[] = [vmm, dev];
    const config = sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: asSize, privateBytes: 0, files: 2, vmasPerProc: 2, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 5 + 2 * rounds) } };
  },
};
