/**
 * `ptlab report FILE... --html OUT`: the HTML page of results saved as JSON — a run's or a
 * compare's `--json` (the compare page), or benchmark JSON lines (`npm run bench`, `bench:races`,
 * `bench:locks`: the benchmark page) — so a result made on one machine can be drawn on another.
 */
import { readFileSync } from 'node:fs';
import type { CompareReport } from './compare.js';
import { compareHtml } from './html.js';
import { benchHtml, parseJsonLines, type BenchLine } from './html_bench.js';
import type { RunReport } from './run.js';
import { UsageError } from './options.js';

const isRun = (v: unknown): v is RunReport => v !== null && typeof v === 'object' && 'faults' in v && 'pgtables_bytes' in v && 'scenario' in v;

/** The page for the saved results in `files` (read here; bad input is a UsageError naming the file). */
export function reportHtml(files: string[]): string {
  const runs: RunReport[] = [];
  const lines: BenchLine[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UsageError(`${f}: cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    let whole: unknown;
    try {
      whole = JSON.parse(text);
    } catch {
      whole = undefined;
    }
    if (isRun(whole)) runs.push(whole);
    else if (whole !== null && typeof whole === 'object' && Array.isArray((whole as { runs?: unknown }).runs) && (whole as { runs: unknown[] }).runs.every(isRun)) {
      runs.push(...(whole as { runs: RunReport[] }).runs);
    } else {
      const got = parseJsonLines(text).filter((l) => typeof l.bench === 'string' || typeof l.ratio === 'string');
      if (got.length === 0) throw new UsageError(`${f}: neither a run's or compare's --json nor benchmark JSON lines`);
      lines.push(...got);
    }
  }
  if (runs.length > 0 && lines.length > 0) throw new UsageError('report: run/compare results and benchmark lines cannot share one page; give them separately');
  if (runs.length > 0) {
    const c: CompareReport = { scenario: runs[0].scenario, seed: runs[0].seed, cores: runs[0].cores, runs } as CompareReport;
    return compareHtml(c);
  }
  return benchHtml(lines);
}
