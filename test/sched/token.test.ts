/**
 * Tokens are whole bug reports (issue "Results people can read and share", item 1): a token made
 * from a scenario file carries the file, so editing or deleting the file afterwards does not
 * change what the token replays; it names ptlab's version.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { explore, replay } from '../../src/cli/explore.js';
import { parseRunOptions } from '../../src/cli/options.js';
import { PTLAB_VERSION } from '../../src/cli/version.js';
import { decodeToken } from '../../src/sched/token.js';

describe('tokens carry their scenario file', () => {
  it('a passing explore gives a token; it replays the same program after the file is edited and then deleted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptlab-token-'));
    const file = join(dir, 'prog.json');
    copyFileSync('examples/pt_hint_fork.json', file);
    const o = parseRunOptions(file, { model: 'pt-hint', lockStat: false });
    const r = await explore(file, o, { strategy: 'random', depth: 3, runs: 2, seed: 1, raw: { lockStat: false } });
    expect(r.ok).toBe(true);
    const t = decodeToken(r.token!);
    expect(t.file).toBeDefined();
    expect(t.version).toBe(PTLAB_VERSION);
    // The file now says something else (a store expecting a value it will not read), then goes.
    writeFileSync(file, JSON.stringify({ summary: 'edited', programs: [[{ op: 'exit', code: 9 }]] }));
    const again = await replay(r.token!);
    expect(again.ok).toBe(true);
    expect(again.forks).toBe(2);
    rmSync(dir, { recursive: true, force: true });
    const gone = await replay(r.token!);
    expect(gone.ok).toBe(true);
    expect(gone.forks).toBe(2);
  });
});
