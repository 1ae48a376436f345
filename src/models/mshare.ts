/**
 * `mshare`: shared page tables through msharefs, the upstream v3 API (Anthony Yznaga, "Add
 * support for shared PTEs across processes", Aug 2025; mm/mshare.c of the series), after Khalid
 * Aziz's v1 reviewed in seed 004.
 *
 * - msharefs lives at /sys/fs/mshare/<name>. open with O_CREAT|O_EXCL of an existing name:
 *   EEXIST; without O_CREAT of a missing name: ENOENT (VFS open rules); unlink removes the name.
 *   Creating the file creates its region: a host mm attached to no task (msharefs_fill_mm), whose
 *   owner is the creating process (its task goes on current->mshare_mem). The names live in the
 *   machine's name table, hashed in a namespace of their own ('msharefs:' + name) so they never
 *   meet /dev/shm's.
 * - The sharing level. Upstream shares at the P4D level (mshare_align = P4D_SIZE). ptlab's x86-64
 *   has four levels, so mshare shares at the PUD level here: MSHARE_ALIGN = PUD_SIZE (1 GiB). A
 *   guest's PUD entry is a copy of the host's: the guest shares the host's PMD table and all below.
 *   The region sits at MSHARE_BASE = MSHARE_ALIGN in the host mm (mshare_base = mshare_align).
 * - ftruncate sets the size once (msharefs_set_size): not a multiple of MSHARE_ALIGN, or already
 *   sized: EINVAL. (Upstream takes a size of 0 and is then sized; ptlab refuses 0 with EINVAL, a
 *   region that could never be mapped.) A size the host mm cannot hold: EFBIG (inode_newsize_ok).
 * - ioctl (msharefs_ioctl): an unsized region: EINVAL; an unknown cmd: ENOTTY.
 *   MSHAREFS_CREATE_MAPPING {region_offset, size, offset, prot, flags, fd} (msharefs_create_mapping
 *   of v3 20/22): mmaps `fd` at region_offset in the host, under the host's mmap_lock. The start
 *   outside the region, or the end past it: EINVAL; flags not MAP_SHARED: EINVAL (MAP_FIXED is
 *   implied: the series demands MAP_SHARED|MAP_FIXED, ptlab takes MAP_SHARED alone); a bad fd:
 *   EBADF; an msharefs fd (no nesting): EINVAL. ptlab also gives EINVAL for an unaligned
 *   region_offset, size or offset and for a zero size (do_mmap would round the size up), for
 *   MAP_ANONYMOUS (anonymous memory in a region is not modelled: /dev/shm and memfd files only), and
 *   once the owner has exited (exit_mshare: "prevent more mappings from being created").
 *   MSHAREFS_UNMAP {region_offset, size} (msharefs_unmap): do_munmap on the host under its lock;
 *   size > region, offset >= region or end past it: EINVAL; then do_munmap's own EINVAL.
 * - Attach: mmap(MAP_SHARED) of the msharefs fd (msharefs_get_unmapped_area + msharefs_mmap):
 *   MAP_PRIVATE: EINVAL (do_mmap refuses private maps of model files); an unsized region: EINVAL;
 *   len != region size: EINVAL; MAP_FIXED at an address not MSHARE_ALIGN-aligned: EINVAL; a hint
 *   is aligned up. The guest VMA gets VM_SHARED_PT with V_PRIV = the host mm (+ generation) and
 *   holds one host user (mmget) besides its file reference.
 * - The fault (find_shared_vma): the task's mmap_lock is held for read; the host's is taken for
 *   read inside it (mmap_read_lock_nested). No host VMA at the address (e.g. after MSHAREFS_UNMAP
 *   or the owner's exit): VM_FAULT_SIGSEGV; the access is checked against the guest VMA (the
 *   access_error ptlab's do_user_addr_fault leaves to the model) and the host VMA. The host's
 *   tables are allocated down to the PMD table under the PUD entry; the host's PUD entry is copied
 *   into the guest's (P_SHARE of the PMD table counts the entries pointing to it); then the PTE
 *   fault is handled in the host's context. Upstream returns VM_FAULT_NOPAGE after the copy and
 *   takes a second fault; ptlab, as the brief asks, goes on to the PTE fault in the same one.
 *   A guest entry left on a PMD table the host has since dropped (the host range was emptied and
 *   mapped again) is switched to the host's current one, one share less on the old.
 * - mprotect of the guest VMA: EINVAL (mshare_vm_op_mprotect); a partial munmap: EINVAL
 *   (mshare_vm_op_split).
 * - madvise on the guest VMA: EINVAL, MADV_DONTNEED included. v3's cover letter conceded that
 *   MADV_DONTNEED "will operate on the shared page table without taking the needed locks" and
 *   planned to refuse madvise there (changes to the inside go through ioctls, under the host's
 *   mmap_lock, flushed from every guest CPU); ptlab follows the plan: the model has no
 *   madvise_dontneed hook, so madvise_vma_behavior refuses. --bug v3-dontneed-without-host-lock
 *   does what v3 did (madvise_dontneed_free on the guest VMA, see dontneed_without_host_lock).
 * - munmap/exit detach (mshare_vm_op_unshare_page_range): the guest's PUD entries are cleared,
 *   the guest flushed, then one share less on each table (pt_put), and the guest's host user
 *   dropped.
 * - Host changes flush every CPU that may cache host translations (upstream: flush_tlb_all from
 *   the host's mmu notifier). ptlab's flush mask of a host mm is its cpumask plus the cpumask of
 *   every process mapping the region, read from the msharefs file's i_mmap at flush time, so a
 *   guest that moved between CPUs is still reached.
 * - Owner exit (exit_mshare, called from do_exit): when the creating process's mm is torn down
 *   (the exit_mm hook, before exit_mmap), the whole host range is unmapped (do_munmap on the host:
 *   zapped, flushed from every guest CPU, host tables dropped), so later touches by others find no
 *   host VMA and get SIGSEGV. The owner is FL_PRIV2 = task + 1 (tasks are never reused).
 * - Lifetime: the file holds one host user; fds, the name and guest mappings hold the file. The
 *   last reference releases the file (release hook, msharefs_evict_inode), which drops the host:
 *   exit_mmap + mmdrop through mmput. Host tables are accounted to the host (alloc_ptp), guests
 *   account only their own PGD and PUD tables. A PMD table the host dropped while guests still
 *   pointed to it stays accounted to the host until the last guest drops it.
 * - backing_file_id: the FL_ID of the one file the region maps (every host VMA maps it), else -1.
 *
 * - The v1 API of seed 004 — mshare(name, addr, len, oflag, mode) and mshare_unlink(name) — runs
 *   over the same host mm (mshare_v1 below).
 *
 * Not done: anonymous and hugetlb memory inside a region; fallocate, MSHAREFS_GET/SET_SIZE of earlier
 * versions, the /sys/fs/mshare/mshare_info file.
 *
 * Locks: ftruncate and the ioctls take the host's mmap_lock for write; attach takes it for read
 * inside the task's (held for write by vm_mmap); the fault for read inside the task's. The name
 * table is under as /dev/shm's.
 */
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock, host_mmap_read_lock, host_mmap_write_lock } from '../mm/mmap_lock.js';
import {
  FILE_MODEL, FILE_SHMEM, FL_KIND, FL_PRIV2, FL_REF, FL_SIZE_HI, FL_SIZE_LO,
  M_MMAP_LOCK, M_PGD, M_TASK, P_SHARE,
  R_STATE, FL_V1_ADDR_HI, FL_V1_ADDR_LO, T_MM, V_MM,
} from '../shm/layout.js';
import { refcount_inc_not_zero } from '../sync/refcount.js';
import { fdget } from '../mm/fdtable.js';
import { fileBase } from '../mm/filemap.js';
import {
  guest_detach, guest_fork, host_backing_file_id, host_file_create, host_file_unlink, host_of_file, host_of_vma,
  host_release, model_flush_mask, share_host_entry,
} from './host_mm.js';
import { name_hash, name_open } from '../mm/namei.js';
import { mm_gen, mmget } from '../mm/fork.js';
import {
  handle_pte_fault, lookup_entry, type MmuGather, tlb_finish_mmu, zap_page_range, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, VM_FAULT_UFFD,
} from '../mm/memory.js';
import { SchedPoint } from '../sync/schedpoint.js';
import {
  calc_vm_flags, do_munmap, get_unmapped_area, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, mmap_region, PROT_EXEC, PROT_READ, PROT_WRITE, vm_mmap, vm_munmap, do_mmap,
} from '../mm/mmap.js';
import { EBADF, EFBIG, EINVAL, ENOENT, ENOTTY } from '../mm/errno.js';
import { report_violation, Violation } from '../mm/mmdebug.js';
import { MODEL_DEFAULT, type IoctlArgs, type MmapArgs, type ModelOps } from '../mm/model_ops.js';
import { ptpBase } from '../mm/page_alloc.js';
import { FAULT_FLAG_WRITE, ST_FAULT_SHARED_PMD, type Kernel, type VmFault } from '../mm/percpu.js';
import {
  ALLOC_OOM, entry_off, entry_table, PAGE_SIZE, pgd_index, PMD_LEVEL, pmd_index, pte_index, PTE_LEVEL, PUD_LEVEL,
  pud_index, PUD_SIZE, table_alloc, TASK_SIZE,
} from '../mm/pgtable.js';
import { fput, i_size_read } from '../mm/shmem.js';
import {
  find_vma, vma_end, vma_file, vma_flags, vma_next, vma_pgoff, vma_start, vmaBase, VM_EXEC, VM_READ, VM_SHARED,
  VM_SHARED_PT, VM_WRITE,
} from '../mm/vma.js';
import { AssertSite, guard_pt_share, guard_upper_populate } from '../mm/guarded.js';

