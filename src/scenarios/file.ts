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
import { compilePrograms, countTasks, describeIssue, ProgramSchema, type ParsedOp, type Program } from '../proc/program.js';
import { MAX_SLOTS } from '../shm/layout.js';
import { sizeMachine, type Scenario } from './common.js';

const ScenarioFileSchema = z.strictObject({
  summary: z.string().max(200).default('a scenario file'),
  /** The models the program is written for (it runs under the first unless --model says another of them). */
  models: z.array(z.string().min(1).max(64)).min(1).max(16).optional(),
  programs: z.array(ProgramSchema).min(1).max(4096),
});

/** Pages a scenario file's programs are provided for (1 GiB). */
const TOUCH_CAP = 1 << 18;

/** Reads and checks a scenario file; throws an Error whose message names the bad field. */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`scenario file ${path}: cannot be read${code ? ` (${code})` : ''}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // One line: JSON.parse's message quotes the text around the error, newlines and all.
    throw new Error(`scenario file ${path}: not JSON: ${(e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ')}`);
  }
  const r = ScenarioFileSchema.safeParse(raw);
  if (!r.success) throw new Error(`scenario file ${path}: ${describeIssue(r.error.issues[0], raw)}`);
  const programs = r.data.programs as Program[];
  programs.forEach((p, i) => {
    try {
      compilePrograms([p], MAX_SLOTS);
    } catch (e) {
      throw new Error(`scenario file ${path}: programs.${i}: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  if (countTasks(programs) > 4096) throw new Error(`scenario file ${path}: programs: at most 4096 processes, forked children included`);
  // Sized from what the programs can touch, not from what they map or size: a 1 TiB mapping
  // touched once needs one page and one set of tables (Linux maps lazily too). At most
  // TOUCH_CAP pages are provided for; a program that touches more runs out of memory
  // (VM_FAULT_OOM, reported), as on a machine of that size.
  let span = 4096; // the largest mapping of a file, or a file's size
  let priv = 0;
  let files = 1;
  let totalTouched = 0;
  let maxTouched = 0;
  // A fork's child runs its own ops: sized with its parent's.
  const flat = (ops: ParsedOp[]): ParsedOp[] => ops.flatMap((o) => (o.op === 'fork' ? [o, ...flat(o.child as ParsedOp[])] : [o]));
  for (const prog of r.data.programs.map(flat)) {
    let touched = 0;
    for (const op of prog) {
      if (op.op === 'ftruncate') span = Math.max(span, op.size);
      if (op.op === 'mmap') {
        if (op.flags.includes('MAP_ANONYMOUS')) priv += op.len;
        else span = Math.max(span, op.len + op.offset);
      }
      if (op.op === 'touch') touched += Math.ceil(op.len / op.stride);
      if (op.op === 'load' || op.op === 'store' || op.op === 'fault_remote') touched++;
      if (op.op === 'memfd_create' || op.op === 'shm_open' || op.op === 'open') files++;
    }
    touched = Math.min(touched, TOUCH_CAP);
    totalTouched = Math.min(TOUCH_CAP, totalTouched + touched);
    maxTouched = Math.max(maxTouched, touched);
  }
  const sharedBytes = Math.max(4096, Math.min(span, totalTouched * 4096));
  const privateBytes = Math.min(Math.ceil(priv / programs.length), maxTouched * 4096) + 4096;
  const maxOps = Math.max(...r.data.programs.map((p) => p.length));
  return {
    name: basename(path),
    summary: r.data.summary,
    details: `from ${path}`,
    defaults: { procs: programs.length },
    ...(r.data.models ? { models: { only: r.data.models, why: `the file is written for ${r.data.models.join(', ')}` } } : {}),
    build: (o) => ({
      programs,
      config: sizeMachine({
        cpus: o.cpus, procs: countTasks(programs), sharedBytes, privateBytes, sparsePages: Math.min(maxTouched, 2048),
        files: Math.min(files, 64), vmasPerProc: Math.min(64, maxOps), mem: o.mem,
      }),
    }),
  };
}
