/**
 * The race catalog's figures (`npm run bench:races`, long: not part of `npm run bench`): for each
 * race and each strategy, the runs `explore` needs to the first failure over 20 seeds (median;
 * a seed that finds nothing in MAX_RUNS counts as MAX_RUNS + 1 and the record says how many did),
 * runs per second (of the fixed variant, MAX_RUNS runs on one pool of workers: the failing runs
 * stop too early to measure a rate), and the switches of the first failure's schedule before and after shrinking.
 * Arguments: scenario names to measure only those races.
 * Targets: PCT finds each race in at most 100 runs (median); a fixed variant survives.
 */
import Table from 'cli-table3';
import { explore } from '../src/cli/explore.js';
import { parseRunOptions } from '../src/cli/options.js';
import { shrink } from '../src/cli/shrink.js';
import { decodeToken } from '../src/sched/token.js';
import { cores } from './common.js';

interface Race {
  name: string;
  scenario: string;
  model: string;
  bug: string;
  opts: Record<string, string>;
}

/** Every catalog race with its planted bug (the fixed variant is the same without --bug). */
export const RACES: Race[] = [
  { name: 'exit vs fault on a shared table', scenario: 'exit-vs-fault', model: 'map-shared-pt', bug: 'rfc-v2-free-shared-pmd', opts: {} },
  { name: 'mprotect vs fault, shootdown forgets a sharer', scenario: 'mprotect-vs-fault', model: 'map-shared-pt', bug: 'shootdown-forgets-sharers', opts: { procs: '2', cpus: '2', ops: '4', size: '2M' } },
  { name: 'a hot TLB when the shootdown forgets a sharer', scenario: 'race-stale-tlb', model: 'map-shared-pt', bug: 'shootdown-forgets-sharers', opts: {} },
  { name: 'address-space revoke vs DMA in flight', scenario: 'race-revoke', model: 'address-space', bug: 'revoke-forgets-mappers', opts: {} },
  { name: 'pt-hint unshare without its flush (CVE-2021-4002)', scenario: 'race-unshare-flush', model: 'pt-hint', bug: 'unshare-defers-flush', opts: {} },
  { name: 'pt-hint split re-shared by a fault (CVE-2025-38084)', scenario: 'race-split-reshare', model: 'pt-hint', bug: 'split-unshares-early', opts: {} },
  { name: 'mshare lockless peek vs host unmap', scenario: 'race-mshare-peek', model: 'mshare', bug: 'peek-without-host-lock', opts: {} },
  { name: 'mshare v1 attach drops mmap_lock vs remap', scenario: 'race-mshare-attach', model: 'mshare', bug: 'attach-drops-mmap-lock', opts: {} },
  { name: 'mshare v1 retry releases current->mm (remote fault)', scenario: 'race-mshare-retry', model: 'mshare', bug: 'retry-unlocks-current-mm', opts: {} },
  { name: 'munmap detaches a VMA without vma_start_write (per-VMA locks)', scenario: 'race-vma-lock', model: 'none', bug: 'munmap-skips-vma-write-lock', opts: {} },
  { name: 'pt-hint MADV_DONTNEED unshare without its flush (CVE-2021-4002)', scenario: 'race-dontneed-unshare', model: 'pt-hint', bug: 'unshare-defers-flush', opts: {} },
  { name: 'pt-hint sharing read from a refcount (CVE-2024-57883)', scenario: 'race-share-count', model: 'pt-hint', bug: 'share-count-from-refcount', opts: {} },
  { name: 'pt-hint unshare without the GUP-fast sync (CVE-2025-38085)', scenario: 'race-gup-fast-unshare', model: 'pt-hint', bug: 'unshare-skips-gup-sync', opts: {} },
  { name: 'pt-hint fault vs MADV_DONTNEED unshare without the vma_lock (2022)', scenario: 'race-fault-unshare', model: 'pt-hint', bug: 'fault-without-vma-lock', opts: {} },
  { name: 'mshare v3 MADV_DONTNEED on the shared table without the host lock', scenario: 'race-mshare-dontneed', model: 'mshare', bug: 'v3-dontneed-without-host-lock', opts: {} },
  { name: 'pt-hint reclaim (try_to_unmap) flushes one sharer of a shared PTE table', scenario: 'race-reclaim-sharer', model: 'pt-hint', bug: 'reclaim-flushes-one-sharer', opts: {} },
  { name: 'migration copies the page before the TLB flush (a store after the copy is lost)', scenario: 'race-migrate-store', model: 'pt-hint', bug: 'migrate-copy-before-flush', opts: {} },
  { name: 'cow-pte COW break that does not look again after allocating its copy', scenario: 'race-cow-break', model: 'cow-pte', bug: 'cow-break-no-recheck', opts: {} },
];

const SEEDS = 20;
const MAX_RUNS = 100;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// `npm run bench:races -- <scenario>...` measures only those races.
const only = process.argv.slice(2);
const rows: string[][] = [];
for (const race of RACES.filter((r) => only.length === 0 || only.includes(r.scenario))) {
  for (const strategy of ['pct', 'random'] as const) {
    const o = parseRunOptions(race.scenario, { ...race.opts, model: race.model, bug: race.bug, lockStat: false });
    const runsToFail: number[] = [];
    let found = 0;
    let firstToken: string | undefined;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await explore(race.scenario, o, { strategy, depth: 3, runs: MAX_RUNS, seed, raw: { ...race.opts, lockStat: false } });
      if (!r.ok) {
        found++;
        runsToFail.push(r.runs);
        firstToken ??= r.token;
      } else runsToFail.push(MAX_RUNS + 1);
    }
    const shrunk = firstToken ? await shrink(decodeToken(firstToken), 200) : undefined;
    const fixedOpts = parseRunOptions(race.scenario, { ...race.opts, model: race.model, lockStat: false });
    const fixed = await explore(race.scenario, fixedOpts, { strategy, depth: 3, runs: MAX_RUNS, seed: 1, raw: { ...race.opts, lockStat: false } });
    const rec = {
      bench: 'race', race: race.name, scenario: race.scenario, model: race.model, bug: race.bug, strategy,
      seeds: SEEDS, found, median_runs_to_failure: median(runsToFail), runs_per_s: fixed.runs_per_s, fixed_ok: fixed.ok,
      shrunk_decisions: shrunk?.to ?? null, failing_run_decisions: shrunk?.from ?? null, cores: cores(),
      meets_target: strategy === 'pct' ? median(runsToFail) <= 100 : null,
    };
    process.stdout.write(`${JSON.stringify(rec)}\n`);
    rows.push([race.name, strategy, `${found}/${SEEDS}`, String(rec.median_runs_to_failure), `${rec.runs_per_s}${fixed.ok ? '' : ' (FIXED VARIANT FAILED)'}`, shrunk ? `${shrunk.from} -> ${shrunk.to}` : '-']);
  }
}
const t = new Table({ head: ['race', 'strategy', 'found', 'median runs to failure', 'runs/s (fixed)', 'shrunk switches'], style: { head: [], border: [], compact: true } });
t.push(...rows);
process.stdout.write(`\nthe race catalog on ${cores()} cores (${SEEDS} seeds, at most ${MAX_RUNS} runs each; not found counts as ${MAX_RUNS + 1})\n${t.toString()}\n`);
