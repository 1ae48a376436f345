/**
 * The stronger invariants ("catch what nobody planted"): RSS against PTEs, PTE permissions against
 * VMAs, table ownership by walking, counters at zero when mms are freed and at the end, and the
 * CPU-side stale-TLB audit. Each is shown a machine with one planted inconsistency and must name it
 * with its own checker; clean machines and clean runs must have no finding.
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants, describeInvariant, InvariantCode, STALE_TLB_CODE, type InvariantFinding } from '../../src/check/invariants.js';
import { verdict } from '../../src/check/index.js';
import { mm_alloc, mmput } from '../../src/mm/fork.js';
import { lookup_entry } from '../../src/mm/memory.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { ACCESS_OK, mmu_load, mmu_store } from '../../src/mm/mmu.js';
import { ptpBase } from '../../src/mm/page_alloc.js';
import { _PAGE_RW, entry_table, PMD_LEVEL, PTE_LEVEL } from '../../src/mm/pgtable.js';
import { STALE_TLB_VIOLATION, switch_mm, tlb_audit } from '../../src/mm/tlb.js';
import { TLB_ENTRIES, TLB_MASK } from '../../src/mm/percpu.js';
import { runMachine, type MachineRun } from '../../src/proc/orchestrator.js';
import type { Op, Program } from '../../src/proc/program.js';
import { sys_close, sys_ftruncate, sys_memfd_create, sys_mmap, sys_mprotect } from '../../src/proc/syscalls.js';
import { mapSharedSegment, MiB, sizeMachine } from '../../src/scenarios/common.js';
import { runScenario } from '../../src/cli/run.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { M_PGTABLES, M_RSS_ANON, M_RSS_FILE, P_OWNER, T_STATE, TASK_EXITED } from '../../src/shm/layout.js';
import { find_vma, vma_set_range } from '../../src/mm/vma.js';
import { runOn, testMachine, type TestMachine } from '../helpers/kernel.js';

const codes = (f: InvariantFinding[]) => f.map((x) => x.code);
const checkers = (f: InvariantFinding[]) => f.map((x) => describeInvariant(x.code, x.args).checker);

function fakeRun(t: TestMachine, model = 'none'): MachineRun {
  const tasks = t.m.layout.config.tasks;
  return {
    spec: { cpus: 1, config: t.m.layout.config, programs: Array.from({ length: tasks }, () => []), model, bug: '', deadlineMs: 200, lockStatTiming: false, slice: 4, runTimeoutMs: 1000 },
    machine: t.m, cpus: [], seconds: 0, cores: 2, workerErrors: [], timedOut: false,
  };
}

/** Task 0 with a shared memfd mapping (16 pages stored), a private anonymous one (8 pages) and a private read-only view of the file. */
function populated(model = 'none') {
  const t = testMachine(model);
  const k = t.cpus[0];
  const mm = runOn(k, 0);
  const fd = sys_memfd_create(k);
  sys_ftruncate(k, fd, 16 * 4096);
  const shared = sys_mmap(k, 0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  for (let i = 0; i < 16; i++) expect(mmu_store(k, shared + i * 4096, 1)).toBe(ACCESS_OK);
  const anon = sys_mmap(k, 0, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (let i = 0; i < 8; i++) expect(mmu_store(k, anon + i * 4096, 2)).toBe(ACCESS_OK);
  const priv = sys_mmap(k, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  for (let i = 0; i < 4; i++) expect(mmu_load(k, priv + i * 4096)).toBe(ACCESS_OK);
  return { t, k, mm, fd, shared, anon, priv };
}

/** Word offset of the PTE that maps `addr` in `mm`. */
function pteOff(k: TestMachine['cpus'][0], mm: number, addr: number): number {
  const off = lookup_entry(k, mm, Math.floor(addr / 4096), PTE_LEVEL);
  expect(off).toBeGreaterThanOrEqual(0);
  return off;
}

describe('RSS against PTEs (invariant:rss)', () => {
  it('a consistent machine has no findings', () => {
    const { t } = populated();
    expect(checkInvariants(t.m.i32, t.m.layout).findings).toEqual([]);
  });

  it('finds a file RSS counter that disagrees with the page-cache PTEs of its tables', () => {
    const { t, k, mm } = populated();
    Atomics.add(t.m.i32, k.mmBase(mm) + M_RSS_FILE, 1);
    const f = checkInvariants(t.m.i32, t.m.layout).findings;
    expect(codes(f)).toEqual([InvariantCode.Rss]);
    const d = describeInvariant(f[0].code, f[0].args);
    expect(d.checker).toBe('invariant:rss');
    expect(d.message).toContain('MM_FILEPAGES is 21');
    expect(d.message).toContain('20 present page-cache PTEs');
  });

  it('finds an anonymous RSS counter that disagrees, under pt-hint too (anon pages are never in a shared table)', () => {
    const { t, k, mm } = populated('pt-hint');
    Atomics.sub(t.m.i32, k.mmBase(mm) + M_RSS_ANON, 1);
    const f = checkInvariants(t.m.i32, t.m.layout, { model: 'pt-hint' }).findings;
    expect(checkers(f)).toEqual(['invariant:rss']);
    expect(describeInvariant(f[0].code, f[0].args).message).toContain('MM_ANONPAGES is 7');
  });

  it('pt-hint: file RSS is per faulting mm, so only the machine-wide sum is checked', () => {
    const t = testMachine('pt-hint', '', { tasks: 2 });
    const k = t.cpus[0];
    const mms = [0, 1].map((p) => {
      const mm = runOn(k, p);
      const fd = sys_memfd_create(k);
      sys_ftruncate(k, fd, 4 * 4096);
      const a = sys_mmap(k, 0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      expect(mmu_store(k, a, 1)).toBe(ACCESS_OK);
      return mm;
    });
    // One page's count moves from one mm to the other (as a fault through a shared table does): allowed.
    Atomics.sub(t.m.i32, k.mmBase(mms[0]) + M_RSS_FILE, 1);
    Atomics.add(t.m.i32, k.mmBase(mms[1]) + M_RSS_FILE, 1);
    expect(checkInvariants(t.m.i32, t.m.layout, { model: 'pt-hint' }).findings).toEqual([]);
    // Under any other model it is a finding for each mm.
    expect(codes(checkInvariants(t.m.i32, t.m.layout).findings)).toEqual([InvariantCode.Rss, InvariantCode.Rss]);
    // A count that appears from nowhere breaks the sum.
    Atomics.add(t.m.i32, k.mmBase(mms[1]) + M_RSS_FILE, 1);
    const f = checkInvariants(t.m.i32, t.m.layout, { model: 'pt-hint' }).findings;
    expect(codes(f)).toEqual([InvariantCode.RssTotal]);
    expect(describeInvariant(f[0].code, f[0].args).checker).toBe('invariant:rss');
  });
});

describe('no PTE grants more than its VMA (invariant:pte-perm)', () => {
  it('finds a writable PTE in a VMA mprotected read-only', () => {
    const { t, k, mm, shared } = populated();
    expect(sys_mprotect(k, shared, 16 * 4096, PROT_READ)).toBe(0);
    expect(checkInvariants(t.m.i32, t.m.layout).findings).toEqual([]);
    Atomics.or(t.m.i32, pteOff(k, mm, shared + 3 * 4096), _PAGE_RW);
    const f = checkInvariants(t.m.i32, t.m.layout).findings;
    expect(codes(f)).toEqual([InvariantCode.PtePerm]);
    const d = describeInvariant(f[0].code, f[0].args);
    expect(d.checker).toBe('invariant:pte-perm');
    expect(d.message).toContain('0x' + (shared + 3 * 4096).toString(16));
    expect(d.message).toContain('without VM_WRITE');
  });

  it('finds a writable PTE to a page-cache page in a private mapping (copy-on-write skipped)', () => {
    const { t, k, mm, priv } = populated();
    Atomics.or(t.m.i32, pteOff(k, mm, priv), _PAGE_RW);
    const f = checkInvariants(t.m.i32, t.m.layout).findings;
    expect(checkers(f)).toEqual(['invariant:pte-perm']);
    expect(describeInvariant(f[0].code, f[0].args).message).toContain('copy-on-write');
  });

  it('finds user access in a PROT_NONE VMA', () => {
    const { t, k, mm, anon } = populated();
    expect(sys_mprotect(k, anon, 8 * 4096, 0)).toBe(0);
    expect(checkInvariants(t.m.i32, t.m.layout).findings).toEqual([]);
    const off = pteOff(k, mm, anon);
    Atomics.store(t.m.i32, off, Atomics.load(t.m.i32, off) | 4 /* _PAGE_USER */);
    expect(describeInvariant(...first(checkInvariants(t.m.i32, t.m.layout).findings)).message).toContain('PROT_NONE');
  });

  it('finds a present PTE that no VMA covers', () => {
    const { t, k, mm, anon } = populated();
    // The VMA shrinks without its PTEs being zapped (as a split or munmap that forgot the zap would).
    vma_set_range(k, find_vma(k, mm, anon), anon, anon + 4 * 4096);
    const f = checkInvariants(t.m.i32, t.m.layout).findings;
    expect(codes(f)).toContain(InvariantCode.PtePerm);
    expect(f.map((x) => describeInvariant(x.code, x.args).message).join('\n')).toContain('no VMA of its owner covers the address');
  });
});

function first(f: InvariantFinding[]): [number, number[]] {
  expect(f.length).toBeGreaterThan(0);
  return [f[0].code, f[0].args];
}

describe('table ownership by walking (invariant:pt-owner)', () => {
  it('finds a table whose owner field names an mm that does not reach it', () => {
    // As a pt-hint transfer_owner that moved a table (and its pgtables_bytes) to the wrong mm would.
    const { t, k, mm, shared } = populated();
    const other = runOn(k, 1);
    expect(checkInvariants(t.m.i32, t.m.layout).findings).toEqual([]);
    const tbl = entry_table(Atomics.load(t.m.i32, lookup_entry(k, mm, shared / 4096, PMD_LEVEL)));
    Atomics.store(t.m.i32, ptpBase(k, tbl) + P_OWNER, other);
    Atomics.sub(t.m.i32, k.mmBase(mm) + M_PGTABLES, 1);
    Atomics.add(t.m.i32, k.mmBase(other) + M_PGTABLES, 1);
    const f = checkInvariants(t.m.i32, t.m.layout).findings;
    expect(codes(f)).toContain(InvariantCode.PtOwner);
    const d = f.filter((x) => x.code === InvariantCode.PtOwner).map((x) => describeInvariant(x.code, x.args));
    expect(d[0].checker).toBe('invariant:pt-owner');
    expect(d[0].message).toContain(`PTE table #${tbl} is owned by mm ${other}`);
    // (The RSS it holds moved with the owner field: the rss check names both mms too.)
    expect(codes(f)).toContain(InvariantCode.Rss);
  });

  // The documented exception (a host mm's emptied table that guests still point to) is exercised by
  // test/models/address_space.test.ts, "revoking a whole PMD range orphans the shared table":
  // checkInvariants must stay silent there.
});

describe('counters back to zero (invariant:counters)', () => {
  it('check_mm: an mm freed with an rss counter left is found, at quiescence and at the end', () => {
    const { t, k, mm, fd } = populated();
    Atomics.add(t.m.i32, k.mmBase(mm) + M_RSS_FILE, 2);
    sys_close(k, fd);
    switch_mm(k, -1);
    mmput(k, mm);
    const f = checkInvariants(t.m.i32, t.m.layout).findings;
    expect(codes(f)).toEqual([InvariantCode.BadMmFree]);
    const d = describeInvariant(f[0].code, f[0].args);
    expect(d.checker).toBe('invariant:counters');
    expect(d.message).toContain(`BUG: Bad rss-counter state mm:${mm} type:MM_FILEPAGES val:2`);
    for (let task = 0; task < t.m.layout.config.tasks; task++) Atomics.store(t.m.i32, k.taskBase(task) + T_STATE, TASK_EXITED);
    const v = verdict(fakeRun(t)).violations;
    expect(v.map((x) => x.checker)).toContain('invariant:counters');
    expect(v.find((x) => x.checker === 'invariant:counters')!.message).toContain('process 0');
  });

  it('pt-hint: a freed mm may keep file RSS another mm lost, but not anonymous RSS', () => {
    const { t, k, mm, fd } = populated('pt-hint');
    Atomics.add(t.m.i32, k.mmBase(mm) + M_RSS_FILE, 1);
    Atomics.add(t.m.i32, k.mmBase(mm) + M_RSS_ANON, 1);
    sys_close(k, fd);
    switch_mm(k, -1);
    mmput(k, mm);
    const f = checkInvariants(t.m.i32, t.m.layout, { model: 'pt-hint' }).findings;
    // The anon residue is check_mm's; the file one breaks only the machine-wide sum.
    expect(f.map((x) => describeInvariant(x.code, x.args).message).join('\n')).toContain('type:MM_ANONPAGES val:1');
    expect(codes(f)).toContain(InvariantCode.RssTotal);
    for (let task = 0; task < t.m.layout.config.tasks; task++) Atomics.store(t.m.i32, k.taskBase(task) + T_STATE, TASK_EXITED);
    expect(verdict(fakeRun(t, 'pt-hint')).violations.map((x) => x.message).join('\n')).toContain("the freed mms' MM_FILEPAGES add up to 1");
  });

  it('an mm left allocated at the end names its counters', () => {
    const t = testMachine();
    const k = t.cpus[0];
    const mm = mm_alloc(k, -1, 0);
    expect(mm).toBeGreaterThanOrEqual(0);
    for (let task = 0; task < t.m.layout.config.tasks; task++) Atomics.store(t.m.i32, k.taskBase(task) + T_STATE, TASK_EXITED);
    const v = verdict(fakeRun(t)).violations.filter((x) => x.checker === 'invariant:counters');
    expect(v.length).toBe(1);
    expect(v[0].message).toContain(`mm ${mm} is still allocated after every process exited`);
    expect(v[0].message).toContain('pgtables_bytes 4096');
  });
});

describe('stale TLB entries at quiescence (stale-tlb)', () => {
  it('tlb_audit finds a writable entry whose PTE became read-only without a flush, and nothing once flushed', () => {
    const { t, k, mm, shared } = populated();
    expect(STALE_TLB_CODE).toBe(InvariantCode.StaleTlb);
    expect(STALE_TLB_VIOLATION).toBe(InvariantCode.StaleTlb);
    const out = new Int32Array(TLB_ENTRIES);
    expect(mmu_store(k, shared, 3)).toBe(ACCESS_OK);
    expect(tlb_audit(k, out)).toBe(0);
    // The planted bug: the write bit goes, the TLB is not flushed.
    Atomics.and(t.m.i32, pteOff(k, mm, shared), ~_PAGE_RW);
    expect(tlb_audit(k, out)).toBe(1);
    expect(out[0]).toBe((shared / 4096) & TLB_MASK);
    k.local_flush_tlb();
    expect(tlb_audit(k, out)).toBe(0);
  });

  it('a shootdown that forgets a sharer leaves a stale entry at the next all-task barrier: found without any store through it', async () => {
    // map-shared-pt --bug shootdown-forgets-sharers: process 0's mprotect(PROT_READ) flushes only
    // its own CPU. Process 1 stored into the pages before (its TLB holds them writable) and never
    // touches them again, so stale-tlb-write cannot see it; the audit at barrier 2 does.
    const size = 2 * MiB;
    const programs: Program[] = [0, 1].map((p) => {
      const prog: Op[] = mapSharedSegment(p, '/inv', size, 'm', 'map-shared-pt');
      prog.push({ op: 'touch', region: 'm', len: 4 * 4096, write: true });
      prog.push({ op: 'barrier', id: 1 });
      if (p === 0) prog.push({ op: 'shm_unlink', name: '/inv' }, { op: 'mprotect', region: 'm', len: size, prot: ['PROT_READ'] });
      prog.push({ op: 'barrier', id: 2 }, { op: 'exit', code: 0 });
      return prog;
    });
    const config = sizeMachine({ cpus: 2, procs: 2, sharedBytes: size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: 2 ** 30 });
    config.payloadWords = 16;
    const spec = { cpus: 2, config, programs, bug: '', deadlineMs: 5000, lockStatTiming: false, slice: 4, runTimeoutMs: 60_000 };
    const bad = await runMachine({ ...spec, model: 'map-shared-pt', bug: 'shootdown-forgets-sharers' });
    const v = verdict(bad).violations;
    expect(v.map((x) => x.checker)).toContain('stale-tlb');
    const msg = v.find((x) => x.checker === 'stale-tlb')!.message;
    expect(msg).toContain('cpu1 running process 1');
    expect(msg).toContain('writable TLB entry');
    expect(msg).toContain('read-only');
    const good = await runMachine({ ...spec, model: 'map-shared-pt' });
    expect(verdict(good).violations).toEqual([]);
  });
});

describe('clean runs', () => {
  it('scenarios under several models pass every new invariant', async () => {
    for (const [scenario, model] of [['sga', 'none'], ['sga', 'pt-hint'], ['sga', 'mshare'], ['mprotect-vs-fault', 'none'], ['exit-vs-fault', 'pt-hint'], ['viommu', 'address-space']] as const) {
      const r = await runScenario(scenario, parseRunOptions(scenario, { model, ...(scenario === 'sga' ? { procs: '4', size: '8M', ops: '1' } : {}) }));
      expect(r.violations, `${scenario} under ${model}`).toEqual([]);
    }
  });
});
