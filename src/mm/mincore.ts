/**
 * mm/mincore.c: which pages of a range are resident. An unaligned start is EINVAL; the range
 * must be mapped (ENOMEM). A present PTE is resident; with none, a file mapping asks the page
 * cache (mincore_page: shared memory stays resident after MADV_DONTNEED, truncation takes it
 * away), anonymous memory is not. Returns the first 32 pages' bits (page i in bit i).
 */
import { M_MMAP_LOCK, M_PGD } from '../shm/layout.js';
import { EINVAL, ENOMEM } from './errno.js';
import { filemap_get_frame } from './filemap.js';
import { is_model_file } from './shmem.js';
import { lookup_table } from './memory.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import type { Kernel } from './percpu.js';
import { entry_off, PAGE_SIZE, pte_index, PTE_LEVEL } from './pgtable.js';
import { find_vma, vma_end, vma_file, vma_pgoff, vma_start } from './vma.js';

export function do_mincore(k: Kernel, mm: number, start: number, len: number): number {
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  const pages = Math.ceil(len / PAGE_SIZE);
  const lock = k.mmBase(mm) + M_MMAP_LOCK;
  const i32 = k.i32;
  mmap_read_lock(k, lock);
  try {
    let bits = 0;
    const pgd = Atomics.load(i32, k.mmBase(mm) + M_PGD);
    for (let i = 0; i < pages;) {
      const at = start + i * PAGE_SIZE;
      const v = find_vma(k, mm, at);
      if (v < 0 || vma_start(k, v) > at) return -ENOMEM;
      const file = vma_file(k, v);
      for (const end = vma_end(k, v); i < pages && start + i * PAGE_SIZE < end; i++) {
        if (i >= 32) continue;
        const a = start + i * PAGE_SIZE;
        const vpn = a / PAGE_SIZE;
        const t = lookup_table(k, pgd, vpn, PTE_LEVEL, mm);
        // mincore_pte_range: a present PTE, or a migration entry (the page is resident, moving).
        let resident = t >= 0 && Atomics.load(i32, entry_off(k, t, pte_index(vpn))) !== 0;
        if (!resident && file >= 0 && !is_model_file(k, file)) resident = filemap_get_frame(k, file, vma_pgoff(k, v) + (a - vma_start(k, v)) / PAGE_SIZE) >= 0;
        if (resident) bits |= 1 << i;
      }
    }
    return bits >>> 0;
  } finally {
    mmap_read_unlock(k, lock);
  }
}
