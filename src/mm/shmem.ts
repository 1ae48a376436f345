/**
 * shmem / memfd files (mm/shmem.c, mm/memfd.c): a file is its size, its page cache and the
 * VMAs that map it (i_mmap). Pages are allocated on first touch (shmem_get_folio) and freed
 * with the file (shmem_evict_inode) once its last reference — fds, VMAs, a /dev/shm name — goes.
 */
import {
  F_MAPCOUNT, FILE_WORDS, FL_ID, FL_IMMAP_HEAD, FL_IMMAP_RWSEM, FL_NRPAGES, FL_PTSHARE, FL_REF,
  FL_KIND, FL_PRIV, FILE_MODEL, FILE_SHMEM, FL_RETIRED, FL_SIZE_HI, FL_SIZE_LO, FL_XA, FRAME_FILE, G_FILE_SEQ, LEDGER_WORDS, LG_FREED, LG_SUM, R_GEN,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { refcount_dec_and_test, refcount_inc, REFCOUNT_OK, REFCOUNT_UNDERFLOW } from '../sync/refcount.js';
import { down_write, up_write } from '../sync/rwsem.js';
import { PoolId, report_violation, Violation } from './mmdebug.js';
import { alloc_frame, frameBase, free_frame } from './page_alloc.js';
import { fileBase, filemap_add_frame, filemap_get_frame, filemap_release } from './filemap.js';
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
 * vfs_truncate on a shmem file. Growing sets i_size. Shrinking a file that has pages cached
 * beyond the new size would need unmap_mapping_range + truncate_inode_pages_range: ptlab refuses
 * it with EBUSY for now (a documented gap), and shrinks freely when nothing is cached there.
 */
export function shmem_setsize(k: Kernel, f: number, size: number): number {
  const i32 = k.i32;
  const fb = fileBase(k, f);
  if (size > MAX_FILE_SIZE) return -27; // EFBIG
  down_write(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  try {
    const old = i_size_read(k, f);
    if (size < old) {
      const first = Math.ceil(size / PAGE_SIZE);
      const last = Math.ceil(old / PAGE_SIZE);
      for (let i = first; i < last; i++) if (filemap_get_frame(k, f, i) >= 0) return -16; // EBUSY
    }
    Atomics.store(i32, fb + FL_SIZE_HI, Math.floor(size / 2 ** 32));
    Atomics.store(i32, fb + FL_SIZE_LO, size % 2 ** 32 | 0);
    return 0;
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
