/** The sharing-model catalog: each model's source, rules and the bugs it can reintroduce. */
import type { ModelOps } from '../mm/model_ops.js';
import { BUG_REVOKE_FORGETS_MAPPERS, createAddressSpaceModel } from './address_space.js';
import { createContainerFdModel } from './container_fd.js';
import { BUG_COW_BREAK_KEEPS_SHARE, BUG_COW_BREAK_NO_RECHECK, BUG_COW_FORK_NO_FLUSH, createCowPteModel } from './cow_pte.js';
import { BUG_FORGET_SHARERS, BUG_FREE_SHARED_PMD, createMapSharedPtModel } from './map_shared_pt.js';
import {
  BUG_ATTACH_DROPS_MMAP_LOCK, BUG_PEEK_WITHOUT_HOST_LOCK, BUG_RETRY_UNLOCKS_CURRENT, BUG_V3_DONTNEED_WITHOUT_HOST_LOCK, createMshareModel,
} from './mshare.js';
import { createNoneModel } from './none.js';
import { BUG_MUNMAP_SKIPS_VMA_WRITE_LOCK } from '../mm/mmap.js';
import { BUG_RECLAIM_FLUSHES_ONE_SHARER } from '../mm/vmscan.js';
import { BUG_MIGRATE_COPY_BEFORE_FLUSH } from '../mm/migrate.js';
import { BUG_FAULT_WITHOUT_VMA_LOCK, BUG_SHARE_COUNT_FROM_REFCOUNT, BUG_SPLIT_UNSHARES_EARLY, BUG_UNSHARE_DEFERS_FLUSH, BUG_UNSHARE_SKIPS_GUP_SYNC, createPtHintModel } from './pt_hint.js';

export interface ModelInfo {
  name: string;
  seed: string;
  rules: string;
  bugs: Record<string, string>;
  create(bug: string): ModelOps;
  /** A plugin built on a catalog model: scenarios written for that model run under it too. */
  basedOn?: string;
}

const MIGRATE_BUG = 'migration copies the page after its PTEs became migration entries but before the TLB flush: a CPU that still holds the old page writable stores into it after the copy, and the store is lost';

