/**
 * sga-1500 — seed 001's headline at scale: 1500 database processes map one 300 GiB SGA on a
 * 512 GiB machine. Without shared page tables every process needs its own PTEs for all of it
 * (S/512 bytes: 600 MiB each, about 878 GiB for 1500), so the machine runs out of memory long
 * before the 1500th client; with them, one set of tables serves everyone.
 *
 * `--scale` shrinks the SGA and the physical-memory budget together (default 1/100: a 3 GiB SGA
 * on 5.12 GiB), keeping 1500 processes. Process 0 creates the segment and populates every page
 * (the SGA is resident, as Oracle's is); each client then touches one page per 2 MiB, which is
 * enough to build every PTE table of its mapping (do_fault → pte_alloc) without 786,432 faults
 * per client. Every process holds its mapping until barrier 2, where page-table memory is
 * measured, so the clients that fit are the ones alive there.
 */
import type { Op, Program } from '../proc/program.js';
import { mapSharedSegment, MiB, PMD, sizeMachine, unmapSharedSegment, type RunOutcome, type Scenario, type ScenarioOptions } from './common.js';

const GiB = 1024 * MiB;
const PUD = GiB;
const P4D = 512 * GiB;
/** The seed machine: 1500 processes, a 300 GiB SGA, 512 GiB of memory. */
export const SEED_SGA = 300 * GiB;
export const SEED_MEM = 512 * GiB;
export const SEED_PROCS = 1500;

/**
 * The x86-64 arithmetic of the seed, for a mapping of `size` bytes whose end is 512 GiB-aligned
 * (ptlab's mmap_base is, and the first mapping ends there, so each level's tables are
 * ⌈size / span⌉). A client's tables: ⌈S/2 MiB⌉ PTE pages (S/512 bytes), ⌈S/1 GiB⌉ PMD pages,
 * ⌈S/512 GiB⌉ PUD pages, and the PGD that pgd_alloc gave its mm at exec. Every process's PGD
 * exists before the clients populate (they all run to barrier 0 first), so the clients that fit
 * are N = ⌊(M − S − P·4 KiB) / (client tables − PGD)·4 KiB⌋.
 */
export function sgaPrediction(size: number, mem: number, procs: number) {
  const pte = Math.ceil(size / PMD);
  const pmd = Math.ceil(size / PUD);
  const pud = Math.ceil(size / P4D);
  const perClient = pte + pmd + pud; // beyond the PGD
  const free = Math.floor(mem / 4096) - Math.ceil(size / 4096) - procs;
  return {
    pte_pages: pte,
    pmd_pages: pmd,
    pud_pages: pud,
    per_process_bytes: (perClient + 1) * 4096,
    clients_fit: Math.max(0, Math.min(procs, Math.floor(free / perClient))),
    formula: 'N = floor((M - S - P*4KiB) / ((ceil(S/2MiB) + ceil(S/1GiB) + ceil(S/512GiB)) * 4KiB)); PTE bytes per process = S/4096*8 = S/512',
  };
}

const fmtGiB = (b: number) => `${(b / GiB).toFixed(2)} GiB`;
const fmtScale = (x: number) => (Number.isInteger(1 / x) ? `1/${1 / x}` : String(x));

