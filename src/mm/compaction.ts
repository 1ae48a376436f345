/**
 * mm/compaction.c's pfn scanner, as far as page tables are concerned: isolate_migratepages_block
 * walks physical pages and takes a speculative reference on each one it looks at
 * (folio_try_get, get_page_unless_zero), then drops it. Page-table pages are among them, so a
 * page table's page refcount is not a count of its users — what CVE-2024-57883 ("mm: hugetlb:
 * independent PMD page table shared count") was about: huge_pmd_unshare read sharing from
 * page_count, and a scanner's reference made an unshared table look shared.
 *
 * ptlab keeps the reference beside the share count (P_REFCOUNT, "speculative references"): the
 * share count (P_SHARE, pt_share_count) is what decides sharing.
 */
import { P_REFCOUNT, R_STATE } from '../shm/layout.js';
import { SchedPoint } from '../sync/schedpoint.js';
import type { Kernel } from './percpu.js';

/** One pass of the scanner over every page-table page: a reference taken, a look, the reference dropped. */
export function compact_scan_pgtables(k: Kernel): number {
  const i32 = k.i32;
  const p = k.ptps;
  for (let t = 0; t < p.capacity; t++) {
    const b = p.base + t * p.stride;
    if (Atomics.load(i32, b + R_STATE) === 0) continue; // a free page: get_page_unless_zero fails
    Atomics.add(i32, b + P_REFCOUNT, 1);
    if (k.sched !== null) k.sched.point(k, SchedPoint.PtLookupLoad);
    Atomics.sub(i32, b + P_REFCOUNT, 1);
  }
  return 0;
}
