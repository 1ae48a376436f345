/** Builds what worker threads load: dist/worker.mjs and dist/test/lock_worker.mjs. */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