export const sga1500: Scenario = {
  name: 'sga-1500',
  summary: 'the seed\'s headline: 1500 processes map one SGA on a machine scaled by --scale (default 1/100: 3 GiB SGA, 5.12 GiB memory)',
  details: 'under none the budget runs out (VM_FAULT_OOM) at the client count the x86-64 formula predicts; under the sharing models all 1500 fit; the report extrapolates to 1/1 (the seed\'s ~878 GiB of PTEs)',
  defaults: { procs: SEED_PROCS, ops: 0, scale: 1 / 100 },
  scaled: { size: SEED_SGA, mem: SEED_MEM },
  build(o) {
    const programs: Program[] = [];
    for (let p = 0; p < o.procs; p++) {
      const prog: Op[] = mapSharedSegment(p, '/sga', o.size, 'sga', o.model);
      // Process 0 makes the SGA resident before any client builds tables.
      if (p === 0) prog.push({ op: 'touch', region: 'sga', len: o.size, write: true });
      prog.push({ op: 'barrier', id: 1 });
      if (p !== 0) prog.push({ op: 'touch', region: 'sga', len: o.size, stride: PMD });
      prog.push({ op: 'barrier', id: 2 });
      if (p === 0) prog.push({ op: 'shm_unlink', name: '/sga' });
      prog.push(...unmapSharedSegment('sga', o.size, o.model));
      prog.push({ op: 'exit', code: 0 });
      programs.push(prog);
    }
    return {
      programs,
      config: sizeMachine({ cpus: o.cpus, procs: o.procs, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 1, mem: o.mem, residentShared: true }),
    };
  },
  report(o: ScenarioOptions, r: RunOutcome) {
    const pred = sgaPrediction(o.size, o.mem, o.procs);
    const fit = r.procs - r.oomKilled - r.killed;
    const scale = o.scale;
    // Per process at 1/1: the tables that grow with S scale by 1/scale; the PGD does not.
    const perProc = r.pgtablesGuests / Math.max(1, fit);
    const perProc1 = (perProc - 4096) / scale + 4096;
    const host1 = r.pgtablesHost / scale;
    const total1 = host1 + SEED_PROCS * perProc1;
    const seedPte = (SEED_PROCS * SEED_SGA) / 512;
    // The clients whose tables were complete when memory first ran out: everything charged then,
    // less the SGA and every process's PGD, over one client's tables.
    const oomAt = r.firstOom === null ? null : {
      process: r.firstOom.process,
      pt_pages: r.firstOom.ptPages,
      clients_worth: Math.floor(((r.firstOom.ptPages - o.procs) / (pred.per_process_bytes / 4096 - 1)) * 100) / 100,
    };
    const asPredicted = oomAt === null ? pred.clients_fit >= o.procs : Math.floor(oomAt.clients_worth) === pred.clients_fit;
    // After the first kill, each killed process gives back its PGD too, so a few more clients
    // fit by the end: at most ⌊(M − S) / client tables with PGD⌋.
    const atMostAtEnd = Math.min(o.procs, Math.floor((Math.floor(o.mem / 4096) - Math.ceil(o.size / 4096)) / (pred.per_process_bytes / 4096)));
    const json = {
      scale,
      sga_bytes: o.size,
      budget_bytes: o.mem,
      predicted: pred,
      oom: { count: r.oomCount, killed: r.oomKilled, first: oomAt, as_predicted: asPredicted },
      clients_alive_at_end: fit,
      clients_at_most_at_end: atMostAtEnd,
      extrapolated_1_1: {
        sga_bytes: SEED_SGA,
        procs: SEED_PROCS,
        per_process_pt_bytes: Math.round(perProc1),
        host_pt_bytes: Math.round(host1),
        total_pt_bytes: Math.round(total1),
        seed_pte_bytes: seedPte,
        seed_formula: '1500 * 300GiB / 512 = 878.9 GiB of PTEs (seed 001: "about 878 GiB")',
      },
    };
    const lines = [
      `sga-1500 at scale ${fmtScale(scale)}: SGA ${fmtGiB(o.size)}, budget ${fmtGiB(o.mem)}, ${o.procs} processes`,
      `  formula: ${pred.formula}`,
      `  predicted: ${pred.clients_fit} of ${o.procs} clients fit unshared (${pred.per_process_bytes.toLocaleString('en-US')} bytes of tables each)`,
      oomAt !== null
        ? `  VM_FAULT_OOM first in process ${oomAt.process}, when page tables held ${oomAt.pt_pages.toLocaleString('en-US')} pages: ${oomAt.clients_worth} clients' worth, ` +
          `${Math.floor(oomAt.clients_worth)} complete (${asPredicted ? 'as predicted' : `predicted ${pred.clients_fit}`}); ` +
          `${r.oomKilled} processes OOM-killed; ${fit} alive at the end (killed processes give back their PGDs; at most ${atMostAtEnd})`
        : `  no VM_FAULT_OOM: ${fit} clients fit${o.model === 'none' ? '' : ` (unshared, ${pred.clients_fit} would)`}`,
      `  at 1/1 (${SEED_PROCS} x 300 GiB): ${fmtGiB(total1)} of page tables from the measured ${Math.round(perProc).toLocaleString('en-US')} bytes per process` +
        `${r.pgtablesHost > 0 ? ` (+ host ${fmtGiB(host1)})` : ''}; seed: ${fmtGiB(seedPte)} of PTEs = 1500 x 300 GiB / 512`,
    ];
    return { key: 'sga_1500', json, lines };
  },
};
