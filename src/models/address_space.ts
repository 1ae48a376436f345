/**
 * `address-space`: Andy Lutomirski's sketch (seed 002, Sep 2020) — "Create an empty address space:
 * int address_space_create(int flags, etc); Map an fd into an address space:
 * int address_space_mmap(int asfd, int fd_to_map, offset, size, prot, ...); Unmap from an address
 * space: int address_space_munmap(int asfd, unsigned long addr, unsigned long len); ... Maybe some
 * day allow mapping an address space into a process. mmap(..., asfd, ...); ... an address space
 * that is address_space_mmapped into an address space is disallowed. ... Under the hood, an
 * address_space could own an mm_struct that is not used by any tasks" — with Stefan Hajnoczi's
 * use cases: an enforcing vIOMMU (the VMM grants and revokes what a device process may reach;
 * "accesses to unmapped addresses would raise a signal") and the virtio-fs DAX window (virtiofsd
 * maps and unmaps file ranges in the window without asking the VMM).
 *
 * Through the existing syscalls (processes in ptlab cannot pass fds, so a space may be named):
 * - address_space_create: open('/dev/address_space', O_CREAT) gives an fd for a new space — a
 *   model file (FL_KIND FILE_MODEL) whose FL_PRIV is a host mm made by mm_alloc(k, -1, MMF_HOST),
 *   tied to no task. Without O_CREAT: ENOENT. '/dev/address_space/<name>' names one: O_CREAT
 *   creates it, O_CREAT|O_EXCL on an existing name gives EEXIST, no O_CREAT and no such name gives
 *   ENOENT; unlink(2) removes the name. Names share the machine's name table with /dev/shm (each
 *   hashed in a namespace of its own).
 * - ftruncate(asfd, size) sizes the space: a PMD multiple (mappers share the space's page tables
 *   at the PMD level, as map-shared-pt's guests do), else EINVAL; EFBIG past AS_MAX; EBUSY while
 *   anything is mapped inside or any process maps the space (every mapper maps exactly the size).
 * - address_space_mmap: ioctl(asfd, 'AS_MMAP', {addr, fd, offset, size, prot}) maps shmem/memfd
 *   file `fd` at space address `addr` (page granularity: no PMD alignment needed inside). Bad fd:
 *   EBADF; an address-space fd (any model file) as `fd`: EINVAL — the seed's "an address space
 *   mapped into an address space is refused"; addr, size or offset not page-aligned, an empty or
 *   out-of-space range, unknown prot bits, or a range overlapping an existing mapping: EINVAL; a
 *   prot some mapper's mapping does not allow: EACCES (see the superset rule below).
 * - address_space_munmap: ioctl(asfd, 'AS_MUNMAP', {addr, size}) is do_munmap on the host under its
 *   mmap_lock (split at the edges, zap, free_pgtables): the flush (tlb_finish_mmu ->
 *   flush_tlb_mm(host)) reaches every CPU running a process that maps the space before the ioctl
 *   returns. This is the revoke: the next touch faults, finds no host VMA and gets SIGSEGV.
 *   Unknown cmd: ENOTTY.
 * - A process maps the space with mmap(asfd, size, MAP_SHARED) (MAP_PRIVATE, another length, a
 *   non-zero offset or a non-PMD-aligned address: EINVAL; partial munmap or mprotect of it:
 *   EINVAL). Its VMA carries VM_SHARED_PT with V_PRIV = the host.
 * - Where the space lives in the host: space address 0 is host address AS_HOST_BASE, for every
 *   mapper. A mapper may map the space at any PMD-aligned address of its own (not one address for
 *   all, as map-shared-pt requires): a guest address g in the VMA is space address g - vm_start,
 *   host address AS_HOST_BASE + (g - vm_start); both bases are PMD-aligned, so the two addresses
 *   have the same PTE index and a guest PMD entry may point at the host's PTE table.
 * - The fault (like map-shared-pt's, following handle_mm_fault's VM_SHARED_PT branch): the task's
 *   mmap_lock is held for read, the host's is taken for read inside it; no host VMA at the address
 *   -> VM_FAULT_SIGSEGV (never granted, or revoked); the access must be allowed by the host VMA
 *   (the grant's prot) and by the mapper's VMA; the host's PMD entry is copied into the guest's
 *   (P_SHARE counts the entries) and the PTE fault is handled in the host's context.
 * - Superset rule (as in container-fd, seed 000): a shared PTE serves every mapper, and the
 *   hardware checks the PTE only, so a mapper's prot must cover every grant inside: mmap of the
 *   space with less: EACCES; AS_MMAP with more than some mapper allows: EACCES.
 * - Revocation and shared tables: AS_MUNMAP's free_pgtables may drop the host's PMD entry for a
 *   PMD range left with no grant (pt_put: the table survives while guests point at it, empty, its
 *   TLB entries flushed). A later fault there finds the guest's entry pointing at such an orphan
 *   (owned by the host, no longer the host's): it swaps in the host's current entry and drops its
 *   share of the orphan, the last sharer freeing it. Detach drops whatever the guest points at.
 * - Shootdowns: flush_mask(host) is the host's own cpumask (no task runs it) plus every mapper's
 *   mm_cpumask, found through the space file's i_mmap at flush time (so a migrating mapper is
 *   followed); the mappers' own flushes are theirs.
 * - backing_file_id: FL_ID of the single file mapped in the space (the lost-write check credits a
 *   mapper's stores to it), else -1. Read at mmap time: a scenario maps one file per space.
 * - Lifetime: the host lives while the space file does (its release does mmput) and while any
 *   process maps it (each mapping holds an mm_users reference, dropped by detach); the file
 *   lives while an fd, the name or a mapping holds it. The last of them frees the host, its
 *   tables and its references on the files mapped inside.
 *
 * Locks: ioctls and ftruncate take the host mmap_lock for write; attach, the fault and detach take
 * it for read inside the task's; the mappers (the space file's i_mmap, under i_mmap_rwsem) are read
 * inside the host lock: task mmap_lock -> host mmap_lock -> i_mmap_rwsem, always in that order.
 * Shares of host tables dropped under the read lock (orphan swaps, detach) go one compareExchange
 * at a time (pt_put); AS_MUNMAP's free_pgtables drops the host's own under the write lock.
 *
 * Latency: AS_MMAP and AS_MUNMAP record their count and wall time (performance.now() around the
 * whole ioctl, the shootdown wait included) in ST_AS_GRANTS/ST_AS_GRANT_MS and
 * ST_AS_REVOKES/ST_AS_REVOKE_MS.
 */