export const MSHAREFS_DIR = '/sys/fs/mshare';
export const MSHAREFS_CREATE_MAPPING = 'MSHAREFS_CREATE_MAPPING';
export const MSHAREFS_UNMAP = 'MSHAREFS_UNMAP';
/** The sharing granule: one PUD entry (upstream: P4D_SIZE, a level ptlab's 4-level x86-64 folds). */
export const MSHARE_ALIGN = PUD_SIZE;
/** Where a region starts in its host mm (mshare_base = mshare_align). */
export const MSHARE_BASE = MSHARE_ALIGN;
/** The largest region: what the host's address space holds above MSHARE_BASE. */
export const MSHARE_MAX = Math.floor((TASK_SIZE - MSHARE_BASE) / MSHARE_ALIGN) * MSHARE_ALIGN;

const TWO32 = 2 ** 32;

/** FNV-1a of the name in msharefs' own namespace: '/dev/shm' hashes '/<name>', never 'msharefs:'. */
/** '/sys/fs/mshare/<name>' -> name; anything else (the directory, a subdirectory) -> null. */
function parse_path(path: string): string | null {
  if (!path.startsWith(MSHAREFS_DIR + '/')) return null;
  const name = path.slice(MSHAREFS_DIR.length + 1);
  return name.length === 0 || name.includes('/') ? null : name;
}

