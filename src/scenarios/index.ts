/** The built-in scenario catalog. */
import type { Scenario } from './common.js';
import { daxWindow } from './dax_window.js';
import { exitVsFault } from './exit_vs_fault.js';
import { mprotectVsFault } from './mprotect_vs_fault.js';
import { qemuSnapshot, qemuSnapshotFile } from './qemu_snapshot.js';
import { sga } from './sga.js';
import { viommu } from './viommu.js';

export const SCENARIOS: Record<string, Scenario> = {
  sga,
  'exit-vs-fault': exitVsFault,
  'mprotect-vs-fault': mprotectVsFault,
  viommu,
  'dax-window': daxWindow,
  'qemu-snapshot': qemuSnapshot,
  'qemu-snapshot-file': qemuSnapshotFile,
};

export const DEFAULT_SCENARIO = 'sga';
