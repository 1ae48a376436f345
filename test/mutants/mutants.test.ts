// The mutants of `npm run mutate` stay usable: each applies to the tree as it is now, and says
// which Linux bug class it mirrors (scripts/make-mutants.mjs writes them again when code moves).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(__dirname, '../../mutants');
const patches = readdirSync(dir).filter((f) => f.endsWith('.patch')).sort();
const CLASSES = ['flush', 'lock-mode', 'lock-scope', 'recheck', 'refcount', 'accounting', 'range', 'free-order', 'permissions'];

describe('mutants/', () => {
  it('holds at least 30 patches, numbered NN-name', () => {
    expect(patches.length).toBeGreaterThanOrEqual(30);
    for (const p of patches) expect(p).toMatch(/^\d\d-[a-z0-9-]+\.patch$/);
  });
  it.each(patches)('%s names its class and Linux rule, and applies to the tree', (p) => {
    const text = readFileSync(join(dir, p), 'utf8');
    const cls = text.match(/^Class: (.*)$/m)?.[1];
    expect(CLASSES).toContain(cls);
    expect(text).toMatch(/^Linux: \S.{10,}$/m);
    execFileSync('git', ['apply', '--check', join(dir, p)], { cwd: join(__dirname, '../..'), stdio: 'pipe' });
  });
});
