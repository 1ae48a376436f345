/**
 * `none`: Linux today. Every process has its own page tables for every mapping, MAP_SHARED or
 * not; a MAP_SHARED_PT flag means nothing (unknown mmap flags are ignored without
 * MAP_SHARED_VALIDATE), so the same scenario runs unchanged under every model.
 */
import { M_CPUMASK } from '../shm/layout.js';
import { __handle_mm_fault } from '../mm/memory.js';
import { EINVAL } from '../mm/errno.js';
import { MODEL_DEFAULT, type ModelOps } from '../mm/model_ops.js';

export function createNoneModel(): ModelOps {
  return {
    name: 'none',
    mmap: () => MODEL_DEFAULT,
    fault: (k, vmf) => __handle_mm_fault(k, vmf),
    mprotect: () => -EINVAL,
    may_munmap: () => 0,
    detach: () => {},
    switch_mm: () => {},
    flush_mask: (k, mm) => Atomics.load(k.i32, k.mmBase(mm) + M_CPUMASK),
  };
}
