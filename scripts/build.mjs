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
  forks: 'bench/forks.ts',
  torture: 'workers/torture.ts',
  // package.json exports './model': the API a model plugin needs (src/models/plugin.ts hands the same object to a plugin's factory).
  'model-api': 'src/models/api.ts',
};
// The worker the lock tests start on their own threads (test/sync), when the tests are here.
if (existsSync(join(root, 'test/helpers/lock_worker.ts'))) entryPoints['test/lock_worker'] = 'test/helpers/lock_worker.ts';
// npm run fuzz: the fuzz properties of the tests, for as long as asked.
if (existsSync(join(root, 'test/fuzz/main.ts'))) entryPoints['fuzz'] = 'test/fuzz/main.ts';
// The real kernel's side of the differential check (native/ptkernel.c -> dist/ptkernel), where
// it can be built: Linux on x86-64 with `cc`. Otherwise one line says so (and dist/ptkernel.why
// keeps the reason for src/cli/native.ts); the build goes on either way. (Before esbuild, so
// that the helper does not depend on the TypeScript building.)
{
  const { spawnSync } = await import('node:child_process');
  const { mkdirSync, rmSync, statSync, writeFileSync } = await import('node:fs');
  const src = join(root, 'native/ptkernel.c');
  const bin = join(root, 'dist/ptkernel');
  const why = join(root, 'dist/ptkernel.why');
  const unavailable = (reason) => {
    try {
      rmSync(bin, { force: true });
      writeFileSync(why, reason + '\n');
    } catch {
      // (nowhere to keep the reason: kernelAvailable() says the binary is missing)
    }
    console.log(`ptlab: the differential check against the real kernel is unavailable: ${reason}`);
  };
  try {
    mkdirSync(join(root, 'dist'), { recursive: true });
    if (!existsSync(src)) unavailable('native/ptkernel.c is missing');
    else if (process.platform !== 'linux' || process.arch !== 'x64') unavailable(`it needs Linux on x86-64 (this is ${process.platform}/${process.arch})`);
    else if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).error) unavailable('no C compiler was found at npm ci (cc)');
    else if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
      const cc = spawnSync('cc', ['-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' });
      if (cc.status !== 0) unavailable(`cc failed to compile native/ptkernel.c: ${(cc.stderr || String(cc.error ?? '')).split('\n').find((l) => l.trim()) ?? `exit ${cc.status}`}`);
      else rmSync(why, { force: true });
    }
  } catch (e) {
    unavailable(`building it failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}
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
