/**
 * The batch-engine files are checked for syntax and for agreeing with ptlab: the Kubernetes
 * Indexed Job (its completions equal the PTLAB_SHARD_COUNT its pods read with --shard auto), the
 * GitHub Actions matrix (as many shards as PTLAB_SHARD_COUNT says, a merge after them), the
 * Dockerfile (installs with the README's command) and scripts/slurm-demo.sh (bash -n). The Slurm
 * demo itself needs root and a few minutes: `bash scripts/slurm-demo.sh` (see README).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';

describe('deploy files', () => {
  it('the Kubernetes Indexed Job: completions = PTLAB_SHARD_COUNT, each pod one shard with --shard auto --out, then a merge', () => {
    const docs = parseAllDocuments(readFileSync('deploy/k8s/explore-job.yaml', 'utf8'));
    expect(docs.every((d) => d.errors.length === 0)).toBe(true);
    const [pvc, hunt, merge] = docs.map((d) => d.toJS());
    expect(pvc.kind).toBe('PersistentVolumeClaim');
    expect(hunt.spec.completionMode).toBe('Indexed');
    const c = hunt.spec.template.spec.containers[0];
    expect(c.env.find((e: { name: string }) => e.name === 'PTLAB_SHARD_COUNT').value).toBe(String(hunt.spec.completions));
    expect(c.args[0]).toMatch(/--shard auto --out \/shards\/s\$JOB_COMPLETION_INDEX\.json/);
    expect(merge.spec.template.spec.containers[0].args[0]).toMatch(/ptlab merge \/shards\/s\*\.json/);
  });

  it('the GitHub Actions workflow: a matrix of PTLAB_SHARD_COUNT shards, and a merge job that needs them', () => {
    const w = parse(readFileSync('.github/workflows/explore-shards.yml', 'utf8'));
    const shard = w.jobs.shard;
    expect(shard.strategy.matrix.shard).toHaveLength(Number(shard.env.PTLAB_SHARD_COUNT));
    expect(shard.steps.map((s: { run?: string }) => s.run ?? '').join('\n')).toMatch(/--shard auto --out shard-/);
    expect(w.jobs.merge.needs).toBe('shard');
    expect(w.jobs.merge.steps.at(-1).run).toMatch(/ptlab merge shards\/shard-\*\.json/);
  });

  it('the Dockerfile installs ptlab with npm ci on Node 20; the Slurm demo is valid bash', () => {
    const d = readFileSync('Dockerfile', 'utf8');
    expect(d).toMatch(/^FROM node:20/m);
    expect(d).toMatch(/npm ci/);
    expect(spawnSync('bash', ['-n', 'scripts/slurm-demo.sh']).status).toBe(0);
  });
});