import { mmap_write_unlock, host_mmap_write_lock } from '../mm/mmap_lock.js';
import {
  FILE_SHMEM, FL_KIND, M_CPUMASK,
  M_MMAP_LOCK,
} from '../shm/layout.js';
import { fdget } from '../mm/fdtable.js';
import { fileBase } from '../mm/filemap.js';
import {
  attach_whole_file, device_open, device_unlink, guest_detach, guest_fork, host_backing_file_id, host_map_range,
  host_of_file, host_release, is_model_file, model_flush_mask, whole_file_guest_fault, whole_file_setsize,
} from './host_mm.js';
import { do_munmap, PROT_EXEC, PROT_READ, PROT_WRITE } from '../mm/mmap.js';
import { EBADF, EINVAL, ENOTTY } from '../mm/errno.js';
import { MODEL_DEFAULT, type IoctlArgs, type ModelOps } from '../mm/model_ops.js';
import {
  ST_AS_GRANT_MS, ST_AS_GRANTS, ST_AS_REVOKE_MS, ST_AS_REVOKES, type Kernel,
} from '../mm/percpu.js';
import { PAGE_SIZE, PGDIR_SIZE, PMD_LEVEL, PMD_SIZE, TASK_SIZE } from '../mm/pgtable.js';
import { i_size_read } from '../mm/shmem.js';
import { vma_end, vma_start } from '../mm/vma.js';

export const AS_DEV = '/dev/address_space';
export const AS_MMAP = 'AS_MMAP';
export const AS_MUNMAP = 'AS_MUNMAP';

/** Where space address 0 sits in the host mm (one PGD entry up: PMD-aligned, clear of address 0). */
export const AS_HOST_BASE = PGDIR_SIZE;
/** The largest space: what fits in the host's address space above AS_HOST_BASE. */
export const AS_MAX = Math.floor((TASK_SIZE - AS_HOST_BASE) / PMD_SIZE) * PMD_SIZE;

const PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC;

function is_page_aligned(x: number | undefined): x is number {
  return x !== undefined && Number.isInteger(x) && x >= 0 && x % PAGE_SIZE === 0;
}

/**
 * --bug revoke-forgets-mappers: the revoke's shootdown is flush_tlb_mm(host) over the host's own
 * mm_cpumask — which is empty, since no task runs the host — so a device process's CPU keeps the
 * revoked translations and its DMA in flight goes on through them after AS_MUNMAP returned.
 */
export const BUG_REVOKE_FORGETS_MAPPERS = 'revoke-forgets-mappers';