/**
 * --bug peek-without-host-lock (seed 004, Dave Hansen on v1's find_shared_vma: "Is digging around
 * in the other process's page tables OK without holding any locks?"): the fault reads the host's
 * upper-level entry before it takes the host's mmap_lock and, if the guest's differs, copies it
 * and returns (v1's set_pgd + VM_FAULT_NOPAGE). A host unmap between the read and the copy frees
 * the table the copied entry points to; the retried access walks into it.
 */
export const BUG_PEEK_WITHOUT_HOST_LOCK = 'peek-without-host-lock';
export const BUG_ATTACH_DROPS_MMAP_LOCK = 'attach-drops-mmap-lock';
/** v1's handle_mm_fault epilogue: after VM_FAULT_RETRY, release current->mm's lock, not the faulted mm's. */
export const BUG_RETRY_UNLOCKS_CURRENT = 'retry-unlocks-current-mm';
/**
 * --bug v3-dontneed-without-host-lock (v3, Aug 2025: MADV_DONTNEED "will operate on the shared
 * page table without taking the needed locks"): madvise(MADV_DONTNEED) on a guest VMA zaps the
 * PTEs of the host's shared tables under the caller's mmap_lock (read) only — not the host's — and
 * its mmu_gather flushes the caller's mm, not every CPU running another guest. Their TLBs keep
 * the translations the zap cleared.
 */
export const BUG_V3_DONTNEED_WITHOUT_HOST_LOCK = 'v3-dontneed-without-host-lock';

