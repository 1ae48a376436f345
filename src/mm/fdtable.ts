/**
 * The current task's file table (fs/file.c): fds 3.. index a small array in the task record of
 * (file, generation) pairs. The fd owns one reference to its file.
 */
import { EMFILE } from './errno.js';
import { MAX_FDS, T_FD } from '../shm/layout.js';
import type { Kernel } from './percpu.js';
import { file_gen } from './shmem.js';

export const FD_BASE = 3;

/** fdget: the file behind `fd` of the current task, or -1. */
export function fdget(k: Kernel, fd: number): number {
  const i = fd - FD_BASE;
  if (!Number.isInteger(i) || i < 0 || i >= MAX_FDS) return -1;
  return Atomics.load(k.i32, k.taskOff + T_FD + 2 * i);
}

/** fd_install: the lowest free fd for `file` (whose reference the fd now owns), or -EMFILE. */
export function fd_install(k: Kernel, file: number): number {
  for (let i = 0; i < MAX_FDS; i++) {
    const o = k.taskOff + T_FD + 2 * i;
    if (Atomics.load(k.i32, o) < 0) {
      Atomics.store(k.i32, o + 1, file_gen(k, file));
      Atomics.store(k.i32, o, file);
      return FD_BASE + i;
    }
  }
  return -EMFILE;
}
