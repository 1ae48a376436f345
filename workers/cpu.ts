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

// lock_stat's histograms in WebAssembly (about 20 ns a record, against 90 in plain JS).
await initLockHistograms();

export default async function runCpu(p: CpuParams): Promise<CpuResult> {
  // A plugin model (src/models/plugin.ts) is loaded in each worker under the key the CLI gave it.
  if (MODELS[p.model] === undefined && isPluginSpec(p.model)) await loadModelPlugin(p.model);
  const model = MODELS[p.model].create(p.bug);
  const cpu = new Cpu(p, model, runQuiescentChecks);
  if (p.controlled) cpu.k.sched = new ControlledScheduler(cpu.k.i32, cpu.k.layout, p.deadlineMs);
  const ring = p.trace ? new TraceRing(cpu.k.i32, p.controlled === true, p.traceOrigin ?? 0) : null;
  cpu.k.tracer = ring;
  const r = cpu.run();
  if (ring) r.trace = ring.events;
  return r;
}
