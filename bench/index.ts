/**
 * ptlab's benchmark suite (`npm run bench`). Each benchmark is one file that answers one
 * question; this entry runs them, prints one JSON line per result (the median of a few
 * interleaved runs), then a table for people and the ratios against their targets.
 *
 *   minor_fault.ts         minor faults/s on page-cache pages, model none, 1 and 2 threads
 *   shared_pmd_fault.ts    map-shared-pt guest faults/s that only copy a host PMD entry
 *   tlb_hit.ts             loads/s and stores/s through the software TLB, 1 thread
 *   fork.ts                forks/s of a process with 64 MiB shared + 64 MiB private touched, beside the kernel (kernel_fork.c);
 *                          and none against cow-pte, 64 MiB private (npm run bench:fork: 64 MiB .. 1 GiB)
 *   kernel_minor_fault.ts  the real kernel's minor fault (kernel_fault.c), the yardstick
 *   sched_point.ts         what a schedule point costs with no scheduler installed
 *   explore_jobs.ts        explore's controlled runs/s at --jobs 1 .. cores, and 2 shards merged vs unsharded
 *
 * `--html FILE` also writes the results as one self-contained HTML page (src/cli/html_bench.ts);
 * `--csv` prints one CSV table of every record instead of the JSON lines and the table.
 *
 * No timing assertions: targets are reported, never enforced. Never part of `npm test`.
 */
import { cores, emit, medians, recordsCsv, type BenchRecord } from './common.js';
import { benchKernelMinorFault, KERNEL_FAULT_DEFAULTS } from './kernel_minor_fault.js';
import { benchMinorFault, MINOR_FAULT_DEFAULTS } from './minor_fault.js';
import { ratios, renderReport } from './report.js';
import { benchSharedPmdFault, SHARED_PMD_DEFAULTS } from './shared_pmd_fault.js';
import { benchSchedPoint, SCHED_POINT_DEFAULTS } from './sched_point.js';
import { benchTlbHit, TLB_HIT_DEFAULTS } from './tlb_hit.js';
import { benchFork, benchForkCow, benchKernelFork, FORK_COW_MODELS, FORK_DEFAULTS } from './fork.js';
import { benchPageData } from './page_data.js';
import { benchExploreJobs, benchShardedCheck, EXPLORE_JOBS_DEFAULTS } from './explore_jobs.js';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchHtml } from '../src/cli/html_bench.js';
import { progressBar } from '../src/cli/shard.js';

// `npm run bench -- --html FILE`: also the page of the results (ptlab report draws saved lines too).
const args = parseArgs({ options: { html: { type: 'string' }, csv: { type: 'boolean' } } }).values;

/** Runs per benchmark; the median is kept. */
const RUNS = 5;

const records: BenchRecord[] = [];
// A progress bar on a terminal (stderr; nothing on a pipe): one step per benchmark run.
const jobCounts = Array.from({ length: Math.max(2, cores()) }, (_, i) => i + 1);
const bar = progressBar('bench', RUNS * (3 + 2 + 2 + 2 + FORK_COW_MODELS.length + 2) + 3 * jobCounts.length + 1, true, 0);
let done = 0;
/** `f`, counted on the progress bar when it completes. */
const step = (f: () => Promise<BenchRecord> | BenchRecord) => async () => {
  const r = await f();
  bar.update(++done);
  return r;
};
const timed = (n: number, benches: Array<() => Promise<BenchRecord> | BenchRecord>) => medians(n, benches.map(step));
// --csv: one CSV table of every record at the end, instead of the JSON lines and the table.
const keep = (rs: BenchRecord[]) => {
  for (const r of rs) records.push(args.csv ? r : emit(r));
};

// Two threads even on a 1-core machine: the record then says oversubscribed: true. The kernel's
// figure is interleaved with ptlab's, since the two are compared.
keep(await timed(RUNS, [
  () => benchMinorFault({ threads: 1, ...MINOR_FAULT_DEFAULTS }),
  () => benchMinorFault({ threads: 2, ...MINOR_FAULT_DEFAULTS }),
  () => benchKernelMinorFault(KERNEL_FAULT_DEFAULTS),
]));
keep(await timed(RUNS, [
  () => benchSharedPmdFault({ cpus: 1, ...SHARED_PMD_DEFAULTS }),
  () => benchSharedPmdFault({ cpus: 2, ...SHARED_PMD_DEFAULTS }),
]));
keep(await timed(RUNS, [
  () => benchTlbHit({ write: false, ...TLB_HIT_DEFAULTS }),
  () => benchTlbHit({ write: true, ...TLB_HIT_DEFAULTS }),
]));
keep(await timed(RUNS, [
  () => benchFork(FORK_DEFAULTS),
  () => benchKernelFork(FORK_DEFAULTS),
]));
keep(await timed(RUNS, FORK_COW_MODELS.map((model) => () => benchForkCow({ model, mib: 64 }))));
keep(await timed(RUNS, [
  () => benchSchedPoint({ installed: false, ...SCHED_POINT_DEFAULTS }),
  () => benchSchedPoint({ installed: true, ...SCHED_POINT_DEFAULTS }),
]));

// explore across cores: --jobs 1, 2, ... cores, interleaved; then the sharded-vs-unsharded check.
keep(await timed(3, jobCounts.map((jobs) => () => benchExploreJobs({ jobs, ...EXPLORE_JOBS_DEFAULTS }))));
keep([await step(() => benchShardedCheck(EXPLORE_JOBS_DEFAULTS))()]);
bar.stop();

const pageData = benchPageData();
const rs = ratios(records);
if (args.csv) process.stdout.write(recordsCsv([...records, ...pageData, ...rs] as unknown as Record<string, unknown>[]));
else {
  for (const r of pageData) process.stdout.write(`${JSON.stringify(r)}\n`);
  for (const r of rs) process.stdout.write(`${JSON.stringify(r)}\n`);
  process.stdout.write(`\nptlab benchmarks on ${cores()} cores\n${renderReport(records, rs)}\n`);
  process.stdout.write(`\nmachine memory per GiB of simulated memory: ${pageData.map((r) => `${r.page_data_bytes} B of page data: ${(r.machine_bytes_per_simulated_gib / 2 ** 20).toFixed(1)} MiB`).join('; ')}\n`);
}
if (args.html !== undefined) {
  writeFileSync(args.html, benchHtml([...records, ...pageData, ...rs] as unknown as Record<string, unknown>[]));
  process.stdout.write(`the page: ${args.html}\n`);
}
