/**
 * Invariants at quiescence (no CPU inside kernel code): walk every live mm's page tables and
 * compare what the kernel's counters say with what the tables hold.
 *
 * - each frame's map count equals the PTEs that map it (a shared PTE table counts once);
 * - each page-table page's share count equals the upper-level entries pointing to it;
 * - each mm's pgtables_bytes equals the pages of the tables it owns that exist;
 * - every live page-table page is reachable (no leaked table), and nothing reachable is free;
 * - each mm's RSS counters equal the present PTEs of each kind in the tables it owns
 *   ('invariant:rss'; pt-hint's file RSS is checked machine-wide instead);
 * - no present PTE grants more than the VMA that covers it ('invariant:pte-perm');
 * - each table's owner reaches it by walking its own tables ('invariant:pt-owner');
 * - every mm freed so far was freed with its counters at zero (check_mm; 'invariant:counters').
 *
 * The same function runs inside the machine (the last task to reach an all-task barrier calls
 * runQuiescentChecks) and on the main thread at the end. The stale-TLB check runs on each CPU
 * itself (its TLB is CPU-local) in the same quiescent window: the releasing CPU asks every CPU to
 * audit its TLB and waits for them (src/mm/tlb.ts tlb_audit_all, src/proc/cpu.ts tlbAudit); its
 * findings are named here ('stale-tlb').
 */
import {
  F_MAPCOUNT, F_UFFD_WP, FRAME_ANON, FRAME_FILE, G_BADMM_ANON, G_BADMM_FILE, G_BADMM_FILE_MM, G_BADMM_FILE_TASK, G_BADMM_MM,
  G_BADMM_PGTABLES, G_BADMM_TASK, G_LIVE_TASKS, G_PT_SNAP, G_RETIRED_RSS_FILE,
  G_SNAP_TASKS, G_PT_SNAP_HOST, G_RSS_SNAP, G_SNAPS, M_FLAGS, M_PGD, M_PGTABLES, M_RSS_ANON,
  M_RSS_FILE, M_VMA_HEAD, MM_WORDS, MMF_HOST, P_HDR, P_OWNER, P_SHARE, P_UFFD_WP, PTP_WORDS, PTRS_PER_TABLE, R_GEN, R_STATE,
  U_ACTIVE, V_END_HI, V_END_LO, V_FLAGS, V_NEXT, V_START_HI, V_START_LO, VMA_WORDS,
  type Layout,
} from '../shm/layout.js';
import { report_violation, Violation } from '../mm/mmdebug.js';
import type { Kernel } from '../mm/percpu.js';
import { _PAGE_RW, _PAGE_USER, entry_table, entry_tag, PGD_LEVEL, PTE_LEVEL, LEVEL_NAMES } from '../mm/pgtable.js';
import { STALE_TLB_VIOLATION } from '../mm/tlb.js';
import { VM_ACCESS_FLAGS, VM_SHARED, VM_WRITE } from '../mm/vma.js';

export const enum InvariantCode {
  MapCount = 10,
  PtShare = 11,
  PgtablesBytes = 12,
  OrphanTable = 13,
  ReachedFree = 14,
  /** args: mm, kind (0 file, 1 anon), the counter, the PTEs. */
  Rss = 15,
  /** pt-hint's machine-wide file RSS. args: live mms' sum, freed mms' sum, the PTEs. */
  RssTotal = 16,
  /** args: owner mm, address hi, lo, the PTE, PtePermWhy | (vm_flags & 0xffff) << 4. */
  PtePerm = 17,
  /** args: table, owner mm, level, 1 if the owner mm is live, present entries in it. */
  PtOwner = 18,
  /** check_mm at __mmdrop. args: mm, task + 1 (0: a host mm), 0 file RSS / 1 anon RSS / 2 pgtables, its value. */
  BadMmFree = 19,
  /** Found by a CPU (src/proc/cpu.ts): args task, address hi, lo, frame << 1 | writable, the PTE now. */
  StaleTlb = 20,
}

/** Why a PTE grants more than its VMA (InvariantCode.PtePerm). */
export const enum PtePermWhy {
  NoVma = 0,
  UserInProtNone = 1,
  WriteWithoutVmWrite = 2,
  WritePrivateFilePage = 3,
  WriteSharedAnonPage = 4,
  WriteUffdWp = 5,
}

