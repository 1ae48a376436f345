/**
 * Replay tokens: one short string that holds the scenario, its options and the schedule — a whole
 * bug report (shuttle prints a schedule string; ptlab's also says what to run). A schedule is
 * either a strategy and its seed (the decisions follow from them) or, after shrinking, the
 * switches themselves: "decision:cpu" pairs ("-1:1.40:0" = CPU 1 first, CPU 0 at decision 40),
 * the default holding between them (src/sched/strategy.ts pick).
 */
import { z } from 'zod';

export const TOKEN_PREFIX = 'ptlab1.';

const TokenSchema = z.object({
  scenario: z.string().min(1),
  model: z.string().min(1),
  bug: z.string().optional(),
  opts: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  strategy: z.enum(['random', 'pct', 'replay']),
  seed: z.number().int(),
  depth: z.number().int().min(1),
  steps: z.number().int().min(1),
  schedule: z.string().optional(),
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

/** Throws with a one-line message when the string is not a token. */
export function decodeToken(s: string): ReplayToken {
  if (!s.startsWith(TOKEN_PREFIX)) throw new Error(`a replay token starts with '${TOKEN_PREFIX}'`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(s.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    throw new Error('the replay token is damaged (not base64url JSON)');
  }
  const r = TokenSchema.safeParse(raw);
  if (!r.success) throw new Error(`the replay token is damaged: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`);
  if (r.data.schedule !== undefined) decodeSchedule(r.data.schedule);
  return r.data;
}
