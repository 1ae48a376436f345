/**
 * Beyond one machine: explore --jobs N gives the answer --jobs 1 gives; shards merged give the
 * unsharded answer (the same first failure and token, or the same passing token); a checkpoint
 * resumes a hunt without running again what it holds; --shard auto reads the batch engines'
 * variables; merge refuses a missing shard or shards of another hunt.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ExploreShard, exploreShard, mergeShardFiles, mergeShards } from '../../src/cli/explore.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { parseShard } from '../../src/cli/shard.js';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-shard-'));
const raw = { lockStat: false };
const hunt = { strategy: 'pct' as const, depth: 3, runs: 60, seed: 11, raw };
const bugged = () => parseRunOptions('race-split-reshare', { model: 'pt-hint', bug: 'split-unshares-early', lockStat: false });
const fixed = () => parseRunOptions('race-split-reshare', { model: 'pt-hint', lockStat: false });

function ptlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('--shard', () => {
  it('i/n and auto (Slurm, Kubernetes, GitLab, PTLAB_SHARD_*); anything else is bad input', () => {
    expect(parseShard('2/4', {})).toEqual({ index: 2, count: 4 });
    expect(parseShard('auto', { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '8' })).toEqual({ index: 3, count: 8 });
    expect(parseShard('auto', { JOB_COMPLETION_INDEX: '0', PTLAB_SHARD_COUNT: '4' })).toEqual({ index: 0, count: 4 });
    expect(parseShard('auto', { CI_NODE_INDEX: '4', CI_NODE_TOTAL: '4' })).toEqual({ index: 3, count: 4 });
    expect(parseShard('auto', { PTLAB_SHARD_INDEX: '1', PTLAB_SHARD_COUNT: '2' })).toEqual({ index: 1, count: 2 });
    for (const bad of ['4/4', '1', 'a/b', '-1/2', '0/0']) expect(() => parseShard(bad, {})).toThrow(/--shard must be i\/n/);
    expect(() => parseShard('auto', {})).toThrow(/no shard in the environment/);
    expect(() => parseShard('auto', { SLURM_ARRAY_TASK_ID: '9', SLURM_ARRAY_TASK_COUNT: '8' })).toThrow(/index below a count/);
  });
});

describe('explore across jobs and shards', () => {
  it('--jobs 3 finds the failure --jobs 1 finds (the lowest-numbered), with the same token; 3 shards merged agree', async () => {
    const one = mergeShards([await exploreShard('race-split-reshare', bugged(), { ...hunt, jobs: 1 })]);
    const three = mergeShards([await exploreShard('race-split-reshare', bugged(), { ...hunt, jobs: 3 })]);
    expect(one.ok).toBe(false);
    expect([three.runs, three.token, three.violations]).toEqual([one.runs, one.token, one.violations]);
    const shards: ExploreShard[] = [];
    for (let i = 0; i < 3; i++) shards.push(await exploreShard('race-split-reshare', bugged(), { ...hunt, jobs: 2, shard: { index: i, count: 3 } }));
    const merged = mergeShards(shards);
    expect([merged.ok, merged.runs, merged.token]).toEqual([false, one.runs, one.token]);
    // Each shard ran only its own runs, none past the hunt's first failure.
    for (const s of shards) if (s.failure) expect(s.failure.run % 3).toBe(s.shard.index);
  });

  it('a passing hunt: the shards merged give the unsharded pass and its last run\'s token', async () => {
    const o = { ...hunt, runs: 8 };
    const whole = mergeShards([await exploreShard('race-split-reshare', fixed(), o)]);
    const files = [0, 1].map((i) => join(dir, `pass${i}.json`));
    for (const [i, f] of files.entries()) writeFileSync(f, JSON.stringify(await exploreShard('race-split-reshare', fixed(), { ...o, shard: { index: i, count: 2 } })));
    const merged = mergeShardFiles(files);
    expect([merged.ok, merged.runs, merged.token]).toEqual([true, 8, whole.token]);
    expect(() => mergeShardFiles([files[0]])).toThrow(/shard 1\/2 missing/);
    const other = JSON.parse(readFileSync(files[1], 'utf8')) as ExploreShard;
    other.hunt.seed = 12;
    writeFileSync(join(dir, 'other.json'), JSON.stringify(other));
    expect(() => mergeShardFiles([files[0], join(dir, 'other.json')])).toThrow(/another hunt/);
    expect(() => mergeShardFiles([files[0], files[0]])).toThrow(/given twice/);
  });

  it('--checkpoint / --resume: a hunt killed half-way resumes where it stopped and gives the same answer', async () => {
    const cp = join(dir, 'cp.json');
    const whole = await exploreShard('race-split-reshare', bugged(), { ...hunt, checkpoint: cp });
    expect(whole.failure?.run).toBe(40);
    // As if killed after 20 runs: the checkpoint holds them, no failure yet.
    const c = JSON.parse(readFileSync(cp, 'utf8')) as ExploreShard;
    writeFileSync(cp, JSON.stringify({ ...c, next: 20, failure: null, executed: 20 }));
    const resumed = await exploreShard('race-split-reshare', bugged(), { ...hunt, checkpoint: cp, resume: true });
    expect(resumed.failure?.token).toBe(whole.failure?.token);
    expect(resumed.executed).toBe(20 + 21); // runs 20..40
    writeFileSync(cp, JSON.stringify({ ...c, hunt: { ...c.hunt, runs: 61 } }));
    await expect(exploreShard('race-split-reshare', bugged(), { ...hunt, checkpoint: cp, resume: true })).rejects.toThrow(/another hunt/);
  });

  it('the CLI: --shard with --out, then merge; --jobs and --shard bad input is one line, exit 2', () => {
    const args = ['explore', 'race-split-reshare', '--bug', 'split-unshares-early', '--runs', '60', '--seed', '11'];
    const whole = ptlab(...args, '--jobs', '2', '--json');
    expect(whole.code).toBe(1);
    for (const i of [0, 1]) expect(ptlab(...args, '--shard', `${i}/2`, '--out', join(dir, `c${i}.json`)).code).toBeLessThanOrEqual(1);
    const m = ptlab('merge', join(dir, 'c0.json'), join(dir, 'c1.json'), '--json');
    expect(m.code).toBe(1);
    expect(JSON.parse(m.out).token).toBe(JSON.parse(whole.out).token);
    expect(ptlab('merge', join(dir, 'c0.json')).err.trim()).toBe('ptlab: merge: shard 1/2 missing');
    expect(ptlab(...args, '--jobs', '0').code).toBe(2);
    expect(ptlab(...args, '--shard', '2/2').err.trim()).toBe('ptlab: --shard must be i/n (0 <= i < n) or auto');
    expect(ptlab(...args, '--resume').err.trim()).toBe('ptlab: --resume needs --checkpoint FILE');
    expect(ptlab('merge', join(dir, 'nope.json')).code).toBe(2);
  });
});
