/**
 * lock_stat's percentiles: per lock class and mode, a histogram of wait times (contended
 * acquisitions) and one of hold times, in HdrHistogram (hdr-histogram-js; its WebAssembly build,
 * about 20 ns a record, once a worker has loaded it with initLockHistograms — the plain-JS build,
 * about 90 ns, elsewhere). Each CPU records into its own histograms (CPU-local, not machine
 * memory); when the run ends they travel to the orchestrator encoded, and are merged there.
 * Values are nanoseconds, kept to two significant digits (1% resolution), up to two minutes.
 */
import * as hdr from 'hdr-histogram-js';

let wasm = false;

/** Loads the WebAssembly build for the histograms this thread creates from now on. */
export async function initLockHistograms(): Promise<void> {
  if (wasm) return;
  await hdr.initWebAssembly();
  wasm = true;
}

export type LockHistogram = hdr.Histogram;

const MAX_NS = 120e9;

export function newLockHistogram(useWasm = wasm): LockHistogram {
  return hdr.build({ useWebAssembly: useWasm, lowestDiscernibleValue: 1, highestTrackableValue: MAX_NS, numberOfSignificantValueDigits: 2 });
}

/** Records `ms` milliseconds (a performance.now() difference). */
export function recordMs(h: LockHistogram, ms: number): void {
  h.recordValue(Math.min(MAX_NS, Math.max(1, Math.round(ms * 1e6))));
}

/**
 * Encodes each histogram (null stays null), frees it (WebAssembly memory is not collected) and
 * empties its slot, so a later record starts a new one.
 */
export function encodeLockHistograms(hs: (LockHistogram | null)[]): (string | null)[] {
  return hs.map((h, i) => {
    if (h === null) return null;
    const s = hdr.encodeIntoCompressedBase64(h);
    h.destroy();
    hs[i] = null;
    return s;
  });
}

/** Adds encoded histograms into `into`, slot by slot (plain-JS histograms: the orchestrator's side). */
export function mergeLockHistograms(into: (LockHistogram | null)[], from: readonly (string | null)[]): void {
  for (let i = 0; i < from.length; i++) {
    const s = from[i];
    if (s === null) continue;
    const h = hdr.decodeFromCompressedBase64(s, 32, false);
    if (into[i] === null) into[i] = newLockHistogram(false);
    into[i]!.add(h);
  }
}

/** The `p`th percentile in microseconds (0 for an empty or absent histogram). */
export function percentileUs(h: LockHistogram | null, p: number): number {
  if (h === null || h.totalCount === 0) return 0;
  return Math.round(h.getValueAtPercentile(p) / 10) / 100;
}
