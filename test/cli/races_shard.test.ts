/**
 * bench:races beyond one machine: runs to the first failure per race, strategy and seed are
 * decided by their inputs alone, so --jobs 2 and shards merged give exactly the unsharded records
 * (runs/s aside: a rate); the merge refuses another configuration or a missing shard; --csv; on a
 * pipe nothing is written to stderr (no progress bar).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { mergeRaces, mergeRacesFiles, type RaceRecord, racesShard, type RacesShard } from '../../bench/races.js';

const dir = mkdtempSync(join(tmpdir(), 'ptlab-races-'));
const config = { races: ['race-mshare-retry'], seeds: 3, maxRuns: 4 };
/** Everything but the rate (and the cores, which the machine decides). */
const fixed = (rs: RaceRecord[]) => rs.map(({ runs_per_s: _r, cores: _c, ...x }) => x);

function races(...args: string[]) {
  const r = spawnSync(process.execPath, ['dist/races.mjs', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('bench:races across jobs and shards', () => {
  it('--jobs 2 and 3 shards merged give exactly the unsharded records', { timeout: 240_000 }, async () => {
    const one = mergeRaces([await racesShard(config, { jobs: 1 })]);
    expect(one.map((r) => [r.scenario, r.strategy, r.seeds, r.runs_to_failure.length])).toEqual([['race-mshare-retry', 'pct', 3, 3], ['race-mshare-retry', 'random', 3, 3]]);
    expect(one.every((r) => r.fixed_ok)).toBe(true);
    expect(one.some((r) => r.found > 0 && r.shrunk_decisions !== null)).toBe(true);
    const two = mergeRaces([await racesShard(config, { jobs: 2 })]);
    expect(fixed(two)).toEqual(fixed(one));
    const shards: RacesShard[] = [];
    for (let i = 0; i < 3; i++) shards.push(await racesShard(config, { jobs: 1, shard: { index: i, count: 3 } }));
    // 2 strategies x (3 seeds + 1 fixed) + 2 shrinks = 10 tasks, t % 3.
    expect(shards.map((s) => s.results.length)).toEqual([4, 3, 3]);
    expect(fixed(mergeRaces([shards[2], shards[0], shards[1]]))).toEqual(fixed(one));
    const files = shards.map((s, i) => join(dir, `s${i}.json`));
    shards.forEach((s, i) => writeFileSync(files[i], JSON.stringify(s)));
    expect(fixed(mergeRacesFiles(files).records)).toEqual(fixed(one));
    expect(() => mergeRacesFiles(files.slice(0, 2))).toThrow(/shard 2\/3 missing/);
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ ...shards[2], config: { ...config, seeds: 4 } }));
    expect(() => mergeRacesFiles([files[0], files[1], join(dir, 'other.json')])).toThrow(/another bench:races/);
  });

  it('the script: --shard with --out, --merge, --csv; nothing on stderr on a pipe; bad input exit 2', { timeout: 240_000 }, () => {
    const args = ['race-mshare-retry', '--seeds', '2', '--runs', '4'];
    const whole = races(...args);
    expect([whole.code, whole.err]).toEqual([0, '']);
    const lines = whole.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as RaceRecord);
    expect(lines.map((r) => r.strategy)).toEqual(['pct', 'random']);
    expect(whole.out).toMatch(/the race catalog on \d+ cores \(2 seeds, at most 4 runs each; not found counts as 5\)/);
    for (const i of [0, 1]) {
      const s = races(...args, '--jobs', '2', '--shard', `${i}/2`, '--out', join(dir, `c${i}.json`));
      expect([s.code, s.err]).toEqual([0, '']);
      expect(s.out).toMatch(new RegExp(`^shard ${i}/2: 4 of 8 task\\(s\\) in `));
    }
    const m = races('--merge', join(dir, 'c0.json'), join(dir, 'c1.json'));
    expect([m.code, m.err]).toEqual([0, '']);
    const merged = m.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as RaceRecord);
    expect(fixed(merged)).toEqual(fixed(lines));
    const csv = parse(races('--merge', join(dir, 'c1.json'), join(dir, 'c0.json'), '--csv').out, { columns: true }) as Record<string, string>[];
    expect(csv.map((r) => [r.scenario, r.strategy, r.found, r.runs_to_failure])).toEqual(lines.map((r) => [r.scenario, r.strategy, String(r.found), r.runs_to_failure.join(' ')]));
    expect(races('--merge', join(dir, 'c0.json')).err).toBe('bench:races: merge: shard 1/2 missing\n');
    const explore = JSON.parse(readFileSync(join(dir, 'c1.json'), 'utf8')) as RacesShard;
    writeFileSync(join(dir, 'ex.json'), JSON.stringify({ ...explore, kind: 'ptlab-explore-shard' }));
    expect(races('--merge', join(dir, 'c0.json'), join(dir, 'ex.json')).err).toMatch(/ex\.json is a shard of ptlab explore, .*c0\.json of npm run bench:races: they do not merge/);
    expect(races('no-such-race').code).toBe(2);
    expect(races('--shard', '3/2').err).toBe('bench:races: --shard must be i/n (0 <= i < n) or auto\n');
    expect(races('--frobnicate').code).toBe(2);
  });
});
