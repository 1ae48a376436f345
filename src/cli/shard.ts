/**
 * `--shard i/n` and `--shard auto`: which slice of a hunt this invocation runs. `auto` reads the
 * index and count that batch engines give a job array's tasks:
 * - Slurm job arrays: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (sbatch --array=0-7);
 * - Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX, and the completions count passed in as
 *   PTLAB_SHARD_COUNT (a Job does not tell its pods; deploy/k8s/explore-job.yaml sets it);
 * - GitLab parallel jobs: CI_NODE_INDEX (from 1) and CI_NODE_TOTAL;
 * - anything else, GitHub Actions matrices included: PTLAB_SHARD_INDEX and PTLAB_SHARD_COUNT
 *   (.github/workflows/explore-shards.yml sets them from the matrix).
 */
import { UsageError } from './options.js';

export interface Shard { index: number; count: number }

const nat = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);

export function parseShard(spec: string, env: NodeJS.ProcessEnv): Shard {
  if (spec === 'auto') {
    const pick = (): [number | undefined, number | undefined, string] => {
      if (env.SLURM_ARRAY_TASK_ID !== undefined) return [nat(env.SLURM_ARRAY_TASK_ID), nat(env.SLURM_ARRAY_TASK_COUNT), 'SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT'];
      if (env.JOB_COMPLETION_INDEX !== undefined) return [nat(env.JOB_COMPLETION_INDEX), nat(env.PTLAB_SHARD_COUNT), 'JOB_COMPLETION_INDEX / PTLAB_SHARD_COUNT'];
      if (env.CI_NODE_INDEX !== undefined) return [nat(env.CI_NODE_INDEX) === undefined ? undefined : nat(env.CI_NODE_INDEX)! - 1, nat(env.CI_NODE_TOTAL), 'CI_NODE_INDEX / CI_NODE_TOTAL'];
      if (env.PTLAB_SHARD_INDEX !== undefined) return [nat(env.PTLAB_SHARD_INDEX), nat(env.PTLAB_SHARD_COUNT), 'PTLAB_SHARD_INDEX / PTLAB_SHARD_COUNT'];
      throw new UsageError('--shard auto: no shard in the environment (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, CI_NODE_INDEX or PTLAB_SHARD_INDEX)');
    };
    const [index, count, from] = pick();
    if (index === undefined || count === undefined || count < 1 || index >= count) throw new UsageError(`--shard auto: ${from} do not give an index below a count`);
    return { index, count };
  }
  const m = /^(\d+)\/(\d+)$/.exec(spec);
  if (m === null) throw new UsageError('--shard must be i/n (0 <= i < n) or auto');
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > 100_000 || index >= count) throw new UsageError('--shard must be i/n (0 <= i < n) or auto');
  return { index, count };
}