export function createAddressSpaceModel(bug = ''): ModelOps {
  const forgetMappers = bug === BUG_REVOKE_FORGETS_MAPPERS;

  /** [addr, addr + size) page-aligned, not empty and inside the space? */
  function range_ok(k: Kernel, file: number, addr: number | undefined, size: number | undefined): boolean {
    return is_page_aligned(addr) && is_page_aligned(size) && size > 0 && addr + size <= i_size_read(k, file);
  }

  function ioctl(k: Kernel, file: number, cmd: string, args: IoctlArgs): number {
    if (cmd !== AS_MMAP && cmd !== AS_MUNMAP) return -ENOTTY; // an ioctl the file does not know
    const t0 = performance.now();
    const r = cmd === AS_MMAP ? address_space_mmap(k, file, args) : address_space_munmap(k, file, args);
    if (r === 0) {
      const ms = performance.now() - t0;
      if (cmd === AS_MMAP) {
        k.stats[ST_AS_GRANTS]++;
        k.stats[ST_AS_GRANT_MS] += ms;
      } else {
        k.stats[ST_AS_REVOKES]++;
        k.stats[ST_AS_REVOKE_MS] += ms;
      }
    }
    return r;
  }

  /** address_space_mmap(asfd, fd, offset, size, prot) at space address `addr`. */
  function address_space_mmap(k: Kernel, file: number, a: IoctlArgs): number {
    const { addr, fd, offset, size, prot } = a;
    if (fd === undefined) return -EBADF;
    const src = fdget(k, fd);
    if (src < 0) return -EBADF;
    // Only shmem / memfd files: "an address space that is address_space_mmapped into an address
    // space is disallowed" (nor any other model's file).
    if (Atomics.load(k.i32, fileBase(k, src) + FL_KIND) !== FILE_SHMEM) return -EINVAL;
    if (prot === undefined || !Number.isInteger(prot) || (prot & ~PROT_ALL) !== 0) return -EINVAL;
    if (!is_page_aligned(offset)) return -EINVAL;
    const host = host_of_file(k, file);
    if (host < 0) return -EINVAL;
    return host_map_range(k, file, host, AS_HOST_BASE + addr, size, prot, src, offset / PAGE_SIZE, () => range_ok(k, file, addr, size));
  }

  /**
   * address_space_munmap(asfd, addr, len): do_munmap on the host under its mmap_lock. Its
   * unmap_vmas zaps the PTEs and tlb_finish_mmu flushes flush_mask(host) — every CPU running a
   * mapper — and waits for their acks before free_pgtables and before this returns.
   */
  function address_space_munmap(k: Kernel, file: number, a: IoctlArgs): number {
    const { addr, size } = a;
    const host = host_of_file(k, file);
    if (host < 0) return -EINVAL;
    const hlock = k.mmBase(host) + M_MMAP_LOCK;
    host_mmap_write_lock(k, hlock);
    try {
      if (!range_ok(k, file, addr, size)) return -EINVAL;
      return do_munmap(k, host, AS_HOST_BASE + addr, size);
    } finally {
      mmap_write_unlock(k, hlock);
    }
  }

  return {
    name: 'address-space',
    // mmap(asfd, size, MAP_SHARED): the process maps the space (MAP_PRIVATE never gets here: do_mmap says EINVAL).
    mmap: (k, a) => (is_model_file(k, a.file) ? attach_whole_file(k, a) : MODEL_DEFAULT),
    // The grant (the host VMA) and the mapper's own VMA must both allow the access; nothing
    // granted there (never, or revoked): SIGSEGV, whatever the TLB held before the revoke flushed it.
    fault: (k, vmf) => whole_file_guest_fault(k, vmf, AS_HOST_BASE, true),
    mprotect: () => -EINVAL, // the space's contents change through AS_MMAP / AS_MUNMAP only
    may_munmap: (k, vma, start, end) => (start === vma_start(k, vma) && end === vma_end(k, vma) ? 0 : -EINVAL),
    // Never the host's last user: the space file, held by this VMA until remove_vma, holds one.
    detach: (k, vma) => guest_detach(k, vma, PMD_LEVEL),
    fork_vma: (k, src) => guest_fork(k, src),
    vma_open: (k, vma) => void guest_fork(k, vma), // a host user per VMA, as fork's copy
    switch_mm: () => {}, // flush_mask reads the mappers' own cpumasks
    // The planted bug: a revoke flushes only the CPUs running the host mm itself.
    flush_mask: (k, mm) => (forgetMappers ? Atomics.load(k.i32, k.mmBase(mm) + M_CPUMASK) : model_flush_mask(k, mm)),
    open: (k, path, create, excl) => device_open(k, AS_DEV, 'address_space', path, create, excl),
    unlink: (k, path) => device_unlink(k, AS_DEV, 'address_space', path),
    ioctl,
    setsize: (k, file, size) => whole_file_setsize(k, file, size, AS_MAX),
    release: host_release,
    backing_file_id: host_backing_file_id,
  };
}
