/**
 * How a sharing model plugs into the mm: a table of hooks, the way vm_operations_struct and
 * file_operations plug filesystems into Linux. The mm never names a model; it calls these for
 * VMAs that carry VM_SHARED_PT (the model owns how those get page tables) and at mmap and
 * context-switch time. `none` implements them as "nothing to do".
 */
import type { MmuGather } from './memory.js';
import type { Kernel, VmFault } from './percpu.js';

/** mmap's arguments, validated and page-aligned by do_mmap before a model sees them. */
export interface MmapArgs {
  mm: number;
  addr: number;
  len: number;
  prot: number;
  flags: number;
  file: number;
  pgoff: number;
  /** The fd's f_mode (FMODE_READ | FMODE_WRITE); anonymous mappings: both. */
  fmode: number;
  /** Set by do_mmap: the caller populates the range (MAP_POPULATE, MAP_LOCKED) once the lock is dropped. */
  populate: boolean;
}

/** A model's answer to mmap: an address, a negative errno, or MODEL_DEFAULT ("map it as Linux does"). */
export const MODEL_DEFAULT = 1;

export interface ModelOps {
  readonly name: string;
  /** Called by do_mmap (mmap_lock held for write) for every MAP_SHARED file mapping. */
  mmap(k: Kernel, a: MmapArgs): number;
  /** handle_mm_fault for a VM_SHARED_PT VMA. Called with the task's mmap_lock held for read. */
  fault(k: Kernel, vmf: VmFault): number;
  /** mprotect of [start, end) inside a VM_SHARED_PT VMA; 0 or -errno. mmap_lock held for write. */
  mprotect(k: Kernel, vma: number, start: number, end: number, vm_flags: number): number;
  /** May [start, end) of this VM_SHARED_PT VMA be unmapped? 0 or -errno (checked before anything changes). */
  may_munmap(k: Kernel, vma: number, start: number, end: number): number;
  /**
   * The VMA goes away (munmap or exit): drop what the model holds for it — the guest's entries
   * pointing at shared tables, the host's reference. mmap_lock held for write.
   */
  detach(k: Kernel, vma: number, exiting: boolean): void;
  /** This CPU starts (on) or stops running `mm`: join or leave the shootdown masks the model keeps. */
  switch_mm(k: Kernel, mm: number, on: boolean): void;
  /** The CPUs a flush of `mm`'s tables must reach (mm_cpumask, plus the sharers' for a host mm). */
  flush_mask(k: Kernel, mm: number): number;

