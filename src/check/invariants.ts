/**
 * Invariants at quiescence (no CPU inside kernel code): walk every live mm's page tables and
 * compare what the kernel's counters say with what the tables hold.
 *
 * - each frame's map count equals the PTEs that map it (a shared PTE table counts once);
 * - each page-table page's share count equals the upper-level entries pointing to it;
 * - each mm's pgtables_bytes equals the pages of the tables it owns that exist;
 * - every live page-table page is reachable (no leaked table), and nothing reachable is free.
 *
 * The same function runs inside the machine (the last task to reach an all-task barrier calls
 * runQuiescentChecks) and on the main thread at the end.
 */
import {
  F_MAPCOUNT, G_LIVE_TASKS, G_PT_SNAP, G_SNAP_TASKS, G_PT_SNAP_HOST, G_RSS_SNAP, G_SNAPS, M_FLAGS, M_PGD, M_PGTABLES, M_RSS_ANON,
  M_RSS_FILE, MM_WORDS, MMF_HOST, P_HDR, P_OWNER, P_SHARE, PTP_WORDS, PTRS_PER_TABLE, R_GEN, R_STATE,
  type Layout,
} from '../shm/layout.js';
import { report_violation, Violation } from '../mm/mmdebug.js';
import type { Kernel } from '../mm/percpu.js';
import { entry_table, entry_tag, PGD_LEVEL, PTE_LEVEL, LEVEL_NAMES } from '../mm/pgtable.js';

export const enum InvariantCode {
  MapCount = 10,
  PtShare = 11,
  PgtablesBytes = 12,
  OrphanTable = 13,
  ReachedFree = 14,
}

export interface InvariantFinding {
  code: InvariantCode;
  args: number[];
}

export interface PageTableCensus {
  /** Page-table pages over every live mm (host mms included). */
  tables: number;
  hostTables: number;
  rss: number;
  mms: number;
}

/** Walks every live mm; returns the findings (at most `max`) and a census of the tables. */
export function checkInvariants(i32: Int32Array, l: Layout, max = 16): { findings: InvariantFinding[]; census: PageTableCensus } {
  const c = l.config;
  const findings: InvariantFinding[] = [];
  const add = (code: InvariantCode, ...args: number[]) => {
    if (findings.length < max) findings.push({ code, args });
  };
  const tableRefs = new Int32Array(c.ptPages);
  const visited = new Uint8Array(c.ptPages);
  const frameRefs = new Int32Array(c.frames);
  const owned = new Int32Array(c.mms);
  const census: PageTableCensus = { tables: 0, hostTables: 0, rss: 0, mms: 0 };
  const tb = (t: number) => l.ptps + t * PTP_WORDS;

  const visit = (t: number, level: number): void => {
    visited[t] = 1;
    for (let i = 0; i < PTRS_PER_TABLE; i++) {
      const e = Atomics.load(i32, tb(t) + P_HDR + i);
      if (e === 0) continue;
      if (level === PTE_LEVEL) {
        if (e & 1) frameRefs[e >>> 5]++;
        continue;
      }
      const child = entry_table(e);
      const st = Atomics.load(i32, tb(child) + R_STATE);
      if (st !== level - 1 || (Atomics.load(i32, tb(child) + R_GEN) & 63) !== entry_tag(e)) {
        add(InvariantCode.ReachedFree, child, t, level - 1, st);
        continue;
      }
      tableRefs[child]++;
      if (!visited[child]) visit(child, level - 1);
    }
  };

  for (let mm = 0; mm < c.mms; mm++) {
    const mb = l.mms + mm * MM_WORDS;
    if (Atomics.load(i32, mb + R_STATE) === 0) continue;
    census.mms++;
    census.rss += Atomics.load(i32, mb + M_RSS_FILE) + Atomics.load(i32, mb + M_RSS_ANON);
    const pgd = Atomics.load(i32, mb + M_PGD);
    tableRefs[pgd]++;
    visit(pgd, PGD_LEVEL);
  }
  for (let t = 0; t < c.ptPages; t++) {
    const st = Atomics.load(i32, tb(t) + R_STATE);
    if (st === 0) continue;
    const owner = Atomics.load(i32, tb(t) + P_OWNER);
    owned[owner]++;
    census.tables++;
    if ((Atomics.load(i32, l.mms + owner * MM_WORDS + M_FLAGS) & MMF_HOST) !== 0) census.hostTables++;
    if (!visited[t]) {
      add(InvariantCode.OrphanTable, t, owner, st);
      continue;
    }
    const share = Atomics.load(i32, tb(t) + P_SHARE);
    if (share !== tableRefs[t]) add(InvariantCode.PtShare, t, share, tableRefs[t], st);
  }
  for (let mm = 0; mm < c.mms; mm++) {
    const mb = l.mms + mm * MM_WORDS;
    if (Atomics.load(i32, mb + R_STATE) === 0) continue;
    const counted = Atomics.load(i32, mb + M_PGTABLES);
    if (counted !== owned[mm]) add(InvariantCode.PgtablesBytes, mm, counted, owned[mm]);
  }
  for (let f = 0; f < c.frames; f++) {
    const fb = l.frames + f * l.frameWords;
    if (Atomics.load(i32, fb + R_STATE) === 0) {
      if (frameRefs[f] !== 0) add(InvariantCode.MapCount, f, 0, frameRefs[f], 0);
      continue;
    }
    const mc = Atomics.load(i32, fb + F_MAPCOUNT);
    if (mc !== frameRefs[f]) add(InvariantCode.MapCount, f, mc, frameRefs[f], 1);
  }
  return { findings, census };
}

