/**
 * Page migration through rmap (src/mm/migrate.ts) on CPUs driven by the test thread: every
 * mapping's PTE moves to the new frame with its permissions, the data and the store ledger move
 * with it, the page cache points at the new frame, the old one is freed; a PTE table shared under
 * pt-hint is changed once; mlocked pages move too; the errnos of the `migrate` op. (Faults that
 * meet a migration entry and wait need a second CPU running: test/integration/scenarios.test.ts
 * and the race catalog run race-migrate-store on real threads and under explore.)
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/check/invariants.js';
import { EINVAL, ENOMEM } from '../../src/mm/errno.js';
import { filemap_get_frame } from '../../src/mm/filemap.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/mmap.js';
import { ACCESS_OK, mmu_load, mmu_store, mmuResult } from '../../src/mm/mmu.js';
import { read_violations } from '../../src/mm/mmdebug.js';
import { frameBase } from '../../src/mm/page_alloc.js';
import { ST_FAULT_SHARED_PMD, ST_MIGRATE_FAILED, ST_MIGRATE_PAGES, type Kernel } from '../../src/mm/percpu.js';
import { _PAGE_RW, pte_pfn } from '../../src/mm/pgtable.js';
import { current_pte } from '../../src/mm/tlb.js';
import { sys_migrate, sys_mlock, sys_mmap, sys_mprotect } from '../../src/proc/syscalls.js';
import { F_MAPCOUNT, R_GEN, T_MM } from '../../src/shm/layout.js';
import { mapSharedFile, runOn, testMachine, threeSharers, touchPages } from '../helpers/kernel.js';

const RW = PROT_READ | PROT_WRITE;
const MiB = 1024 * 1024;
const A = 0x40000000;
const PAGES = 8;

const map = (k: Kernel, t: number, hint: boolean) => mapSharedFile(k, t, '/g', A, hint);

const mmOf = (k: Kernel, t: number) => Atomics.load(k.i32, k.taskBase(t) + T_MM);
const frameAt = (k: Kernel, t: number, addr: number) => pte_pfn(current_pte(k, mmOf(k, t), addr / 4096));

describe('migration (migrate_pages -> try_to_migrate, remove_migration_ptes)', () => {
  for (const model of ['none', 'pt-hint']) {
    it(`${model}: every mapping moves to the new frame with its data; the page cache follows; the old frame is freed`, () => {
      const { m, cpus: [k] } = testMachine(model, '', { tasks: 3 });
      const hint = model === 'pt-hint';
      threeSharers(k, '/g', A, PAGES, hint);
      if (hint) expect(k.stats[ST_FAULT_SHARED_PMD]).toBe(2);
      const file = 0;
      const before = Array.from({ length: PAGES }, (_, i) => filemap_get_frame(k, file, i));
      expect(before.every((f, i) => f >= 0 && frameAt(k, 2, A + i * 4096) === f)).toBe(true);
      expect(sys_migrate(k, A, PAGES * 4096)).toBe(0); // process 2 runs: every page moved
      expect(k.stats[ST_MIGRATE_PAGES]).toBe(PAGES);
      for (let i = 0; i < PAGES; i++) {
        const now = filemap_get_frame(k, file, i);
        expect(now).not.toBe(before[i]);
        for (let p = 0; p < 3; p++) {
          expect(frameAt(k, p, A + i * 4096)).toBe(now);
          expect(current_pte(k, mmOf(k, p), A / 4096 + i) & _PAGE_RW).toBe(_PAGE_RW); // a writable mapping stays writable
        }
        // One PTE per process under none, one shared PTE under pt-hint.
        expect(Atomics.load(k.i32, frameBase(k, now) + F_MAPCOUNT)).toBe(hint ? 1 : 3);
      }
      expect(checkInvariants(m.i32, m.layout, { model }).findings).toEqual([]);
      for (let p = 0; p < 3; p++) {
        runOn(k, p);
        for (let i = 0; i < PAGES; i++) {
          expect(mmu_load(k, A + i * 4096)).toBe(ACCESS_OK);
          expect(mmuResult.value).toBe(10 + i);
        }
      }
      expect(read_violations(m.i32, m.layout)).toEqual([]);
    });
  }

  it('read-only and mlocked mappings: the PTE comes back read-only; mlocked pages move (reclaim would refuse them)', () => {
    const { m, cpus: [k] } = testMachine('none');
    map(k, 0, false);
    expect(touchPages(k, A, 4 * 4096, true, 3)).toBe(ACCESS_OK);
    expect(sys_mprotect(k, A, 4096, PROT_READ)).toBe(0);
    expect(sys_mlock(k, A + 4096, 4096, false)).toBe(0);
    const f0 = frameAt(k, 0, A);
    const gen0 = Atomics.load(k.i32, frameBase(k, f0) + R_GEN);
    expect(sys_migrate(k, A, 4 * 4096)).toBe(0);
    expect(k.stats[ST_MIGRATE_PAGES]).toBe(4);
    expect(frameAt(k, 0, A)).not.toBe(f0);
    expect(Atomics.load(k.i32, frameBase(k, f0) + R_GEN)).not.toBe(gen0); // the old frame was freed (and perhaps reused since)
    expect(current_pte(k, mmOf(k, 0), A / 4096) & _PAGE_RW).toBe(0);
    expect(current_pte(k, mmOf(k, 0), A / 4096 + 1) & _PAGE_RW).toBe(_PAGE_RW);
    expect(mmu_load(k, A + 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(3);
    expect(checkInvariants(m.i32, m.layout, { model: 'none' }).findings).toEqual([]);
  });

  it('a private file mapping: the page-cache page moves under both mappings, the COW copy stays where it is', () => {
    const { m, cpus: [k] } = testMachine('none');
    const fd = map(k, 0, false);
    expect(touchPages(k, A, 2 * 4096, true, 7)).toBe(ACCESS_OK);
    const priv = sys_mmap(k, 0, 2 * 4096, RW, MAP_PRIVATE, fd, 0);
    expect(mmu_load(k, priv)).toBe(ACCESS_OK); // page 0: the page-cache page, read-only
    expect(mmu_store(k, priv + 4096, 9)).toBe(ACCESS_OK); // page 1: a private copy
    const copy = frameAt(k, 0, priv + 4096);
    expect(sys_migrate(k, priv, 2 * 4096)).toBe(0);
    expect(k.stats[ST_MIGRATE_PAGES]).toBe(2); // the file's pages 0 and 1
    expect(frameAt(k, 0, priv)).toBe(frameAt(k, 0, A));
    expect(current_pte(k, mmOf(k, 0), priv / 4096) & _PAGE_RW).toBe(0); // still copy-on-write
    expect(frameAt(k, 0, priv + 4096)).toBe(copy);
    expect(mmu_load(k, priv + 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(9);
    expect(mmu_load(k, A + 4096)).toBe(ACCESS_OK);
    expect(mmuResult.value).toBe(7);
    expect(checkInvariants(m.i32, m.layout, { model: 'none' }).findings).toEqual([]);
    expect(k.stats[ST_MIGRATE_FAILED]).toBe(0);
  });

  it('errnos: the reclaim op\'s (EINVAL for private anonymous memory, ENOMEM for a hole), but mlocked memory is fine', () => {
    const k = testMachine('none').cpus[0];
    map(k, 0, false);
    expect(touchPages(k, A, 4 * 4096, true)).toBe(ACCESS_OK);
    expect(sys_migrate(k, A + 1, 4096)).toBe(-EINVAL);
    expect(sys_migrate(k, A, 0)).toBe(0);
    expect(sys_migrate(k, A + 2 * MiB - 4096, 8192)).toBe(-ENOMEM);
    expect(sys_migrate(k, -4096, 8192)).toBe(-EINVAL);
    const anon = sys_mmap(k, 0, 8192, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(touchPages(k, anon, 8192, true)).toBe(ACCESS_OK);
    expect(sys_migrate(k, anon, 8192)).toBe(-EINVAL);
    expect(sys_mlock(k, A, 4096, false)).toBe(0);
    expect(sys_migrate(k, A, 4096)).toBe(0);
  });
});
