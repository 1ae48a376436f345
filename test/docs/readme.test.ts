/**
 * The README stays true: every `$ npx ptlab ...` command it shows, and every option of the command
 * synopsis, still parses — the subcommand exists, each option is one the subcommand's `--help`
 * lists, and a scenario argument names a catalog scenario or a file in the repository. Commands are
 * split as the shell splits them (shell-quote), so pipes, redirections and comments end a command.
 * The blocks `npm run docs` regenerates (scripts/docs.mjs markers) each hold a command to run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'shell-quote';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, no types
import { findBlocks } from '../../scripts/docs.mjs';

const README = readFileSync('README.md', 'utf8');
const lines = README.split('\n');

function ptlab(...args: string[]): string {
  const r = spawnSync(process.execPath, ['bin/ptlab.mjs', ...args], { encoding: 'utf8', timeout: 60_000 });
  return `${r.stdout}${r.stderr}`;
}

const helps = new Map<string, Set<string>>();
/** The options a subcommand's --help lists (long and short), `--help` and `--no-x` forms included. */
function optionsOf(sub: string): Set<string> {
  let s = helps.get(sub);
  if (s === undefined) {
    s = new Set(['--help', '-h']);
    for (const m of ptlab(sub, '--help').matchAll(/(?:^|[\s,])(-[a-zA-Z]|--[a-z][a-z0-9-]*)/gm)) s.add(m[1]);
    helps.set(sub, s);
  }
  return s;
}

const SUBCOMMANDS = new Set([...ptlab('--help').matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]));
const SCENARIOS = new Set((JSON.parse(ptlab('list', '--json')) as { scenarios: { name: string }[] }).scenarios.map((s) => s.name));

/** The words of a shown command up to the first pipe, redirection, `;` or comment. */
function words(cmd: string): string[] {
  const out: string[] = [];
  for (const t of parse(cmd)) {
    if (typeof t !== 'string') break; // an operator ({op}) or a comment ({comment})
    out.push(t);
  }
  return out;
}

const shown = lines.flatMap((l, i) => {
  const m = /^\s*\$ npx ptlab (.*)$/.exec(l);
  return m ? [{ line: i + 1, argv: words(m[1]) }] : [];
});

describe('README.md', () => {
  it('shows commands', () => {
    expect(shown.length).toBeGreaterThan(10);
    expect(SUBCOMMANDS.has('run') && SUBCOMMANDS.has('explore') && SUBCOMMANDS.has('report')).toBe(true);
  });

  it('every `$ npx ptlab` command names a subcommand, known options and a scenario that exists', () => {
    const bad: string[] = [];
    for (const { line, argv } of shown) {
      const [sub, ...rest] = argv;
      if (!SUBCOMMANDS.has(sub)) {
        bad.push(`README.md:${line}: no subcommand '${sub}'`);
        continue;
      }
      const known = optionsOf(sub);
      for (const w of rest) {
        const opt = w.startsWith('-') ? w.split('=')[0] : null;
        if (opt !== null && !/^-\d/.test(opt) && !known.has(opt)) bad.push(`README.md:${line}: ptlab ${sub} has no option ${opt}`);
      }
      if (['run', 'compare', 'explore'].includes(sub)) {
        const scenario = rest[0];
        if (!SCENARIOS.has(scenario) && !scenario.endsWith('.json')) bad.push(`README.md:${line}: no scenario '${scenario}'`);
        if (scenario.endsWith('.json') && scenario.startsWith('examples/') && !existsSync(scenario)) bad.push(`README.md:${line}: no file ${scenario}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the synopsis under "The command line" lists only options the subcommands have', () => {
    const start = lines.findIndex((l) => l.startsWith('## The command line'));
    const bad: string[] = [];
    let sub = '';
    for (let i = start + 1; i < lines.length && !lines[i].startsWith('Exit status'); i++) {
      const m = /^ {4}ptlab ([a-z-]+)/.exec(lines[i]);
      if (m) {
        sub = m[1];
        if (!SUBCOMMANDS.has(sub)) bad.push(`README.md:${i + 1}: no subcommand '${sub}'`);
      }
      if (sub === '' || !SUBCOMMANDS.has(sub)) continue;
      for (const o of lines[i].matchAll(/\[(--?[a-z][a-z0-9-]*)/g)) if (!optionsOf(sub).has(o[1])) bad.push(`README.md:${i + 1}: ptlab ${sub} has no option ${o[1]}`);
    }
    expect(bad).toEqual([]);
  });

  it('every block npm run docs regenerates has a command, and links stay inside the repository', () => {
    const blocks = findBlocks(lines) as { commands: string[] }[];
    for (const b of blocks) expect(b.commands.length).toBeGreaterThan(0);
    expect(README).not.toMatch(/\]\(\.\.\/|`\.\.\/shared\//);
  });
});
