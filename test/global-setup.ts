/** Builds what worker threads load: dist/ (the CPU worker) and the test-only lock worker. */
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';

export default async function setup(): Promise<void> {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  await build({
    entryPoints: { lock_worker: 'test/helpers/lock_worker.ts' },
    outdir: 'dist/test',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
}