  // ---- a model's own calls (optional): its filesystem, its ioctls, its advice ----
  /** open(2) of `path` outside /dev/shm: the model's filesystem (msharefs, a container device). A file, or -errno. */
  open?(k: Kernel, path: string, create: boolean, excl: boolean): number;
  /** unlink(2) of such a path. */
  unlink?(k: Kernel, path: string): number;
  /** ioctl(2) on a file the model created (FL_KIND FILE_MODEL). */
  ioctl?(k: Kernel, file: number, cmd: string, args: IoctlArgs): number;
  /** ftruncate(2) of a file the model created. */
  setsize?(k: Kernel, file: number, size: number): number;
  /** The last reference to a model file went: release what it holds. */
  release?(k: Kernel, file: number): void;
  /**
   * FL_ID of the file whose pages a mapping of model file `file` reaches (the lost-write check
   * credits stores to it), or -1 when the model cannot name one.
   */
  backing_file_id?(k: Kernel, file: number): number;
  /**
   * exit_mmap is about to tear `mm` down (its last user went; no lock held): the model's work
   * for a process that goes away (mshare: exit_mshare unmaps the regions the process owns).
   */
  exit_mm?(k: Kernel, mm: number): void;
  /** mshare v1's syscalls (seed 004): 0 or -errno; models without them give ENOSYS. */
  mshare?(k: Kernel, name: string, addr: number, len: number, create: boolean, excl: boolean): number;
  mshare_unlink?(k: Kernel, name: string): number;
  /** madvise(2) advice the model understands (0 or -errno), on [start, end) of `mm` (mmap_lock held for write). */
  madvise?(k: Kernel, mm: number, start: number, end: number, advice: string): number;
  /** The advices `madvise` takes (madvise_behavior_valid: any other is EINVAL, whatever the range). */
  advices?: readonly string[];
  /**
   * UFFDIO_REGISTER(MODE_WP) is about to mark this VM_SHARED_PT VMA (mmap_lock held for write):
   * a model that shares tables as an optimisation gives it up here (pt-hint unshares, as hugetlb
   * does: uffd_disable_huge_pmd_share). Without this hook, only whole VM_SHARED_PT VMAs register.
   */
  uffd_register?(k: Kernel, vma: number): void;
  /**
   * MADV_DONTNEED on [start, end) of this VM_SHARED_PT VMA, mmap_lock held for read (as Linux's
   * madvise_dontneed_free): the model zaps the range its way into `tlb` and finishes it (pt-hint
   * unshares and zaps under i_mmap_rwsem held for write, as hugetlb's __unmap_hugepage_range
   * does through huge_pmd_unshare). Without this hook, MADV_DONTNEED there is EINVAL.
   */
  madvise_dontneed?(k: Kernel, vma: number, start: number, end: number, tlb: MmuGather): void;
  /**
   * fork: `dst` is the child's copy of this VM_SHARED_PT VMA `src`, linked and in i_mmap (both
   * mms' mmap_lock held for write, dup_mmap's). The model gives the child what its design says
   * (pt-hint: copy_hugetlb_page_range's shared PMDs). 0 or -errno. Without this hook, fork of a
   * process holding a VM_SHARED_PT mapping is EINVAL.
   */
  fork_vma?(k: Kernel, src: number, dst: number): number;
  /**
   * mremap of this VM_SHARED_PT VMA (mmap_lock held for write): a model that can makes it an
   * ordinary VMA first and returns 0 (pt-hint unshares, as hugetlb's mremap path unshares its
   * PMDs before moving: hugetlb_unshare_all_pmds), or -errno. Without this hook: EINVAL.
   */
  mremap_prepare?(k: Kernel, vma: number): number;
  /**
   * vm_ops->open: `vma` is a new VMA split off one of the model's (split_vma: mlock of part of it),
   * linked already; it takes what each of the model's VMAs holds (host-mm models: a host user).
   */
  vma_open?(k: Kernel, vma: number): void;

  // ---- copy-on-write PTE tables at fork (cow-pte): a PMD entry without _PAGE_RW points to a
  // PTE table other mms may share. The mm calls these only where it meets such an entry (Lin's
  // `!pmd_write(*pmd)` test), so models without them never see one. ----
  /**
   * copy_pmd_range's hook (dup_mmap, both mmap_locks held for write): share `src`'s PTE table
   * for the 2 MiB at `addr` with `dst` instead of copying it (copy_cow_pte_range). 1: shared
   * (or already shared by an earlier VMA of the table), 0: copy it as Linux does, -1: out of
   * memory. A parent entry it write-protects goes into `tlb`, flushed before dup_mmap returns.
   */
  copy_pte_table?(k: Kernel, dst: number, src: number, addr: number, tlb: MmuGather): number;
  /**
   * break_cow_pte (handle_cow_pte_fault): `mm`'s PMD entry at word `pmd` is write-protected;
   * give `mm` a table of its own — the shared one back writable if `mm` is its last user, else a
   * copy. Called with `mm`'s mmap_lock (or a VMA lock) held, before anything changes a PTE of
   * that table for `mm`. 0 (also when another thread broke it first) or -ENOMEM.
   */
  break_cow_pte?(k: Kernel, mm: number, pmd: number, addr: number): number;
  /**
   * The whole 2 MiB of `mm`'s write-protected PMD entry at `pmd` (table `t`) leaves `mm` (munmap,
   * exit: no VMA of `mm` is left there; free_pmd_range's pmd_put_pte): true when others still
   * share `t` and `mm` only let go of it (entry cleared, its share dropped; the caller flushes);
   * false when `mm` was its last user (the entry is made writable: zap and free it as usual).
   */
  drop_cow_pte?(k: Kernel, mm: number, pmd: number, t: number): boolean;
}

/** An ioctl's argument struct, by field name (fds already resolved to files by the caller). */
export type IoctlArgs = Record<string, number>;
