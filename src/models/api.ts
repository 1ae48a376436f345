/**
 * What a model plugin gets (src/models/plugin.ts hands it to the plugin's factory): the catalog's
 * models to build on, the hooks' types' default answers, the core fault path, the errnos, and the
 * helpers the catalog's models use for shootdowns. A plugin is ordinary JavaScript (ESM); it runs
 * inside every simulated CPU's worker, on the kernel state of the machine (see README, "Write your
 * own model").
 */
import { EACCES, EBUSY, EINVAL, ENOMEM, ENOTTY } from '../mm/errno.js';
import { __handle_mm_fault } from '../mm/memory.js';
import { MODEL_DEFAULT } from '../mm/model_ops.js';
import { M_CPUMASK } from '../shm/layout.js';
import type { Kernel } from '../mm/percpu.js';
import { model_flush_mask } from './host_mm.js';
import { MODELS } from './index.js';

/** The CPUs running `mm` (its mm_cpumask): what a flush of an mm reaches when nothing is shared. */
function mm_cpumask(k: Kernel, mm: number): number {
  return Atomics.load(k.i32, k.mmBase(mm) + M_CPUMASK);
}

export const MODEL_API = Object.freeze({
  /** The catalog (none, pt-hint, map-shared-pt, ...): `create(bug)` gives a model's hooks to wrap. */
  models: MODELS,
  /** A hook's "do what Linux does" answer (mmap). */
  MODEL_DEFAULT,
  /** The core fault path (handle_mm_fault below the model): `none`'s `fault` hook. */
  handle_mm_fault: __handle_mm_fault,
  /** mm_cpumask(mm); and a host mm's flush mask (every CPU running any of its mappers). */
  mm_cpumask,
  host_flush_mask: model_flush_mask,
  errno: Object.freeze({ EACCES, EBUSY, EINVAL, ENOMEM, ENOTTY }),
});

export type ModelApi = typeof MODEL_API;

// What a lock plugin needs (`--mmap-lock ./my_lock.mjs`, src/sync/lock_plugin.ts): its factory is
// called with LOCK_API (the bounded wait and the wake); the types of the protocol it returns.
export { LOCK_API, type LockApi, type LockProtocol } from '../sync/lock_plugin.js';
