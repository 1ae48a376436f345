/**
 * The system calls a scenario program makes, with Linux's argument checks and errnos. Each takes
 * the CPU's kernel context (current task in k.task) and returns a result >= 0 or -errno.
 */
import { FL_ID, FL_KIND, FILE_MODEL, M_FLAGS, MMF_COW_PTE, T_FD, T_MM } from '../shm/layout.js';
import { fileBase } from '../mm/filemap.js';
import { FMODE_READ, FMODE_WRITE, MAP_ANONYMOUS, vm_mmap, vm_munmap } from '../mm/mmap.js';
import { do_madvise } from '../mm/madvise.js';
import { do_mincore } from '../mm/mincore.js';
import { do_mlock, do_munlock, mm_populate } from '../mm/mlock.js';
import { do_mremap } from '../mm/mremap.js';
import { do_msync } from '../mm/msync.js';
import { do_reclaim } from '../mm/vmscan.js';
import { do_migrate } from '../mm/migrate.js';
import { EBADF, EINVAL, EISDIR, ENOENT, ENOMEM, ENOSYS, ENOTTY } from '../mm/errno.js';
import { do_mprotect } from '../mm/mprotect.js';
import type { IoctlArgs, MmapArgs } from '../mm/model_ops.js';
import type { Kernel } from '../mm/percpu.js';
import { FD_BASE, fd_install, fd_mode, fdget } from '../mm/fdtable.js';
import { name_hash, name_open, name_unlink } from '../mm/namei.js';
import { fput, is_model_file, shmem_file_read, shmem_file_setup, shmem_file_write, shmem_setsize } from '../mm/shmem.js';

const mmapArgs: MmapArgs = { mm: -1, addr: 0, len: 0, prot: 0, flags: 0, file: -1, pgoff: 0, fmode: 3, populate: false };

export function sys_memfd_create(k: Kernel): number {
  const f = shmem_file_setup(k);
  if (f < 0) return -ENOMEM;
  const fd = fd_install(k, f);
  if (fd < 0) fput(k, f);
  return fd;
}

/**
 * glibc's __shm_get_name: leading slashes go; what is left must be a non-empty name under
 * NAME_MAX with no further slash, else EINVAL. Returns the name as /dev/shm holds it, or null.
 */
function shm_name(name: string): string | null {
  const n = name.replace(/^\/+/, '');
  return n.length === 0 || n.length >= 255 || n.includes('/') ? null : '/' + n;
}

/** O_RDONLY / O_WRONLY / O_RDWR (0, 1, 2) as f_mode bits (FMODE_READ 1, FMODE_WRITE 2). */
function fmode_of(access: number): number {
  return access === 0 ? FMODE_READ : access === 1 ? FMODE_WRITE : FMODE_READ | FMODE_WRITE;
}

/** shm_open on tmpfs: O_CREAT creates, O_EXCL with an existing name gives EEXIST, none gives ENOENT. */
export function sys_shm_open(k: Kernel, name: string, create: boolean, excl: boolean, access = 2): number {
  const n = shm_name(name);
  if (n === null) return -EINVAL;
  const f = name_open(k, name_hash('shm', n), create, excl, () => {
    const nf = shmem_file_setup(k);
    return nf < 0 ? -ENOMEM : nf;
  });
  if (f < 0) return f;
  const fd = fd_install(k, f, fmode_of(access));
  if (fd < 0) fput(k, f);
  return fd;
}

export function sys_shm_unlink(k: Kernel, name: string): number {
  const n = shm_name(name);
  if (n === null) return -ENOENT; // glibc's shm_unlink: a name it cannot build is not there
  const f = name_unlink(k, name_hash('shm', n));
  if (f < 0) return f;
  fput(k, f);
  return 0;
}

