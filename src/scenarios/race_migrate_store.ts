/**
 * race-migrate-store — page migration (mm/migrate.c) moves pages that other processes keep
 * storing into and loading from. Three processes map a 2 MiB shmem file MAP_SHARED at the same
 * 2 MiB-aligned address, with MADV_SHARE_PT under pt-hint (one PTE table for the three);
 * process 0 faults a few pages in first (the table is its own), processes 1 and 2 fault them too,
 * keeping them hot in their TLBs. Then, racing: process 2 migrates those pages (the `migrate` op:
 * try_to_migrate through rmap — migration entries in every mapping, one flush for every mm that
 * maps a changed table —, the copy, the page cache moved, remove_migration_ptes) while process 1
 * stores into them and process 0 loads them: their faults meet migration entries and wait. After
 * a barrier (the stale-TLB audit: no CPU may keep a translation of the old page), process 0 loads
 * every page back and must read process 1's last store into it: no store lost to the move.
 *
 * Planted bug: --bug migrate-copy-before-flush (the copy made after the PTEs changed but before
 * the TLB flush: a CPU that still holds the old page writable stores into it after the copy —
 * the store is lost). Under none each process has its own table and PTE; under pt-hint the
 * shared table is changed once and every sharer flushed.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sharedFileAt, sizeMachine, type Scenario } from './common.js';

const AT = 22 * 1024 * MiB;
const HOT = 4;

export const raceMigrateStore: Scenario = {
  name: 'race-migrate-store',
  summary: 'three processes map a shmem file (a shared PTE table under pt-hint) and keep pages hot; one migrates them while another stores and a third loads; every store must survive the move',
  details: 'checkers: expectation (loads after the move read the last value stored), lost-write, stale-tlb-write, stale-tlb (a CPU keeps a translation of the old page), use-after-free; ' +
    'the `migrate` figures count pages moved and faults that waited on a migration entry; planted bug: --bug migrate-copy-before-flush',
  defaults: { procs: 3, cpus: 3, size: PMD, ops: 2 },
  models: { only: ['none', 'pt-hint'], why: 'migration of a shmem file through i_mmap: the core mm\'s walk, and pt-hint\'s shared PTE tables' },
  pinned: 'the processes\' TLBs must stay their own: each process on its own CPU',
  build(o) {
    const size = PMD;
    const hint = o.model === 'pt-hint';
    const rounds = Math.max(1, o.ops);
    const setup = (p: number): Op[] => sharedFileAt(p, '/rms', AT, size, hint);
    const progs: Op[][] = [setup(0), setup(1), setup(2)];
    const all = (op: Op) => progs.forEach((p) => p.push(op));
    for (let i = 0; i < rounds; i++) {
      const b = 1 + 4 * i;
      // Outside the race: process 0 faults the hot pages first, then 1 and 2 (writable in 1's TLB).
      progs[0].push({ op: 'touch', region: 'm', len: HOT * 4096, write: true, value: 1 + i });
      all({ op: 'barrier', id: b });
      progs[1].push({ op: 'touch', region: 'm', len: HOT * 4096, write: true, value: 1 + i });
      progs[2].push({ op: 'touch', region: 'm', len: HOT * 4096, write: false });
      all({ op: 'barrier', id: b + 1 });
      // The race: 2 migrates the hot pages, 1 stores into them, 0 loads them.
      progs[2].push({ op: 'migrate', region: 'm', len: HOT * 4096 });
      const base = 100 * (i + 1);
      for (let j = 0; j < 2 * HOT; j++) progs[1].push({ op: 'store', region: 'm', offset: (j % HOT) * 4096 + 4, value: base + j });
      for (let j = 0; j < HOT; j++) progs[0].push({ op: 'load', region: 'm', offset: j * 4096 + 8 });
      all({ op: 'barrier', id: b + 2 }); // quiescence: every CPU audits its TLB
      // Every page holds 1's last store (j = HOT + q for page q).
      for (let q = 0; q < HOT; q++) progs[0].push({ op: 'load', region: 'm', offset: q * 4096 + 4, value: base + HOT + q });
      all({ op: 'barrier', id: b + 3 });
    }
    progs[0].push({ op: 'shm_unlink', name: '/rms' });
    all({ op: 'exit', code: 0 });
    const programs: Program[] = progs;
    const config = sizeMachine({ cpus: o.cpus, procs: 3, sharedBytes: size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 1 + 4 * rounds) } };
  },
};
