/**
 * The worker entry: one piscina task per simulated CPU. It runs the CPU loop until every task has
 * exited or the machine stops, and returns the CPU's statistics.
 */
import { runQuiescentChecks } from '../src/check/invariants.js';
import { ControlledScheduler } from '../src/sched/controlled.js';
import { TraceRing } from '../src/trace/ring.js';
import { MODELS } from '../src/models/index.js';
import { isPluginSpec, loadModelPlugin } from '../src/models/plugin.js';
import { Cpu, type CpuParams, type CpuResult } from '../src/proc/cpu.js';
import { initLockHistograms } from '../src/sync/lock_hist.js';
import { isLockPluginSpec, loadLockPlugin, setLockPluginSlot } from '../src/sync/lock_plugin.js';

/** A lock plugin (src/sync/lock_plugin.ts) named by `key`, loaded into MMF_LOCK_PLUGIN slot `slot`; the slot, or 0 for rwsem/qrwlock. */
async function lockSlot(slot: 1 | 2, key: string | undefined): Promise<number> {
  if (key === undefined || !isLockPluginSpec(key)) {
    setLockPluginSlot(slot, null);
    return 0;
  }
  await loadLockPlugin(key);
  setLockPluginSlot(slot, key);
  return slot;
}

// lock_stat's histograms in WebAssembly (about 20 ns a record, against 90 in plain JS).
await initLockHistograms();

export default async function runCpu(p: CpuParams): Promise<CpuResult> {
  // A plugin model (src/models/plugin.ts) is loaded in each worker under the key the CLI gave it.
  if (MODELS[p.model] === undefined && isPluginSpec(p.model)) await loadModelPlugin(p.model);
  const model = MODELS[p.model].create(p.bug);
  // So is a lock plugin: --mmap-lock's in slot 1, --host-lock's in slot 2 (mm/mmap_lock.ts MMF_LOCK_PLUGIN).
  const mmapPlugin = await lockSlot(1, p.mmapLock);
  const hostPlugin = await lockSlot(2, p.hostLock ?? p.mmapLock);
  const cpu = new Cpu(p, model, runQuiescentChecks);
  cpu.k.mmapLockPlugin = mmapPlugin;
  cpu.k.hostLockPlugin = hostPlugin;
  if (p.controlled) cpu.k.sched = new ControlledScheduler(cpu.k.i32, cpu.k.layout, p.deadlineMs);
  const ring = p.trace ? new TraceRing(cpu.k.i32, p.controlled === true, p.traceOrigin ?? 0) : null;
  cpu.k.tracer = ring;
  const r = cpu.run();
  if (ring) r.trace = ring.events;
  return r;
}
