/**
 * The current task's file table (fs/file.c): fds 3.. index a small array in the task record of
 * (file, generation) pairs. The fd owns one reference to its file.
 */
import { EMFILE } from './errno.js';
import { MAX_FDS, T_FD, T_FD_MODE } from '../shm/layout.js';
import type { Kernel } from './percpu.js';
import { file_gen } from './shmem.js';

export const FD_BASE = 3;

/** fdget: the file behind `fd` of the current task, or -1. */
export function fdget(k: Kernel, fd: number): number {
  const i = fd - FD_BASE;
  if (!Number.isInteger(i) || i < 0 || i >= MAX_FDS) return -1;
  return Atomics.load(k.i32, k.taskOff + T_FD + 2 * i);
}

/** The f_mode of `fd` (FMODE_READ | FMODE_WRITE), 0 for a bad fd. */
export function fd_mode(k: Kernel, fd: number): number {
  const i = fd - FD_BASE;
  if (!Number.isInteger(i) || i < 0 || i >= MAX_FDS) return 0;
  return Atomics.load(k.i32, k.taskOff + T_FD_MODE + i);
}

/**
 * fd_install: the lowest free fd for `file` (whose reference the fd now owns), opened with
 * f_mode `mode` (FMODE_READ | FMODE_WRITE; both by default), or -EMFILE.
 */
export function fd_install(k: Kernel, file: number, mode = 3): number {
  for (let i = 0; i < MAX_FDS; i++) {
    const o = k.taskOff + T_FD + 2 * i;
    if (Atomics.load(k.i32, o) < 0) {
      Atomics.store(k.i32, k.taskOff + T_FD_MODE + i, mode);
      Atomics.store(k.i32, o + 1, file_gen(k, file));
      Atomics.store(k.i32, o, file);
      return FD_BASE + i;
    }
  }
  return -EMFILE;
}
