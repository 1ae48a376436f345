/**
 * mm/truncate.c and shmem's hole punch: taking pages out of a file while it is mapped.
 *
 * unmap_mapping_range (with even_cows: truncation unmaps private COW copies too) zaps every
 * mapping of the file's range through i_mmap, then truncate_inode_pages_range frees the page
 * cache there and zeroes the part of a partial page past the cut (truncate_inode_partial_folio),
 * then the range is unmapped once more for a fault that raced in between (truncate_pagecache).
 * Later accesses past EOF raise SIGBUS in do_fault; a punched hole reads 0 again.
 */
import { F_HDR, FL_IMMAP_HEAD, FL_IMMAP_RWSEM, V_IMMAP_NEXT, V_MM } from '../shm/layout.js';
import { AssertSite, lockdep_assert_held } from './mmap_lock.js';
import { fileBase, filemap_get_frame, filemap_indices, filemap_remove_frame } from './filemap.js';
import { MmuGather, tlb_finish_mmus, zap_page_range } from './memory.js';
import { frameBase, free_frame } from './page_alloc.js';
import type { Kernel } from './percpu.js';
import { PAGE_SIZE } from './pgtable.js';
import { vma_end, vma_pgoff, vma_start, vmaBase } from './vma.js';

/**
 * unmap_mapping_range over file pages [first, last) (last Infinity: to the end), every mapping
 * of the file, shared PTEs and private COW copies alike; each mm's TLB flushed, freed COW copies
 * released after it. Called with the file's i_mmap_rwsem held (it walks i_mmap).
 */
export function unmap_mapping_range(k: Kernel, file: number, first: number, last: number): void {
  const i32 = k.i32;
  lockdep_assert_held(k, fileBase(k, file) + FL_IMMAP_RWSEM, AssertSite.UnmapMappingRange); // i_mmap_lock_read / the truncation's lock
  const tlb = new MmuGather();
  const mms: number[] = [];
  for (let v = Atomics.load(i32, fileBase(k, file) + FL_IMMAP_HEAD); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) {
    const start = vma_start(k, v);
    const pgoff = vma_pgoff(k, v);
    const pages = (vma_end(k, v) - start) / PAGE_SIZE;
    const lo = Math.max(first, pgoff);
    const hi = Math.min(last, pgoff + pages);
    if (lo >= hi) continue;
    const mm = Atomics.load(i32, vmaBase(k, v) + V_MM);
    const gathered = tlb.ntables + tlb.nframes;
    tlb.shared = false;
    zap_page_range(k, mm, start + (lo - pgoff) * PAGE_SIZE, start + (hi - pgoff) * PAGE_SIZE, tlb, true);
    // An mm whose zap changed nothing still flushes when its range went through a shared table:
    // another sharer's zap (the table's owner's) cleared those entries for it, and its CPUs may
    // cache them (pt-hint: "reaches shared tables once and flushes every sharer").
    if ((tlb.ntables + tlb.nframes > gathered || tlb.shared) && !mms.includes(mm)) mms.push(mm);
  }
  tlb_finish_mmus(k, mms, tlb);
}

/**
 * truncate_inode_pages_range: frees the cached pages [first, last) (no mapping holds them any
 * more: unmap_mapping_range ran first); each page's ledger goes to the file's retired count.
 */
export function truncate_inode_pages_range(k: Kernel, file: number, first: number, last: number): void {
  for (const i of filemap_indices(k, file, first, last)) {
    const f = filemap_remove_frame(k, file, i);
    if (f >= 0) free_frame(k, f);
  }
}

/**
 * truncate_inode_partial_folio / folio_zero_range: the bytes of cached page `index` from byte
 * `from` of the page to its end read 0 (the page's ledger is left alone: it counts stores made).
 */
export function zero_page_tail(k: Kernel, file: number, index: number, from: number): void {
  const f = filemap_get_frame(k, file, index);
  if (f < 0) return;
  const i32 = k.i32;
  const d = frameBase(k, f) + F_HDR;
  const words = k.layout.config.payloadWords;
  const wfrom = from >>> 2;
  if ((from & 3) !== 0) {
    // The word the cut falls in keeps its low bytes (little-endian: the bytes before the cut).
    const keep = (1 << ((from & 3) * 8)) - 1;
    Atomics.and(i32, d + (wfrom & (words - 1)), keep);
  }
  if (words < 1024) return; // folded page data: zeroing the tail would zero the folded head too
  for (let w = (from + 3) >>> 2; w < 1024; w++) Atomics.store(i32, d + w, 0);
}
