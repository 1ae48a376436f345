/**
 * race-truncate-vs-fault — truncation against write faults on a shared file mapping (issues
 * "Catch what nobody planted", item 5, and "Sharing under fire": truncation). Process 0 maps a
 * shmem file MAP_SHARED, reads every page (read faults map the page-cache pages read-only:
 * set_pte_range makes a PTE writable only for a write fault) and then writes every page — each
 * write a do_wp_page on a present read-only PTE (wp_page_shared). Meanwhile process 1 shrinks the
 * file to nothing and grows it back: unmap_mapping_range zaps process 0's PTEs through i_mmap,
 * with no mmap_lock of process 0's, and truncate_inode_pages frees the pages.
 *
 * The rule it tests is do_wp_page's: the PTE read before the PTE lock (vmf->orig_pte) is checked
 * again under it (pte_same) — a truncation that zapped the entry in between must not be undone by
 * a fault putting the old, now freed, page back. Under pt-hint both processes map with the hint,
 * so truncation meets the shared table once and flushes every sharer's CPU.
 *
 * Then process 0 unmaps the whole mapping and maps it again, still racing with the truncation:
 * free_pgtables must have hidden the VMA from rmap first (unlink_file_vma), or
 * unmap_mapping_range walks tables that are being freed.
 *
 * Checkers: use-after-free (a PTE or TLB entry to a freed page, a walk into a freed table), invariant:rss and
 * invariant:mapcount (a PTE put back behind the zap's accounting), invariant:pte-perm, leak,
 * stale-tlb. Process 0's stores expect anything (SIGBUS while the file is short).
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sizeMachine, type Scenario } from './common.js';

const AT = 12 * 1024 * MiB;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;
const STRIDE = 64 * 1024;

export const raceTruncateVsFault: Scenario = {
  name: 'race-truncate-vs-fault',
  summary: 'one process write-faults read-only PTEs of a shared file while another truncates the file and grows it back (unmap_mapping_range vs do_wp_page)',
  details: 'checkers: use-after-free, invariant:rss, invariant:mapcount, invariant:pte-perm, leak, stale-tlb; ' +
    'under pt-hint truncation zaps a shared table once and flushes every sharer',
  defaults: { procs: 2, size: PMD, ops: 4 },
  models: { only: ['none', 'pt-hint'], why: 'truncation of a mapped file: the core mm\'s rule, and pt-hint\'s shared tables (the other models map their regions by their own rules, issue "Sharing under fire")' },
  pinned: 'the faulter and the truncater, each on its own CPU',
  explore: { strategy: 'mix', why: 'the faulter must stop between its PTE read and its PTE lock for a whole unmap_mapping_range (PCT), or the zap must land in a few decisions (the random walk)' },
  build(o) {
    if (o.size % PMD !== 0) throw new Error('race-truncate-vs-fault: --size must be a multiple of 2 MiB');
    const hint = o.model === 'pt-hint';
    const map: Op = { op: 'mmap', addr: AT, len: o.size, prot: [...RW], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', as: 'm' };
    const advise: Op[] = hint ? [{ op: 'madvise', region: 'm', len: o.size, advice: 'MADV_SHARE_PT' }] : [];
    const faulter: Op[] = [
      { op: 'shm_open', name: '/rtf', create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size: o.size },
      { op: 'barrier', id: 0 }, map, ...advise,
    ];
    const truncater: Op[] = [{ op: 'barrier', id: 0 }, { op: 'shm_open', name: '/rtf', as: 'fd' }, map, ...advise];
    for (let i = 0; i < o.ops; i++) {
      // Outside the race: every page read (present, read-only), in both processes.
      faulter.push({ op: 'touch', region: 'm', len: o.size, stride: STRIDE, write: false, expect: 'any' });
      truncater.push({ op: 'touch', region: 'm', len: o.size, stride: STRIDE, write: false, expect: 'any' });
      faulter.push({ op: 'barrier', id: 1 + 2 * i });
      truncater.push({ op: 'barrier', id: 1 + 2 * i });
      // Then the whole mapping goes and comes back, still in the race: munmap's free_pgtables
      // must have taken the VMA out of i_mmap first (unlink_file_vma), or the truncation's rmap
      // walk reaches tables being freed.
      faulter.push(
        { op: 'touch', region: 'm', len: o.size, stride: STRIDE, write: true, value: i + 1, expect: 'any' },
        { op: 'munmap', region: 'm', len: o.size }, map, ...advise,
      );
      truncater.push({ op: 'ftruncate', fd: 'fd', size: 0 }, { op: 'ftruncate', fd: 'fd', size: o.size });
      faulter.push({ op: 'barrier', id: 2 + 2 * i });
      truncater.push({ op: 'barrier', id: 2 + 2 * i });
    }
    faulter.push({ op: 'shm_unlink', name: '/rtf' }, { op: 'exit', code: 0 });
    truncater.push({ op: 'exit', code: 0 });
    const programs: Program[] = [faulter, truncater];
    const config = sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 3, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2 + 2 * o.ops) } };
  },
};
