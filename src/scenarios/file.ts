/**
 * Scenarios from JSON files, so a user can write one without TypeScript: one program per
 * process, the ops of src/proc/program.ts, validated with zod. The machine is sized from what the
 * programs ask for (the largest file and mapping, the number of processes and ops).
 *
 *   { "summary": "...", "programs": [ [ {"op": "memfd_create", "as": "fd"}, ... ], ... ] }
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { compileProgram, ProgramSchema, type Program } from '../proc/program.js';
import { MAX_SLOTS } from '../shm/layout.js';
import { sizeMachine, type Scenario } from './common.js';

const ScenarioFileSchema = z.object({
  summary: z.string().max(200).default('a scenario file'),
  programs: z.array(ProgramSchema).min(1).max(4096),
});

/** Reads and checks a scenario file; throws an Error whose message names the bad field. */
export function loadScenarioFile(path: string): Scenario {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`scenario file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const r = ScenarioFileSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`scenario file ${path}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  const programs = r.data.programs as Program[];
  programs.forEach((p, i) => {
    try {
      compileProgram(p, MAX_SLOTS);
    } catch (e) {
      throw new Error(`scenario file ${path}: programs.${i}: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  let shared = 4096; // the largest mapping of a file
  let truncated = 0; // every file's size, added up (the page cache may hold all of it)
  let priv = 0;
  let files = 1;
  for (const prog of r.data.programs) {
    for (const op of prog) {
      if (op.op === 'ftruncate') truncated += op.size;
      if (op.op === 'mmap') {
        if (op.flags.includes('MAP_ANONYMOUS')) priv += op.len;
        else shared = Math.max(shared, op.len + (op.offset ?? 0));
      }
      if (op.op === 'memfd_create' || op.op === 'shm_open' || op.op === 'open') files++;
    }
  }
  const maxOps = Math.max(...r.data.programs.map((p) => p.length));
  return {
    name: basename(path),
    summary: r.data.summary,
    details: `from ${path}`,
    defaults: { procs: programs.length },
    build: (o) => ({
      programs,
      config: sizeMachine({
        cpus: o.cpus, procs: programs.length, sharedBytes: Math.max(shared, truncated), privateBytes: Math.ceil(priv / programs.length) + 4096,
        files: Math.min(files, 64), vmasPerProc: Math.min(64, maxOps), mem: o.mem,
      }),
    }),
  };
}
