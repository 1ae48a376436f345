/**
 * `npm run fuzz -- --seconds N [--seed S]`: the properties of test/fuzz/fuzz.test.ts for as long
 * as asked, round-robin, printing counts by outcome class. Exit 1 (and the seed and input) at the
 * first broken promise; 0 when the time is up.
 */
import { Command } from 'commander';
import fc from 'fast-check';
import { argvArb, brokenFileArb, checkArgv, checkBrokenFile, checkProgram, checkToken, programArb, tokenArb, type Verdict } from './properties.js';

const o = new Command().option('--seconds <n>', 'how long', '60').option('--seed <n>', 'first seed', String(Date.now() % 2 ** 31)).parse().opts<{ seconds: string; seed: string }>();
const seconds = Number(o.seconds);
let seed = Number(o.seed);
if (!(seconds > 0) || !Number.isInteger(seed)) {
  process.stderr.write('fuzz: --seconds must be a positive number and --seed an integer\n');
  process.exit(2);
}

const props: { name: string; arb: fc.Arbitrary<unknown>; check: (x: never) => Verdict | Promise<Verdict>; batch: number }[] = [
  { name: 'file', arb: brokenFileArb, check: checkBrokenFile, batch: 200 },
  { name: 'token', arb: tokenArb, check: checkToken, batch: 200 },
  { name: 'program', arb: programArb, check: checkProgram, batch: 4 },
  { name: 'argv', arb: argvArb, check: checkArgv, batch: 2 },
];
const counts: Record<string, Record<string, number>> = {};
const end = Date.now() + seconds * 1000;
let n = 0;
while (Date.now() < end) {
  for (const p of props) {
    if (Date.now() >= end) break;
    for (const [i, x] of fc.sample(p.arb, { seed, numRuns: p.batch }).entries()) {
      const v = await p.check(x as never);
      (counts[p.name] ??= {})[v.cls] = (counts[p.name][v.cls] ?? 0) + 1;
      n++;
      if (v.problem) {
        process.stdout.write(`FAILED (${p.name}, seed ${seed}, sample ${i}): ${v.problem}\ninput: ${JSON.stringify(x)}\n`);
        process.exit(1);
      }
    }
    seed++;
  }
}
process.stdout.write(`fuzz: ${n} inputs in ${seconds} s, every promise held\n`);
for (const [name, c] of Object.entries(counts)) {
  process.stdout.write(`  ${name.padEnd(8)} ${Object.entries(c).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', ')}\n`);
}
process.exit(0);