const PTE_PERM_WHY = [
  'no VMA of its owner covers the address',
  'it allows user access in a PROT_NONE VMA',
  'it is writable in a VMA without VM_WRITE',
  'it is writable in a private mapping but maps a page-cache page (copy-on-write skipped: do_cow_fault / wp_page_copy)',
  'it is writable in a private mapping but maps an anonymous page other PTEs map too (copy-on-write not broken: wp_can_reuse_anon_folio)',
  'it is writable but the page is write-protected by userfaultfd (uffd-wp marker or page-cache flag)',
];

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

export interface InvariantOptions {
  /** The sharing model of the run (its RSS rule); default 'none'. */
  model?: string;
  /** Findings kept, at most. */
  max?: number;
}

const TWO32 = 2 ** 32;

/**
 * Models whose per-mm file RSS follows the faulting mm rather than the table's owner. pt-hint, as
 * hugetlb PMD sharing: the fault runs in the faulting mm (hugetlb_no_page adds to the faulting
 * mm's count), huge_pmd_unshare moves no count, and the zap of a shared table is done once, by
 * the mm whose zap reaches it (ptlab: its owner), from whose count every page is taken. So one
 * mm's file RSS may hold pages another mm's table maps, and may even go negative; and an mm that
 * unshared may be freed with a non-zero file RSS. (Linux keeps hugetlb pages out of the rss
 * counters that check_mm audits, hugetlb_usage apart; ptlab counts shmem in M_RSS_FILE.)
 */
export const RSS_FOLLOWS_FAULTER: ReadonlySet<string> = new Set(['pt-hint']);

