/**
 * Names in ptlab's small filesystems — /dev/shm, msharefs, named containers and address spaces —
 * kept in one table in machine memory under G_NAMES_LOCK (fs/namei.c's job: lookup, O_CREAT,
 * O_EXCL, unlink). A name holds one reference to its file; each filesystem hashes its names in
 * a namespace of its own, so equal names in two of them never meet.
 */
import { EEXIST, ENOENT, ENOMEM } from './errno.js';
import { FL_NAME, G_NAMES_LEFT, G_NAMES_LOCK, N_FILE, N_GEN, N_HASH, NAME_SLOTS, NAME_WORDS } from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { spin_lock, spin_unlock } from '../sync/spinlock.js';
import type { Kernel } from './percpu.js';
import { fileBase } from './filemap.js';
import { file_gen, fput, get_file } from './shmem.js';


/** FNV-1a of `namespace:name`; never 0 (0 marks a free slot). */
export function name_hash(namespace: string, name: string): number {
  const s = namespace + ':' + name;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 1;
}

/**
 * Lookup-or-create (do_filp_open): the named file with one more reference, for the caller's fd.
 * EEXIST for `create && excl` on an existing name, ENOENT for a missing name without `create`.
 * `create_file(hash)` makes a new file whose first reference becomes the name's.
 */
export function name_open(k: Kernel, hash: number, create: boolean, excl: boolean, create_file: (hash: number) => number): number {
  const i32 = k.i32;
  const names = k.layout.names;
  spin_lock(k, G_NAMES_LOCK, LockClass.Names);
  try {
    let free = -1;
    for (let s = 0; s < NAME_SLOTS; s++) {
      const o = names + s * NAME_WORDS;
      const sh = Atomics.load(i32, o + N_HASH);
      if (sh === hash) {
        if (create && excl) return -EEXIST;
        const f = Atomics.load(i32, o + N_FILE);
        get_file(k, f);
        return f;
      }
      if (sh === 0 && free < 0) free = s;
    }
    if (!create) return -ENOENT;
    if (free < 0) return -ENOMEM;
    const f = create_file(hash);
    if (f < 0) return f;
    const o = names + free * NAME_WORDS;
    Atomics.store(i32, o + N_FILE, f);
    Atomics.store(i32, o + N_GEN, file_gen(k, f));
    Atomics.store(i32, o + N_HASH, hash);
    get_file(k, f);
    return f;
  } finally {
    spin_unlock(k, G_NAMES_LOCK);
  }
}

/** unlink: the name goes; returns its file (the caller drops the name's reference) or -ENOENT. */
export function name_unlink(k: Kernel, hash: number): number {
  const i32 = k.i32;
  const names = k.layout.names;
  let file = -ENOENT;
  spin_lock(k, G_NAMES_LOCK, LockClass.Names);
  for (let s = 0; s < NAME_SLOTS; s++) {
    const o = names + s * NAME_WORDS;
    if (Atomics.load(i32, o + N_HASH) === hash) {
      file = Atomics.load(i32, o + N_FILE);
      Atomics.store(i32, o + N_HASH, 0);
      break;
    }
  }
  spin_unlock(k, G_NAMES_LOCK);
  return file;
}

/**
 * Unmounting every one of ptlab's small filesystems at the end of a run (kill_litter_super:
 * each dentry's reference dropped): a name still linked holds its file, which is the name's and
 * not a leak, so it is released here before the leak check, and counted (G_NAMES_LEFT) for the
 * report's "left linked". Called by the last task to exit, when no other task can open a name.
 */
export function names_release_all(k: Kernel): void {
  const i32 = k.i32;
  const names = k.layout.names;
  for (let s = 0; s < NAME_SLOTS; s++) {
    const o = names + s * NAME_WORDS;
    if (Atomics.load(i32, o + N_HASH) === 0) continue; // (no lock, so no schedule point, for an empty slot)
    spin_lock(k, G_NAMES_LOCK, LockClass.Names);
    const linked = Atomics.load(i32, o + N_HASH) !== 0;
    const f = Atomics.load(i32, o + N_FILE);
    if (linked) Atomics.store(i32, o + N_HASH, 0);
    spin_unlock(k, G_NAMES_LOCK);
    if (!linked) continue;
    Atomics.add(i32, G_NAMES_LEFT, 1);
    Atomics.store(i32, fileBase(k, f) + FL_NAME, 0);
    fput(k, f);
  }
}
