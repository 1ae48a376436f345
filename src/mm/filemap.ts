/**
 * The page cache (mm/filemap.c, lib/xarray.c): a radix tree of 512-slot nodes per file, index ->
 * frame. Readers walk it without a lock (xa_load under RCU); inserters take xa_lock. The root and
 * the height share one word (node << 2 | height), so a reader never sees one without the other.
 * Nodes are freed only when the file is (no reader can be inside then).
 */
import { FILE_WORDS, FL_NRPAGES, FL_XA, FL_XA_LOCK, XN_HDR, XN_WORDS } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { spin_lock, spin_unlock } from '../sync/spinlock.js';
import { PoolId } from './mmdebug.js';
import type { Kernel } from './percpu.js';
import { pool_alloc, pool_free } from './slab.js';
import { AssertSite, guard_page_cache } from './guarded.js';

export const XA_SHIFT = 9;
const XA_MASK = 511;
const MAX_HEIGHT = 3; // 2^27 pages: 512 GiB files

export function fileBase(k: Kernel, file: number): number {
  return k.pools.files.base + file * FILE_WORDS;
}

function nodeBase(k: Kernel, n: number): number {
  return k.pools.xa.base + n * XN_WORDS;
}

/**
 * The word of the page-cache slot for `index` (its frame + 1, or 0), or -1 when no node holds
 * such a slot. Lockless (xa_load's walk); filemap_get_frame and filemap_remove_frame share it.
 */
function xa_slot(k: Kernel, file: number, index: number): number {
  const i32 = k.i32;
  const root = Atomics.load(i32, fileBase(k, file) + FL_XA);
  if (root === 0) return -1;
  let h = root & 3;
  if (index >= 1 << (XA_SHIFT * h)) return -1;
  let n = root >>> 2;
  for (;;) {
    h--;
    const slot = nodeBase(k, n) + XN_HDR + ((index >>> (XA_SHIFT * h)) & XA_MASK);
    if (h === 0) return slot;
    const e = Atomics.load(i32, slot);
    if (e === 0) return -1;
    n = e - 1;
  }
}

/** xa_load: the frame at `index`, or -1. Lockless. */
export function filemap_get_frame(k: Kernel, file: number, index: number): number {
  const slot = xa_slot(k, file, index);
  return slot < 0 ? -1 : Atomics.load(k.i32, slot) - 1;
}

function new_node(k: Kernel): number {
  const n = pool_alloc(k, k.pools.xa, LockClass.SlabPool, 1);
  if (n < 0) return -1;
  const b = nodeBase(k, n);
  for (let s = 0; s < XN_WORDS - XN_HDR; s++) Atomics.store(k.i32, b + XN_HDR + s, 0);
  return n;
}

/**
 * Inserts `frame` at `index` unless a frame is there already; returns the frame that is there
 * afterwards, or -1 when no node could be allocated. Takes xa_lock.
 */
export function filemap_add_frame(k: Kernel, file: number, index: number, frame: number): number {
  const i32 = k.i32;
  const fb = fileBase(k, file);
  spin_lock(k, fb + FL_XA_LOCK, LockClass.XaLock);
  try {
    let root = Atomics.load(i32, fb + FL_XA);
    let h = root & 3;
    let n = root >>> 2;
    if (root === 0) {
      n = new_node(k);
      if (n < 0) return -1;
      h = 1;
    }
    while (index >= 1 << (XA_SHIFT * h)) {
      if (h === MAX_HEIGHT) return -1;
      const up = new_node(k);
      if (up < 0) return -1;
      Atomics.store(i32, nodeBase(k, up) + XN_HDR, n + 1);
      n = up;
      h++;
    }
    guard_page_cache(k, file, AssertSite.FilemapAdd); // __filemap_add_folio: xas_lock_irq
    if (((n << 2) | h) !== root) Atomics.store(i32, fb + FL_XA, (n << 2) | h);
    root = (n << 2) | h;
    for (let l = h - 1; l > 0; l--) {
      const slot = nodeBase(k, n) + XN_HDR + ((index >>> (XA_SHIFT * l)) & XA_MASK);
      let e = Atomics.load(i32, slot);
      if (e === 0) {
        const c = new_node(k);
        if (c < 0) return -1;
        e = c + 1;
        Atomics.store(i32, slot, e);
      }
      n = e - 1;
    }
    const slot = nodeBase(k, n) + XN_HDR + (index & XA_MASK);
    const cur = Atomics.load(i32, slot);
    if (cur !== 0) return cur - 1;
    Atomics.store(i32, slot, frame + 1);
    Atomics.add(i32, fb + FL_NRPAGES, 1);
    return frame;
  } finally {
    spin_unlock(k, fb + FL_XA_LOCK);
  }
}

