/**
 * What every model with a host mm shares (map-shared-pt's ptshare host, an mshare region, a
 * container, an address space): finding the host from a guest VMA or the model's file with the
 * generation check, the CPUs a change to the host's tables must reach, and the file the host maps.
 */
import { host_mmap_read_lock, host_mmap_write_lock, mmap_read_unlock, mmap_write_unlock } from '../mm/mmap_lock.js';
import { calc_vm_prot_bits } from '../mm/mprotect.js';
import {
  FL_ID, FL_IMMAP_HEAD, FL_IMMAP_RWSEM, FL_NAME, FL_PRIV, FL_PRIV_GEN, FL_SIZE_HI, FL_SIZE_LO, M_CPUMASK, M_FLAGS, M_HOST_FILE, M_HOST_FILE_GEN, M_MMAP_LOCK, MMF_HOST,
  P_OWNER, P_SHARE,
  V_IMMAP_NEXT, V_MM, V_PRIV_GEN,
} from '../shm/layout.js';
import { LockClass } from '../sync/lockdep.js';
import { SchedPoint } from '../sync/schedpoint.js';
import { down_read, up_read } from '../sync/rwsem.js';
import { fileBase } from '../mm/filemap.js';
import { PoolId } from '../mm/mmdebug.js';
import type { Kernel } from '../mm/percpu.js';
import { pool_check } from '../mm/slab.js';
import {
  find_vma, first_vma, vma_end, vma_file, vma_flags, vma_next, vma_priv, vma_start, vmaBase, VM_ACCESS_FLAGS, VM_EXEC, VM_READ,
  VM_SHARED_PT, VM_WRITE,
} from '../mm/vma.js';
import {
  handle_pte_fault, lookup_entry, pt_put, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, walk_to_pmd,
} from '../mm/memory.js';
import { ALLOC_OOM, entry_off, entry_span, PAGE_SIZE, PMD_SIZE, pte_index, PTE_LEVEL, table_alloc, table_of } from '../mm/pgtable.js';
import { calc_vm_flags, do_munmap, get_unmapped_area, MAP_FIXED, MAP_SHARED, mmap_region } from '../mm/mmap.js';
import { EACCES, EBUSY, EFBIG, EINVAL, ENOENT, ENOMEM } from '../mm/errno.js';
import type { MmapArgs } from '../mm/model_ops.js';
import { report_violation, Violation } from '../mm/mmdebug.js';
import { ptpBase } from '../mm/page_alloc.js';
import { FAULT_FLAG_WRITE, ST_FAULT_SHARED_PMD, type VmFault } from '../mm/percpu.js';
import { mm_alloc, mm_gen, mmget, mmput } from '../mm/fork.js';
import { name_hash, name_open, name_unlink } from '../mm/namei.js';
import { file_gen, fput, i_size_read, model_file_setup } from '../mm/shmem.js';
import { flush_tlb_mm } from '../mm/tlb.js';
import { AssertSite, guard_pt_share, guard_upper, guard_upper_share, mmap_assert_locked, mmap_assert_write_locked } from '../mm/guarded.js';

/**
 * A new model file (one reference, the caller's) and its host mm, each naming the other: the
 * file's FL_PRIV the host (with its generation), the host's M_HOST_FILE the file. -ENOMEM when
 * either pool runs out (the file then goes again: FL_PRIV is 0, so release drops no host).
 * mshare's msharefs_fill_mm, container-fd's create, address_space_create (device_open).
 */
export function host_file_create(k: Kernel, nameHash: number): number {
  const i32 = k.i32;
  const f = model_file_setup(k);
  if (f < 0) return -ENOMEM;
  const host = mm_alloc(k, -1, MMF_HOST); // "an mm_struct that is not used by any tasks"
  if (host < 0) {
    fput(k, f);
    return -ENOMEM;
  }
  const fb = fileBase(k, f);
  const hb = k.mmBase(host);
  Atomics.store(i32, hb + M_HOST_FILE, f);
  Atomics.store(i32, hb + M_HOST_FILE_GEN, file_gen(k, f));
  Atomics.store(i32, fb + FL_NAME, nameHash);
  Atomics.store(i32, fb + FL_PRIV_GEN, mm_gen(k, host));
  Atomics.store(i32, fb + FL_PRIV, host + 1);
  return f;
}

