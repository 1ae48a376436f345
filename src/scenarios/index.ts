/** The built-in scenario catalog. */
import type { Scenario } from './common.js';
import { daxWindow } from './dax_window.js';
import { exitVsFault } from './exit_vs_fault.js';
import { mprotectVsFault } from './mprotect_vs_fault.js';
import { sga } from './sga.js';
import { viommu } from './viommu.js';

export const SCENARIOS: Record<string, Scenario> = {
  sga,
  'exit-vs-fault': exitVsFault,
  'mprotect-vs-fault': mprotectVsFault,
  viommu,
  'dax-window': daxWindow,
};

export const DEFAULT_SCENARIO = 'sga';
