/**
 * Replay tokens: one short string that holds the scenario, its options and the schedule — a whole
 * bug report (shuttle prints a schedule string; ptlab's also says what to run). A schedule is
 * either a strategy and its seed (the decisions follow from them) or, after shrinking, the
 * switches themselves: "decision:cpu" pairs ("-1:1.40:0" = CPU 1 first, CPU 0 at decision 40),
 * the default holding between them (src/sched/strategy.ts pick).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { z } from 'zod';

export const TOKEN_PREFIX = 'ptlab1.';

/** Bad input in a token: the CLI gives it one line and exit 2. */
export class TokenError extends Error {}

/** The run options a token keeps (as the CLI got them: strings; lockStat a boolean). */
const optString = z.string().max(64);
const TokenOptsSchema = z.strictObject({
  cpus: optString.optional(), procs: optString.optional(), size: optString.optional(), ops: optString.optional(), deadline: optString.optional(),
  mmapLock: optString.optional(), hostLock: optString.optional(), faultLock: optString.optional(), ptl: optString.optional(),
  tlbFlush: optString.optional(), unshareFlush: optString.optional(),
  seed: optString.optional(), mem: optString.optional(), scale: optString.optional(), lockStat: z.boolean().optional(),
});

/** The decisions a run may take (the schedule log's room, src/cli/run.ts SCHED_LOG_DECISIONS). */
export const MAX_STEPS = 1 << 24;

const TokenSchema = z.strictObject({
  scenario: z.string().min(1).max(4096),
  model: z.string().min(1).max(64),
  bug: z.string().max(64).optional(),
  opts: TokenOptsSchema,
  strategy: z.enum(['random', 'pct', 'replay']),
  seed: z.number().int().min(0).max(2 ** 32 - 1),
  depth: z.number().int().min(1).max(16),
  steps: z.number().int().min(1).max(MAX_STEPS),
  /** A scenario file's bytes, deflated, base64url (packScenarioFile): the program travels with the token. */
  file: z.string().max(1 << 22).regex(/^[A-Za-z0-9_-]*$/, { message: 'expected base64url' }).optional(),
  /** The ptlab version that made the token (a replay by another version warns). */
  version: z.string().max(32).optional(),
  schedule: z.string().max(1 << 20).regex(/^((-1|\d{1,9}):\d{1,2}(\.(-1|\d{1,9}):\d{1,2})*)?$/, { message: 'expected "decision:cpu" pairs joined by dots (e.g. -1:1.40:0)' }).optional(),
});

export type ReplayToken = z.infer<typeof TokenSchema>;

/** Flattened (decision, cpu) pairs -> "d:c.d:c". */
export function encodeSchedule(pairs: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) out.push(`${pairs[i]}:${pairs[i + 1]}`);
  return out.join('.');
}

export function decodeSchedule(s: string): number[] {
  if (s === '') return [];
  const out: number[] = [];
  for (const part of s.split('.')) {
    const m = /^(-1|\d+):(\d+)$/.exec(part);
    if (!m) throw new Error(`bad schedule element '${part}'`);
    out.push(Number(m[1]), Number(m[2]));
  }
  return out;
}

export function encodeToken(t: ReplayToken): string {
  return TOKEN_PREFIX + Buffer.from(JSON.stringify(t)).toString('base64url');
}

/** Throws a TokenError with a one-line message naming the field when the string is not a whole token. */
export function decodeToken(s: string): ReplayToken {
  if (!s.startsWith(TOKEN_PREFIX)) throw new TokenError(`a replay token starts with '${TOKEN_PREFIX}'`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(s.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    throw new TokenError('the replay token is damaged (not base64url JSON)');
  }
  const r = TokenSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    const what = i.code === 'unrecognized_keys' ? `unknown key '${i.keys[0]}'` : i.message.replace(/\s+/g, ' ');
    throw new TokenError(`the replay token is damaged: ${i.path.map(String).join('.') || '(top)'}: ${what}`);
  }
  if (r.data.strategy === 'replay' && r.data.schedule === undefined) throw new TokenError('the replay token is damaged: schedule: a replay token needs its schedule');
  return r.data;
}

/** Checks a token's schedule against the machine it runs on: every CPU it names must exist. */
export function checkScheduleCpus(t: ReplayToken, cpus: number): void {
  if (t.schedule === undefined) return;
  const pairs = decodeSchedule(t.schedule);
  for (let i = 1; i < pairs.length; i += 2) {
    if (pairs[i] >= cpus) throw new TokenError(`the replay token is damaged: schedule: CPU ${pairs[i]} does not exist (the run has ${cpus} CPUs)`);
  }
}

/**
 * A scenario file's bytes for a token (deflated, base64url), or undefined for a built-in scenario:
 * a token is a whole bug report — editing or moving the file later does not change its replay.
 */
export function packScenarioFile(scenario: string): string | undefined {
  if (!scenario.endsWith('.json')) return undefined;
  try {
    return deflateRawSync(readFileSync(scenario), { level: 9 }).toString('base64url');
  } catch {
    return undefined; // unreadable: the run itself reports it
  }
}

/**
 * The scenario a token runs: its built-in name, or the file it carries written out under the
 * temp directory (named by the content's hash, so one program is one path), or — for a token made
 * before tokens carried files — the path it names.
 */
export function scenarioPath(t: ReplayToken): string {
  if (t.file === undefined) return t.scenario;
  let bytes: Buffer;
  try {
    bytes = inflateRawSync(Buffer.from(t.file, 'base64url'), { maxOutputLength: 1 << 24 });
  } catch {
    throw new TokenError('the replay token is damaged: file: not a deflated scenario file');
  }
  const dir = join(tmpdir(), 'ptlab-tokens');
  const name = basename(t.scenario).replace(/[^\w.-]/g, '_');
  const path = join(dir, `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}-${name}${name.endsWith('.json') ? '' : '.json'}`);
  if (!existsSync(path)) {
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path, bytes);
    } catch (e) {
      // (bad input to the user: one line, exit 2, not an internal error)
      throw new TokenError(`the token's scenario file cannot be written to ${dir} (${(e as NodeJS.ErrnoException).code ?? 'error'}): set TMPDIR to a writable directory`);
    }
  }
  return path;
}