/** unlink(2) of a model file's name (`hash`): the name and its reference go; the last reference tears the host down. */
export function host_file_unlink(k: Kernel, hash: number): number {
  const file = name_unlink(k, hash);
  if (file < 0) return file;
  Atomics.store(k.i32, fileBase(k, file) + FL_NAME, 0);
  fput(k, file);
  return 0;
}

/** Is `file` a sharing model's own file? (mm's, re-exported for the models.) */
export { is_model_file } from '../mm/shmem.js';

/** A model device's path: `dev` itself is '' (a new anonymous file), `dev/<name>` the name, else null. */
function device_name(dev: string, path: string): string | null {
  if (path === dev) return '';
  if (!path.startsWith(dev + '/')) return null;
  const name = path.slice(dev.length + 1);
  return name.length === 0 || name.includes('/') ? null : name;
}

/**
 * open(2) of a model device (container-fd's /dev/ptcontainer, address-space's
 * /dev/address_space): the device itself makes a new anonymous file, `dev/<name>` a named one,
 * its names in namespace `ns` (O_CREAT|O_EXCL on an existing name: EEXIST; a missing one: ENOENT).
 */
export function device_open(k: Kernel, dev: string, ns: string, path: string, create: boolean, excl: boolean): number {
  const name = device_name(dev, path);
  if (name === null) return -ENOENT;
  if (name === '') return create ? host_file_create(k, 0) : -ENOENT;
  return name_open(k, name_hash(ns, name), create, excl, (h) => host_file_create(k, h));
}

/** unlink(2) of a model device's name. */
export function device_unlink(k: Kernel, dev: string, ns: string, path: string): number {
  const name = device_name(dev, path);
  if (name === null || name === '') return -ENOENT;
  return host_file_unlink(k, name_hash(ns, name));
}

/**
 * ftruncate(2) of a whole-file model's file (container-fd, address-space): a PMD multiple (EINVAL;
 * that also catches a size that is not page-aligned), at most `max` (EFBIG), and nothing mapped
 * inside or onto it (EBUSY: mappings inside would fall off the end, and every mapper maps exactly
 * the old size).
 */
export function whole_file_setsize(k: Kernel, file: number, size: number, max: number): number {
  if (size % PMD_SIZE !== 0) return -EINVAL;
  if (size > max) return -EFBIG;
  const host = host_of_file(k, file);
  if (host < 0) return -EINVAL;
  const i32 = k.i32;
  const hlock = k.mmBase(host) + M_MMAP_LOCK;
  host_mmap_write_lock(k, hlock);
  try {
    if (size === i_size_read(k, file)) return 0;
    if (first_vma(k, host) >= 0 || has_mappers(k, file)) return -EBUSY;
    const fb = fileBase(k, file);
    Atomics.store(i32, fb + FL_SIZE_HI, Math.floor(size / 2 ** 32));
    Atomics.store(i32, fb + FL_SIZE_LO, size % 2 ** 32 | 0);
    return 0;
  } finally {
    mmap_write_unlock(k, hlock);
  }
}

/** The host mm of a guest VMA (V_PRIV), checked against the generation recorded at attach; -1 if gone (reported). */
export function host_of_vma(k: Kernel, vma: number): number {
  const host = vma_priv(k, vma);
  const gen = Atomics.load(k.i32, vmaBase(k, vma) + V_PRIV_GEN);
  return pool_check(k, k.pools.mms, host, gen, PoolId.Mms) ? host : -1;
}

/** The host mm a model file holds (FL_PRIV = host + 1), checked; -1 when none. */
export function host_of_file(k: Kernel, file: number): number {
  const fb = fileBase(k, file);
  const host = Atomics.load(k.i32, fb + FL_PRIV) - 1;
  if (host < 0) return -1;
  return pool_check(k, k.pools.mms, host, Atomics.load(k.i32, fb + FL_PRIV_GEN), PoolId.Mms) ? host : -1;
}

/**
 * The CPUs that may cache the host's translations: its own cpumask and the mm_cpumask of every
 * guest — the VM_SHARED_PT VMAs of the host's file that point at this host — read at flush time,
 * after the entries changed: a CPU that joins a guest later flushed on the way in (switch_mm)
 * and can only walk the new entries. (Upstream mshare uses flush_tlb_all; this is it, narrowed.)
 */
