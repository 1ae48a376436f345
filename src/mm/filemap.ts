/**
 * The page cache (mm/filemap.c, lib/xarray.c): a radix tree of 512-slot nodes per file, index ->
 * frame. Readers walk it without a lock (xa_load under RCU); inserters take xa_lock. The root and
 * the height share one word (node << 2 | height), so a reader never sees one without the other.
 * Nodes are freed only when the file is (no reader can be inside then).
 */
import { F_FLAGS, FILE_WORDS, R_GEN, FL_NRPAGES, FL_XA, FL_XA_LOCK, XN_HDR, XN_WORDS } from '../shm/layout.js';
import { LockClass, LockMode } from '../sync/lockdep.js';
import { spin_lock, spin_unlock } from '../sync/spinlock.js';
import { PoolId } from './mmdebug.js';
import type { Kernel } from './percpu.js';
import { pool_alloc, pool_free } from './slab.js';
import { AssertSite, guard_page_cache } from './guarded.js';
import { frameBase } from './page_alloc.js';

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

// ---- page flags (include/linux/page-flags.h) ----
/** PG_locked: the page is being migrated (folio_lock); faults and writers wait for it to clear. */
export const PG_LOCKED = 1;
/**
 * The page left the page cache (__filemap_remove_folio / folio_migrate_mapping: folio->mapping
 * becomes NULL). A fault that looked the page up before may still hold its number: it checks
 * this bit under the PTE lock, as filemap_fault rechecks folio->mapping after lock_folio.
 */
export const PG_GONE = 2;

/** folio_trylock: true when this CPU took the page's lock. */
export function folio_trylock(k: Kernel, frame: number): boolean {
  const w = frameBase(k, frame) + F_FLAGS;
  for (;;) {
    const v = Atomics.load(k.i32, w);
    if ((v & PG_LOCKED) !== 0) return false;
    if (Atomics.compareExchange(k.i32, w, v, v | PG_LOCKED) === v) return true;
  }
}

/** folio_unlock: clears PG_locked and wakes the waiters (folio_wake_bit). */
export function folio_unlock(k: Kernel, frame: number): void {
  const w = frameBase(k, frame) + F_FLAGS;
  Atomics.and(k.i32, w, ~PG_LOCKED);
  Atomics.notify(k.i32, w);
}

/** The page left the page cache (PG_GONE). */
export function folio_busy_gone(k: Kernel, frame: number): boolean {
  return (Atomics.load(k.i32, frameBase(k, frame) + F_FLAGS) & PG_GONE) !== 0;
}

/** The page flags that tell a fault its page-cache lookup is no longer good (see finish_fault). */
export function folio_busy(k: Kernel, frame: number): boolean {
  return (Atomics.load(k.i32, frameBase(k, frame) + F_FLAGS) & (PG_LOCKED | PG_GONE)) !== 0;
}

/**
 * folio_wait_locked (and migration_entry_wait_on_locked, mm/filemap.c): sleep until `frame`'s
 * PG_locked clears, or its generation moves (freed). Bounded: waitStep takes interrupts, and a
 * waiter past the deadline stops the machine with a watchdog report naming PG_locked. The
 * caller holds no spinlock (it may hold mmap_lock, as a fault does).
 */
export function folio_wait_locked(k: Kernel, frame: number, gen: number): void {
  const i32 = k.i32;
  const b = frameBase(k, frame);
  const since = performance.now();
  for (let iter = 0; ; iter++) {
    const v = Atomics.load(i32, b + F_FLAGS);
    if ((v & PG_LOCKED) === 0 || Atomics.load(i32, b + R_GEN) !== gen) break;
    k.waitStep(b + F_FLAGS, v, iter, since, LockClass.FolioLock, LockMode.Read, -1);
  }
  k.waitDone();
}

/**
 * folio_migrate_mapping's xas_store: the page-cache slot at `index` goes from `from` to `to`
 * (both locked by the caller), under xa_lock; `from` is marked gone. False when the slot no
 * longer holds `from` (nothing changed).
 */
export function filemap_replace_frame(k: Kernel, file: number, index: number, from: number, to: number): boolean {
  const fb = fileBase(k, file);
  spin_lock(k, fb + FL_XA_LOCK, LockClass.XaLock);
  try {
    const slot = xa_slot(k, file, index);
    if (slot < 0) return false;
    guard_page_cache(k, file, AssertSite.FilemapAdd);
    if (Atomics.compareExchange(k.i32, slot, from + 1, to + 1) !== from + 1) return false;
    Atomics.or(k.i32, frameBase(k, from) + F_FLAGS, PG_GONE);
    return true;
  } finally {
    spin_unlock(k, fb + FL_XA_LOCK);
  }
}

/**
 * Removes the frame at `index` from the cache (delete_from_page_cache: truncation, hole punch);
 * returns it, or -1 when none was there. Takes xa_lock. The frame is marked gone (PG_GONE).
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
    Atomics.or(i32, frameBase(k, e - 1) + F_FLAGS, PG_GONE);
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
