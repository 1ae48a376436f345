/**
 * The differential corpus (examples/kernel/*.json): every program there, under the models none
 * and pt-hint — and the ones that fork under cow-pte (copy-on-write PTE tables at fork) — must
 * give on ptlab what this machine's Linux gives (src/cli/diff_kernel.ts). Each
 * file states one Linux rule in its summary and asserts the kernel's answers itself; a file whose
 * program ptlab does not follow yet stays out of the directory.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffKernel, renderDiff } from '../../src/cli/diff_kernel.js';
import { kernelAvailable } from '../../src/cli/native.js';

const DIR = 'examples/kernel';
const MODELS = ['none', 'pt-hint'] as const;
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
/**
 * cow-pte changes only what fork does: the programs that fork (their names say so) run under it
 * too. They do not opt in (a real kernel has no PR_SET_COW_PTE), so these rows check that a
 * process that did not ask forks as under none; the opted-in path is checked against none by
 * test/models/cow_pte.test.ts.
 */
const forkFiles = files.filter((f) => f.includes('fork'));
const avail = kernelAvailable();

describe('the differential corpus', () => {
  it('has the programs it is meant to have', () => {
    expect(files.length).toBeGreaterThanOrEqual(85);
  });
});

// Each case runs the simulator (~0.3 s: its worker threads) and the helper (real processes, ~20 ms):
// one after the other, the whole corpus takes about 90 s on two cores (running cases concurrently
// was slower there).
describe.skipIf(!avail.ok)(`examples/kernel agrees with Linux${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  it.each([...files.flatMap((f) => MODELS.map((m) => [f, m] as const)), ...forkFiles.map((f) => [f, 'cow-pte'] as const)])('%s --model %s', async (file, model) => {
    const r = await diffKernel(join(DIR, file), model);
    expect(r.ok, renderDiff(r)).toBe(true);
  });
});
