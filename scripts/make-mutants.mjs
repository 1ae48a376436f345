#!/usr/bin/env node
// Writes mutants/NN-name.patch from the edits below: each mutant is one small change to ptlab's
// kernel in the shape of a Linux mm bug class (its `Linux:` line names the rule it breaks). Run it
// again when the code under a mutant moves (`node scripts/make-mutants.mjs`): an edit whose text is
// no longer found exactly once stops it, naming the mutant. `npm run mutate` applies the patches.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** [name, class, linux, [[file, find, replace], ...]] */
const MUTANTS = [
  ['finish-fault-no-recheck', 'recheck', 'finish_fault: set_pte_range only if the PTE is still none under the PTL (else VM_FAULT_NOPAGE)', [
    ['src/mm/memory.ts', '  if (Atomics.load(i32, vmf.pte) !== 0 || (gen >= 0 && page_cache_stale(k, frame, gen))) {', '  if (gen >= 0 && page_cache_stale(k, frame, gen)) {'],
  ]],
  ['finish-fault-rss-always-file', 'accounting', 'set_pte_range: add_mm_counter(vma->vm_mm, mm_counter(folio), nr) counts anon pages as MM_ANONPAGES', [
    ['src/mm/memory.ts', 'Atomics.add(i32, k.mmBase(vmf.mm) + rss, 1);', 'Atomics.add(i32, k.mmBase(vmf.mm) + M_RSS_FILE, 1);'],
  ]],
  ['zap-rss-skips-file', 'accounting', 'zap_present_ptes: add_mm_counter(mm, mm_counter(folio), -nr) for every kind ("BUG: Bad rss-counter state")', [
    ['src/mm/memory.ts', 'Atomics.sub(i32, k.mmBase(acct) + (anon ? M_RSS_ANON : M_RSS_FILE), 1);\n      // A migration entry', 'if (anon) Atomics.sub(i32, k.mmBase(acct) + M_RSS_ANON, 1);\n      // A migration entry'],
  ]],
  ['tlb-finish-no-flush', 'flush', 'tlb_finish_mmu -> tlb_flush_mmu: zapped entries are flushed from every CPU of the mm', [
    ['src/mm/memory.ts', '  for (let i = 0; i < tlb.ntables; i++) wpseq_begin(k, tlb.tables[i]);\n  flush_tlb_mm(k, mm);\n', '  for (let i = 0; i < tlb.ntables; i++) wpseq_begin(k, tlb.tables[i]);\n'],
  ]],
  ['tlb-free-before-flush', 'free-order', 'tlb_flush_mmu: tlb_flush_mmu_tlbonly before tlb_batch_pages_flush (pages freed only after the flush)', [
    ['src/mm/memory.ts', '  flush_tlb_mm(k, mm);\n  for (let i = 0; i < tlb.ntables; i++) wpseq_end(k, tlb.tables[i]);\n  for (let i = 0; i < tlb.nframes; i++) free_frame(k, tlb.frames[i]);',
      '  for (let i = 0; i < tlb.nframes; i++) free_frame(k, tlb.frames[i]);\n  flush_tlb_mm(k, mm);\n  for (let i = 0; i < tlb.ntables; i++) wpseq_end(k, tlb.tables[i]);'],
  ]],
  ['free-pgtables-free-before-flush', 'free-order', 'tlb_remove_table: a page-table page is freed only after every CPU that may walk it was flushed (IPI / RCU)', [
    ['src/mm/memory.ts', '  flush_tlb_mm(k, mm);\n  for (const t of gone) free_ptp(k, t);', '  for (const t of gone) free_ptp(k, t);\n  flush_tlb_mm(k, mm);'],
  ]],
  ['free-pgtables-range-one-end', 'range', 'free_pgd_range floor/ceiling: a PTE table is freed only when no VMA covers any of its 2 MiB', [
    ['src/mm/memory.ts', '        if (range_has_vma(k, mm, a3, a3 + PMD_SIZE)) continue;', '        if (range_has_vma(k, mm, a3, a3 + 4096)) continue;'],
  ]],
  ['do-wp-page-no-recheck', 'recheck', 'do_wp_page: pte_same(ptep_get(vmf->pte), vmf->orig_pte) under the PTL before wp_page_reuse', [
    ['src/mm/memory.ts', '  if (Atomics.load(i32, vmf.pte) === vmf.orig_pte) {\n    // userfaultfd_pte_wp', '  if (true) {\n    // userfaultfd_pte_wp'],
  ]],
  ['wp-copy-keeps-src-rmap', 'refcount', 'wp_page_copy: folio_remove_rmap_pte(old_folio) once the new PTE is set', [
    ['src/mm/memory.ts', 'freeSrc = frame_remove_rmap(k, src) === 0 && anon;', 'freeSrc = false;'],
  ]],
  ['table-alloc-no-recheck', 'lock-scope', '__pte_alloc -> pmd_install: populate under page_table_lock only if pmd_none still holds', [
    ['src/mm/pgtable.ts', 'const prev = Atomics.compareExchange(i32, off, 0, ne);', 'const prev = (Atomics.store(i32, off, ne), 0);'],
  ]],
  ['pt-put-racy-decrement', 'refcount', 'ptdesc_pmd_pts_dec / put_page_testzero: an atomic decrement-and-test decides who frees (CVE-2024-57883 family)', [
    ['src/mm/memory.ts', '  if (Atomics.sub(k.i32, ptpBase(k, t) + P_SHARE, 1) === 1) free_ptp(k, t);', '  const left = Atomics.load(k.i32, ptpBase(k, t) + P_SHARE) - 1;\n  if (k.sched !== null) k.sched.point(k, 2);\n  Atomics.store(k.i32, ptpBase(k, t) + P_SHARE, left);\n  if (left === 0) free_ptp(k, t);'],
  ]],
  ['mprotect-read-lock', 'lock-mode', 'do_mprotect_pkey takes mmap_write_lock_killable (mprotect_fixup changes VMAs)', [
    ['src/mm/mprotect.ts', "import { mmap_write_lock, mmap_write_unlock, vma_start_write,", "import { mmap_read_lock as mmap_write_lock, mmap_read_unlock as mmap_write_unlock, vma_start_write,"],
  ]],
  ['mprotect-no-flush', 'flush', 'change_protection -> tlb_flush_pending / flush_tlb_range: narrowed PTEs are flushed before mprotect returns', [
    ['src/mm/mprotect.ts', '  change_protection(k, mm, start, end, newflags, tlb);', '  change_protection(k, mm, start, end, newflags, new MmuGather());'],
  ]],
  ['mprotect-merge-ignores-pgoff', 'range', 'vma_merge / is_mergeable_vma: file VMAs merge only at contiguous file offsets', [
    ['src/mm/mprotect.ts', '  return file < 0 || vma_pgoff(k, a) + (vma_end(k, a) - vma_start(k, a)) / PAGE_SIZE === vma_pgoff(k, b);', '  return true;'],
  ]],
  ['mprotect-private-file-writable', 'permissions', 'can_change_pte_writable: a private mapping of a page-cache page stays read-only (COW) after mprotect(PROT_WRITE)', [
    ['src/mm/mprotect.ts', 'prot = Atomics.load(i32, frameBase(k, f) + R_STATE) === FRAME_FILE ? base & ~_PAGE_RW : base | _PAGE_RW;', 'prot = base | _PAGE_RW;'],
  ]],
  ['munmap-read-lock', 'lock-mode', 'vm_munmap / __vm_munmap takes mmap_write_lock_killable', [
    ['src/mm/mmap.ts', '  const lock = k.mmBase(mm) + M_MMAP_LOCK;\n  mmap_write_lock(k, lock);\n  try {\n    return do_munmap(k, mm, start, len);\n  } finally {\n    mmap_write_unlock(k, lock);',
      '  const lock = k.mmBase(mm) + M_MMAP_LOCK;\n  mmap_read_lock(k, lock);\n  try {\n    return do_munmap(k, mm, start, len);\n  } finally {\n    mmap_read_unlock(k, lock);'],
    ['src/mm/mmap.ts', "import { AssertSite, mmap_assert_write_locked, mmap_write_lock,", "import { AssertSite, mmap_assert_write_locked, mmap_read_lock, mmap_read_unlock, mmap_write_lock,"],
  ]],
  ['unlink-file-vma-after-free-pgtables', 'free-order', 'free_pgtables: "Hide vma from rmap and truncate_pagecache before freeing pgtables" (unlink_file_vma first)', [
    ['src/mm/mmap.ts', '  for (const v of vmas) unlink_file_vma(k, v);\n  if (vmas.length > 0) free_pgtables(k, mm, lo, hi);', '  if (vmas.length > 0) free_pgtables(k, mm, lo, hi);\n  for (const v of vmas) unlink_file_vma(k, v);'],
  ]],
  ['munmap-skips-vma-write-lock', 'lock-scope', 'vms_gather_munmap_vmas -> vma_start_write before vma_mark_detached (per-VMA locks)', [
    ['src/mm/mmap.ts', '    if (k.bug !== BUG_MUNMAP_SKIPS_VMA_WRITE_LOCK) vma_start_write(k, v); // vma_mark_detached\n', ''],
  ]],
  ['split-vma-forgets-pgoff', 'range', '__split_vma: new->vm_pgoff += (addr - new->vm_start) >> PAGE_SHIFT', [
    ['src/mm/mmap.ts', 'Atomics.store(k.i32, vmaBase(k, n) + V_PGOFF, vma_pgoff(k, v) + (addr - start) / PAGE_SIZE);', 'Atomics.store(k.i32, vmaBase(k, n) + V_PGOFF, vma_pgoff(k, v));'],
  ]],
  ['munmap-no-start-split', 'range', 'vms_gather_munmap_vmas: split the first VMA where the range starts inside it', [
    ['src/mm/mmap.ts', '  if (v < 0 || vma_start(k, v) >= end) return 0;\n  if (vma_start(k, v) < start) {', '  if (v < 0 || vma_start(k, v) >= end) return 0;\n  if (false) {'],
  ]],
  ['vma-start-read-no-recheck', 'recheck', 'vma_start_read: vm_lock_seq checked again after the trylock (the VMA may have been write-locked in between)', [
    ['src/mm/mmap_lock.ts', '  if (Atomics.load(i32, b + V_LOCK_SEQ) === Atomics.load(i32, seqOff)) {\n    up_read(k, b + V_LOCK);\n    return false;\n  }\n  return true;', '  return true;'],
  ]],
  ['lock-vma-no-detached-check', 'recheck', 'lock_vma_under_rcu: after vma_start_read, recheck the VMA is attached (vma_is_detached) and still the mm\'s', [
    ['src/mm/mmap_lock.ts', '    if (Atomics.load(i32, b + V_MM) !== mm || Atomics.load(i32, b + V_DETACHED) !== 0) {', '    if (Atomics.load(i32, b + V_MM) !== mm) {'],
  ]],
  ['flush-mask-self-only', 'flush', 'flush_tlb_mm_range: IPI every CPU in mm_cpumask (and, for a shared table, every sharer\'s)', [
    ['src/mm/tlb.ts', '  flush_tlb_mask(k, k.model.flush_mask(k, mm));', '  flush_tlb_mask(k, k.cpuBit);'],
  ]],
  ['shootdown-no-wait', 'flush', 'native_flush_tlb_multi: on_each_cpu_cond_mask(..., wait=true) waits for every CPU\'s flush', [
    ['src/mm/tlb.ts', '    if ((others & (1 << c)) === 0) continue;\n    const doneOff = k.layout.cpu + c * CPU_WORDS + C_IPI_DONE;\n    for (let iter = 0; ; iter++) {\n      const d = Atomics.load(i32, doneOff);\n      if (d - sent[c] >= 0) break;',
      '    if ((others & (1 << c)) === 0) continue;\n    const doneOff = k.layout.cpu + c * CPU_WORDS + C_IPI_DONE;\n    for (let iter = 0; ; iter++) {\n      const d = Atomics.load(i32, doneOff);\n      if (d === d) break;'],
  ]],
  ['switch-mm-no-flush', 'flush', 'switch_mm_irqs_off: a CPU switching address spaces drops the old one\'s translations (no PCID here)', [
    ['src/mm/tlb.ts', '  // any shootdown may skip this CPU and free them.\n  k.local_flush_tlb();', '  // any shootdown may skip this CPU and free them.'],
  ]],
  ['i-mmap-insert-no-lock', 'lock-scope', 'vma_link_file: vma_interval_tree_insert under i_mmap_lock_write', [
    ['src/mm/rmap.ts', '  down_write(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);\n  guard_i_mmap(k, file, AssertSite.IMmapInsert);', '  guard_i_mmap(k, file, AssertSite.IMmapInsert);'],
    ['src/mm/rmap.ts', '  else Atomics.store(i32, vmaBase(k, prev) + V_IMMAP_NEXT, vma);\n  up_write(k, fb + FL_IMMAP_RWSEM);', '  else Atomics.store(i32, vmaBase(k, prev) + V_IMMAP_NEXT, vma);'],
  ]],
  ['rmap-racy-decrement', 'refcount', 'folio_remove_rmap_pte: atomic_add_negative on _mapcount (PTLs of different tables do not serialise one page)', [
    ['src/mm/rmap.ts', '  return Atomics.sub(k.i32, frameBase(k, frame) + F_MAPCOUNT, 1) - 1;', '  const n = Atomics.load(k.i32, frameBase(k, frame) + F_MAPCOUNT) - 1;\n  if (k.sched !== null) k.sched.point(k, 2);\n  Atomics.store(k.i32, frameBase(k, frame) + F_MAPCOUNT, n);\n  return n;'],
  ]],
  ['fork-no-wrprotect-parent', 'permissions', 'copy_present_pte: ptep_set_wrprotect(src_mm) for a COW mapping, so neither side writes the shared page', [
    ['src/mm/fork.ts', '          guard_pte(k, t, AssertSite.CopyPageRange);\n          Atomics.store(i32, so, e);', '          guard_pte(k, t, AssertSite.CopyPageRange);'],
  ]],
  ['fork-child-rss-uncounted', 'accounting', 'copy_present_ptes: rss[mm_counter(folio)]++ then add_mm_rss_vec(dst_mm, rss)', [
    ['src/mm/fork.ts', '        Atomics.add(i32, k.mmBase(dst) + (anon ? M_RSS_ANON : M_RSS_FILE), 1);\n', '        void anon;\n'],
  ]],
  ['free-ptp-keeps-pgtables-bytes', 'accounting', 'free_pte_range -> mm_dec_nr_ptes (pgtables_bytes; check_mm: "non-zero pgtables_bytes on freeing mm")', [
    ['src/mm/page_alloc.ts', '  if (Atomics.load(i32, b + R_STATE) !== 0) Atomics.sub(i32, k.mmBase(Atomics.load(i32, b + P_OWNER)) + M_PGTABLES, 1);', ''],
  ]],
  ['pt-hint-share-one-end', 'range', 'want_pmd_share / vma_shareable: the whole PUD-aligned (here PMD) range must lie inside the VMA, both ends', [
    ['src/models/pt_hint.ts', '  return base >= vma_start(k, vma) && base + PMD_SIZE <= vma_end(k, vma);', '  return base >= vma_start(k, vma);'],
  ]],
  ['pt-hint-share-drops-i-mmap-early', 'lock-scope', 'huge_pmd_share: the share is taken (and the PUD entry populated) before i_mmap_unlock_read, so no unshare can free the table in between', [
    ['src/models/pt_hint.ts', '    i_mmap_assert_locked(k, file, AssertSite.HugePmdShare, vmf.mm);\n    try {', '    i_mmap_assert_locked(k, file, AssertSite.HugePmdShare, vmf.mm);\n    let held = true;\n    try {'],
    ['src/models/pt_hint.ts', '        if (t < 0) return;\n        guard_pt_share(', '        if (t < 0) return;\n        up_read(k, sem);\n        held = false;\n        guard_pt_share('],
    ['src/models/pt_hint.ts', '    } finally {\n      up_read(k, sem);\n    }\n  }\n\n  /**\n   * The fault of a hinted VMA', '    } finally {\n      if (held) up_read(k, sem);\n    }\n  }\n\n  /**\n   * The fault of a hinted VMA'],
  ]],
  ['pt-hint-unshare-flush-after-unlock', 'flush', 'huge_pmd_unshare callers flush before i_mmap_unlock_write (CVE-2021-4002: flush TLBs correctly after huge_pmd_unshare)', [
    ['src/models/pt_hint.ts', '    if (unshared && !defersFlush) flush_tlb_mm(k, mm); // before the lock drops\n    unshare_sync(k, lastSharer);\n    up_write(k, sem);', '    unshare_sync(k, lastSharer);\n    up_write(k, sem);\n    if (k.sched !== null) k.sched.point(k, 2);\n    if (unshared && !defersFlush) flush_tlb_mm(k, mm);'],
  ]],
  ['pt-hint-no-owner-transfer', 'refcount', 'a shared page-table page is accounted to an mm that still maps it (the owner leaving hands it on)', [
    ['src/models/pt_hint.ts', '    if (Atomics.load(k.i32, ptpBase(k, t) + P_OWNER) === mm) transfer_owner(k, t, mm, vma, Math.max(a, vma_start(k, vma)));\n', ''],
  ]],
  ['pt-hint-share-count-leak', 'refcount', 'huge_pmd_share: the share taken before the pmd_populate is dropped when another CPU populated first', [
    ['src/models/pt_hint.ts', '        else Atomics.sub(i32, ptpBase(k, t) + P_SHARE, 1);\n', ''],
  ]],
  ['guest-fault-no-host-lock', 'lock-mode', 'the guest fault reads the host\'s VMAs and tables under the host mm\'s mmap_lock (mshare v3: "without taking the needed locks")', [
    ['src/models/host_mm.ts', '  const access = (vmf.flags & FAULT_FLAG_WRITE) !== 0 ? VM_WRITE : VM_READ | VM_WRITE | VM_EXEC;\n  host_mmap_read_lock(k, hlock);', '  const access = (vmf.flags & FAULT_FLAG_WRITE) !== 0 ? VM_WRITE : VM_READ | VM_WRITE | VM_EXEC;\n  void hlock;'],
    ['src/models/host_mm.ts', '  } finally {\n    mmap_read_unlock(k, hlock);\n    vmf.leaveHost();', '  } finally {\n    vmf.leaveHost();'],
  ]],
  ['guest-unshare-put-before-flush', 'free-order', 'mmu_gather order: the guest is flushed before its tables lose their share (tlb_remove_table after tlb_flush)', [
    ['src/models/host_mm.ts', '  flush_tlb_mm(k, guest);\n  for (const t of dropped) pt_put(k, t);', '  for (const t of dropped) pt_put(k, t);\n  flush_tlb_mm(k, guest);'],
  ]],
  ['msp-detach-no-flush', 'flush', 'the RFC\'s unmap of a VM_SHARED_PT range flushes the guest before the host tables lose its share', [
    ['src/models/map_shared_pt.ts', '      else pt_put(k, t);\n    }\n    flush_tlb_mm(k, guest);', '      else pt_put(k, t);\n    }'],
  ]],
  ['fault-write-access-unchecked', 'permissions', 'access_error: a write fault in a VMA without VM_WRITE is SIGSEGV (bad_area_access_error)', [
    ['src/mm/mmu.ts', "  if ((flags & VM_SHARED_PT) === 0 && (write ? (flags & VM_WRITE) === 0 : (flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0)) {", "  if ((flags & VM_SHARED_PT) === 0 && (flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0) {"],
    ['src/mm/mmu.ts', '      if (write ? (flags & VM_WRITE) === 0 : (flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0) {\n        vma_end_read(k, vma);', '      if ((flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0) {\n        vma_end_read(k, vma);'],
  ]],
  ['truncate-misses-last-page', 'range', 'unmap_mapping_range: [first, last] inclusive of the last page (details.last_index)', [
    ['src/mm/truncate.ts', '    const hi = Math.min(last, pgoff + pages);', '    const hi = Math.min(last - 1, pgoff + pages);'],
  ]],
];

