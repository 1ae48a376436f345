/**
 * race-reclaim-sharer — reclaim through rmap must flush every mm that maps the PTE table it
 * changed (Pedro Falcato, Feb 2026: with shared page tables, try_to_unmap_one's "clear the PTE,
 * flush the TLB of the mm" becomes "for every mm that maps this table"). Three processes map a
 * 2 MiB shmem file MAP_SHARED at the same 2 MiB-aligned address, with MADV_SHARE_PT under pt-hint;
 * process 0 faults a few pages in first, so the PTE table is its own, and processes 1 and 2 then
 * fault the same pages — under pt-hint through process 0's table, shared — keeping them hot in
 * their TLBs. Then, racing: process 2 reclaims those pages (the `reclaim` op: shrink_folio_list ->
 * try_to_unmap, an rmap walk of the file's i_mmap) while process 1 keeps storing into them. The
 * shared table is cleared once, through its owner's VMA; every CPU of process 0, 1 and 2 must be
 * flushed. After a barrier (the stale-TLB audit at quiescence), the file changes: process 0
 * pwrite()s new values into the pages, and processes 1 and 2 load them back — through fresh
 * faults, from the page cache: reclaim kept the pages (ptlab has no swap), so the loads must read
 * exactly what pwrite wrote.
 *
 * Because reclaim keeps the page, a stale TLB entry still reaches the right data here; in Linux
 * reclaim goes on to free (or swap out) the page, and the stale entry becomes a use-after-free.
 * The checkers catch the entry itself: a store through it after reclaim declared the table
 * flushed (stale-tlb-write), or the entry found by its CPU's audit at the barrier (stale-tlb).
 *
 * Planted bug: pt-hint --bug reclaim-flushes-one-sharer (try_to_unmap_one flushes only the mm of
 * the VMA it walked through: the other sharers keep their translations). Under none each process
 * has its own table and its own PTE, cleared and flushed through its own VMA; the report's
 * `reclaim` figures show the accessed bits reclaim found: one per page under pt-hint (one shared
 * PTE for three processes), three under none.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sharedFileAt, sizeMachine, type Scenario } from './common.js';

const AT = 20 * 1024 * MiB;
const HOT = 4;

export const raceReclaimSharer: Scenario = {
  name: 'race-reclaim-sharer',
  summary: 'three processes map a shmem file (a shared PTE table under pt-hint) and keep pages hot; one reclaims them through rmap while another stores, then the file is rewritten and read back',
  details: 'checkers: stale-tlb-write, stale-tlb (a sharer\'s CPU keeps the translation of a PTE reclaim cleared), expectation (loads after reclaim read what pwrite wrote: reclaim keeps the data), ' +
    'invariant:rss, invariant:mapcount; the `reclaim` figures show the accessed bits lost to sharing; planted bug: pt-hint --bug reclaim-flushes-one-sharer',
  defaults: { procs: 3, cpus: 3, size: PMD, ops: 2 },
  models: { only: ['none', 'pt-hint'], why: 'reclaim of a shmem file through i_mmap: the core mm\'s walk, and pt-hint\'s shared PTE tables (the bug is that model\'s)' },
  pinned: 'the sharers\' TLBs must stay their own: each process on its own CPU',
  build(o) {
    const size = PMD;
    const hint = o.model === 'pt-hint';
    const rounds = Math.max(1, o.ops);
    const setup = (p: number): Op[] => sharedFileAt(p, '/rrs', AT, size, hint);
    const progs: Op[][] = [setup(0), setup(1), setup(2)];
    const all = (op: Op) => progs.forEach((p) => p.push(op));
    for (let i = 0; i < rounds; i++) {
      const b = 1 + 5 * i;
      // Outside the race: process 0 faults the hot pages first (the table is its own), then
      // processes 1 and 2 fault them too (under pt-hint they share process 0's table), each
      // leaving the translations in its TLB.
      progs[0].push({ op: 'touch', region: 'm', len: HOT * 4096, write: true, value: 1 + i });
      all({ op: 'barrier', id: b });
      progs[1].push({ op: 'touch', region: 'm', len: HOT * 4096, write: true, value: 1 + i });
      progs[2].push({ op: 'touch', region: 'm', len: HOT * 4096, write: false });
      all({ op: 'barrier', id: b + 1 });
      // The race: process 2 reclaims the hot pages (unmapped from every mapping of the file),
      // process 1 keeps storing into them.
      progs[2].push({ op: 'reclaim', region: 'm', len: HOT * 4096 });
      for (let j = 0; j < 2 * HOT; j++) progs[1].push({ op: 'store', region: 'm', offset: (j % HOT) * 4096 + 4, value: 100 + j });
      all({ op: 'barrier', id: b + 2 }); // quiescence: every CPU audits its TLB
      // The file changes: new values through the page cache, read back through the mappings
      // (fresh faults where reclaim cleared the PTEs: the same pages, kept in the page cache).
      const value = 1000 + i;
      for (let p = 0; p < HOT; p++) progs[0].push({ op: 'pwrite', fd: 'fd', offset: p * 4096, len: 4, value });
      all({ op: 'barrier', id: b + 3 });
      for (const p of [1, 2]) for (let q = 0; q < HOT; q++) progs[p].push({ op: 'load', region: 'm', offset: q * 4096, value });
      all({ op: 'barrier', id: b + 4 }); // read back before the next round's stores
    }
    progs[0].push({ op: 'shm_unlink', name: '/rrs' });
    all({ op: 'exit', code: 0 });
    const programs: Program[] = progs;
    const config = sizeMachine({ cpus: o.cpus, procs: 3, sharedBytes: size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 1 + 5 * rounds) } };
  },
};