/** The quiescent hook: snapshot the census for the report, and stop the machine on a finding. */
export function runQuiescentChecks(k: Kernel): void {
  const { findings, census } = checkInvariants(k.i32, k.layout);
  Atomics.store(k.i32, G_PT_SNAP, census.tables);
  Atomics.store(k.i32, G_SNAP_TASKS, Atomics.load(k.i32, G_LIVE_TASKS));
  Atomics.store(k.i32, G_PT_SNAP_HOST, census.hostTables);
  Atomics.store(k.i32, G_RSS_SNAP, census.rss);
  Atomics.add(k.i32, G_SNAPS, 1);
  for (const f of findings) report_violation(k.i32, k.layout, Violation.Invariant, k.cpu, f.code, ...f.args);
}

export function describeInvariant(code: number, a: number[]): { checker: string; message: string } {
  switch (code) {
    case InvariantCode.MapCount:
      return { checker: 'invariant:mapcount', message: `frame ${a[0]}${a[3] ? '' : ' (free)'} has map count ${a[1]} but ${a[2]} PTEs map it` };
    case InvariantCode.PtShare:
      return { checker: 'invariant:pt-share', message: `${LEVEL_NAMES[a[3]]} table #${a[0]} has share count ${a[1]} but ${a[2]} entries point to it` };
    case InvariantCode.PgtablesBytes:
      return { checker: 'invariant:pgtables-bytes', message: `mm ${a[0]} accounts ${a[1] * 4096} pgtables_bytes but owns ${a[2] * 4096} bytes of tables` };
    case InvariantCode.OrphanTable:
      return { checker: 'leak', message: `${LEVEL_NAMES[a[2]]} table #${a[0]} (owner mm ${a[1]}) is allocated but no live mm reaches it` };
    case InvariantCode.ReachedFree:
      return { checker: 'use-after-free', message: `table #${a[1]} points to ${LEVEL_NAMES[a[2]]} table #${a[0]}, which is free or reused (state ${a[3]})` };
    default:
      return { checker: 'invariant', message: `invariant ${code} (${a.join(', ')})` };
  }
}

export { R_GEN };