export function sys_ftruncate(k: Kernel, fd: number, size: number): number {
  const f = fdget(k, fd);
  if (f < 0) return -EBADF;
  if (size < 0) return -EINVAL;
  if ((fd_mode(k, fd) & FMODE_WRITE) === 0) return -EINVAL; // do_ftruncate: not open for writing
  if (is_model_file(k, f)) return k.model.setsize ? k.model.setsize(k, f, size) : -EINVAL;
  return shmem_setsize(k, f, size);
}

const SHM_PREFIX = '/dev/shm/';

/**
 * open(2): /dev/shm/<name> is shm_open's tmpfs; any other path belongs to the model's own
 * filesystem (msharefs, a container device), or does not exist.
 */
export function sys_open(k: Kernel, path: string, create: boolean, excl: boolean, access = 2): number {
  const shm = shm_path(path);
  if (shm !== null) return shm < 0 ? shm : sys_shm_open(k, path.slice(SHM_PREFIX.length), create, excl, access);
  if (!k.model.open) return -ENOENT;
  const f = k.model.open(k, path, create, excl);
  if (f < 0) return f;
  const fd = fd_install(k, f, fmode_of(access));
  if (fd < 0) fput(k, f);
  return fd;
}

/**
 * Is `path` in /dev/shm? null when not; -EISDIR for the directory itself (open and unlink of a
 * directory), -ENOENT for a path through a directory /dev/shm does not have; else 0.
 */
function shm_path(path: string): number | null {
  if (path === '/dev/shm' || /^\/dev\/shm\/+$/.test(path)) return -EISDIR;
  if (!path.startsWith(SHM_PREFIX)) return null;
  return path.slice(SHM_PREFIX.length).includes('/') ? -ENOENT : 0;
}

export function sys_unlink(k: Kernel, path: string): number {
  const shm = shm_path(path);
  if (shm !== null) return shm < 0 ? shm : sys_shm_unlink(k, path.slice(SHM_PREFIX.length));
  return k.model.unlink ? k.model.unlink(k, path) : -ENOENT;
}

/** ioctl(2) on a model's file; ENOTTY for any other file, as for an ioctl a file does not know. */
export function sys_ioctl(k: Kernel, fd: number, cmd: string, args: IoctlArgs): number {
  const f = fdget(k, fd);
  if (f < 0) return -EBADF;
  if (Atomics.load(k.i32, fileBase(k, f) + FL_KIND) !== FILE_MODEL || !k.model.ioctl) return -ENOTTY;
  return k.model.ioctl(k, f, cmd, args);
}

/** madvise(2): Linux's advices (mm/madvise.c), and a sharing model's own (pt-hint's MADV_SHARE_PT). */
export function sys_madvise(k: Kernel, addr: number, len: number, advice: string): number {
  return do_madvise(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len, advice);
}

/**
 * ptlab's reclaim trigger (mm/vmscan.c, see do_reclaim): the page-cache pages the caller's
 * mappings of [addr, addr + len) map are unmapped from every mapping of their file (try_to_unmap)
 * and stay cached. 0 or -errno, with madvise(MADV_PAGEOUT)'s checks.
 */
export function sys_reclaim(k: Kernel, addr: number, len: number): number {
  return do_reclaim(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len);
}

/**
 * prctl(PR_SET_COW_PTE): the caller's mm opts in to COW page tables (cow-pte: its forks share
 * PTE tables; the children inherit the setting). Any other model: EINVAL, as a kernel without the
 * series answers an unknown option.
 */
export function sys_prctl_set_cow_pte(k: Kernel): number {
  if (k.model.break_cow_pte === undefined) return -EINVAL;
  Atomics.or(k.i32, k.mmBase(Atomics.load(k.i32, k.taskOff + T_MM)) + M_FLAGS, MMF_COW_PTE);
  return 0;
}

/** ptlab's migration trigger (mm/migrate.c, see do_migrate): returns the pages not moved, or -errno. */
export function sys_migrate(k: Kernel, addr: number, len: number): number {
  return do_migrate(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len);
}

