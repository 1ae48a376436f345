/** The built-in scenario catalog. */
import type { Scenario } from './common.js';
import { loadScenarioFile } from './file.js';
import { daxWindow } from './dax_window.js';
import { exitVsFault } from './exit_vs_fault.js';
import { faultStorm } from './fault_storm.js';
import { raceShareCount } from './race_share_count.js';
import { forkStorm } from './fork_storm.js';
import { mprotectVsFault } from './mprotect_vs_fault.js';
import { qemuSnapshot, qemuSnapshotFile } from './qemu_snapshot.js';
import { raceMunmapVsFault } from './race_munmap_vs_fault.js';
import { raceMshareAttach } from './race_mshare_attach.js';
import { raceMsharePeek } from './race_mshare_peek.js';
import { raceMshareRetry } from './race_mshare_retry.js';
import { raceMshareDontneed } from './race_mshare_dontneed.js';
import { raceOwnerExit } from './race_owner_exit.js';
import { raceRevoke } from './race_revoke.js';
import { raceSplitReshare } from './race_split_reshare.js';
import { raceStaleTlb } from './race_stale_tlb.js';
import { raceUnshareFlush } from './race_unshare_flush.js';
import { raceFirstShare } from './race_first_share.js';
import { raceTruncateVsFault } from './race_truncate_vs_fault.js';
import { raceDontneedVsFault } from './race_dontneed_vs_fault.js';
import { raceGupFastUnshare } from './race_gup_fast_unshare.js';
import { raceCowBreak } from './race_cow_break.js';
import { raceFaultUnshare } from './race_fault_unshare.js';
import { raceDontneedUnshare } from './race_dontneed_unshare.js';
import { raceReclaimSharer } from './race_reclaim_sharer.js';
import { raceMigrateStore } from './race_migrate_store.js';
import { raceVmaDetach } from './race_vma_detach.js';
import { raceVmaLock } from './race_vma_lock.js';
import { sga } from './sga.js';
import { threadsShareUnshare } from './threads_share_unshare.js';
import { sga1500 } from './sga_1500.js';
import { viommu } from './viommu.js';

export const SCENARIOS: Record<string, Scenario> = {
  sga,
  'sga-1500': sga1500,
  'exit-vs-fault': exitVsFault,
  'mprotect-vs-fault': mprotectVsFault,
  'fault-storm': faultStorm,
  'fork-storm': forkStorm,
  viommu,
  'dax-window': daxWindow,
  'qemu-snapshot': qemuSnapshot,
  'qemu-snapshot-file': qemuSnapshotFile,
  'race-stale-tlb': raceStaleTlb,
  'race-revoke': raceRevoke,
  'race-unshare-flush': raceUnshareFlush,
  'race-split-reshare': raceSplitReshare,
  'race-mshare-peek': raceMsharePeek,
  'race-mshare-attach': raceMshareAttach,
  'race-mshare-retry': raceMshareRetry,
  'race-vma-lock': raceVmaLock,
  'race-vma-detach': raceVmaDetach,
  'race-truncate-vs-fault': raceTruncateVsFault,
  'race-dontneed-vs-fault': raceDontneedVsFault,
  'race-dontneed-unshare': raceDontneedUnshare,
  'race-fault-unshare': raceFaultUnshare,
  'race-gup-fast-unshare': raceGupFastUnshare,
  'race-share-count': raceShareCount,
  'race-mshare-dontneed': raceMshareDontneed,
  'race-reclaim-sharer': raceReclaimSharer,
  'race-migrate-store': raceMigrateStore,
  'race-first-share': raceFirstShare,
  'race-owner-exit-vs-share': raceOwnerExit,
  'race-munmap-vs-fault': raceMunmapVsFault,
  'race-cow-break': raceCowBreak,
  'threads-share-unshare': threadsShareUnshare,
};

export const DEFAULT_SCENARIO = 'sga';

/**
 * A built-in scenario by name, or a scenario file by path (`*.json`, see file.ts). Throws with a
 * one-line message for an unknown name or a bad file. Files are read once per process.
 */
export function resolveScenario(nameOrPath: string): Scenario {
  const builtin = SCENARIOS[nameOrPath];
  if (builtin) return builtin;
  if (nameOrPath.endsWith('.json')) return (loaded[nameOrPath] ??= loadScenarioFile(nameOrPath));
  throw new Error(`unknown scenario '${nameOrPath}': one of ${Object.keys(SCENARIOS).join(', ')}, or a scenario file (*.json)`);
}

const loaded: Record<string, Scenario> = {};