const dir = join(root, 'mutants');
const out = new Map();
const tmp = mkdtempSync(join(tmpdir(), 'ptlab-make-mutants-'));
let n = 0;
for (const [name, cls, linux, edits] of MUTANTS) {
  n++;
  const files = new Map();
  for (const [file, find, replace] of edits) {
    const text = files.get(file) ?? readFileSync(join(root, file), 'utf8');
    const at = text.indexOf(find);
    if (at < 0 || text.indexOf(find, at + 1) >= 0) {
      console.error(`make-mutants: ${name}: the text to change in ${file} is ${at < 0 ? 'not found' : 'found more than once'}:\n${find}`);
      process.exit(1);
    }
    files.set(file, text.slice(0, at) + replace + text.slice(at + find.length));
  }
  let diff = '';
  for (const [file, text] of files) {
    for (const [side, body] of [['a', readFileSync(join(root, file), 'utf8')], ['b', text]]) {
      mkdirSync(dirname(join(tmp, side, file)), { recursive: true });
      writeFileSync(join(tmp, side, file), body);
    }
    // Run in the scratch directory with its a/ and b/ trees: the paths come out as a/FILE, b/FILE.
    diff += spawnSync('git', ['diff', '--no-index', '--no-prefix', `a/${file}`, `b/${file}`], { cwd: tmp, encoding: 'utf8' }).stdout;
  }
  const nn = String(n).padStart(2, '0');
  out.set(`${nn}-${name}.patch`, `Mutant: ${name}\nClass: ${cls}\nLinux: ${linux}\n\n${diff}`);
}
rmSync(tmp, { recursive: true, force: true });
// Every edit was found: only now are the old patches replaced.
mkdirSync(dir, { recursive: true });
for (const f of readdirSync(dir)) if (f.endsWith('.patch')) rmSync(join(dir, f));
for (const [f, text] of out) writeFileSync(join(dir, f), text);
console.log(`make-mutants: wrote ${n} patches to mutants/`);