/** Walks every live mm; returns the findings (at most `max`) and a census of the tables. */
export function checkInvariants(i32: Int32Array, l: Layout, opts: InvariantOptions | number = {}): { findings: InvariantFinding[]; census: PageTableCensus } {
  const o = typeof opts === 'number' ? { max: opts } : opts;
  const max = o.max ?? 16;
  const rssFollowsFaulter = RSS_FOLLOWS_FAULTER.has(o.model ?? 'none');
  const c = l.config;
  const findings: InvariantFinding[] = [];
  const add = (code: InvariantCode, ...args: number[]) => {
    if (findings.length < max) findings.push({ code, args });
  };
  const tableRefs = new Int32Array(c.ptPages);
  const visited = new Uint8Array(c.ptPages);
  const frameRefs = new Int32Array(c.frames);
  const owned = new Int32Array(c.mms);
  // Present PTEs of each kind in the tables each mm owns; their sum over all tables.
  const ptesFile = new Int32Array(c.mms);
  const ptesAnon = new Int32Array(c.mms);
  let allFile = 0;
  const census: PageTableCensus = { tables: 0, hostTables: 0, rss: 0, mms: 0 };
  const tb = (t: number) => l.ptps + t * PTP_WORDS;
  const fb = (f: number) => l.frames + f * l.frameWords;
  const mmLive = (mm: number) => mm >= 0 && mm < c.mms && Atomics.load(i32, l.mms + mm * MM_WORDS + R_STATE) !== 0;

  // Ownership first (upper-level tables only): which tables their owner reaches, and where.
  const own = ownerWalk(i32, l);
  const ownerReached = own.reached;
  const uffd = Atomics.load(i32, l.uffd + U_ACTIVE) !== 0;
  const vmasOf = new Map<number, Float64Array>();

  const visit = (t: number, level: number): void => {
    visited[t] = 1;
    if (level === PTE_LEVEL) {
      const owner = Atomics.load(i32, tb(t) + P_OWNER);
      // Permissions are judged where the owner maps the table (a host's table by the host's VMAs).
      let vmas: Float64Array | null = null;
      if (ownerReached[t]) {
        vmas = vmasOf.get(owner) ?? null;
        if (vmas === null) vmasOf.set(owner, (vmas = vmaTriples(i32, l, owner)));
      }
      const baseVpn = own.base[t];
      let v = 0; // the owner's VMAs by address; the entries go up in address too
      let nf = 0;
      let na = 0;
      for (let i = 0; i < PTRS_PER_TABLE; i++) {
        const e = Atomics.load(i32, tb(t) + P_HDR + i);
        if ((e & 1) === 0) continue;
        const f = e >>> 5;
        frameRefs[f]++;
        const st = Atomics.load(i32, fb(f) + R_STATE);
        if (st === FRAME_FILE) nf++;
        else if (st === FRAME_ANON) na++;
        if (vmas !== null) {
          const addr = (baseVpn + i) * 4096;
          while (v < vmas.length && vmas[v + 1] <= addr) v += 3;
          const flags = v < vmas.length && vmas[v] <= addr ? vmas[v + 2] : -1;
          const why = ptePermWhy(i32, l, t, i, e, st, flags, uffd);
          if (why >= 0) add(InvariantCode.PtePerm, owner, Math.floor(addr / TWO32), addr % TWO32 | 0, e, why | ((Math.max(flags, 0) & 0xffff) << 4));
        }
      }
      allFile += nf;
      if (owner >= 0 && owner < c.mms) {
        ptesFile[owner] += nf;
        ptesAnon[owner] += na;
      }
      return;
    }
    for (let i = 0; i < PTRS_PER_TABLE; i++) {
      const e = Atomics.load(i32, tb(t) + P_HDR + i);
      if (e === 0) continue;
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

  let liveFile = 0;
  for (let mm = 0; mm < c.mms; mm++) {
    const mb = l.mms + mm * MM_WORDS;
    if (Atomics.load(i32, mb + R_STATE) === 0) continue;
    census.mms++;
    census.rss += Atomics.load(i32, mb + M_RSS_FILE) + Atomics.load(i32, mb + M_RSS_ANON);
    liveFile += Atomics.load(i32, mb + M_RSS_FILE);
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
    if (!ownerReached[t]) {
      // Its owner does not reach it, but other mms do. The one documented case: a host mm let go
      // of an emptied table that guests still point to — address-space's AS_MUNMAP and mshare's
      // MSHAREFS_UNMAP / owner exit (free_pgtables on the host drops its entry; pt_put keeps the
      // table for the guests, empty and flushed, until the last of them drops it). It must be
      // empty and its owner a live host mm; anything else is a table accounted to an mm that no
      // longer uses it (pt-hint's transfer_owner missing a sharer, a freed owner).
      const live = mmLive(owner);
      const n = presentEntries(i32, tb(t));
      const hostOrphan = live && (Atomics.load(i32, l.mms + owner * MM_WORDS + M_FLAGS) & MMF_HOST) !== 0 && n === 0;
      if (!hostOrphan) add(InvariantCode.PtOwner, t, owner, st, live ? 1 : 0, n);
    }
  }
  for (let mm = 0; mm < c.mms; mm++) {
    const mb = l.mms + mm * MM_WORDS;
    if (Atomics.load(i32, mb + R_STATE) === 0) continue;
    const counted = Atomics.load(i32, mb + M_PGTABLES);
    if (counted !== owned[mm]) add(InvariantCode.PgtablesBytes, mm, counted, owned[mm]);
    // RSS (mm_counter / check_mm's rss_stat): the present PTEs of each kind in the tables the mm
    // owns. Every model but pt-hint counts a page to the mm in whose tables the fault put it: a
    // process's own tables (none; fork's copies), or the host mm for a table shared through a
    // host (map-shared-pt, container-fd, address-space, mshare: the fault runs in the host's
    // context, vmf.enterHost, and guests own no PTE table of the shared range), so the owner's
    // count is exact. pt-hint: anonymous pages never sit in a shareable (MAP_SHARED shmem) table,
    // so anon RSS is exact per mm; file RSS is checked machine-wide below.
    const anon = Atomics.load(i32, mb + M_RSS_ANON);
    if (anon !== ptesAnon[mm]) add(InvariantCode.Rss, mm, 1, anon, ptesAnon[mm]);
    if (!rssFollowsFaulter) {
      const file = Atomics.load(i32, mb + M_RSS_FILE);
      if (file !== ptesFile[mm]) add(InvariantCode.Rss, mm, 0, file, ptesFile[mm]);
    }
  }
  // pt-hint (RSS_FOLLOWS_FAULTER): a page's count moves between mms only by its fault and its
  // zap, so what holds is the machine-wide sum: the live mms' file RSS plus what freed mms still
  // counted (check_mm's sums) equals the present file PTEs of every table, each table once.
  const retiredFile = Atomics.load(i32, G_RETIRED_RSS_FILE);
  if (rssFollowsFaulter && liveFile + retiredFile !== allFile) add(InvariantCode.RssTotal, liveFile, retiredFile, allFile);
  // check_mm: no mm is freed with an rss counter or pgtables_bytes left (pt-hint's file RSS apart).
  const bad = Atomics.load(i32, G_BADMM_MM);
  if (bad !== 0) {
    const anon = Atomics.load(i32, G_BADMM_ANON);
    add(InvariantCode.BadMmFree, bad - 1, Atomics.load(i32, G_BADMM_TASK), anon !== 0 ? 1 : 2, anon !== 0 ? anon : Atomics.load(i32, G_BADMM_PGTABLES));
  }
  const badFile = Atomics.load(i32, G_BADMM_FILE_MM);
  if (badFile !== 0 && !rssFollowsFaulter) add(InvariantCode.BadMmFree, badFile - 1, Atomics.load(i32, G_BADMM_FILE_TASK), 0, Atomics.load(i32, G_BADMM_FILE));
  for (let f = 0; f < c.frames; f++) {
    const fbase = fb(f);
    if (Atomics.load(i32, fbase + R_STATE) === 0) {
      if (frameRefs[f] !== 0) add(InvariantCode.MapCount, f, 0, frameRefs[f], 0);
      continue;
    }
    const mc = Atomics.load(i32, fbase + F_MAPCOUNT);
    if (mc !== frameRefs[f]) add(InvariantCode.MapCount, f, mc, frameRefs[f], 1);
  }
  return { findings, census };
}

function presentEntries(i32: Int32Array, base: number): number {
  let n = 0;
  for (let i = 0; i < PTRS_PER_TABLE; i++) if (Atomics.load(i32, base + P_HDR + i) !== 0) n++;
  return n;
}

/**
 * Table ownership by walking, not by the owner field: each live mm walks down from its PGD
 * through the upper-level tables it owns, marking the tables it owns that it reaches, and where
 * (`base`: the owner's page number of the table's first entry). Only upper-level tables are read,
 * so this is cheap beside the main walk, which then checks each reached PTE table's present PTEs
 * against its owner's VMAs at the owner's addresses: a table reached from a host mm is judged by
 * the host's VMAs, whatever address a guest reaches it at.
 */
function ownerWalk(i32: Int32Array, l: Layout): { reached: Uint8Array; base: Float64Array } {
  const c = l.config;
  const reached = new Uint8Array(c.ptPages);
  const base = new Float64Array(c.ptPages);
  const tb = (t: number) => l.ptps + t * PTP_WORDS;
  for (let mm = 0; mm < c.mms; mm++) {
    const mb = l.mms + mm * MM_WORDS;
    if (Atomics.load(i32, mb + R_STATE) === 0) continue;
    const pgd = Atomics.load(i32, mb + M_PGD);
    if (Atomics.load(i32, tb(pgd) + P_OWNER) !== mm) continue;
    reached[pgd] = 1;
    const down = (t: number, level: number, baseVpn: number): void => {
      const span = level === PGD_LEVEL ? 2 ** 27 : level === 3 ? 2 ** 18 : 512; // pages per entry
      for (let i = 0; i < PTRS_PER_TABLE; i++) {
        const e = Atomics.load(i32, tb(t) + P_HDR + i);
        if (e === 0) continue;
        const child = entry_table(e);
        if (child >= c.ptPages || Atomics.load(i32, tb(child) + R_STATE) !== level - 1 || (Atomics.load(i32, tb(child) + R_GEN) & 63) !== entry_tag(e)) continue;
        if (Atomics.load(i32, tb(child) + P_OWNER) !== mm || reached[child]) continue;
        reached[child] = 1;
        base[child] = baseVpn + i * span;
        if (level - 1 !== PTE_LEVEL) down(child, level - 1, base[child]);
      }
    };
    down(pgd, PGD_LEVEL, 0);
  }
  return { reached, base };
}

function vmaTriples(i32: Int32Array, l: Layout, mm: number): Float64Array {
  const out: number[] = [];
  for (let v = Atomics.load(i32, l.mms + mm * MM_WORDS + M_VMA_HEAD), n = 0; v >= 0 && n < l.config.vmas; n++) {
    const b = l.vmas + v * VMA_WORDS;
    out.push(
      Atomics.load(i32, b + V_START_HI) * TWO32 + (Atomics.load(i32, b + V_START_LO) >>> 0),
      Atomics.load(i32, b + V_END_HI) * TWO32 + (Atomics.load(i32, b + V_END_LO) >>> 0),
      Atomics.load(i32, b + V_FLAGS),
    );
    v = Atomics.load(i32, b + V_NEXT);
  }
  return Float64Array.from(out);
}

/**
 * No PTE grants more than its VMA (vm_get_page_prot, and the copy-on-write and uffd-wp rules the
 * fault path keeps): for present PTE `e` (entry `i` of table `t`, frame state `st`) under owner
 * VMA flags `flags` (-1: no VMA of the owner there), the VMA must exist; a PTE with _PAGE_USER
 * needs an accessible VMA (a PROT_NONE VMA's PTEs are present without _PAGE_USER); a writable PTE
 * needs VM_WRITE, and in a private mapping an anonymous page no other PTE maps (a page-cache page
 * is copied first: do_cow_fault / wp_page_copy; fork write-protects both sides); and a page
 * write-protected by userfaultfd (a marker beside the PTE, or the page-cache flag) is never
 * writable. At quiescence no mprotect, zap or uffd-wp change is half done, so no PTE is in a
 * transient state. Returns a PtePermWhy, or -1.
 */
function ptePermWhy(i32: Int32Array, l: Layout, t: number, i: number, e: number, st: number, flags: number, uffd: boolean): number {
  if (flags < 0) return PtePermWhy.NoVma;
  if ((e & _PAGE_USER) !== 0 && (flags & VM_ACCESS_FLAGS) === 0) return PtePermWhy.UserInProtNone;
  if ((e & _PAGE_RW) === 0) return -1;
  if ((flags & VM_WRITE) === 0) return PtePermWhy.WriteWithoutVmWrite;
  const fbase = l.frames + (e >>> 5) * l.frameWords;
  if ((flags & VM_SHARED) === 0 && st === FRAME_FILE) return PtePermWhy.WritePrivateFilePage;
  if ((flags & VM_SHARED) === 0 && st === FRAME_ANON && Atomics.load(i32, fbase + F_MAPCOUNT) > 1) return PtePermWhy.WriteSharedAnonPage;
  if (uffd && ((Atomics.load(i32, l.ptps + t * PTP_WORDS + P_UFFD_WP + (i >>> 5)) & (1 << (i & 31))) !== 0 || Atomics.load(i32, fbase + F_UFFD_WP) !== 0)) {
    return PtePermWhy.WriteUffdWp;
  }
  return -1;
}

/** The quiescent hook: snapshot the census for the report, and stop the machine on a finding. */
export function runQuiescentChecks(k: Kernel): void {
  const { findings, census } = checkInvariants(k.i32, k.layout, { model: k.model?.name });
  Atomics.store(k.i32, G_PT_SNAP, census.tables);
  Atomics.store(k.i32, G_SNAP_TASKS, Atomics.load(k.i32, G_LIVE_TASKS));
  Atomics.store(k.i32, G_PT_SNAP_HOST, census.hostTables);
  Atomics.store(k.i32, G_RSS_SNAP, census.rss);
  Atomics.add(k.i32, G_SNAPS, 1);
  for (const f of findings) report_violation(k.i32, k.layout, Violation.Invariant, k.cpu, f.code, ...f.args);
}

const hex = (hi: number, lo: number) => '0x' + (hi * TWO32 + (lo >>> 0)).toString(16);
const hex32 = (x: number) => '0x' + (x >>> 0).toString(16);

/** A PTE's flags for people. */
function pteText(e: number): string {
  if ((e & 1) === 0) return e === 0 ? 'none' : `${hex32(e)} (not present)`;
  return `${hex32(e)} (frame ${e >>> 5}, ${(e & _PAGE_USER) === 0 ? 'no user access' : (e & _PAGE_RW) !== 0 ? 'read-write' : 'read-only'})`;
}

/** vm_flags' access and sharing bits for people. */
function vmFlagsText(f: number): string {
  const acc = (f & 1 ? 'r' : '-') + (f & 2 ? 'w' : '-') + (f & 4 ? 'x' : '-') + (f & VM_SHARED ? 's' : 'p');
  return acc + (f & 0x1000 ? ' uffd-wp' : '');
}

/**
 * Renders an invariant finding. `mmName` names an mm for people (index.ts gives "process 3 (mm
 * 5)" or "host mm 7"); `taskName` a task; `cpu` the CPU that found it, for the CPU-side checks.
 */
export function describeInvariant(
  code: number, a: number[], mmName: (mm: number) => string = (mm) => `mm ${mm}`, taskName: (t: number) => string = (t) => `process ${t}`, cpu = -1,
): { checker: string; message: string } {
  switch (code) {
    case InvariantCode.MapCount:
      return { checker: 'invariant:mapcount', message: `frame ${a[0]}${a[3] ? '' : ' (free)'} has map count ${a[1]} but ${a[2]} PTEs map it` };
    case InvariantCode.PtShare:
      return { checker: 'invariant:pt-share', message: `${LEVEL_NAMES[a[3]]} table #${a[0]} has share count ${a[1]} but ${a[2]} entries point to it` };
    case InvariantCode.PgtablesBytes:
      return { checker: 'invariant:pgtables-bytes', message: `${mmName(a[0])} accounts ${a[1] * 4096} pgtables_bytes but owns ${a[2] * 4096} bytes of tables` };
    case InvariantCode.OrphanTable:
      return { checker: 'leak', message: `${LEVEL_NAMES[a[2]]} table #${a[0]} (owner ${mmName(a[1])}) is allocated but no live mm reaches it` };
    case InvariantCode.ReachedFree:
      return { checker: 'use-after-free', message: `table #${a[1]} points to ${LEVEL_NAMES[a[2]]} table #${a[0]}, which is free or reused (state ${a[3]})` };
    case InvariantCode.Rss: {
      const type = a[1] === 0 ? 'MM_FILEPAGES' : 'MM_ANONPAGES';
      return {
        checker: 'invariant:rss',
        message: `${mmName(a[0])}: rss counter ${type} is ${a[2]}, but the page tables it owns hold ${a[3]} present ${a[1] === 0 ? 'page-cache' : 'anonymous'} PTEs`,
      };
    }
    case InvariantCode.RssTotal:
      return {
        checker: 'invariant:rss',
        message: `machine-wide file RSS (pt-hint's rule): the live mms count ${a[0]} and freed mms left ${a[1]}, together ${a[0] + a[1]}, ` +
          `but the page tables hold ${a[2]} present page-cache PTEs`,
      };
    case InvariantCode.PtePerm: {
      const why = a[4] & 15;
      return {
        checker: 'invariant:pte-perm',
        message: `${mmName(a[0])}: the PTE at ${hex(a[1], a[2])} is ${pteText(a[3])}, but ${PTE_PERM_WHY[why] ?? `rule ${why}`}` +
          (why === PtePermWhy.NoVma ? '' : ` (VMA ${vmFlagsText(a[4] >>> 4)})`),
      };
    }
    case InvariantCode.PtOwner:
      return {
        checker: 'invariant:pt-owner',
        message: `${LEVEL_NAMES[a[2]]} table #${a[0]} is owned by ${a[3] ? mmName(a[1]) : `mm ${a[1]}, which is freed,`} (and accounted in its pgtables_bytes), ` +
          `but that mm does not reach it by walking its own tables; other mms still do (${a[4]} entries in it)`,
      };
    case InvariantCode.BadMmFree: {
      const who = a[1] > 0 ? `${taskName(a[1] - 1)}'s mm ${a[0]}` : `host mm ${a[0]}`;
      return a[2] === 2
        ? { checker: 'invariant:counters', message: `BUG: non-zero pgtables_bytes on freeing mm: ${a[3] * 4096} (check_mm: ${who} was freed still accounting ${a[3]} page-table pages)` }
        : { checker: 'invariant:counters', message: `BUG: Bad rss-counter state mm:${a[0]} type:${a[2] === 0 ? 'MM_FILEPAGES' : 'MM_ANONPAGES'} val:${a[3]} (check_mm: ${who} was freed with it)` };
    }
    case InvariantCode.StaleTlb: {
      const frame = Math.floor((a[3] >>> 0) / 2);
      return {
        checker: 'stale-tlb',
        message: `${cpu >= 0 ? `cpu${cpu}` : 'a CPU'} running ${taskName(a[0])} still held a ${a[3] & 1 ? 'writable' : 'read-only'} TLB entry for ${hex(a[1], a[2])} -> frame ${frame} ` +
          `when every task had reached a barrier (all shootdowns acknowledged), but the PTE is ${pteText(a[4])}: a shootdown missed this CPU`,
      };
    }
    default:
      return { checker: 'invariant', message: `invariant ${code} (${a.join(', ')})` };
  }
}

/** The code the CPU-side stale-TLB check reports under (src/mm/tlb.ts: mm cannot import check). */
export const STALE_TLB_CODE: number = STALE_TLB_VIOLATION;

export { R_GEN };
