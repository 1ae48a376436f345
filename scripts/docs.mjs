#!/usr/bin/env node
/**
 * `npm run docs`: regenerates README.md's output blocks from real runs on this machine.
 *
 * A block to generate is an indented (4-space) block right after a marker line
 *
 *     <!-- docs -->                 every `$ ` line is run; its output replaces what follows it
 *     <!-- docs head=12 -->         keep each output's first 12 lines, then "..."
 *     <!-- docs tail=4 -->          keep the last 4 lines, "..." before them (with head: both ends)
 *     <!-- docs cut=160 -->         cut lines longer than 160 characters ("...")
 *     <!-- docs token -->           shorten replay tokens (ptlab1.xxxx...) to their first 24 characters
 *     <!-- docs quiet -->           run the commands but show no output (set-up steps)
 *
 * Options combine (`<!-- docs head=12 token -->`). `npx ptlab` runs this tree's bin/ptlab.mjs,
 * `npm run` this tree's scripts.
 * A block's commands run in order in one bash (pipefail) in a scratch directory (examples/ linked
 * in), so a command can use a variable an earlier one set or a file it wrote, and `echo $?` prints
 * the previous command's exit status. The block's first line says when and where it was made:
 * `# npm run docs, <date>, <cores> cores, Node <version>`. `--only ID` regenerates the blocks
 * whose first command contains ID; `--list` prints the blocks without running anything.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const readme = join(root, 'README.md');

const MARKER = /^<!-- docs((?:\s+[a-z]+(?:=\d+)?)*)\s*-->\s*$/;

/** The marked blocks: [markerLine, firstLine, endLine) of each, with its options. */
export function findBlocks(lines) {
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const m = MARKER.exec(lines[i]);
    if (!m) continue;
    const opts = {};
    for (const w of m[1].trim().split(/\s+/).filter(Boolean)) {
      const [k, v] = w.split('=');
      opts[k] = v === undefined ? true : Number(v);
    }
    let start = i + 1;
    while (start < lines.length && lines[start].trim() === '') start++;
    let end = start;
    while (end < lines.length && (lines[end].startsWith('    ') || lines[end].trim() === '')) end++;
    while (end > start && lines[end - 1].trim() === '') end--;
    const commands = lines.slice(start, end).filter((l) => l.startsWith('    $ ')).map((l) => l.slice(6));
    if (commands.length === 0) throw new Error(`README.md:${i + 1}: a docs marker with no "    $ " command after it`);
    blocks.push({ marker: i, start, end, opts, commands });
  }
  return blocks;
}

function shape(out, opts) {
  let lines = out.replace(/\n$/, '').split('\n');
  if (out.trim() === '') lines = [];
  if (opts.token) lines = lines.map((l) => l.replace(/(ptlab1\.[A-Za-z0-9_-]{17})[A-Za-z0-9_-]+/g, '$1...'));
  if (typeof opts.cut === 'number') lines = lines.map((l) => (l.length > opts.cut ? `${l.slice(0, opts.cut - 3)}...` : l));
  const head = typeof opts.head === 'number' ? opts.head : null;
  const tail = typeof opts.tail === 'number' ? opts.tail : null;
  if (head !== null && tail !== null) {
    if (lines.length > head + tail) lines = [...lines.slice(0, head), '...', ...lines.slice(-tail)];
  } else if (head !== null && lines.length > head) lines = [...lines.slice(0, head), '...'];
  else if (tail !== null && lines.length > tail) lines = ['...', ...lines.slice(-tail)];
  if (opts.quiet) lines = [];
  return lines;
}

function runBlock(block, scratch) {
  // One bash for the block, so a command can use what an earlier one set ($tok) or wrote; a mark
  // line after each command splits the output and carries its exit status ($? for `echo $?`).
  const mark = `@@ptlab-docs-${process.pid}@@`;
  const script = block.commands
    .map((c) => c.replace(/\bnpx ptlab\b/g, `node ${JSON.stringify(join(root, 'bin/ptlab.mjs'))}`).replace(/\bnpm run\b/g, `npm --silent --prefix ${JSON.stringify(root)} run`))
    .map((c) => `{ ${c}\n} 2>&1\n__s=$?\necho "${mark} $__s"\n(exit $__s)`)
    .join('\n');
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], { cwd: scratch, encoding: 'utf8', timeout: 30 * 60_000, env: { ...process.env, FORCE_COLOR: '0' } });
  const parts = (r.stdout ?? '').split(new RegExp(`^${mark} \\d+\\n?`, 'm'));
  const out = [`    # npm run docs, ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} cores, Node ${process.versions.node}`];
  block.commands.forEach((cmd, i) => {
    out.push(`    $ ${cmd}`);
    out.push(...shape(parts[i] ?? '', block.opts).map((l) => `    ${l}`.trimEnd()));
  });
  return out;
}

/** `npm run docs`: regenerate the marked blocks (or, with --list, name them). */
function main() {
  const { values: args } = parseArgs({ options: { only: { type: 'string', multiple: true }, list: { type: 'boolean' } } });
  const lines = readFileSync(readme, 'utf8').split('\n');
  const blocks = findBlocks(lines);
  if (args.list) {
    for (const b of blocks) process.stdout.write(`README.md:${b.marker + 1}: ${b.commands.join(' ; ')}\n`);
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'ptlab-docs-'));
  symlinkSync(join(root, 'examples'), join(scratch, 'examples'));
  try {
    // From the last block up, so the earlier blocks' line numbers stay right.
    for (const b of [...blocks].reverse()) {
      if (args.only && !args.only.some((id) => b.commands[0].includes(id))) continue;
      const t0 = Date.now();
      const made = runBlock(b, scratch);
      lines.splice(b.start, b.end - b.start, ...made);
      process.stderr.write(`docs: README.md:${b.marker + 1} ${b.commands[0]} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  writeFileSync(readme, lines.join('\n'));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
