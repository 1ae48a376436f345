/**
 * The benchmarks' --csv (bench/common.ts recordsCsv): every record one row, a column per key any
 * record has, read back by a CSV parser (csv-parse) to the same values — commas, quotes and
 * per-run arrays included.
 */
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recordsCsv } from '../../bench/common.js';

describe('recordsCsv', () => {
  it('reads back to the records (arrays joined by spaces, absent keys empty)', () => {
    const key = fc.constantFrom('bench', 'model', 'rate_per_s', 'note', 'threads');
    const value = fc.oneof(fc.integer(), fc.string(), fc.array(fc.integer(), { minLength: 1, maxLength: 4 }));
    fc.assert(fc.property(fc.array(fc.dictionary(key, value, { minKeys: 1 }), { minLength: 1, maxLength: 8 }), (records) => {
      const rows = parse(recordsCsv(records), { columns: true }) as Record<string, string>[];
      expect(rows).toHaveLength(records.length);
      records.forEach((r, i) => {
        for (const [k, v] of Object.entries(rows[i])) {
          const want = r[k];
          expect(v).toBe(want === undefined ? '' : Array.isArray(want) ? want.join(' ') : String(want));
        }
      });
    }), { numRuns: 200 });
  });
});
