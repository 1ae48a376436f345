/**
 * page-data-memory: machine memory (the SharedArrayBuffer's bytes) per GiB of simulated memory,
 * at each page-data mode (--page-data): whole pages (4096 B of data per 4 KiB page) and the
 * reduced modes a big machine gets. Computed from the layout (src/shm/layout.ts computeLayout) of
 * a one-process machine whose frames hold 1 GiB and of one holding 2 GiB: the difference is what
 * one more GiB costs, the machine's fixed part aside.
 */
import { computeLayout } from '../src/shm/layout.js';
import { sizeMachine } from '../src/scenarios/common.js';
import { cores, GiB } from './common.js';

export interface PageDataRecord { bench: 'page-data-memory'; page_data_bytes: number; machine_bytes_per_simulated_gib: number; cores: number }

export function benchPageData(): PageDataRecord[] {
  const bytes = (shared: number, pageBytes: number) => {
    const config = sizeMachine({ cpus: 1, procs: 1, sharedBytes: shared, privateBytes: 4096, files: 1, vmasPerProc: 4, mem: 64 * GiB });
    config.payloadWords = pageBytes / 4;
    return computeLayout(config).words * 4;
  };
  return [4096, 1024, 256, 64].map((b) => ({
    bench: 'page-data-memory', page_data_bytes: b, machine_bytes_per_simulated_gib: bytes(2 * GiB, b) - bytes(GiB, b), cores: cores(),
  }));
}
