// Builds the CLI, the CPU worker and the benchmarks to dist/ with esbuild.
// Node 20 cannot start a .ts worker by itself, so worker threads load dist/worker.mjs
// (see ../shared/STACK.md: esbuild output starts ~5x faster than a tsx loader).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entryPoints = {
  cli: 'src/cli/main.ts',
  worker: 'workers/cpu.ts',
  bench: 'bench/index.ts',
  races: 'bench/races.ts',
  locks: 'bench/locks.ts',
  torture: 'workers/torture.ts',
};
// The worker the lock tests start on their own threads (test/sync), when the tests are here.
if (existsSync(join(root, 'test/helpers/lock_worker.ts'))) entryPoints['test/lock_worker'] = 'test/helpers/lock_worker.ts';
// npm run fuzz: the fuzz properties of the tests, for as long as asked.
if (existsSync(join(root, 'test/fuzz/main.ts'))) entryPoints['fuzz'] = 'test/fuzz/main.ts';
await build({
  absWorkingDir: root,
  entryPoints,
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
