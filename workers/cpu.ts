/**
 * The worker entry: one piscina task per simulated CPU. It runs the CPU loop until every task has
 * exited or the machine stops, and returns the CPU's statistics.
 */
import { runQuiescentChecks } from '../src/check/invariants.js';
import { MODELS } from '../src/models/index.js';
import { Cpu, type CpuParams, type CpuResult } from '../src/proc/cpu.js';

export default function runCpu(p: CpuParams): CpuResult {
  const model = MODELS[p.model].create(p.bug);
  return new Cpu(p, model, runQuiescentChecks).run();
}
