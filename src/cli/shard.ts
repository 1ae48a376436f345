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
import { readFileSync } from 'node:fs';
import { Presets, SingleBar } from 'cli-progress';
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

/** Shard i of n owns task t when t % n === i: this shard's task numbers below `total`, in order. */
export function shardTasks(total: number, shard: Shard | undefined): number[] {
  const s = shard ?? { index: 0, count: 1 };
  const mine: number[] = [];
  for (let t = s.index; t < total; t += s.count) mine.push(t);
  return mine;
}

/**
 * Runs `work` on every item, `jobs` at once, started in the items' order; the results in the
 * items' order (whatever finished first), so what is printed does not depend on `jobs`.
 */
export async function inLanes<T, R>(items: T[], jobs: number, work: (item: T, index: number) => Promise<R>, onDone?: (done: number) => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const k = next++;
      out[k] = await work(items[k], k);
      onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, lane));
  return out;
}

/** What every shard file has: its kind (the command that wrote it), ptlab's version, its shard. */
export interface ShardHeader { kind: string; version: string; shard: Shard }

/** The commands whose shards `ptlab merge` (or bench:races --merge) takes, by kind. */
export const SHARD_KINDS: Record<string, string> = {
  'ptlab-explore-shard': 'ptlab explore',
  'ptlab-compare-shard': 'ptlab compare / run',
  'ptlab-races-shard': 'npm run bench:races',
};

/** What merges each kind. */
const MERGED_BY: Record<string, string> = {
  'ptlab-explore-shard': 'ptlab merge',
  'ptlab-compare-shard': 'ptlab merge',
  'ptlab-races-shard': 'npm run bench:races -- --merge',
};

/**
 * Reads shard files and checks that they are one whole set: one kind, one ptlab version, the same
 * command (`identity` of each: its inputs), one count, every index once (in the order given). UsageError
 * naming the file or the missing shard otherwise.
 */
export function readShardSet<S extends ShardHeader>(files: string[], kind: string, identity: (s: S) => unknown, what = 'command'): S[] {
  if (files.length === 0) throw new UsageError('merge: no shard files given');
  const shards = files.map((f) => {
    let s: S;
    try {
      s = JSON.parse(readFileSync(f, 'utf8')) as S;
    } catch (err) {
      throw new UsageError(`merge: ${f}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not JSON'}`);
    }
    if (typeof s?.kind !== 'string' || !(s.kind in SHARD_KINDS)) throw new UsageError(`merge: ${f}: not a shard written by ptlab (explore, compare or run --out, bench:races --out)`);
    return s;
  });
  if (shards[0].kind !== kind && MERGED_BY[shards[0].kind] !== MERGED_BY[kind]) {
    throw new UsageError(`merge: ${files[0]} is a shard of ${SHARD_KINDS[shards[0].kind]}: ${MERGED_BY[shards[0].kind]} FILE... merges those`);
  }
  for (const [i, s] of shards.entries()) {
    if (s.kind !== kind) throw new UsageError(`merge: ${files[i]} is a shard of ${SHARD_KINDS[s.kind]}, ${files[0]} of ${SHARD_KINDS[kind]}: they do not merge`);
  }
  const first = shards[0];
  for (const [i, s] of shards.entries()) {
    if (s.version !== first.version) throw new UsageError(`merge: ${files[i]} was written by ptlab ${s.version}, ${files[0]} by ${first.version}`);
    if (JSON.stringify(identity(s)) !== JSON.stringify(identity(first))) throw new UsageError(`merge: ${files[i]} is a shard of another ${what} than ${files[0]}`);
    if (s.shard.count !== first.shard.count) throw new UsageError(`merge: ${files[i]} is one of ${s.shard.count} shards, ${files[0]} one of ${first.shard.count}`);
  }
  const have = new Set(shards.map((s) => s.shard.index));
  if (have.size !== shards.length) throw new UsageError('merge: a shard is given twice');
  const missing = Array.from({ length: first.shard.count }, (_, i) => i).filter((i) => !have.has(i));
  if (missing.length > 0) throw new UsageError(`merge: shard ${missing.map((i) => `${i}/${first.shard.count}`).join(', ')} missing`);
  return shards;
}

/** A shard file's kind, or undefined when it is not one (read errors are left to readShardSet). */
export function shardKind(file: string): string | undefined {
  try {
    const k = (JSON.parse(readFileSync(file, 'utf8')) as { kind?: unknown }).kind;
    return typeof k === 'string' ? k : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A progress bar on stderr for a long run (cli-progress): only when stderr is a terminal and the
 * output is not machine-read (--json, --csv), and only once the run has lasted `after` ms — a run
 * of a few seconds shows none. On a pipe: nothing, ever.
 */
export function progressBar(label: string, total: number, enabled: boolean, after = 2000): { update(done: number): void; stop(): void } {
  if (!enabled || !process.stderr.isTTY || total < 1) return { update() {}, stop() {} };
  let bar: SingleBar | null = null;
  let value = 0;
  const timer = setTimeout(() => {
    bar = new SingleBar({ format: `${label} {bar} {value}/{total} | {duration_formatted}`, hideCursor: true, stream: process.stderr }, Presets.shades_classic);
    bar.start(total, value);
  }, after);
  timer.unref();
  return {
    update(done: number) {
      value = done;
      bar?.update(done);
    },
    stop() {
      clearTimeout(timer);
      bar?.stop();
    },
  };
}
