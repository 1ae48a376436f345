/**
 * `npm run bench:fork`: cow-pte against none, fork of a process with 64 MiB .. 1 GiB of private
 * anonymous memory (bench/fork.ts, benchForkCow), each size under both models in one run. Prints
 * one JSON line per run, then the table and the ratios. `--sizes 64,256` picks the sizes (MiB),
 * `--runs N` repeats each (interleaved; the median fork time is kept). Never part of `npm test`.
 */
import { emit, medians, type BenchRecord } from './common.js';
import { progressBar } from '../src/cli/shard.js';
import { benchForkCow, FORK_COW_MODELS, FORK_COW_SIZES_MIB, renderForkCow } from './fork.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const sizes = (arg('--sizes') ?? FORK_COW_SIZES_MIB.join(',')).split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
const runs = Math.max(1, Number(arg('--runs') ?? 1) | 1);

const records: BenchRecord[] = [];
// A progress bar on a terminal (stderr; nothing on a pipe): a step per size.
const bar = progressBar('bench:fork', sizes.length, true, 0);
for (const mib of sizes) {
  // Median by rate (forks/s): the run with the median fork time; the others' rates stay beside it.
  let rs: BenchRecord[] = [];
  if (runs === 1) for (const model of FORK_COW_MODELS) rs.push(await benchForkCow({ model, mib }));
  else rs = await medians(runs, FORK_COW_MODELS.map((model) => () => benchForkCow({ model, mib })));
  for (const r of rs) records.push(emit(r));
  bar.update(records.length / FORK_COW_MODELS.length);
}
bar.stop();
process.stdout.write(`\ncow-pte against none: fork of N MiB private anonymous memory, every page written first (1 CPU, ${records[0]?.cores ?? '?'} cores)\n`);
process.stdout.write(`${renderForkCow(records)}\n`);
process.stdout.write('fork (ms): the timed fork (after 3 untimed ones), between the parent\'s barriers around it; page tables after fork: both processes, x86-64 bytes, at a barrier both reach;\n' +
  'first read / first write: the child touching every page once, time per page between two barriers (faults taken in brackets);\n' +
  'page data: what each simulated page holds, the same at every size (a write fault copies it).\n');