export const MODELS: Record<string, ModelInfo> = {
  none: {
    name: 'none',
    seed: 'Linux today',
    rules: 'every process has its own PTEs for every mapping; MAP_SHARED_PT is ignored like any unknown mmap flag',
    bugs: {
      [BUG_MUNMAP_SKIPS_VMA_WRITE_LOCK]: 'munmap detaches VMAs without vma_start_write: with --fault-lock per-vma, a fault under the VMA\'s read lock runs on while munmap zaps and frees its page tables',
      [BUG_MIGRATE_COPY_BEFORE_FLUSH]: MIGRATE_BUG,
    },
    create: () => createNoneModel(),
  },
  'map-shared-pt': {
    name: 'map-shared-pt',
    seed: '001 (Khalid Aziz, MAP_SHARED_PT RFC v2, Apr 2023)',
    rules: 'MAP_SHARED|MAP_SHARED_PT; PMD-aligned address, PMD-multiple length, same address/length/offset in every process (else EINVAL); ' +
      'a host mm holds the shared PTE tables; guest VMAs get VM_SHARED_PT; a guest fault copies the host PMD entry and is handled in the host mm; ' +
      'mprotect by one process changes the host entries, so every sharer (shootdown reaches every sharer CPU); partial munmap: EINVAL; ' +
      'guest exit never frees shared tables; the host mm goes with the last sharer; host tables accounted once, apart from guests' +
      ' Linux\'s other calls on a shared-PT mapping (issue 11: the full rules are \"Sharing under fire\"\'s): MADV_DONTNEED zaps the host\'s PTEs for every sharer under the host\'s mmap_lock, flushing every sharer\'s CPUs (the RFC\'s one-change-reaches-all rule); fork: the child\'s mapping stays a guest of the same host; other madvise advices and mremap on it -> EINVAL; mlock populates through the model\'s fault; a shrinking ftruncate unmaps the file\'s pages from the host\'s tables, so every sharer sees SIGBUS.',
    bugs: {
      [BUG_FREE_SHARED_PMD]: "guest exit frees the shared PTE tables (the RFC's unfixed free_pmd_range / pmd_free_tlb path)",
      [BUG_FORGET_SHARERS]: "a change to the host's entries flushes only the CPU that made it, not the other sharers' CPUs",
    },
    create: (bug) => createMapSharedPtModel(bug),
  },
  'pt-hint': {
    name: 'pt-hint',
    seed: '000 (David Hildenbrand, Nov 2023), modelled on hugetlb PMD sharing',
    rules: 'sharing is a hidden optimisation behind madvise(MADV_SHARE_PT) on MAP_SHARED shmem; like huge_pmd_share, a fault with no PTE table ' +
      'looks through the file\'s i_mmap for a sibling VMA with the same vm_flags mapping the same file offset at the same offset within a PMD, ' +
      'whose whole PMD-aligned range lies in both VMAs, and shares its PTE table (share count per table); mprotect, partial munmap (a split), ' +
      'unmap and exit unshare first (huge_pmd_unshare, TLB flushed before i_mmap_rwsem drops); no program can tell the difference from none' +
      '; MADV_DONTNEED (under mmap_lock for read) unshares every shared table its range meets and zaps the rest, under i_mmap_rwsem for write, the TLB flushed for the whole unshared table before the lock drops (hugetlb\'s __unmap_hugepage_range); faults of a hinted VMA hold its share lock for read, MADV_DONTNEED for write (hugetlb_vma_lock); every unshare waits for gup_fast walkers before the table may become another process\'s ordinary table (tlb_remove_table_sync_one: per unshare, or once per batch under --unshare-flush batched)' +
      '; reclaim (try_to_unmap through i_mmap) and migration (try_to_migrate, remove_migration_ptes) change a shared table\'s PTE once, through its owner\'s VMA, and flush every CPU of every mm that maps the table' +
      ' Linux\'s other calls on a shared-PT mapping (issue 11: the full rules are \"Sharing under fire\"\'s): fork: the child keeps the hint and shares the parent\'s PTE tables wherever want_pmd_share allows (copy_hugetlb_page_range); mremap unshares first and drops the hint, then moves as under none; other madvise advices on it -> EINVAL; mlock populates through the model\'s fault; a shrinking ftruncate unmaps the file\'s pages from the host\'s tables, so every sharer sees SIGBUS.',
    bugs: {
      [BUG_UNSHARE_DEFERS_FLUSH]: "huge_pmd_unshare leaves the flush to the caller's mmu_gather, which flushes only the range it changed (CVE-2021-4002's shape)",
      [BUG_SPLIT_UNSHARES_EARLY]: 'a split unshares before it takes the locks that clear the hint, so a racing fault shares the table again (CVE-2025-38084\'s shape)',
      [BUG_SHARE_COUNT_FROM_REFCOUNT]: 'huge_pmd_unshare reads sharing from the table page\'s refcount, which a speculative reference (compaction\'s pfn scanner) inflates: an unshared table is "unshared" and goes with the pages it maps (CVE-2024-57883)',
      [BUG_UNSHARE_SKIPS_GUP_SYNC]: 'huge_pmd_unshare gives a table away without waiting for gup_fast walkers (tlb_remove_table_sync_one); under --tlb-flush broadcast nothing else waits, and the last user frees the table under a lockless walker (CVE-2025-38085)',
      [BUG_FAULT_WITHOUT_VMA_LOCK]: 'the fault does not take the VMA\'s share lock, so a MADV_DONTNEED unshare between its walk and its PTE lock leaves it filling a table its mm no longer maps, which the sibling may free (the 2022 hugetlb race fixed by the vma_lock)',
      [BUG_MIGRATE_COPY_BEFORE_FLUSH]: MIGRATE_BUG,
      [BUG_RECLAIM_FLUSHES_ONE_SHARER]: 'reclaim\'s try_to_unmap_one flushes only the mm of the VMA it walked through, not every mm that maps the shared PTE table it cleared (the other sharers\' CPUs keep the translation)',
    },
    create: (bug) => createPtHintModel(bug),
  },
  'container-fd': {
    name: 'container-fd',
    seed: '000 (David Hildenbrand, Nov 2023)',
    rules: "open('/dev/ptcontainer', O_CREAT) makes a container (open('/dev/ptcontainer/<name>') names one: O_EXCL -> EEXIST, absent -> ENOENT), " +
      'a host mm attached to no task; ftruncate sizes it (PMD multiple, else EINVAL; resizing while anything is mapped -> EBUSY); ' +
      'ioctl CONTAINER_MAP {offset, size, fd, file_offset, prot} maps a shmem/memfd file inside (bad fd -> EBADF; unaligned, outside or overlapping, or unknown prot bits -> EINVAL), ' +
      'CONTAINER_UNMAP {offset, size} and CONTAINER_PROTECT {offset, size, prot} change the inside for every mapper at once, the shootdown reaching every CPU running one; unknown cmd -> ENOTTY; ' +
      'processes mmap the whole container MAP_SHARED (MAP_PRIVATE, another length or a non-PMD-aligned address -> EINVAL) with a prot that is a superset of every permission inside (else EACCES), ' +
      'and CONTAINER_MAP/PROTECT beyond some mapper\'s prot -> EACCES; mprotect or partial munmap of the mapping -> EINVAL; the fault takes the host mmap_lock inside the task\'s, ' +
      'copies the host PMD entry and handles the PTE fault in the host; the host and its tables go with the container\'s last fd, name or mapping' +
      ' Linux\'s other calls on a shared-PT mapping (issue 11: the full rules are \"Sharing under fire\"\'s): fork: the child\'s mapping stays attached to the same host (its faults copy the host\'s entries); madvise and mremap on it -> EINVAL; mlock populates through the model\'s fault; a shrinking ftruncate unmaps the file\'s pages from the host\'s tables, so every sharer sees SIGBUS.',
    bugs: {},
    create: () => createContainerFdModel(),
  },
  mshare: {
    name: 'mshare',
    seed: '004 (mshare v1 review) and the upstream v3 series (Aug 2025)',
    rules: 'msharefs at /sys/fs/mshare/<name>: open O_CREAT|O_EXCL of an existing name -> EEXIST, without O_CREAT of a missing one -> ENOENT; ' +
      'creating it makes a host mm attached to no task, owned by the creating process; ftruncate sizes it once (a PUD_SIZE multiple: ptlab shares at the PUD level; else or again EINVAL); ' +
      'ioctl MSHAREFS_CREATE_MAPPING {region_offset, size, offset, prot, flags, fd} mmaps a shmem/memfd file into the host (outside the region, unaligned, not MAP_SHARED, an msharefs fd -> EINVAL; bad fd -> EBADF), ' +
      'MSHAREFS_UNMAP {region_offset, size} unmaps there, the flush reaching every CPU running a guest; an unsized region -> EINVAL, unknown cmd -> ENOTTY; ' +
      'processes mmap the whole region MAP_SHARED (MAP_PRIVATE, another length, an unsized region, a MAP_FIXED address not PUD-aligned -> EINVAL); ' +
      'the fault takes the host mmap_lock inside the task\'s, copies the host PUD entry (the PMD table and all below are shared) and handles the PTE fault in the host; ' +
      'no host VMA -> SIGSEGV; mprotect or partial munmap of the mapping -> EINVAL; ' +
      'MADV_DONTNEED on the mapping -> EINVAL (v3\'s plan); the bug does what v3 did (zaps the host\'s shared PTEs without the host\'s mmap_lock, flushing only the caller); the owner\'s exit unmaps the whole host range (later touches: SIGSEGV); ' +
      'the host goes with the last fd, name or mapping; v1: mshare(name, addr, len, oflag) moves the caller\'s shared file mappings in the range into a named region and attaches others at the same address, mshare_unlink(name)' +
      ' Linux\'s other calls on a shared-PT mapping (issue 11: the full rules are \"Sharing under fire\"\'s): fork: the child\'s mapping stays attached to the same host (its faults copy the host\'s entries); madvise and mremap on it -> EINVAL; mlock populates through the model\'s fault; a shrinking ftruncate unmaps the file\'s pages from the host\'s tables, so every sharer sees SIGBUS.',
    bugs: {
      [BUG_PEEK_WITHOUT_HOST_LOCK]: "the fault reads the host's PUD entry without the host's mmap_lock and copies it into the guest's (v1's find_shared_vma)",
      [BUG_ATTACH_DROPS_MMAP_LOCK]: "mshare() (v1) looks at the caller's mappings, drops mmap_lock, then moves and unmaps them without looking again: a thread's remap in between is lost",
      [BUG_RETRY_UNLOCKS_CURRENT]: "v1's handle_mm_fault releases current->mm's mmap_lock after VM_FAULT_RETRY: on a remote fault that is not the mm faulted on (lockdep: bad unlock balance)",
      [BUG_V3_DONTNEED_WITHOUT_HOST_LOCK]: "MADV_DONTNEED on a guest mapping zaps the host's shared PTEs without the host's mmap_lock and flushes only the caller's mm, not the other guests' CPUs (what v3 did)",
    },
    create: (bug) => createMshareModel(bug),
  },
  'address-space': {
    name: 'address-space',
    seed: "002 (Andy Lutomirski, Sep 2020; Stefan Hajnoczi's use cases)",
    rules: "address_space_create: open('/dev/address_space', O_CREAT) gives an fd for a new space, a host mm attached to no task (open('/dev/address_space/<name>') names one: " +
      'O_CREAT|O_EXCL on an existing name -> EEXIST, no O_CREAT and no name -> ENOENT; unlink removes the name); ftruncate sizes it (PMD multiple, else EINVAL; while anything is mapped -> EBUSY); ' +
      "address_space_mmap: ioctl AS_MMAP {addr, fd, offset, size, prot} maps a shmem/memfd file at a page-aligned space address (no PMD alignment needed; bad fd -> EBADF; an address-space fd -> EINVAL, " +
      'an address space mapped into an address space is refused; unaligned, outside the space, overlapping or unknown prot bits -> EINVAL; more than some mapper allows -> EACCES); ' +
      'address_space_munmap: ioctl AS_MUNMAP {addr, size} is do_munmap on the host under its mmap_lock, the flush reaching every CPU running a mapper before it returns (the revoke); unknown cmd -> ENOTTY; ' +
      'processes mmap the whole space MAP_SHARED at any PMD-aligned address of their own (MAP_PRIVATE, another length, an offset or an unaligned address -> EINVAL; a prot not covering every grant -> EACCES; ' +
      "mprotect or partial munmap -> EINVAL); the fault takes the host mmap_lock inside the task's, finds the host VMA (none: SIGSEGV, whatever the TLB held before the revoke), " +
      "copies the host PMD entry and handles the PTE fault in the host; the host goes with the space's last fd, name or mapping" +
      ' Linux\'s other calls on a shared-PT mapping (issue 11: the full rules are \"Sharing under fire\"\'s): fork: the child\'s mapping stays attached to the same host (its faults copy the host\'s entries); madvise and mremap on it -> EINVAL; mlock populates through the model\'s fault; a shrinking ftruncate unmaps the file\'s pages from the host\'s tables, so every sharer sees SIGBUS.',
    bugs: {
      [BUG_REVOKE_FORGETS_MAPPERS]: "AS_MUNMAP's shootdown covers only the host mm's own (empty) cpumask, not the CPUs running the space's mappers",
    },
    create: (bug) => createAddressSpaceModel(bug),
  },
  'cow-pte': {
    name: 'cow-pte',
    seed: "On-Demand-Fork (Zhao, Bergman, Fonseca, EuroSys 2021) and Chih-En Lin's \"Introduce Copy-On-Write to Page Table\" v4 (Feb 2023)",
    rules: 'a process opts in with prctl(PR_SET_COW_PTE) (the `prctl` op; Lin\'s opt-in, kept by its children; EINVAL under every other model); ' +
      'only an opted-in process\'s fork shares; it shares each PTE table of the parent whose 2 MiB holds only private mappings fork copies (no MAP_SHARED, MADV_DONTFORK, MADV_WIPEONFORK, uffd-wp) instead of copying it: ' +
      'the child\'s PMD entry points to the parent\'s table, both PMD entries are write-protected (R/W clear in the PMD makes every translation below read-only, as on x86) and the parent\'s TLB is flushed; ' +
      'the table\'s share count goes up, and its other sharers are recorded beside it (nine at most: a fork that would make a tenth copies the table as none does); ' +
      'a table with no PTE, or holding uffd-wp markers, is copied as none copies it; ' +
      'accounting is deferred (ODF, Lin\'s RFC v1/v2): fork takes no map counts and gives the child no RSS for a shared table, whose pgtables_bytes and RSS count once, to its owner (the mm that allocated it, or the sharer it was handed to when its owner left); ' +
      'the COW break (handle_cow_pte_fault), before anything changes a PTE of a shared table for one mm — any fault (ptlab has no shared zero page), mprotect, mremap (both ranges), MADV_DONTNEED, UFFDIO_WRITEPROTECT, a munmap that keeps a VMA of the mm in the table\'s 2 MiB: ' +
      'the last user takes the table back writable; otherwise the mm gets a copy, each present PTE copied with its map count and RSS and write-protected in both tables (page-level COW, as after a plain fork), its PMD entry swung to the copy under the shared table\'s PTE lock, one share dropped, its TLB flushed; ' +
      'a munmap or exit taking the table\'s whole 2 MiB out of the mm only drops its share (the last user zaps and frees it; an owner leaving hands the table and its accounting to a remaining sharer); ' +
      'truncation and hole punching zap a shared table in place, once for every sharer, flushing every sharer; reclaim and migration change its PTE once, through the first sharer\'s VMA that reaches it, flushing every sharer; ' +
      'no program can tell the difference from none, but for memory exhaustion: a copy that finds no memory makes the fault VM_FAULT_OOM and munmap, mprotect, mremap, madvise(MADV_DONTNEED) and UFFDIO_WRITEPROTECT -ENOMEM',
    bugs: {
      [BUG_COW_BREAK_KEEPS_SHARE]: 'the COW break copies the table and swings the PMD entry but keeps the shared table\'s share count (a missing pmd_put_pte): the count outlives the entries, and the table its last user',
      [BUG_COW_BREAK_NO_RECHECK]: 'the COW break does not look again once it has allocated its copy with the table\'s lock dropped: a break by another thread of the mm, or the other sharers leaving, meanwhile leaves a table (or a first copy) no entry points to (race-cow-break)',
      [BUG_COW_FORK_NO_FLUSH]: 'fork write-protects the parent\'s PMD entries without flushing the parent\'s TLB: a translation cached writable before the fork lets the parent\'s next store land in the page the child sees',
    },
    create: (bug) => createCowPteModel(bug),
  },
};

export function modelNames(): string[] {
  return Object.keys(MODELS);
}
