/**
 * The race catalog (issue 5, item 6): for each race scenario, explore with PCT (the random walk
 * for race-mshare-peek) finds the planted bug (a fixed seed, so the test is deterministic), its
 * token replays the same checker, and the fixed model survives 50 controlled runs.
 */
import { describe, expect, it } from 'vitest';
import { explore, replay } from '../../src/cli/explore.js';
import { parseRunOptions } from '../../src/cli/options.js';

interface Race {
  scenario: string;
  model: string;
  bug: string;
  /** The checkers that may catch it (the first violation's). */
  checkers: string[];
  /** The strategy that finds it here (PCT, unless the race needs more switches than PCT's change points give). */
  strategy?: 'pct' | 'random';
}

// A missed shootdown shows as a store through the stale entry (stale-tlb-write) or, when every task
// reaches a barrier first, as the entry itself found by each CPU's TLB audit at quiescence (stale-tlb).
const RACES: Race[] = [
  { scenario: 'race-stale-tlb', model: 'map-shared-pt', bug: 'shootdown-forgets-sharers', checkers: ['stale-tlb-write', 'stale-tlb'] },
  { scenario: 'race-revoke', model: 'address-space', bug: 'revoke-forgets-mappers', checkers: ['stale-tlb-write', 'stale-tlb'] },
  { scenario: 'race-unshare-flush', model: 'pt-hint', bug: 'unshare-defers-flush', checkers: ['stale-tlb-write', 'stale-tlb', 'expectation'] },
  { scenario: 'race-split-reshare', model: 'pt-hint', bug: 'split-unshares-early', checkers: ['stale-tlb-write', 'stale-tlb'] },
  // Two exact switches (after the host's flush, and between peek and copy): PCT at depth 3 misses it.
  // The lockset (explore turns it on) catches the share taken without the host's lock on any schedule.
  { scenario: 'race-mshare-peek', model: 'mshare', bug: 'peek-without-host-lock', checkers: ['lockset', 'use-after-free'], strategy: 'random' },
  { scenario: 'race-mshare-attach', model: 'mshare', bug: 'attach-drops-mmap-lock', checkers: ['lost-write'], strategy: 'random' },
  { scenario: 'race-mshare-retry', model: 'mshare', bug: 'retry-unlocks-current-mm', checkers: ['lockdep:bad-unlock'] },
  // The per-VMA lock protocol (runs under --fault-lock per-vma, the scenario's default).
  // vma_mark_detached's vma_assert_write_locked catches it on any schedule, before the race; with
  // the window points a fault may also be caught allocating a PTE table after free_pgtables (leak).
  { scenario: 'race-vma-lock', model: 'none', bug: 'munmap-skips-vma-write-lock', checkers: ['lockdep:assert', 'invariant:free-pgtables', 'use-after-free', 'invariant:mapcount', 'leak'] },
  // Issue "Sharing under fire": CVE-2021-4002 through MADV_DONTNEED, and the 2022 hugetlb race
  // (a fault's PTE pointer used after a DONTNEED unshare and the sibling's free).
  { scenario: 'race-dontneed-unshare', model: 'pt-hint', bug: 'unshare-defers-flush', checkers: ['stale-tlb-write', 'stale-tlb'] },
  // cow-pte: a COW break that does not look again after allocating its copy (Lin's pmd_put_pte
  // "Free the new one and reuse the old one") leaves a table no entry points to.
  { scenario: 'race-cow-break', model: 'cow-pte', bug: 'cow-break-no-recheck', checkers: ['leak', 'invariant:pt-share', 'invariant:pt-owner', 'invariant:pgtables-bytes'], strategy: 'random' },
  {
    scenario: 'race-fault-unshare', model: 'pt-hint', bug: 'fault-without-vma-lock',
    checkers: ['invariant:free-pgtables', 'invariant:mapcount', 'use-after-free', 'invariant:rss', 'leak'], strategy: 'random',
  },
  // CVE-2025-38085 (the scenario runs with --tlb-flush broadcast, where nothing else waits for a gup_fast walker).
  { scenario: 'race-gup-fast-unshare', model: 'pt-hint', bug: 'unshare-skips-gup-sync', checkers: ['use-after-free'] },
  // CVE-2024-57883: sharing read from a refcount that compaction's speculative reference inflates.
  { scenario: 'race-share-count', model: 'pt-hint', bug: 'share-count-from-refcount', checkers: ['invariant:mapcount', 'invariant:rss', 'leak', 'use-after-free'] },
  // mshare v3's MADV_DONTNEED on the shared table ("without taking the needed locks"): the host's
  // PTEs zapped, only the caller flushed; the other guest's CPU keeps the translations.
  { scenario: 'race-mshare-dontneed', model: 'mshare', bug: 'v3-dontneed-without-host-lock', checkers: ['stale-tlb-write', 'stale-tlb'] },
  // Reclaim through rmap (Pedro Falcato, Feb 2026): try_to_unmap_one clears a shared PTE table's
  // entry once and must flush every mm that maps the table, not only the one it walked through.
  { scenario: 'race-reclaim-sharer', model: 'pt-hint', bug: 'reclaim-flushes-one-sharer', checkers: ['stale-tlb-write', 'stale-tlb'] },
  // Migration: the copy made before the flush that turns the PTEs into migration entries for
  // every CPU; a store through a TLB that still holds the old page lands after the copy.
  { scenario: 'race-migrate-store', model: 'pt-hint', bug: 'migrate-copy-before-flush', checkers: ['expectation', 'lost-write'] },
];

const raw = { lockStat: false };

describe('race catalog', () => {
  for (const r of RACES) {
    const strategy = r.strategy ?? 'pct';
    it(`${r.scenario}: ${strategy} finds --bug ${r.bug}, the token replays the same checker, the fixed ${r.model} survives`, async () => {
      const bugged = parseRunOptions(r.scenario, { model: r.model, bug: r.bug, lockStat: false });
      const found = await explore(r.scenario, bugged, { strategy, depth: 3, runs: 300, seed: 1, raw });
      expect(found.ok).toBe(false);
      expect(r.checkers).toContain(found.violations[0].checker);
      for (let i = 0; i < 2; i++) {
        const again = await replay(found.token!);
        expect(again.violations).toEqual(found.violations);
      }
      const fixed = parseRunOptions(r.scenario, { model: r.model, lockStat: false });
      const ok = await explore(r.scenario, fixed, { strategy, depth: 3, runs: 50, seed: 2, raw });
      expect([ok.ok, ok.violations]).toEqual([true, []]);
    });
  }
});
