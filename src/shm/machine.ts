/**
 * The machine: one SharedArrayBuffer sized from the config, its layout, and the initial state of
 * every pool (all objects free, generation 1). Built on the main thread before any CPU starts;
 * after that, machine memory changes only through Atomics.
 */
import {
  computeLayout, C_WAIT_WORD, MAX_MACHINE_WORDS, CPU_WORDS, FILE_WORDS, G_MAGIC, G_MEM_LIMIT, MM_WORDS, POOL_HDR_WORDS, PL_TOP, PTP_WORDS,
  R_GEN, VMA_WORDS, WORD, XN_WORDS,
  type Layout, type MachineConfig,
} from './layout.js';

export const MACHINE_MAGIC = 0x70746c62; // 'ptlb'

export interface Machine {
  readonly sab: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly layout: Layout;
}

export interface PoolRef {
  readonly hdr: number;
  readonly stack: number;
  readonly base: number;
  readonly stride: number;
  readonly capacity: number;
}

export function poolsOf(l: Layout): { frames: PoolRef; ptps: PoolRef; mms: PoolRef; vmas: PoolRef; files: PoolRef; xa: PoolRef } {
  const c = l.config;
  return {
    frames: { hdr: l.framesPool, stack: l.frameStack, base: l.frames, stride: l.frameWords, capacity: c.frames },
    ptps: { hdr: l.ptpPool, stack: l.ptpStack, base: l.ptps, stride: PTP_WORDS, capacity: c.ptPages },
    mms: { hdr: l.mmPool, stack: l.mmStack, base: l.mms, stride: MM_WORDS, capacity: c.mms },
    vmas: { hdr: l.vmaPool, stack: l.vmaStack, base: l.vmas, stride: VMA_WORDS, capacity: c.vmas },
    files: { hdr: l.filePool, stack: l.fileStack, base: l.files, stride: FILE_WORDS, capacity: c.files },
    xa: { hdr: l.xaPool, stack: l.xaStack, base: l.xaNodes, stride: XN_WORDS, capacity: c.xaNodes },
  };
}

/** Bytes the machine memory of this config takes (to check limits before allocating). */
export function machineBytes(config: MachineConfig): number {
  return computeLayout(config).words * WORD;
}

export function createMachine(config: MachineConfig): Machine {
  const layout = computeLayout(config);
  if (layout.words > MAX_MACHINE_WORDS) {
    throw new RangeError(`machine memory of ${(layout.words * WORD / 2 ** 30).toFixed(1)} GiB is past ptlab's limit of 8 GiB (word offsets are 31-bit)`);
  }
  const sab = new SharedArrayBuffer(layout.words * WORD);
  const i32 = new Int32Array(sab);
  i32[G_MAGIC] = MACHINE_MAGIC;
  i32[G_MEM_LIMIT] = Math.floor(config.memBytes / 4096);
  for (let c = 0; c < config.cpus; c++) i32[layout.cpu + c * CPU_WORDS + C_WAIT_WORD] = -1;
  for (const p of Object.values(poolsOf(layout))) {
    // Free stack holds every index, lowest on top, so allocation order is deterministic.
    for (let k = 0; k < p.capacity; k++) {
      i32[p.stack + k] = p.capacity - 1 - k;
      i32[p.base + k * p.stride + R_GEN] = 1;
    }
    i32[p.hdr + PL_TOP] = p.capacity;
  }
  return { sab, i32, layout };
}

/** A view of a machine built elsewhere (a worker's side). */
export function attachMachine(sab: SharedArrayBuffer, config: MachineConfig): Machine {
  const layout = computeLayout(config);
  const i32 = new Int32Array(sab);
  if (Atomics.load(i32, G_MAGIC) !== MACHINE_MAGIC) throw new Error('not a ptlab machine');
  return { sab, i32, layout };
}

export { POOL_HDR_WORDS };