export function createMshareModel(bug = ''): ModelOps {
  const peekUnlocked = bug === BUG_PEEK_WITHOUT_HOST_LOCK;
  const attachDropsLock = bug === BUG_ATTACH_DROPS_MMAP_LOCK;
  const retryUnlocksCurrent = bug === BUG_RETRY_UNLOCKS_CURRENT;
  const dontneedUnlocked = bug === BUG_V3_DONTNEED_WITHOUT_HOST_LOCK;
  /** Is `file` an msharefs file? (the run's one model made every FILE_MODEL file) */
  function is_region(k: Kernel, file: number): boolean {
    return Atomics.load(k.i32, fileBase(k, file) + FL_KIND) === FILE_MODEL;
  }

  /** The region's size (i_size; 0 while unsized). Set once, under the host's mmap_lock. */
  function region_size(k: Kernel, file: number): number {
    return i_size_read(k, file);
  }

  // ---- msharefs: names, files, the region's lifetime ----

  /** msharefs_create -> msharefs_get_inode -> msharefs_fill_mm: a new file, its host mm, its owner. */
  function region_create(k: Kernel, hash: number): number {
    const f = host_file_create(k, hash); // one reference: the name's
    // list_add(&m_data->list, &current->mshare_mem): the creating process owns the region.
    if (f >= 0) Atomics.store(k.i32, fileBase(k, f) + FL_PRIV2, k.task + 1);
    return f;
  }

  /** open(2) in msharefs (O_CREAT|O_EXCL on an existing name: EEXIST; a missing one: ENOENT). */
  function open(k: Kernel, path: string, create: boolean, excl: boolean): number {
    const name = parse_path(path);
    if (name === null) return -ENOENT;
    return name_open(k, name_hash('msharefs', name), create, excl, (h) => region_create(k, h));
  }

  /** unlink(2) (msharefs_unlink -> simple_unlink): the name goes; the region lives while referenced. */
  function unlink(k: Kernel, path: string): number {
    const name = parse_path(path);
    if (name === null) return -ENOENT;
    return host_file_unlink(k, name_hash('msharefs', name)); // the last reference tears the host down
  }

  /**
   * msharefs_evict_inode: the file's last reference went (no fd, name or mapping is left). Off
   * its owner's list, then the file's host user goes: exit_mmap + mmdrop with the last.
   */
  function release(k: Kernel, file: number): void {
    Atomics.store(k.i32, fileBase(k, file) + FL_PRIV2, 0); // off its owner's list
    host_release(k, file);
  }

  /** ftruncate(2) -> msharefs_setattr -> msharefs_set_size. */
  function setsize(k: Kernel, file: number, size: number): number {
    if (size === 0 || size % MSHARE_ALIGN !== 0) return -EINVAL;
    if (size > MSHARE_MAX) return -EFBIG;
    const host = host_of_file(k, file);
    if (host < 0) return -EINVAL;
    const i32 = k.i32;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_write_lock(k, hlock);
    try {
      if (region_size(k, file) !== 0) return -EINVAL; // mshare_is_initialized: sized once
      const fb = fileBase(k, file);
      Atomics.store(i32, fb + FL_SIZE_HI, Math.floor(size / TWO32));
      Atomics.store(i32, fb + FL_SIZE_LO, size % TWO32 | 0);
      return 0;
    } finally {
      mmap_write_unlock(k, hlock);
    }
  }

  // ---- the owner ----

  /**
   * exit_mshare for one region: the owner is going away. Unmap everything in the host (zap,
   * flush every guest CPU, drop the host's tables); later guest faults find no host VMA.
   */
  function owner_gone(k: Kernel, file: number): void {
    const host = host_of_file(k, file);
    if (host < 0) return;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_write_lock(k, hlock);
    try {
      const size = region_size(k, file);
      if (size > 0) do_munmap(k, host, MSHARE_BASE, size);
    } finally {
      mmap_write_unlock(k, hlock);
    }
  }

  /** exit_mshare(task), reached through exit_mmap of the task's mm: every region it owns. */
  function exit_mm(k: Kernel, mm: number): void {
    const i32 = k.i32;
    const task = Atomics.load(i32, k.mmBase(mm) + M_TASK) - 1;
    if (task < 0) return; // a host mm: it owns nothing
    for (let f = 0; f < k.layout.config.files; f++) {
      const fb = fileBase(k, f);
      if (Atomics.load(i32, fb + R_STATE) === 0 || Atomics.load(i32, fb + FL_KIND) !== FILE_MODEL) continue;
      if (Atomics.load(i32, fb + FL_PRIV2) !== task + 1) continue;
      // mshare_data_getref: a file on its way out is skipped (its release clears the owner).
      if (!refcount_inc_not_zero(i32, fb + FL_REF)) continue;
      // clear_bit(MSHARE_HAS_OWNER): once, and only if the record still is that region.
      if (Atomics.load(i32, fb + FL_KIND) === FILE_MODEL && Atomics.compareExchange(i32, fb + FL_PRIV2, task + 1, 0) === task + 1) {
        owner_gone(k, f);
      }
      fput(k, f);
    }
  }

  // ---- ioctls ----

  function ioctl(k: Kernel, file: number, cmd: string, args: IoctlArgs): number {
    const host = host_of_file(k, file);
    if (host < 0) return -EINVAL;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    // The region's size is read under the host's lock (setsize writes it there).
    host_mmap_read_lock(k, hlock);
    const size = region_size(k, file);
    mmap_read_unlock(k, hlock);
    if (size === 0) return -EINVAL; // msharefs_ioctl: !mshare_is_initialized
    switch (cmd) {
      case MSHAREFS_CREATE_MAPPING: return create_mapping(k, file, host, size, args);
      case MSHAREFS_UNMAP: return unmap(k, host, size, args);
      default: return -ENOTTY;
    }
  }

  const isInt = (v: number | undefined): v is number => v !== undefined && Number.isInteger(v);

  /** msharefs_create_mapping (v3 20/22): mmap a shmem/memfd file into the host at region_offset. */
  function create_mapping(k: Kernel, file: number, host: number, rsize: number, a: IoctlArgs): number {
    const { region_offset: off, size, offset, prot, flags, fd } = a;
    if (!isInt(off) || !isInt(size) || !isInt(offset) || !isInt(prot) || !isInt(flags)) return -EINVAL;
    const start = MSHARE_BASE;
    const end = start + rsize;
    const addr = start + off;
    if (addr < start || addr >= end) return -EINVAL;
    // "Only shared memory at fixed addresses is allowed for now" (MAP_FIXED implied here).
    if ((flags & (MAP_SHARED | MAP_PRIVATE)) !== MAP_SHARED) return -EINVAL;
    if ((flags & MAP_ANONYMOUS) !== 0) return -EINVAL; // ptlab: anonymous memory in a region is not modelled
    const src = fd === undefined ? -1 : fdget(k, fd);
    if (src < 0) return -EBADF; // fget
    if (Atomics.load(k.i32, fileBase(k, src) + FL_KIND) !== FILE_SHMEM) return -EINVAL; // an mshare region in a region
    if (addr + size > end) return -EINVAL;
    // do_mmap's checks on a MAP_FIXED mapping (ptlab: an unaligned size is refused, not rounded).
    if (size <= 0 || off % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 || offset < 0 || offset % PAGE_SIZE !== 0) return -EINVAL;
    return host_map(k, file, host, addr, size, src, offset, prot);
  }

  /** Maps `src` at host address `addr`, MAP_SHARED|MAP_FIXED, under the host's mmap_lock. */
  function host_map(k: Kernel, file: number, host: number, addr: number, size: number, src: number, offset: number, prot: number): number {
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_write_lock(k, hlock);
    try {
      // exit_mshare: "prevent more mappings from being created" once the owner went.
      if (Atomics.load(k.i32, fileBase(k, file) + FL_PRIV2) === 0) return -EINVAL;
      // MAP_FIXED: what was there goes first (a host change: every guest CPU is flushed).
      const r = do_munmap(k, host, addr, size);
      if (r < 0) return r;
      const v = mmap_region(k, host, addr, size, calc_vm_flags(prot, MAP_SHARED), src, offset / PAGE_SIZE);
      return v < 0 ? v : 0;
    } finally {
      mmap_write_unlock(k, hlock);
    }
  }

  /**
   * mshare(name, addr, len, oflag, mode), the v1 API of seed 004, over the same host mm:
   * O_CREAT makes the named region over [addr, addr + len) of the caller — its MAP_SHARED file
   * mappings there move into the host ("existing mappings in the range become shared") — and
   * maps the region back in place; without O_CREAT (or O_CREAT of an existing name) it attaches
   * the region at the same address, which v1 asks of every process (another address or length:
   * EINVAL). O_CREAT|O_EXCL on an existing name: EEXIST; a missing name: ENOENT; unaligned or
   * empty: EINVAL; an anonymous or private mapping in the range: EINVAL (not movable here).
   * "This mm_struct is maintained as long as there is at least one task using the mshare'd
   * range. It is cleaned up by the last mshare_unlink": the name and each mapping hold it.
   */
  function mshare_v1(k: Kernel, name: string, addr: number, len: number, create: boolean, excl: boolean): number {
    if (len <= 0 || addr % MSHARE_ALIGN !== 0 || len % MSHARE_ALIGN !== 0 || addr + len > TASK_SIZE) return -EINVAL;
    const mm = Atomics.load(k.i32, k.taskOff + T_MM);
    const lock = k.mmBase(mm) + M_MMAP_LOCK;
    if (attachDropsLock) return mshare_v1_unlocked(k, mm, lock, name, addr, len, create, excl);
    // Seed 004: "vma unmapped and remapped between dropping and retaking mmap_lock". The fix:
    // the caller's mmap_lock is held for write from the look at its mappings to the attach, so
    // another thread of the process cannot change the range in between.
    mmap_write_lock(k, lock);
    try {
      return v1_attach(k, mm, movable_mappings(k, mm, addr, len), name, addr, len, create, excl, true);
    } finally {
      mmap_write_unlock(k, lock);
    }
  }

  /**
   * --bug attach-drops-mmap-lock: v1 as first posted — the caller's mappings are looked at under
   * mmap_lock, the lock is dropped, and the move, the unmap and the attach each retake it without
   * looking again; a thread that unmaps and remaps the range in between loses its new mapping.
   */
  function mshare_v1_unlocked(k: Kernel, mm: number, lock: number, name: string, addr: number, len: number, create: boolean, excl: boolean): number {
    mmap_read_lock(k, lock);
    const moving = movable_mappings(k, mm, addr, len);
    mmap_read_unlock(k, lock);
    if (k.sched !== null) k.sched.point(k, SchedPoint.HostBetweenUnlockRelock);
    return v1_attach(k, mm, moving, name, addr, len, create, excl, false);
  }

  /**
   * Creates (moving the caller's mappings in, unmapping them) or finds the named region and maps
   * it at `addr`. `locked`: the caller's mmap_lock is held for write (do_munmap/do_mmap), else
   * each step takes it (vm_munmap/vm_mmap).
   */
  function v1_attach(
    k: Kernel, mm: number, moving: Moving[] | null, name: string, addr: number, len: number, create: boolean, excl: boolean, locked: boolean,
  ): number {
    let created = false;
    const file = name_open(k, name_hash('msharefs', name), create, excl, (h) => {
      if (moving === null) return -EINVAL; // checked before the region exists: nothing to undo
      const nf = v1_region_create(k, h, addr, len);
      created = nf >= 0;
      return nf;
    });
    if (file < 0) return file;
    try {
      let r = created ? move_into_region(k, file, moving!, addr) : v1_check_attach(k, file, addr, len);
      if (r === 0 && created) r = locked ? do_munmap(k, mm, addr, len) : vm_munmap(k, mm, addr, len);
      if (r < 0) return r;
      const a: MmapArgs = { mm, addr, len, prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_FIXED, file, pgoff: 0, fmode: 3, populate: false };
      r = locked ? do_mmap(k, a) : vm_mmap(k, a);
      return r < 0 ? r : 0;
    } finally {
      fput(k, file); // the lookup's reference: the name and the mapping hold their own
    }
  }

  interface Moving { start: number; end: number; file: number; pgoff: number; prot: number }

  /** The caller's MAP_SHARED shmem mappings in [addr, addr + len), or null if something else is there. */
  function movable_mappings(k: Kernel, mm: number, addr: number, len: number): Moving[] | null {
    const i32 = k.i32;
    const moving: Moving[] = [];
    for (let v = find_vma(k, mm, addr); v >= 0 && vma_start(k, v) < addr + len; v = vma_next(k, v)) {
      const f = vma_flags(k, v);
      const file = vma_file(k, v);
      if ((f & VM_SHARED) === 0 || (f & VM_SHARED_PT) !== 0 || file < 0 || Atomics.load(i32, fileBase(k, file) + FL_KIND) !== FILE_SHMEM) return null;
      const start = Math.max(addr, vma_start(k, v));
      moving.push({
        start, end: Math.min(addr + len, vma_end(k, v)), file,
        pgoff: vma_pgoff(k, v) + (start - vma_start(k, v)) / PAGE_SIZE,
        prot: (f & VM_READ ? PROT_READ : 0) | (f & VM_WRITE ? PROT_WRITE : 0) | (f & VM_EXEC ? PROT_EXEC : 0),
      });
    }
    return moving;
  }

  /** A named v1 region of `len` at `addr` (the address every process must attach it at). */
  function v1_region_create(k: Kernel, h: number, addr: number, len: number): number {
    const nf = region_create(k, h);
    if (nf < 0) return nf;
    const r = setsize(k, nf, len);
    if (r < 0) {
      fput(k, nf);
      return r;
    }
    Atomics.store(k.i32, fileBase(k, nf) + FL_V1_ADDR_HI, Math.floor(addr / TWO32));
    Atomics.store(k.i32, fileBase(k, nf) + FL_V1_ADDR_LO, addr % TWO32 | 0);
    return nf;
  }

  function v1_check_attach(k: Kernel, file: number, addr: number, len: number): number {
    const fb = fileBase(k, file);
    const at = Atomics.load(k.i32, fb + FL_V1_ADDR_HI) * TWO32 + (Atomics.load(k.i32, fb + FL_V1_ADDR_LO) >>> 0);
    return at !== addr || region_size(k, file) !== len ? -EINVAL : 0;
  }

  /** The creator's mappings become the region's: mapped at their offsets in the host. */
  function move_into_region(k: Kernel, file: number, moving: Moving[], addr: number): number {
    const host = host_of_file(k, file);
    if (host < 0) return -EINVAL;
    for (const m of moving) {
      const r = host_map(k, file, host, MSHARE_BASE + (m.start - addr), m.end - m.start, m.file, m.pgoff * PAGE_SIZE, m.prot);
      if (r < 0) return r;
    }
    return 0;
  }

  /** msharefs_unmap: do_munmap on the host; the flush reaches every CPU running a guest. */
  function unmap(k: Kernel, host: number, rsize: number, a: IoctlArgs): number {
    const { region_offset: off, size } = a;
    if (!isInt(off) || !isInt(size)) return -EINVAL;
    if (size > rsize || off < 0 || off >= rsize || off + size > rsize) return -EINVAL;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_write_lock(k, hlock);
    try {
      return do_munmap(k, host, MSHARE_BASE + off, size);
    } finally {
      mmap_write_unlock(k, hlock);
    }
  }

  // ---- attach, fault, detach ----

  /** mmap(MAP_SHARED) of an msharefs file: msharefs_get_unmapped_area + msharefs_mmap. */
  function mmap(k: Kernel, a: MmapArgs): number {
    if (!is_region(k, a.file)) return MODEL_DEFAULT; // a plain shared mapping, as Linux
    const host = host_of_file(k, a.file);
    if (host < 0) return -EINVAL;
    const fixed = (a.flags & MAP_FIXED) !== 0;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_read_lock(k, hlock);
    const size = region_size(k, a.file);
    mmap_read_unlock(k, hlock);
    if (size === 0) return -EINVAL; // !mshare_is_initialized
    if (a.len !== size) return -EINVAL;
    if (fixed && a.addr % MSHARE_ALIGN !== 0) return -EINVAL;
    let addr: number;
    if (fixed) {
      const r = do_munmap(k, a.mm, a.addr, a.len);
      if (r < 0) return r;
      addr = a.addr;
    } else {
      const hint = a.addr === 0 ? 0 : Math.ceil(a.addr / MSHARE_ALIGN) * MSHARE_ALIGN; // ALIGN(addr, mshare_align)
      addr = get_unmapped_area(k, a.mm, hint, a.len, MSHARE_ALIGN);
      if (addr < 0) return addr;
    }
    const gv = mmap_region(k, a.mm, addr, a.len, calc_vm_flags(a.prot, a.flags) | VM_SHARED_PT, a.file, a.pgoff, host, mm_gen(k, host));
    if (gv < 0) return gv;
    mmget(k, host); // the mapping's host user, dropped by detach
    return addr;
  }

  /**
   * handle_mm_fault for an mshare VMA, with v1's epilogue (seed 004): a fault in the host that
   * ends in VM_FAULT_RETRY gave up the host's lock on its way, and "to keep lock state
   * consistent" the faulting mm's lock goes too, as it would have for an unshared VMA
   * (vmf.unlocked: the caller must not release it). v1 released current->mm's; Dave Hansen:
   * "Are we guaranteed that current->mm == the original vma->vm_mm?" — not for a remote fault
   * (get_user_pages_remote, fixup_user_fault). The fix releases the mm the fault was on.
   */
  function fault(k: Kernel, vmf: VmFault): number {
    const ret = fault_in_host(k, vmf);
    if ((ret & VM_FAULT_UFFD) !== 0) {
      const mm = retryUnlocksCurrent ? k.mm : vmf.task_mm;
      const lock = k.mmBase(mm) + M_MMAP_LOCK;
      // lockdep's "bad unlock balance": reported, and the unheld lock is left alone.
      if (k.holds(lock)) mmap_read_unlock(k, lock);
      else report_violation(k.i32, k.layout, Violation.Invariant, k.cpu, 6, mm, vmf.task_mm);
      vmf.unlocked = true;
    }
    return ret;
  }

  /**
   * The guest fault (find_shared_vma + handle_mm_fault in the host). Task's mmap_lock held for
   * read; the host's is taken for read inside it.
   */
  function fault_in_host(k: Kernel, vmf: VmFault): number {
    const i32 = k.i32;
    const guestVma = vmf.vma;
    const guest = vmf.mm;
    const gaddr = vmf.address;
    const gvpn = vmf.vpn;
    const gstart = vmf.vm_start;
    const gflags = vmf.vm_flags;
    const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
    const access = write ? VM_WRITE : VM_READ | VM_WRITE | VM_EXEC;
    // access_error on the guest VMA (ptlab's do_user_addr_fault leaves VM_SHARED_PT VMAs to us).
    if ((gflags & access) === 0) return VM_FAULT_SIGSEGV;
    const host = host_of_vma(k, guestVma);
    if (host < 0) return VM_FAULT_SIGBUS;
    const haddr = MSHARE_BASE + (gaddr - gstart);
    const hvpn = Math.floor(haddr / PAGE_SIZE);
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    if (peekUnlocked) {
      // The bug: v1's lockless peek at the host's entry, copied into the guest's if they differ.
      const hOff = lookup_entry(k, host, hvpn, PUD_LEVEL);
      const he = hOff < 0 ? 0 : Atomics.load(i32, hOff);
      if (k.sched !== null) k.sched.point(k, SchedPoint.MsharePeek);
      if (he !== 0) {
        const gpud = table_alloc(k, entry_off(k, Atomics.load(i32, k.mmBase(guest) + M_PGD), pgd_index(gvpn)), guest, PUD_LEVEL);
        if (gpud < 0) return gpud === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
        const gOff = entry_off(k, gpud, pud_index(gvpn));
        guard_upper_populate(k, gOff, AssertSite.MshareFault);
        if (Atomics.compareExchange(i32, gOff, 0, he) === 0) {
          // The bug's share of a host table taken without the host's mmap_lock: nothing keeps
          // the table alive meanwhile (the lockset's rule for P_SHARE catches it).
          guard_pt_share(k, entry_table(he), AssertSite.MshareFault);
          Atomics.add(i32, ptpBase(k, entry_table(he)) + P_SHARE, 1);
          k.stats[ST_FAULT_SHARED_PMD]++;
          return 0; // VM_FAULT_NOPAGE: the access is retried through the copied entry
        }
      }
    }
    host_mmap_read_lock(k, hlock); // mmap_read_lock_nested(host_mm, SINGLE_DEPTH_NESTING)
    try {
      const hv = find_vma(k, host, haddr);
      if (hv < 0 || vma_start(k, hv) > haddr) return VM_FAULT_SIGSEGV; // nothing mapped there in the host
      const hf = vma_flags(k, hv);
      if ((hf & access) === 0) return VM_FAULT_SIGSEGV;
      // The host's path down to the PMD table under the shared PUD entry (__pud_alloc, __pmd_alloc).
      const hpud = table_alloc(k, entry_off(k, Atomics.load(i32, k.mmBase(host) + M_PGD), pgd_index(hvpn)), host, PUD_LEVEL);
      if (hpud < 0) return hpud === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
      const hpudOff = entry_off(k, hpud, pud_index(hvpn));
      const hpmd = table_alloc(k, hpudOff, host, PMD_LEVEL);
      if (hpmd < 0) return hpmd === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
      const hostEntry = Atomics.load(i32, hpudOff);
      if (k.sched !== null) k.sched.point(k, SchedPoint.ShareLoad);
      // The guest's PUD entry (its own PUD table): a copy of the host's.
      const gpud = table_alloc(k, entry_off(k, Atomics.load(i32, k.mmBase(guest) + M_PGD), pgd_index(gvpn)), guest, PUD_LEVEL);
      if (gpud < 0) return gpud === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
      const r = share_host_entry(k, entry_off(k, gpud, pud_index(gvpn)), hostEntry, hpmd, PMD_LEVEL, host, guest);
      if (r !== 0) return r;
      // The PTE fault in the host's context (same PMD and PTE indices: both ranges are PUD-aligned).
      vmf.enterHost(host, hv, hf, vma_start(k, hv), haddr);
      vmf.pmd = entry_off(k, hpmd, pmd_index(hvpn));
      const t = table_alloc(k, vmf.pmd, host, PTE_LEVEL);
      if (t < 0) return t === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
      vmf.pte_table = t;
      vmf.pte = entry_off(k, t, pte_index(hvpn));
      return handle_pte_fault(k, vmf);
    } finally {
      mmap_read_unlock(k, hlock);
      vmf.leaveHost();
    }
  }

  /**
   * The bug's madvise_dontneed (v3's madvise_dontneed_free -> zap_page_range_single on the guest
   * VMA), the caller's mmap_lock held for read (madvise_need_mmap_write). The walk goes down the
   * guest's own tables: its PUD entry is a copy of the host's, so below it are the host's PMD and
   * PTE tables, and the zap clears the host's PTEs (under each PTE table's lock, as
   * zap_pte_range) without the host's mmap_lock. The host owns those tables, so the PTEs come off
   * the host's RSS (zap_page_range's rss_mm), as MSHAREFS_UNMAP's zap would take them. Then
   * tlb_finish_mmu on the caller's mm: flush_tlb_mm(guest) reaches the guest's cpumask only —
   * not host_flush_mask's CPUs of every other guest, which a host change must flush (msharefs_unmap
   * through do_munmap on the host; upstream flush_tlb_all). The fixed model has no such hook:
   * MADV_DONTNEED there is EINVAL (v3's plan).
   */
  function dontneed_without_host_lock(k: Kernel, vma: number, start: number, end: number, tlb: MmuGather): void {
    const guest = Atomics.load(k.i32, vmaBase(k, vma) + V_MM);
    const host = host_of_vma(k, vma);
    if (host < 0) return; // reported: the machine stops
    zap_page_range(k, guest, start, end, tlb); // RSS goes to the tables' owner: the host
    tlb_finish_mmu(k, guest, tlb); // the bug: the host's other guests are not flushed
  }

  return {
    name: 'mshare',
    mmap,
    fault,
    mprotect: () => -EINVAL, // mshare_vm_op_mprotect
    may_munmap: (k, vma, start, end) => (start === vma_start(k, vma) && end === vma_end(k, vma) ? 0 : -EINVAL), // mshare_vm_op_split
    // mshare_vm_op_unshare_page_range: the guest's PUD entries go, then the mapping's host user.
    detach: (k, vma) => guest_detach(k, vma, PUD_LEVEL),
    fork_vma: (k, src) => guest_fork(k, src),
    vma_open: (k, vma) => void guest_fork(k, vma), // a host user per VMA, as fork's copy
    switch_mm: () => {}, // flush_mask reads the guests' own cpumasks
    flush_mask: model_flush_mask,
    open,
    unlink,
    ioctl,
    setsize,
    release,
    backing_file_id: host_backing_file_id,
    exit_mm,
    mshare: mshare_v1,
    /** mshare_unlink(name): the name goes; the region goes with its last mapping. */
    mshare_unlink: (k, name) => unlink(k, MSHAREFS_DIR + '/' + name),
    // MADV_DONTNEED on the mapping: EINVAL without the hook (v3's plan); the bug does what v3 did.
    ...(dontneedUnlocked ? { madvise_dontneed: dontneed_without_host_lock } : {}),
  };
}