/** pread64 (ksys_pread64): EBADF unless open for reading; ret the bytes read; the first word read in out.value. */
export function sys_pread(k: Kernel, fd: number, pos: number, len: number, out: { value: number }): number {
  const f = fdget(k, fd);
  if (f < 0 || (fd_mode(k, fd) & FMODE_READ) === 0) return -EBADF;
  if (is_model_file(k, f)) return -EINVAL;
  return shmem_file_read(k, f, pos, len, out);
}

/** pwrite64: EBADF unless open for writing; ret the bytes written. */
export function sys_pwrite(k: Kernel, fd: number, pos: number, len: number, value: number): number {
  const f = fdget(k, fd);
  if (f < 0 || (fd_mode(k, fd) & FMODE_WRITE) === 0) return -EBADF;
  if (is_model_file(k, f)) return -EINVAL;
  return shmem_file_write(k, f, pos, len, value);
}

export function sys_mlock(k: Kernel, addr: number, len: number, onfault: boolean): number {
  return do_mlock(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len, onfault);
}

export function sys_munlock(k: Kernel, addr: number, len: number): number {
  return do_munlock(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len);
}

export function sys_msync(k: Kernel, addr: number, len: number, flags: number): number {
  return do_msync(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len, flags);
}

/** mincore(2): the residency bits of the range's first 32 pages, or -errno. */
export function sys_mincore(k: Kernel, addr: number, len: number): number {
  return do_mincore(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len);
}

export function sys_mremap(k: Kernel, addr: number, oldLen: number, newLen: number, flags: number, newAddr: number): number {
  return do_mremap(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, oldLen, newLen, flags, newAddr);
}

export function sys_close(k: Kernel, fd: number): number {
  const f = fdget(k, fd);
  if (f < 0) return -EBADF;
  Atomics.store(k.i32, k.taskOff + T_FD + 2 * (fd - FD_BASE), -1);
  fput(k, f);
  return 0;
}

/** ksys_mmap_pgoff: EBADF for a bad fd of a file mapping, EINVAL for an unaligned offset. */
export function sys_mmap(k: Kernel, addr: number, len: number, prot: number, flags: number, fd: number, offset: number): number {
  let file = -1;
  if ((flags & MAP_ANONYMOUS) === 0) {
    file = fdget(k, fd);
    if (file < 0) return -EBADF;
  }
  if (offset % 4096 !== 0) return -EINVAL;
  const a = mmapArgs;
  a.mm = Atomics.load(k.i32, k.taskOff + T_MM);
  a.addr = addr;
  a.len = len;
  a.prot = prot;
  a.flags = flags;
  a.file = file;
  a.pgoff = offset / 4096;
  a.fmode = file >= 0 ? fd_mode(k, fd) : FMODE_READ | FMODE_WRITE;
  const r = vm_mmap(k, a);
  // MAP_POPULATE / MAP_LOCKED: mm_populate after the lock dropped (errors ignored, as vm_mmap_pgoff).
  if (r >= 0 && a.populate) mm_populate(k, a.mm, r, r + a.len);
  return r;
}

export function sys_munmap(k: Kernel, addr: number, len: number): number {
  return vm_munmap(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len);
}

export function sys_mprotect(k: Kernel, addr: number, len: number, prot: number): number {
  return do_mprotect(k, Atomics.load(k.i32, k.taskOff + T_MM), addr, len, prot);
}

/** FL_ID of the file behind `fd` (names the file in the lost-write check). */
export function file_id(k: Kernel, file: number): number {
  return Atomics.load(k.i32, fileBase(k, file) + FL_ID);
}



/** mshare(name, addr, len, oflag, mode), mshare v1 (seed 004): only the mshare model has it. */
export function sys_mshare(k: Kernel, name: string, addr: number, len: number, create: boolean, excl: boolean): number {
  return k.model.mshare ? k.model.mshare(k, name, addr, len, create, excl) : -ENOSYS;
}

export function sys_mshare_unlink(k: Kernel, name: string): number {
  return k.model.mshare_unlink ? k.model.mshare_unlink(k, name) : -ENOSYS;
}
