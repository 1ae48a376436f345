/**
 * Lock classes, as lockdep names them: every lock in machine memory belongs to one class, and
 * statistics (lock_stat) and watchdog reports are given per class.
 */
export const enum LockClass {
  MmapLock = 0,
  Ptl = 1,
  PageTableLock = 2,
  IMmapRwsem = 3,
  XaLock = 4,
  FramePool = 5,
  PtpPool = 6,
  SlabPool = 7,
  Runqueue = 8,
  Names = 9,
  Barrier = 10,
  Test = 11,
  ModelLock = 14, // a sharing model's own lock (the file's ptshare lock)
  // Not locks, but waits the watchdog reports like one:
  TlbShootdown = 12, // an initiator waiting for a CPU's flush ack
  Idle = 13, // a CPU with nothing runnable
  UffdLock = 15, // the userfaultfd event ring's lock
  Userfault = 16, // a writer waiting for its uffd-wp fault to be resolved, or the handler waiting for events
  SchedTurn = 17, // controlled mode: a CPU waiting for its turn
  MmapLockNested = 18, // a host mm's mmap_lock taken inside a task's (mmap_read_lock_nested, SINGLE_DEPTH_NESTING)
  VmaLock = 19, // a VMA's own lock (per-VMA locks, Linux 6.4+: vma->vm_lock->lock)
  ShareVmaLock = 20, // pt-hint's hugetlb_vma_lock (vma->vm_private_data's rw_sema): faults vs huge_pmd_unshare
  FolioLock = 21, // a wait for a page's PG_locked bit (folio_lock, migration_entry_wait): a page being migrated
}
export const LOCK_CLASS_COUNT = 22;

export const LOCK_CLASS_NAMES: readonly string[] = [
  '&mm->mmap_lock',
  'ptlock_ptr(ptdesc)',
  '&mm->page_table_lock',
  '&mapping->i_mmap_rwsem',
  '&xa->xa_lock',
  'zone->lock',
  'ptdesc pool lock',
  'slab pool lock',
  'rq->__lock',
  'shm names lock',
  'barrier',
  'test lock',
  'TLB shootdown ack',
  'idle (no runnable task)',
  '&mapping->ptshare_lock',
  '&ctx->fault_pending_wqh.lock',
  'userfaultfd wait (handle_userfault / read)',
  'controlled-mode turn',
  '&mm->mmap_lock/1',
  '&vma->vm_lock->lock',
  '&vma_lock->rw_sema',
  'PG_locked (folio_lock)',
];

export const enum LockMode {
  Write = 0, // exclusive (spinlocks and rwsem writers)
  Read = 1,
}