export function host_flush_mask(k: Kernel, host: number): number {
  const i32 = k.i32;
  let mask = Atomics.load(i32, k.mmBase(host) + M_CPUMASK);
  const file = Atomics.load(i32, k.mmBase(host) + M_HOST_FILE);
  if (file < 0) return mask;
  const fb = fileBase(k, file);
  // A flush from inside an rmap walk of this very file (unmap_mapping_range under truncation's
  // i_mmap_rwsem held for write, reclaim's try_to_unmap under it for read: map-shared-pt's host
  // maps the shmem file itself) reads i_mmap under the lock it holds: taking it again would
  // wait on itself (for write), or behind a queued writer (a recursive read).
  const held = k.holds(fb + FL_IMMAP_RWSEM);
  if (!held) down_read(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  for (let v = Atomics.load(i32, fb + FL_IMMAP_HEAD); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) {
    if ((vma_flags(k, v) & VM_SHARED_PT) !== 0 && vma_priv(k, v) === host) {
      mask |= Atomics.load(i32, k.mmBase(Atomics.load(i32, vmaBase(k, v) + V_MM)) + M_CPUMASK);
    }
  }
  if (!held) up_read(k, fb + FL_IMMAP_RWSEM);
  return mask;
}

/**
 * A model file's backing_file_id: FL_ID of the one file every VMA of its host maps (the
 * lost-write check credits it), else -1.
 */
export function host_backing_file_id(k: Kernel, file: number): number {
  const host = host_of_file(k, file);
  if (host < 0) return -1;
  const hlock = k.mmBase(host) + M_MMAP_LOCK;
  host_mmap_read_lock(k, hlock);
  try {
    let only = -1;
    for (let v = first_vma(k, host); v >= 0; v = vma_next(k, v)) {
      const f = vma_file(k, v);
      if (f < 0 || (only >= 0 && f !== only)) return -1;
      only = f;
    }
    return only < 0 ? -1 : Atomics.load(k.i32, fileBase(k, only) + FL_ID);
  } finally {
    mmap_read_unlock(k, hlock);
  }
}

/**
 * fork of a guest (dup_mmap, both mms' mmap_lock held for write): the child's copy of the VMA
 * stays attached to the same host — a host user more, dropped by its detach — and its faults copy
 * the host's entries again, as the parent's did (mshare's reviewers: the child's mapping of the
 * region stays attached). 0, or -EINVAL when the host is gone.
 */
export function guest_fork(k: Kernel, src: number): number {
  const host = host_of_vma(k, src);
  if (host < 0) return -EINVAL;
  mmget(k, host);
  return 0;
}

/**
 * A guest VMA goes (munmap or exit): its entries at `level` that point into the host's tables
 * (PMD entries for PTE-table sharing, PUD entries for PMD-table sharing) are cleared, the guest
 * is flushed, and only then does each table lose the guest's share (the mmu_gather order: no CPU
 * can still reach a table when its reference goes). Guest mmap_lock held for write.
 */
export function guest_unshare(k: Kernel, vma: number, level: number): void {
  const i32 = k.i32;
  const guest = Atomics.load(i32, vmaBase(k, vma) + V_MM);
  mmap_assert_write_locked(k, guest, AssertSite.GuestUnshare);
  const step = entry_span(level);
  const dropped: number[] = [];
  for (let a = vma_start(k, vma); a < vma_end(k, vma); a += step) {
    const off = lookup_entry(k, guest, a / PAGE_SIZE, level);
    if (off < 0) continue;
    const e = Atomics.load(i32, off);
    if (k.sched !== null) k.sched.point(k, SchedPoint.UnshareLoad);
    if (e === 0) continue;
    const t = table_of(k, e, level - 1, guest);
    guard_upper(k, off, AssertSite.GuestUnshare);
    Atomics.store(i32, off, 0);
    if (t >= 0) dropped.push(t);
  }
  if (dropped.length === 0) return;
  flush_tlb_mm(k, guest);
  for (const t of dropped) pt_put(k, t);
}

/**
 * find_shared_vma's set_pmd / set_p4d step, at either level: makes the guest's entry at `gOff`
 * the host's `hostEntry`, which points at the host's table `child` (P_SHARE counts the entries
 * pointing to it). A guest entry still on a table the host has since let go of (the host range
 * was emptied and mapped again) moves to the host's current table, one share less on the old;
 * one on a table that is not the host's is an invariant violation. Threads of the guest may race
 * here under their shared mmap_lock (read): the compare-and-swap decides, the loser looks again.
 * Returns 0 or VM_FAULT_SIGBUS (a violation was reported: the machine stops).
 */
export function share_host_entry(k: Kernel, gOff: number, hostEntry: number, child: number, childLevel: number, host: number, guest: number): number {
  const i32 = k.i32;
  mmap_assert_locked(k, host, AssertSite.ShareHostEntry); // the host's tables stay while it is held
  mmap_assert_locked(k, guest, AssertSite.ShareHostEntry);
  for (;;) {
    const ge = Atomics.load(i32, gOff);
    // The guest's entry read; the compare-and-swap below decides against a racing thread.
    if (k.sched !== null) k.sched.point(k, SchedPoint.ShareLoad);
    if (ge === hostEntry) return 0;
    let old = -1;
    if (ge !== 0) {
      old = table_of(k, ge, childLevel, guest);
      if (old < 0) return VM_FAULT_SIGBUS; // reported: the machine stops
      if (Atomics.load(i32, ptpBase(k, old) + P_OWNER) !== host) {
        report_violation(i32, k.layout, Violation.Invariant, k.cpu, 4, guest, old, child);
        return VM_FAULT_SIGBUS;
      }
    }
    guard_upper_share(k, gOff, host, AssertSite.ShareHostEntry);
    if (Atomics.compareExchange(i32, gOff, ge, hostEntry) !== ge) continue;
    guard_pt_share(k, child, AssertSite.ShareHostEntry);
    Atomics.add(i32, ptpBase(k, child) + P_SHARE, 1);
    k.stats[ST_FAULT_SHARED_PMD]++;
    // The old table is empty, and every TLB entry it fed was flushed when the host let it go.
    if (old >= 0) pt_put(k, old);
    return 0;
  }
}

/**
 * The guest fault of a model that shares PTE tables through copied PMD entries (map-shared-pt,
 * container-fd, address-space; mshare copies PUD entries): find_shared_vma and the RFC's
 * handle_mm_fault branch. Called with the task's mmap_lock held for read; takes the host's for
 * read inside it. `haddr` is where the guest's address lies in the host mm (the same address for
 * map-shared-pt, an offset into the region for the others): both lie at the same offset within
 * a PMD, so the PTE index is the same.
 *
 * The host VMA decides (none: VM_FAULT_SIGSEGV — never mapped, unmapped, revoked), and with
 * `guestToo` the guest's own VMA must allow the access as well. The host's tables are built down
 * to a PTE table, the guest's PMD entry becomes a copy of the host's (share_host_entry), and the
 * PTE fault is handled in the host's context.
 */
export function guest_pmd_fault(k: Kernel, vmf: VmFault, host: number, haddr: number, guestToo: boolean): number {
  const i32 = k.i32;
  const guest = vmf.mm;
  const hlock = k.mmBase(host) + M_MMAP_LOCK;
  const access = (vmf.flags & FAULT_FLAG_WRITE) !== 0 ? VM_WRITE : VM_READ | VM_WRITE | VM_EXEC;
  host_mmap_read_lock(k, hlock);
  try {
    // The host's tables change below (walk_to_pmd, the PTE): under its mmap_lock, nested in the guest's.
    mmap_assert_locked(k, host, AssertSite.GuestPmdFault);
    const hv = find_vma(k, host, haddr);
    if (hv < 0 || vma_start(k, hv) > haddr) return VM_FAULT_SIGSEGV;
    const hf = vma_flags(k, hv);
    if ((hf & access) === 0 || (guestToo && (vmf.vm_flags & access) === 0)) return VM_FAULT_SIGSEGV;
    // The host's PMD entry, with a PTE table under it.
    vmf.enterHost(host, hv, hf, vma_start(k, hv), haddr);
    let ret = walk_to_pmd(k, vmf);
    if (ret !== 0) return ret;
    const hostPmd = vmf.pmd;
    const t = table_alloc(k, hostPmd, host, PTE_LEVEL);
    if (t < 0) return t === ALLOC_OOM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
    const hostEntry = Atomics.load(i32, hostPmd);
    // find_shared_vma: the host's entry read (host mmap_lock held for read), before it is copied.
    if (k.sched !== null) k.sched.point(k, SchedPoint.ShareLoad);
    // The guest's PMD entry: a copy of the host's.
    vmf.leaveHost();
    ret = walk_to_pmd(k, vmf);
    if (ret !== 0) return ret;
    ret = share_host_entry(k, vmf.pmd, hostEntry, t, PTE_LEVEL, host, guest);
    if (ret !== 0) return ret;
    // The PTE fault, in the host's context.
    vmf.enterHost(host, hv, hf, vma_start(k, hv), haddr);
    vmf.pmd = hostPmd;
    vmf.pte_table = t;
    vmf.pte = entry_off(k, t, pte_index(vmf.vpn));
    return handle_pte_fault(k, vmf);
  } finally {
    mmap_read_unlock(k, hlock);
    vmf.leaveHost();
  }
}

/**
 * ModelOps.flush_mask of the host-mm models: a change to a host mm's entries must reach every
 * CPU running one of its guests (host_flush_mask); a task's own mm, its own cpumask.
 */
export function model_flush_mask(k: Kernel, mm: number): number {
  return (Atomics.load(k.i32, k.mmBase(mm) + M_FLAGS) & MMF_HOST) !== 0 ? host_flush_mask(k, mm) : Atomics.load(k.i32, k.mmBase(mm) + M_CPUMASK);
}

/**
 * The fault of a guest of a model that maps its whole model file (container-fd, address-space):
 * the host address lies at the same offset from `hostBase` as the fault's from the VMA's start.
 */
export function whole_file_guest_fault(k: Kernel, vmf: VmFault, hostBase: number, guestToo: boolean): number {
  const host = host_of_vma(k, vmf.vma);
  if (host < 0) return VM_FAULT_SIGBUS;
  return guest_pmd_fault(k, vmf, host, hostBase + (vmf.address - vmf.vm_start), guestToo);
}

/**
 * mmap(MAP_SHARED) of a whole model file (container-fd, address-space): the caller becomes a
 * guest of the file's host — at a PMD-aligned address, for the file's whole size (else EINVAL),
 * with a prot that covers every permission used inside (else EACCES).
 *
 * Why EACCES for too little prot: Linux's mmap gives EACCES when a file mapping asks for more than
 * the file allows (PROT_WRITE|MAP_SHARED on an O_RDONLY fd). Here the mapping asks for less than
 * the contents need, the same mismatch seen from the other side: the requested permissions do not
 * fit this file. EINVAL would say the arguments are malformed, and EPERM a policy (seals,
 * capabilities); neither is the case.
 */
export function attach_whole_file(k: Kernel, a: MmapArgs): number {
  if (a.pgoff !== 0 || a.addr % PMD_SIZE !== 0) return -EINVAL;
  const host = host_of_file(k, a.file);
  if (host < 0) return -EINVAL;
  return attach_guest(k, a, host, () => {
    if (a.len !== i_size_read(k, a.file)) return -EINVAL;
    if ((prot_inside(k, host) & ~calc_vm_prot_bits(a.prot)) !== 0) return -EACCES;
    return 0;
  });
}

/**
 * mmap of a model file that makes the caller a guest of `host` (container-fd, address-space):
 * `check` (with the host's mmap_lock held for read) says whether this mapping may be, before and
 * again after a MAP_FIXED unmap — which runs outside the host lock, since what it unmaps may be
 * another host's guest. Then a PMD-aligned place, the VM_SHARED_PT VMA, and the mapping's host user.
 */
export function attach_guest(k: Kernel, a: MmapArgs, host: number, check: () => number): number {
  const hlock = k.mmBase(host) + M_MMAP_LOCK;
  const fixed = (a.flags & MAP_FIXED) !== 0;
  host_mmap_read_lock(k, hlock);
  let r = check();
  mmap_read_unlock(k, hlock);
  if (r < 0) return r;
  if (fixed) {
    r = do_munmap(k, a.mm, a.addr, a.len);
    if (r < 0) return r;
  }
  host_mmap_read_lock(k, hlock);
  try {
    r = check(); // again: an ioctl may have changed the inside meanwhile
    if (r < 0) return r;
    const addr = get_unmapped_area(k, a.mm, a.addr, a.len, PMD_SIZE);
    if (addr < 0) return addr;
    if (fixed && addr !== a.addr) return -EINVAL;
    const gv = mmap_region(k, a.mm, addr, a.len, calc_vm_flags(a.prot, a.flags) | VM_SHARED_PT, a.file, 0, host, mm_gen(k, host));
    if (gv < 0) return gv;
    mmget(k, host); // the mapping's host user, dropped by detach
    return addr;
  } finally {
    mmap_read_unlock(k, hlock);
  }
}

/**
 * The model file's last reference went (fds, name and every mapping are gone: each mapping held
 * one): the file's host user goes — the last one runs exit_mmap on the host. No flush needs the
 * file's i_mmap any more.
 */
export function host_release(k: Kernel, file: number): void {
  const i32 = k.i32;
  const host = host_of_file(k, file);
  Atomics.store(i32, fileBase(k, file) + FL_PRIV, 0);
  if (host < 0) return;
  Atomics.store(i32, k.mmBase(host) + M_HOST_FILE, -1);
  mmput(k, host);
}

/** Does a process map the model file? (its i_mmap is not empty) */
export function has_mappers(k: Kernel, file: number): boolean {
  return Atomics.load(k.i32, fileBase(k, file) + FL_IMMAP_HEAD) >= 0;
}

/**
 * The superset rule of container-fd and address-space: does every process mapping the file allow
 * `vm_prot` (VM_READ/WRITE/EXEC bits)? Nothing inside may go beyond what a mapper's VMA allows.
 */
export function mappers_allow(k: Kernel, file: number, vm_prot: number): boolean {
  const i32 = k.i32;
  const fb = fileBase(k, file);
  down_read(k, fb + FL_IMMAP_RWSEM, LockClass.IMmapRwsem);
  try {
    for (let v = Atomics.load(i32, fb + FL_IMMAP_HEAD); v >= 0; v = Atomics.load(i32, vmaBase(k, v) + V_IMMAP_NEXT)) {
      if ((vm_prot & ~vma_flags(k, v) & VM_ACCESS_FLAGS) !== 0) return false;
    }
    return true;
  } finally {
    up_read(k, fb + FL_IMMAP_RWSEM);
  }
}

/** The union of the permissions used inside (the host's VMAs). Host mmap_lock held. */
export function prot_inside(k: Kernel, host: number): number {
  let u = 0;
  for (let v = first_vma(k, host); v >= 0; v = vma_next(k, v)) u |= vma_flags(k, v) & VM_ACCESS_FLAGS;
  return u;
}

/**
 * A guest VMA goes (munmap or exit): its entries into host tables at `level` are cleared (one
 * share less each, the guest flushed) and the mapping's host user goes.
 */
export function guest_detach(k: Kernel, vma: number, level: number): void {
  const host = host_of_vma(k, vma);
  if (host < 0) return;
  guest_unshare(k, vma, level);
  mmput(k, host);
}

/**
 * A file range mapped inside a host (address-space's AS_MMAP, container-fd's CONTAINER_MAP):
 * under the host's mmap_lock for write, the model's bounds (`inRange`) must hold, nothing may be
 * mapped there yet (EINVAL), and no mapper may hold more rights than `prot` (EACCES); then
 * mmap_region in the host (Linux would do_mmap on the non-current mm) — a VMA, no PTE yet:
 * mappers fault the pages in, so adding the translation needs no flush.
 */
export function host_map_range(
  k: Kernel, file: number, host: number, start: number, size: number, prot: number, src: number, pgoff: number, inRange: () => boolean,
): number {
  const hlock = k.mmBase(host) + M_MMAP_LOCK;
  host_mmap_write_lock(k, hlock);
  try {
    if (!inRange()) return -EINVAL;
    const v = find_vma(k, host, start);
    if (v >= 0 && vma_start(k, v) < start + size) return -EINVAL; // overlaps a mapping inside
    if (!mappers_allow(k, file, calc_vm_prot_bits(prot))) return -EACCES;
    const hv = mmap_region(k, host, start, size, calc_vm_flags(prot, MAP_SHARED), src, pgoff);
    return hv < 0 ? hv : 0;
  } finally {
    mmap_write_unlock(k, hlock);
  }
}
