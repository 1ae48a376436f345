#!/usr/bin/env node
// The `ptlab` command: runs the CLI bundle that `npm ci` (prepare) or `npm run build` writes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const cli = fileURLToPath(new URL('../dist/cli.mjs', import.meta.url));
if (!existsSync(cli)) {
  process.stderr.write('ptlab: dist/cli.mjs is missing: run `npm run build` (npm ci does it for you)\n');
  process.exit(2);
}
await import(cli);
