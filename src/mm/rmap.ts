/**
 * Reverse mapping (mm/rmap.c): a file's i_mmap — the VMAs that map it, under i_mmap_rwsem —
 * and the per-frame map count (folio_add_file_rmap_pte / folio_remove_rmap_pte), which the
 * checker compares with the PTEs that really map each frame.
 */
import { F_MAPCOUNT, FL_IMMAP_HEAD, FL_IMMAP_RWSEM, M_PGD, V_IMMAP_NEXT, V_MM } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { down_write, up_write } from '../sync/rwsem.js';
import { fileBase } from './filemap.js';
import { frameBase } from './page_alloc.js';
import type { Kernel } from './percpu.js';
import { vma_end, vma_pgoff, vma_start, vmaBase } from './vma.js';
import { lookup_table } from './memory.js';
import { PAGE_SIZE, PTE_LEVEL } from './pgtable.js';
import { AssertSite, guard_i_mmap } from './guarded.js';

/**
 * vma_link_file: adds the VMA to the file's i_mmap, after those already there. Linux's i_mmap is
 * an interval tree (vma_interval_tree_insert) where a VMA with the same range as others goes to
 * their right, so vma_interval_tree_foreach meets the older mappings first; huge_pmd_share
 * relies on that to find a populated sibling quickly among 1500 (sga-1500 under pt-hint).
 */
export function i_mmap_insert(k: Kernel, file: number, vma: number): void {
  const i32 = k.i32;
  const fb = fileBase(k, file);
  down_write(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  guard_i_mmap(k, file, AssertSite.IMmapInsert);
  Atomics.store(i32, vmaBase(k, vma) + V_IMMAP_NEXT, -1);
  let prev = -1;
  for (let v = Atomics.load(i32, fb + FL_IMMAP_HEAD); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) prev = v;
  if (prev < 0) Atomics.store(i32, fb + FL_IMMAP_HEAD, vma);
  else Atomics.store(i32, vmaBase(k, prev) + V_IMMAP_NEXT, vma);
  up_write(k, fb + FL_IMMAP_RWSEM);
}

/** __remove_shared_vm_struct: removes the VMA from the file's i_mmap. */
export function i_mmap_remove(k: Kernel, file: number, vma: number): void {
  const i32 = k.i32;
  const fb = fileBase(k, file);
  down_write(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  guard_i_mmap(k, file, AssertSite.IMmapRemove);
  let prev = -1;
  let v = Atomics.load(i32, fb + FL_IMMAP_HEAD);
  while (v >= 0 && v !== vma) {
    prev = v;
    v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT);
  }
  if (v === vma) {
    const next = Atomics.load(i32, vmaBase(k, vma) + V_IMMAP_NEXT);
    if (prev < 0) Atomics.store(i32, fb + FL_IMMAP_HEAD, next);
    else Atomics.store(i32, vmaBase(k, prev) + V_IMMAP_NEXT, next);
  }
  up_write(k, fb + FL_IMMAP_RWSEM);
}

export function frame_add_rmap(k: Kernel, frame: number): void {
  Atomics.add(k.i32, frameBase(k, frame) + F_MAPCOUNT, 1);
}

/** Returns the map count left. */
export function frame_remove_rmap(k: Kernel, frame: number): number {
  return Atomics.sub(k.i32, frameBase(k, frame) + F_MAPCOUNT, 1) - 1;
}

/** The address at which VMA `v` maps file page `index`, or -1 (vma_address: outside the VMA). */
export function vma_address(k: Kernel, v: number, index: number): number {
  const pgoff = vma_pgoff(k, v);
  const start = vma_start(k, v);
  if (index < pgoff || index >= pgoff + (vma_end(k, v) - start) / PAGE_SIZE) return -1;
  return start + (index - pgoff) * PAGE_SIZE;
}

/** The PTE table through which `mm` translates `vpn`, or -1 (page_vma_mapped_walk's descent). */
export function mm_pte_table(k: Kernel, mm: number, vpn: number): number {
  return lookup_table(k, Atomics.load(k.i32, k.mmBase(mm) + M_PGD), vpn, PTE_LEVEL, mm);
}

/**
 * After an rmap walk over file page `index` changed the PTE tables in `changed`: every mm that
 * maps one of them joins `mms` (the mms the batched flush must reach). The sharers of a shared
 * table reach it through their own VMAs of this file. Looked up after the change: a sharer that
 * joined before it is found here (no unshare can run: i_mmap_rwsem is held), one that joins
 * later can only read the changed entry. (Pedro Falcato: "modify the PTE, flush the TLB for the
 * mm" becomes "for every mm that maps this table".)
 */
export function rmap_table_sharers(k: Kernel, file: number, index: number, changed: number[], mms: number[]): void {
  const i32 = k.i32;
  for (let v = Atomics.load(i32, fileBase(k, file) + FL_IMMAP_HEAD); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) {
    const addr = vma_address(k, v, index);
    if (addr < 0) continue;
    const mm = Atomics.load(i32, vmaBase(k, v) + V_MM);
    if (mms.includes(mm)) continue;
    if (changed.includes(mm_pte_table(k, mm, addr / PAGE_SIZE))) mms.push(mm);
  }
}
