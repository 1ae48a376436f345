import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, entry_table, entry_tag, MAX_FRAMES, MAX_PTPS, mk_pte, mk_table_entry,
  pgd_index, pmd_index, pte_index, pte_pfn, pud_index, TASK_SIZE,
} from '../../src/mm/pgtable.js';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
console.log(`pgtable property tests: FC_SEED=${seed}`);

describe('page-table entry encoding', () => {
  it('a PTE keeps every frame number of a 512 GiB machine and its flags', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_FRAMES - 1 }), fc.integer({ min: 0, max: 31 }), (pfn, flags) => {
        const e = mk_pte(pfn, flags);
        expect(pte_pfn(e)).toBe(pfn);
        expect(e & 31).toBe(flags);
      }),
      { seed },
    );
  });

  it('a table entry keeps the table index and six bits of its generation', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_PTPS - 1 }), fc.integer({ min: 0, max: 2 ** 30 }), (t, gen) => {
        const e = mk_table_entry(t, gen);
        expect(entry_table(e)).toBe(t);
        expect(entry_tag(e)).toBe(gen & 63);
        expect(e & (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER)).toBe(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER);
        expect(e).not.toBe(0);
      }),
      { seed },
    );
  });

  it('the four indices of a 47-bit user address recompose it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Math.floor(TASK_SIZE / 4096) }), (vpn) => {
        const back = ((pgd_index(vpn) * 512 + pud_index(vpn)) * 512 + pmd_index(vpn)) * 512 + pte_index(vpn);
        expect(back).toBe(vpn);
      }),
      { seed },
    );
  });
});