/**
 * Calls `fn` for every frame in the cache, then frees every node (truncate_inode_pages_final).
 * Only for a file no one can reach any more.
 */
export function filemap_release(k: Kernel, file: number, fn: (frame: number, index: number) => void): void {
  const i32 = k.i32;
  const fb = fileBase(k, file);
  const root = Atomics.load(i32, fb + FL_XA);
  if (root === 0) return;
  guard_page_cache(k, file, AssertSite.FilemapRemove); // truncate_inode_pages_final: no one references the file
  const walk = (n: number, h: number, prefix: number): void => {
    const b = nodeBase(k, n);
    for (let s = 0; s < XN_WORDS - XN_HDR; s++) {
      const e = Atomics.load(i32, b + XN_HDR + s);
      if (e === 0) continue;
      if (h === 1) fn(e - 1, prefix * 512 + s);
      else walk(e - 1, h - 1, prefix * 512 + s);
    }
    pool_free(k, k.pools.xa, LockClass.SlabPool, n, PoolId.Xa);
  };
  walk(root >>> 2, root & 3, 0);
  Atomics.store(i32, fb + FL_XA, 0);
  Atomics.store(i32, fb + FL_NRPAGES, 0);
}

/**
 * Removes the frame at `index` from the cache (delete_from_page_cache: truncation, hole punch);
 * returns it, or -1 when none was there. Takes xa_lock.
 */
export function filemap_remove_frame(k: Kernel, file: number, index: number): number {
  const i32 = k.i32;
  const fb = fileBase(k, file);
  spin_lock(k, fb + FL_XA_LOCK, LockClass.XaLock);
  try {
    const slot = xa_slot(k, file, index);
    guard_page_cache(k, file, AssertSite.FilemapRemove); // __filemap_remove_folio: under xa_lock
    const e = slot < 0 ? 0 : Atomics.exchange(i32, slot, 0);
    if (e === 0) return -1;
    Atomics.sub(i32, fb + FL_NRPAGES, 1);
    return e - 1;
  } finally {
    spin_unlock(k, fb + FL_XA_LOCK);
  }
}

/** The indices in [first, last) that hold a frame, in order (find_get_entries; empty subtrees skipped). */
export function filemap_indices(k: Kernel, file: number, first: number, last: number): number[] {
  const i32 = k.i32;
  const out: number[] = [];
  const root = Atomics.load(i32, fileBase(k, file) + FL_XA);
  if (root === 0) return out;
  const walk = (n: number, h: number, base: number): void => {
    const span = 1 << (XA_SHIFT * (h - 1)); // indices under one slot
    const b = nodeBase(k, n);
    for (let s = 0; s < 1 << XA_SHIFT; s++) {
      const lo = base + s * span;
      if (lo >= last || lo + span <= first) continue;
      const e = Atomics.load(i32, b + XN_HDR + s);
      if (e === 0) continue;
      if (h === 1) out.push(lo);
      else walk(e - 1, h - 1, lo);
    }
  };
  walk(root >>> 2, root & 3, 0);
  return out;
}
