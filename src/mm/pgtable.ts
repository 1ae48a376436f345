/**
 * x86-64 4-level page tables (arch/x86/include/asm/pgtable*.h, mm/pgtable-generic.c).
 *
 * Entries are 32-bit words so that one compareExchange changes one. Leaf entries (PTEs) hold the
 * page frame number in bits 5..31 — 2^27 frames, the seed's whole 512 GiB machine — and the five
 * flags the hardware walker needs. Upper-level entries hold the table's pool index in bits 5..25
 * and, in bits 26..31, the low six bits of that table's generation: the walker compares them with
 * the table's generation, so an entry left pointing at a freed (or freed and reused) table is
 * caught as a use-after-free on the spot rather than silently followed. (Real x86 keeps such
 * software bits in the entry's ignored bits; ptlab spends them on this check.)
 *
 * Memory is accounted as x86-64 would: 8-byte entries, 512 to a 4 KiB table.
 */
import { P_HDR, PTP_WORDS, R_GEN, R_STATE } from '../shm/layout.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { report_violation, Violation } from './mmdebug.js';
import type { Kernel } from './percpu.js';
import { alloc_ptp, free_ptp, ptpBase } from './page_alloc.js';
import { AssertSite, guard_upper_populate } from './guarded.js';

export const _PAGE_PRESENT = 1;
export const _PAGE_RW = 2;
export const _PAGE_USER = 4;
export const _PAGE_ACCESSED = 8;
export const _PAGE_DIRTY = 16;
export const _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
const PFN_SHIFT = 5;
const TABLE_MASK = (1 << 21) - 1;
export const MAX_PTPS = 1 << 21;
export const MAX_FRAMES = 1 << 27;

// Levels, stored in the page-table page's R_STATE (0 = free).
export const PTE_LEVEL = 1;
export const PMD_LEVEL = 2;
export const PUD_LEVEL = 3;
export const PGD_LEVEL = 4;
export const LEVEL_NAMES = ['free', 'PTE', 'PMD', 'PUD', 'PGD'];

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PMD_SIZE = 2 * 1024 * 1024;
export const PUD_SIZE = 1024 * 1024 * 1024;
export const PGDIR_SIZE = 512 * PUD_SIZE;
export const TASK_SIZE = 0x7ffffffff000; // 47-bit user address space, as on x86-64 with 4 levels

// ---- encoders ----
export function mk_pte(pfn: number, flags: number): number {
  return ((pfn << PFN_SHIFT) | flags) | 0;
}
export function pte_pfn(e: number): number {
  return e >>> PFN_SHIFT;
}
export function mk_table_entry(t: number, gen: number): number {
  return (((gen & 63) << 26) | (t << PFN_SHIFT) | _PAGE_TABLE) | 0;
}
export function entry_table(e: number): number {
  return (e >>> PFN_SHIFT) & TABLE_MASK;
}
export function entry_tag(e: number): number {
  return e >>> 26;
}
export function pte_present(e: number): boolean {
  return (e & _PAGE_PRESENT) !== 0;
}
export function pte_write(e: number): boolean {
  return (e & _PAGE_RW) !== 0;
}

// ---- migration entries (include/linux/swapops.h) ----
// A non-present PTE that is not none is a swap entry; ptlab has no swap, so the only kind is the
// migration entry that try_to_migrate_one leaves while a page moves (make_readable_ /
// make_writable_migration_entry). It keeps the old frame (pfn_swap_entry_folio), whether the
// mapping was writable, and the accessed and dirty bits (make_migration_entry_young / _dirty),
// in the bits the hardware walker ignores while _PAGE_PRESENT is clear. The _PAGE_USER position
// marks it, so that a migration entry is never 0 (none), whatever its frame.
const SWP_MIGRATION = _PAGE_USER;
export function make_migration_entry(pte: number): number {
  return (pte & ~(_PAGE_PRESENT | _PAGE_USER)) | SWP_MIGRATION;
}
/** is_migration_entry(pte_to_swp_entry(e)): every non-none, non-present PTE here. */
export function is_migration_entry(e: number): boolean {
  return e !== 0 && (e & _PAGE_PRESENT) === 0;
}
export function is_writable_migration_entry(e: number): boolean {
  return (e & _PAGE_RW) !== 0;
}

