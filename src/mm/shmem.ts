/**
 * shmem / memfd files (mm/shmem.c, mm/memfd.c): a file is its size, its page cache and the
 * VMAs that map it (i_mmap). Pages are allocated on first touch (shmem_get_folio) and freed
 * with the file (shmem_evict_inode) once its last reference — fds, VMAs, a /dev/shm name — goes.
 */
import { truncate_inode_pages_range, unmap_mapping_range, zero_page_tail } from './truncate.js';
import {
  F_HDR, F_MAPCOUNT, FILE_WORDS, FL_ID, FL_IMMAP_HEAD, FL_IMMAP_RWSEM, FL_NRPAGES, FL_PTSHARE, FL_REF,
  FL_KIND, FL_PRIV, FILE_MODEL, FILE_SHMEM, FL_RETIRED, FL_SIZE_HI, FL_SIZE_LO, FL_XA, FRAME_FILE, G_FILE_SEQ, LEDGER_WORDS, LG_FREED, LG_SUM, R_GEN,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { refcount_dec_and_test, refcount_inc, REFCOUNT_OK, REFCOUNT_UNDERFLOW } from '../sync/refcount.js';
import { down_write, up_write } from '../sync/rwsem.js';
import { PoolId, report_violation, Violation } from './mmdebug.js';
import { alloc_frame, frameBase, free_frame } from './page_alloc.js';
import { fileBase, filemap_add_frame, filemap_get_frame, filemap_release, folio_busy_gone, folio_trylock, folio_unlock, folio_wait_locked } from './filemap.js';
import type { Kernel } from './percpu.js';
import { pool_alloc, pool_free } from './slab.js';
import { PAGE_SIZE } from './pgtable.js';

export const MAX_FILE_SIZE = 2 ** 39; // 512 GiB: what the page cache's three levels reach

/** shmem_file_setup: a new, empty file with one reference. Returns -1 when out of files. */
export function shmem_file_setup(k: Kernel): number {
  const i32 = k.i32;
  const f = pool_alloc(k, k.pools.files, LockClass.SlabPool, 1);
  if (f < 0) return -1;
  const b = fileBase(k, f);
  Atomics.store(i32, b + FL_REF, 1);
  Atomics.store(i32, b + FL_SIZE_HI, 0);
  Atomics.store(i32, b + FL_SIZE_LO, 0);
  Atomics.store(i32, b + FL_XA, 0);
  Atomics.store(i32, b + FL_NRPAGES, 0);
  Atomics.store(i32, b + FL_IMMAP_HEAD, -1);
  Atomics.store(i32, b + FL_RETIRED, 0);
  Atomics.store(i32, b + FL_PTSHARE, 0);
  Atomics.store(i32, b + FL_KIND, FILE_SHMEM);
  Atomics.store(i32, b + FL_PRIV, 0);
  Atomics.store(i32, b + FL_ID, Atomics.add(i32, G_FILE_SEQ, 1) + 1);
  for (let w = 0; w < 3; w++) Atomics.store(i32, b + FL_IMMAP_RWSEM + w, 0);
  return f;
}

export function file_gen(k: Kernel, f: number): number {
  return Atomics.load(k.i32, k.pools.files.base + f * FILE_WORDS + R_GEN);
}

export function i_size_read(k: Kernel, f: number): number {
  const b = fileBase(k, f);
  return Atomics.load(k.i32, b + FL_SIZE_HI) * 2 ** 32 + (Atomics.load(k.i32, b + FL_SIZE_LO) >>> 0);
}

/** get_file: one more reference (an fd, a VMA, a name). */
export function get_file(k: Kernel, f: number): void {
  if (refcount_inc(k.i32, fileBase(k, f) + FL_REF) !== REFCOUNT_OK) {
    report_violation(k.i32, k.layout, Violation.Refcount, k.cpu, PoolId.Files, f, 0);
  }
}

/** fput: drops a reference; the last one frees the page cache and the file. */
export function fput(k: Kernel, f: number): void {
  const r = refcount_dec_and_test(k.i32, fileBase(k, f) + FL_REF);
  if (r === REFCOUNT_OK) return;
  if (r === REFCOUNT_UNDERFLOW) {
    report_violation(k.i32, k.layout, Violation.Refcount, k.cpu, PoolId.Files, f, -1);
    return;
  }
  shmem_evict_inode(k, f);
}

/** Is `f` a sharing model's own file (an msharefs file, a container, an address space)? */
export function is_model_file(k: Kernel, f: number): boolean {
  return Atomics.load(k.i32, fileBase(k, f) + FL_KIND) === FILE_MODEL;
}

/** A file of a sharing model's own (msharefs, a container): no page cache of its own. */
export function model_file_setup(k: Kernel): number {
  const f = shmem_file_setup(k);
  if (f >= 0) Atomics.store(k.i32, fileBase(k, f) + FL_KIND, FILE_MODEL);
  return f;
}

function shmem_evict_inode(k: Kernel, f: number): void {
  const i32 = k.i32;
  const fb = fileBase(k, f);
  if (Atomics.load(i32, fb + FL_KIND) === FILE_MODEL) k.model.release?.(k, f);
  filemap_release(k, f, (frame) => {
    const mc = Atomics.load(i32, frameBase(k, frame) + F_MAPCOUNT);
    if (mc !== 0) report_violation(i32, k.layout, Violation.Invariant, k.cpu, 1, frame, mc, f);
    free_frame(k, frame);
  });
  // The ledger keeps what the file's pages held after the record is reused: the lost-write
  // check compares it with the stores every task made to this file.
  const id = Atomics.load(i32, fb + FL_ID);
  if (id <= k.layout.config.fileIds) {
    const lg = k.layout.fileLedger + id * LEDGER_WORDS;
    Atomics.store(i32, lg + LG_SUM, Atomics.load(i32, fb + FL_RETIRED));
    Atomics.store(i32, lg + LG_FREED, 1);
  }
  pool_free(k, k.pools.files, LockClass.SlabPool, f, PoolId.Files);
}

/**
 * shmem_setattr's size change (do_truncate / vfs_truncate on shmem). Growing sets i_size (the new
 * pages read 0). Shrinking sets i_size first (a racing fault then sees the new EOF), then
 * truncate_pagecache: unmap every mapping past the new size (shared PTEs and private COW copies,
 * unmap_mapping_range with even_cows), free the cached pages there, zero the cut page's tail,
 * and unmap once more.
 */
export function shmem_setsize(k: Kernel, f: number, size: number): number {
  const i32 = k.i32;
  const fb = fileBase(k, f);
  if (size > MAX_FILE_SIZE) return -27; // EFBIG
  down_write(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  try {
    const old = i_size_read(k, f);
    Atomics.store(i32, fb + FL_SIZE_HI, Math.floor(size / 2 ** 32));
    Atomics.store(i32, fb + FL_SIZE_LO, size % 2 ** 32 | 0);
    if (size < old) {
      const keep = Math.ceil(size / PAGE_SIZE); // pages that keep (part of) their data
      unmap_mapping_range(k, f, keep, Infinity);
      truncate_inode_pages_range(k, f, keep, Math.ceil(old / PAGE_SIZE));
      if (size % PAGE_SIZE !== 0) zero_page_tail(k, f, keep - 1, size % PAGE_SIZE);
      unmap_mapping_range(k, f, keep, Infinity);
    }
    return 0;
  } finally {
    up_write(k, fb + FL_IMMAP_RWSEM);
  }
}

/**
 * shmem_fallocate(FALLOC_FL_PUNCH_HOLE) over whole pages [first, last): every mapping of them
 * unmapped, the pages freed (MADV_REMOVE's work); they read 0 again. Partial pages at the edges
 * are zeroed in place (bytes [from, to) of the file).
 */
export function shmem_punch_hole(k: Kernel, f: number, from: number, to: number): void {
  const fb = fileBase(k, f);
  const first = Math.ceil(from / PAGE_SIZE);
  const last = Math.floor(to / PAGE_SIZE);
  down_write(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  try {
    if (first < last) {
      unmap_mapping_range(k, f, first, last);
      truncate_inode_pages_range(k, f, first, last);
      unmap_mapping_range(k, f, first, last);
    }
  } finally {
    up_write(k, fb + FL_IMMAP_RWSEM);
  }
}

export const SHMEM_OOM = -1;

/**
 * shmem_get_folio(SGP_CACHE): the frame at `index`, allocated (zeroed) on first touch.
 * `allocated` tells the caller whether this call created it. Returns SHMEM_OOM when out of memory.
 */
export function shmem_get_frame(k: Kernel, f: number, index: number, out: { allocated: boolean }): number {
  out.allocated = false;
  const cached = filemap_get_frame(k, f, index);
  if (cached >= 0) return cached;
  const frame = alloc_frame(k, FRAME_FILE, f, file_gen(k, f), index);
  if (frame < 0) return SHMEM_OOM;
  const there = filemap_add_frame(k, f, index, frame);
  if (there !== frame) {
    free_frame(k, frame); // lost the race, or no node for it
    return there;
  }
  out.allocated = true;
  return frame;
}

/**
 * shmem_file_read_iter: up to `len` bytes at file offset `pos`, through the page cache (a hole
 * reads 0 and allocates nothing). Returns the bytes read (0 at or past EOF); the first word read
 * goes to out.value. Coherent with every mapping: they map the same frames.
 */
export function shmem_file_read(k: Kernel, f: number, pos: number, len: number, out: { value: number }): number {
  const size = i_size_read(k, f);
  if (pos >= size || len === 0) return 0;
  const n = Math.min(len, size - pos);
  let v = 0;
  for (let i = 0; i < Math.min(4, n); i++) v |= read_byte(k, f, pos + i) << (8 * i);
  out.value = v;
  return n;
}

/**
 * shmem_file_write_iter (generic_perform_write): `len` bytes at `pos`, `value`'s little-endian
 * bytes over and over; pages are allocated as shmem_write_begin does, and i_size grows past the
 * last byte written. Returns the bytes written, -EFBIG past the largest file, -ENOMEM.
 */
export function shmem_file_write(k: Kernel, f: number, pos: number, len: number, value: number): number {
  if (len === 0) return 0;
  if (pos + len > MAX_FILE_SIZE) return -27; // EFBIG
  const i32 = k.i32;
  const words = k.layout.config.payloadWords;
  const out = { allocated: false };
  for (let done = 0; done < len;) {
    const at = pos + done;
    const frame = shmem_get_frame(k, f, Math.floor(at / PAGE_SIZE), out);
    if (frame === SHMEM_OOM) return done > 0 ? done : -12;
    // shmem_write_begin hands the page back locked: a migration cannot copy it from under the
    // write. A page that left the cache meanwhile (moved, truncated) is looked up again.
    const gen = Atomics.load(i32, frameBase(k, frame) + R_GEN);
    if (!folio_trylock(k, frame)) {
      folio_wait_locked(k, frame, gen);
      continue;
    }
    if (Atomics.load(i32, frameBase(k, frame) + R_GEN) !== gen || folio_busy_gone(k, frame)) {
      folio_unlock(k, frame);
      continue;
    }
    const d = frameBase(k, frame) + F_HDR;
    const pageEnd = Math.min(len, done + PAGE_SIZE - (at % PAGE_SIZE));
    for (; done < pageEnd; done++) {
      const off = (pos + done) % PAGE_SIZE;
      const byte = (value >>> (8 * (done % 4))) & 255;
      const w = d + ((off >>> 2) & (words - 1));
      const shift = (off & 3) * 8;
      // One byte of a word: a compare-and-exchange loop, so concurrent stores to the word's
      // other bytes are kept.
      for (;;) {
        const old = Atomics.load(i32, w);
        if (Atomics.compareExchange(i32, w, old, (old & ~(255 << shift)) | (byte << shift)) === old) break;
      }
    }
    folio_unlock(k, frame); // shmem_write_end
  }
  // i_size_write under the size lock (shmem: inode lock; here i_mmap_rwsem, as setsize takes it).
  const fb = fileBase(k, f);
  down_write(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  if (pos + len > i_size_read(k, f)) {
    Atomics.store(i32, fb + FL_SIZE_HI, Math.floor((pos + len) / 2 ** 32));
    Atomics.store(i32, fb + FL_SIZE_LO, (pos + len) % 2 ** 32 | 0);
  }
  up_write(k, fb + FL_IMMAP_RWSEM);
  return len;
}

function read_byte(k: Kernel, f: number, pos: number): number {
  const frame = filemap_get_frame(k, f, Math.floor(pos / PAGE_SIZE));
  if (frame < 0) return 0;
  const off = pos % PAGE_SIZE;
  const w = Atomics.load(k.i32, frameBase(k, frame) + F_HDR + ((off >>> 2) & (k.layout.config.payloadWords - 1)));
  return (w >>> ((off & 3) * 8)) & 255;
}
