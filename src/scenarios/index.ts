/** The built-in scenario catalog. */
import type { Scenario } from './common.js';
import { exitVsFault } from './exit_vs_fault.js';
import { mprotectVsFault } from './mprotect_vs_fault.js';
import { sga } from './sga.js';

export const SCENARIOS: Record<string, Scenario> = {
  sga,
  'exit-vs-fault': exitVsFault,
  'mprotect-vs-fault': mprotectVsFault,
};

export const DEFAULT_SCENARIO = 'sga';