// ---- indices (vpn = address / 4096, up to 2^36: low 32 bits are exact under `>>>`) ----
export function pte_index(vpn: number): number {
  return vpn & 511;
}
export function pmd_index(vpn: number): number {
  return (vpn >>> 9) & 511;
}
export function pud_index(vpn: number): number {
  return (vpn >>> 18) & 511;
}
export function pgd_index(vpn: number): number {
  return Math.floor(vpn / 134217728) & 511; // 2^27 pages per PGD entry
}
export function index_at(vpn: number, level: number): number {
  switch (level) {
    case PGD_LEVEL: return pgd_index(vpn);
    case PUD_LEVEL: return pud_index(vpn);
    case PMD_LEVEL: return pmd_index(vpn);
    default: return pte_index(vpn);
  }
}
/** Bytes one entry of a table at `level` maps. */
export function entry_span(level: number): number {
  return level === PGD_LEVEL ? PGDIR_SIZE : level === PUD_LEVEL ? PUD_SIZE : level === PMD_LEVEL ? PMD_SIZE : PAGE_SIZE;
}

/** Word offset of entry `idx` of table `t`. */
export function entry_off(k: Kernel, t: number, idx: number): number {
  return k.ptps.base + t * PTP_WORDS + P_HDR + idx;
}

/**
 * The table an upper-level entry points to, checked against the table's generation and level.
 * A dangling entry is reported as a use-after-free (and stops the machine): returns -1 then.
 */
export function table_of(k: Kernel, e: number, level: number, viaMm: number): number {
  const i32 = k.i32;
  const t = entry_table(e);
  const b = k.ptps.base + t * PTP_WORDS;
  const gen = Atomics.load(i32, b + R_GEN);
  const st = Atomics.load(i32, b + R_STATE);
  if ((gen & 63) === entry_tag(e) && st === level) return t;
  report_violation(i32, k.layout, st === 0 || (gen & 63) !== entry_tag(e) ? Violation.UafPageTable : Violation.BadTable,
    k.cpu, t, level, entry_tag(e), gen, viaMm, st);
  return -1;
}

export const ALLOC_OOM = -2;
export const ALLOC_UAF = -1;

/**
 * __pud_alloc / __pmd_alloc / __pte_alloc: the table below the entry at `off`, allocating one
 * for `mm` when the entry is none. Linux populates under mm->page_table_lock after checking that
 * no one else did ("Has another populated it?"); ptlab does the same with one compareExchange on
 * the entry, which is what that lock protects. Returns the table, ALLOC_OOM or ALLOC_UAF.
 * Called with mmap_lock held (for read at least) on `mm`.
 */
export function table_alloc(k: Kernel, off: number, mm: number, level: number): number {
  const i32 = k.i32;
  let e = Atomics.load(i32, off);
  // The entry read without the lock that populates it: another CPU may populate or clear it now.
  if (k.sched !== null) k.sched.point(k, SchedPoint.FaultWalkLoad);
  if (e === 0) {
    const t = alloc_ptp(k, mm, level);
    if (t < 0) return ALLOC_OOM;
    const ne = mk_table_entry(t, Atomics.load(i32, ptpBase(k, t) + R_GEN));
    guard_upper_populate(k, off, AssertSite.PteAlloc); // pmd_install's rule, kept by the compareExchange
    const prev = Atomics.compareExchange(i32, off, 0, ne);
    if (prev === 0) return t;
    free_ptp(k, t);
    e = prev;
  }
  const t = entry_table(e);
  // Fast path: the generation tag matches (see walk_and_fill); else the full check reports.
  if ((Atomics.load(i32, k.ptps.base + t * PTP_WORDS + R_GEN) & 63) === entry_tag(e)) return t;
  return table_of(k, e, level, mm) < 0 ? ALLOC_UAF : t;
}
