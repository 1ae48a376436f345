/**
 * Machine memory layout: every region of the one SharedArrayBuffer, computed once from the
 * machine config. All offsets are Int32Array word indices. Record fields are named constants
 * (F_*, P_*, M_*, ...) so code never scatters magic offsets.
 *
 * Hot words that different CPUs write (lock words, per-CPU IPI words, the memory counter) are
 * padded to their own 64-byte line: two CPUs writing one line slow each other down (STACK.md).
 */

export const WORD = 4;
export const LINE_WORDS = 16; // 64 bytes

export interface MachineConfig {
  cpus: number;
  tasks: number;
  frames: number;
  ptPages: number;
  mms: number;
  vmas: number;
  files: number;
  xaNodes: number;
  /**
   * 32-bit words of page data per frame (a power of two): 1024 holds a whole 4 KiB page; fewer
   * (machines whose frames would not fit) fold a page's words onto them, and the report says so.
   */
  payloadWords: number;
  /** Simulated physical memory in bytes: frames and page-table pages count 4 KiB each. */
  memBytes: number;
  barriers: number;
  /** Files that may be created over the run (the ledger of retired payload sums, by FL_ID). */
  fileIds: number;
  /** Pages of the file a uffd-wp snapshot tracks (the side array of recorded sums); default 0. */
  uffdPages?: number;
  /** Controlled scheduling: room for this many decisions (the schedule log); default 0. */
  schedLog?: number;
}

export const MAX_CPUS = 32; // mm_cpumask is one 32-bit word
export const MAX_FDS = 8;
export const MAX_SLOTS = 16;
export const MAX_HELD = 8;
export const NAME_SLOTS = 64;
export const VIOLATION_SLOTS = 256;
export const VIOLATION_WORDS = 8;

// ---- global header (one line each for words written by many CPUs) ----
export const G_MAGIC = 0;
export const G_STOP = 1; // 0 running, else a StopReason
export const G_STOP_CPU = 2;
export const G_STOP_WORD = 3; // watchdog: the word the expiring CPU waited on
export const G_STOP_CLASS = 4;
export const G_STOP_HOLDER = 5;
export const G_STOP_MODE = 6;
export const G_LIVE_TASKS = 7;
export const G_PROGRESS = 24; // operations completed machine-wide (idle CPUs watch it)
export const G_PT_SNAP = 9; // page-table pages over every mm at the last quiescent barrier
export const G_PT_SNAP_HOST = 10; // ... of them in host mms
export const G_RSS_SNAP = 11;
export const G_SNAPS = 12;
export const G_MEM_USED = 16; // pages charged against the budget (frames + page-table pages)
export const G_MEM_LIMIT = 17; // budget in pages
export const G_OOM_COUNT = 18;
export const G_OOM_FIRST_TASK = 19; // task id + 1 of the first VM_FAULT_OOM
export const G_MEM_PEAK = 20;
export const G_OOM_FIRST_PT = 21; // page-table pages alive at the first VM_FAULT_OOM
export const G_OOM_FIRST_USED = 22; // pages charged at the first VM_FAULT_OOM
export const G_SNAP_TASKS = 23; // live tasks at the last quiescent barrier (G_PT_SNAP's)
export const G_VIOL_COUNT = 32;
// check_mm (kernel/fork.c) at __mmdrop: what each freed mm still counted, for the invariant checker.
// Sums over every freed mm (a correct kernel frees every mm with all of them 0, but see pt-hint's
// file RSS in src/check/invariants.ts), and the first mm freed with a non-zero counter.
export const G_RETIRED_RSS_FILE = 33;
export const G_RETIRED_RSS_ANON = 34;
export const G_RETIRED_PGTABLES = 35;
export const G_BADMM_MM = 36; // mm + 1 of the first mm freed with a non-zero anon RSS or pgtables_bytes
export const G_BADMM_TASK = 37; // its task + 1 (0: a host mm)
export const G_BADMM_ANON = 38;
export const G_BADMM_PGTABLES = 39;
export const G_BADMM_FILE_MM = 40; // mm + 1 of the first mm freed with a non-zero file RSS
export const G_BADMM_FILE_TASK = 41;
export const G_BADMM_FILE = 42;
/** Room for lock classes in lockdep's order graph (src/sync/lockdep.ts has fewer). */
export const LOCKDEP_CLASSES = 32;
export const G_RQ_LOCK = 48;
export const G_RQ_HEAD = 49;
export const G_RQ_TAIL = 50;
export const G_RQ_COUNT = 64; // runnable tasks in the queue; idle CPUs wait on it
export const G_NAMES_LOCK = 80;
export const G_FILE_SEQ = 81;
export const G_NEXT_PID = 83; // proc numbers of forked children: the programs' processes first, then in fork order
export const G_OP_SEQ = 84; // ops completed machine-wide, in order (op_results and unmet expectations are sorted by it)
export const G_UNMET = 85; // unmet expectations (op outcomes and assertions), machine-wide
export const G_NAMES_LEFT = 82; // names still linked when the last task exited (released then, as unmounting would)
// Controlled scheduling (src/sched): one CPU runs at a time, the one in G_TURN.
export const G_SCHED_MODE = 96; // 0 free; else a SchedMode
export const G_TURN = 97; // the CPU allowed to run
export const G_DECISIONS = 98; // schedule decisions made so far
export const G_SCHED_RNG = 99; // the strategy's random state
export const G_SCHED_DEPTH = 100; // PCT's d
export const G_SCHED_STEPS = 101; // PCT's k: the steps a run is expected to take
export const G_SCHED_LEN = 102; // replay: decisions in the given schedule
export const G_SCHED_DEADLOCK = 103; // set when no CPU could run
export const G_SCHED_CHANGE = 104; // PCT: up to 16 priority change points (decision indices)
export const G_TRACE_SEQ = 120; // controlled-mode trace clock: one tick per event, machine-wide
export const G_SCHED_CURSOR = 121; // replay: the next (decision, cpu) pair to apply
export const G_SCHED_NREC = 122; // pairs recorded so far (the schedule log holds them)
export const GLOBAL_WORDS = 128;

export const enum StopReason {
  None = 0,
  Done = 1,
  Watchdog = 2,
  Fatal = 3,
}

// ---- per CPU (two lines) ----
export const C_IPI_REQ = 0; // bumped by shootdown initiators
export const C_IPI_DONE = 16; // last request this CPU has flushed for (own line: only it writes)
export const C_CURRENT = 17; // task id + 1 running here
export const C_WAIT_WORD = 18; // word this CPU waits on (watchdog report), -1 none
export const C_WAIT_CLASS = 19;
export const C_WAIT_MODE = 20;
export const C_HELD_N = 21;
export const C_HELD = 22; // MAX_HELD x (word, class)
export const C_SCHED_STATE = 40; // controlled mode: SCHED_RUNNABLE, SCHED_WAITING, SCHED_DONE
export const C_SCHED_WORD = 41; // waiting: the word, and the value it had
export const C_SCHED_EXPECT = 42;
export const C_PRIO = 43; // PCT priority (higher runs first)
export const C_AUDIT_REQ = 44; // the C_IPI_REQ value of a TLB-audit request (tlb_audit_all): audit, then ack without a flush
export const C_SYNC_REQ = 45; // the latest C_IPI_REQ value that is a sync IPI (tlb_remove_table_sync_one): taken only with interrupts on
export const CPU_WORDS = 48;

// ---- pool header (one per pool) ----
export const PL_LOCK = 0;
export const PL_TOP = 1; // free stack depth
export const PL_INUSE = 2;
export const PL_PEAK = 3;
export const PL_ALLOCS = 4;
export const POOL_HDR_WORDS = 16;

// Every pooled record starts with these two words.
export const R_GEN = 0; // bumped on free: a stale index is detected
export const R_STATE = 1; // 0 = free

// ---- frame (struct page / folio) ----
export const F_MAPCOUNT = 2; // PTEs mapping it
export const F_OWNER = 3; // file index (file pages) or mm index (anon)
export const F_INDEX = 4; // page index in the file
export const F_OWNER_GEN = 5;
export const F_UFFD_WP = 6; // file-level uffd-wp (flavour 2): the page is write-protected in the page cache
export const F_FLAGS = 7; // page flags (PG_locked, and "removed from the page cache": folio->mapping = NULL); see filemap.ts
export const F_LEDGER = 8; // the sum of every value stored into the frame (the lost-write and snapshot checks' ledger)
export const F_HDR = 9; // page data starts here (F_LEDGER = F_HDR - 1: the TLB writes its ledger back there)
/** Words of page data in a whole 4 KiB page. */
export const PAGE_WORDS = 1024;
export const FRAME_FILE = 1;
export const FRAME_ANON = 2;

// ---- page-table page (struct ptdesc) ----
export const P_OWNER = 2; // mm that allocated it (and accounts it in pgtables_bytes)
export const P_SHARE = 3; // upper-level entries pointing to it (pt_share_count + 1)
export const P_PTL = 4; // split page-table lock (spinlock word)
/**
 * The stale-TLB check's word for a write-removing change to the table's entries: the change's
 * sequence in the high 24 bits (WPSEQ_ONE each), and the changes whose shootdown is in flight in
 * the low 8 (WPSEQ_FLIGHT): mm/tlb.ts wpseq_begin / wpseq_end.
 */
export const P_WPSEQ = 5;
export const WPSEQ_ONE = 0x100;
export const WPSEQ_FLIGHT = 0xff;
/**
 * cow-pte: P_COW_SLOTS words, the mm + 1 of each mm other than the owner whose PMD entry points
 * to this COW-shared PTE table (0: a free slot), so that an owner leaving the table can hand it
 * and its accounting to a remaining sharer. Changed only under the table's PTE lock.
 */
export const P_COW_SHARERS = 6;
export const P_COW_SLOTS = 9;
export const P_REFCOUNT = 15; // speculative page references (pfn scanners: compaction), not users (mm/compaction.ts)
export const P_UFFD_WP = 16; // 16 words: a 512-bit bitmap of per-PTE uffd-wp markers, "beside" the entries
export const P_HDR = 32;
export const PTRS_PER_TABLE = 512;
export const PTP_WORDS = P_HDR + PTRS_PER_TABLE;

// ---- mm_struct ----
export const M_USERS = 2; // mm_users
export const M_COUNT = 3; // mm_count
export const M_PGD = 4;
export const M_FLAGS = 5;
export const M_TASK = 6; // owner task + 1 (0 for a host mm)
export const M_PGTABLES = 7; // page-table pages accounted to this mm (pgtables_bytes / 4096)
export const M_VMA_HEAD = 10;
export const M_NR_VMAS = 11;
export const M_ANON_RETIRED = 12; // payload sums of anon frames freed from this mm
export const M_HOST_FILE = 13;
export const M_HOST_FILE_GEN = 14;
export const M_LOCK_SEQ = 15; // mm_lock_seq: bumped by every mmap_write_unlock (vma_end_write_all)
export const M_TLB_GEN = 16; // own line: bumped by every flush of this mm's translations
export const M_CPUMASK = 32; // own line: CPUs running this mm
export const M_MMAP_LOCK = 48; // rwsem: RWSEM_WORDS words, own line
export const M_PAGE_TABLE_LOCK = 64;
// RSS counters on their own line: every fault adds to one, and the first line (M_PGD, M_FLAGS,
// M_VMA_HEAD) is read by every walk and fault on every CPU running the mm.
export const M_RSS_FILE = 80;
export const M_RSS_ANON = 81;
export const MM_WORDS = 96;
export const MMF_HOST = 1; // a host mm: holds shared page tables, attached to no task
export const MMF_QRWLOCK = 2; // its mmap_lock is a queued rwlock, not an rwsem (--mmap-lock / --host-lock)
export const MMF_COW_PTE = 4; // cow-pte: prctl(PR_SET_COW_PTE) opted this mm in (its forks share PTE tables); inherited at fork
// Bits 8-9 of M_FLAGS: MMF_LOCK_PLUGIN, a lock plugin's slot (with MMF_QRWLOCK; mm/mmap_lock.ts).
export const MMAP_LOCK_WORDS = 4; // enough for either protocol (RWSEM_WORDS, the qrwlock's QR_* words)

// ---- vm_area_struct ----
export const V_MM = 2;
export const V_START_HI = 3;
export const V_START_LO = 4;
export const V_END_HI = 5;
export const V_END_LO = 6;
export const V_FLAGS = 7;
export const V_FILE = 8;
export const V_FILE_GEN = 9;
export const V_PGOFF = 10;
export const V_NEXT = 11; // next VMA of the mm by address, -1 at the end
export const V_PRIV = 12; // model data: host mm for VM_SHARED_PT
export const V_PRIV_GEN = 13;
export const V_IMMAP_NEXT = 14; // next VMA in the file's i_mmap
export const V_LOCK_SEQ = 15; // vm_lock_seq: equal to the mm's mm_lock_seq while the VMA is write-locked
export const V_LOCK = 16; // vm_lock: an rwsem (RWSEM_WORDS words) on its own line, as Linux keeps it
export const V_DETACHED = 20; // 1 while the VMA is in no mm's VMA set (vma_mark_detached)
export const V_SHARE_LOCK = 24; // pt-hint's hugetlb_vma_lock: an rwsem (RWSEM_WORDS words) serialising faults against huge_pmd_unshare
export const VMA_WORDS = 32;

// ---- file (struct file + shmem inode) ----
export const FL_REF = 2; // f_count: fds, VMAs and a name
export const FL_SIZE_HI = 3;
export const FL_SIZE_LO = 4;
export const FL_XA = 5; // page-cache root: node << 2 | height (one word so readers see both)
export const FL_NRPAGES = 6;
export const FL_IMMAP_HEAD = 7;
export const FL_RETIRED = 8; // payload sums of pages freed from this file's cache
export const FL_ID = 9; // creation number (names files in reports)
export const FL_PTSHARE = 10; // map-shared-pt host mm + 1
export const FL_PTSHARE_GEN = 11;
export const FL_KIND = 12; // FILE_SHMEM, or FILE_MODEL for a file a sharing model created (msharefs, a container)
export const FL_PRIV = 13; // the model's data (mshare: host mm + 1)
export const FL_PRIV_GEN = 14;
export const FL_NAME = 15; // hash of its path, for the model's name table
export const FILE_SHMEM = 0;
export const FILE_MODEL = 1;
export const FL_XA_LOCK = 16;
export const FL_IMMAP_RWSEM = 32;
export const FL_PTSHARE_LOCK = 36; // rwsem: serialises a sharing model's attach and detach
export const FL_PRIV2 = 39; // a model's second word, after that rwsem's three (mshare: the owner task + 1, 0 once it exited)
export const FL_V1_ADDR_HI = 40; // mshare v1: the address every process maps the region at
export const FL_V1_ADDR_LO = 41;
export const FILE_WORDS = 48;

// ---- page-cache radix node (xa_node) ----
export const XN_HDR = 16;
export const XA_SLOTS = 512;
export const XN_WORDS = XN_HDR + XA_SLOTS;

// ---- task (a process: program counter, results, fds, signal state) ----
export const T_STATE = 0;
export const T_PC = 1;
export const T_CPU = 2;
export const T_MM = 3;
export const T_MM_GEN = 4;
export const T_EXIT = 5;
export const T_SIGNALS = 6; // SIGSEGVs delivered
export const T_SIG_ADDR_HI = 7;
export const T_SIG_ADDR_LO = 8;
export const T_SIG_CODE = 9;
export const T_OOM = 10; // VM_FAULT_OOM hits
export const T_BARRIER = 11; // barrier id + 1 it waits at
export const T_BARRIER_GEN = 12;
export const T_ANON_RETIRED = 13;
export const T_ANON_STORES = 14;
export const T_LAST_ERRNO = 15;
export const T_FD = 16; // MAX_FDS x (file, gen), -1 when closed
export const T_SLOT = 32; // MAX_SLOTS x (hi, lo) results
export const T_FILE_STORES = 64; // MAX_FDS x (file, gen, sum) per-file store sums
export const T_KILLED = 88; // signal that killed it (0: exited normally)
export const T_OPS = 89; // operations completed
export const T_UNTRACKED_STORES = 90; // stores through regions whose backing file a model could not name
export const T_FAULTS = 91; // page faults taken (do_user_addr_fault)
export const T_ARRIVE_US = 92; // µs from the run's start when it last arrived at a barrier
export const T_ARRIVE_FAULTS = 93; // T_FAULTS then
export const T_PREV_ARRIVE_FAULTS = 94; // T_FAULTS at the barrier before that
export const T_PID = 95; // the proc number (op_results' `proc`): the task's index for the programs' processes, fork order after
export const T_PARENT = 96; // the forking task + 1 (0: none)
export const T_WAIT_FOR = 97; // wait: the child task + 1 it waits for, -1 any child, 0 not waiting
export const T_REAPED = 98; // 1 once its parent's wait reaped it
export const T_FD_MODE = 99; // MAX_FDS words: each fd's f_mode (FMODE_READ 1 | FMODE_WRITE 2)
// (words 107..111 are free)
export const T_SLOT_FILE = 112; // MAX_SLOTS: where stores through a region are credited (a shared file's FL_ID, 0 private, -1 none)
export const T_SLOT_PAGES = 128; // MAX_SLOTS: the region's length in pages when it was mapped (stores outside it are looked up)
export const T_SLOT_SEQ = 144; // MAX_SLOTS: the mm's mm_lock_seq when the region's ledger was taken
export const TASK_WORDS = 160;
export const TASK_NEW = 0;
export const TASK_RUNNABLE = 1;
export const TASK_RUNNING = 2;
export const TASK_BLOCKED = 3;
export const TASK_EXITED = 4;

// ---- barrier ----
export const B_ARRIVED = 0;
export const B_GEN = 1;
export const B_COUNT = 2;
export const B_RELEASE_US = 3; // µs from the run's start when it was last released
export const BARRIER_WORDS = 16;

// ---- file ledger: what a freed file's pages held, by FL_ID (the lost-write check reads it) ----
export const LG_SUM = 0;
export const LG_FREED = 1;
export const LG_PAGES = 2;
export const LEDGER_WORDS = 4;

// ---- userfaultfd (uffd-wp): a machine-wide event ring, the snapshot side array, registered mms ----
export const U_LOCK = 0; // spinlock over the ring and the mm list
export const U_HEAD = 1; // next event to read
export const U_TAIL = 2; // next free slot
export const U_ACTIVE = 3; // nonzero once anything was write-protected (keeps the fault path's check cheap)
export const U_FILE = 4; // file-level registration (flavour 2): file + 1, 0 none
export const U_FILE_GEN = 5;
export const U_SNAP_FILE = 6; // the snapshotted file + 1 (its pages index the side array)
export const U_SNAP_FILE_GEN = 7;
export const U_NMM = 8; // registered mms
export const U_EVENTS = 16; // own line: bumped (and notified) by every queued event; the handler waits on it
export const U_WAKE = 32; // own line: bumped (and notified) by every resolution; faulting writers wait on it
export const U_MMS = 48; // MAX_UFFD_MMS x (mm, gen)
export const MAX_UFFD_MMS = 32;
export const UFFD_HDR_WORDS = U_MMS + 2 * MAX_UFFD_MMS;
// an event: the page's file (pool index, -1 anon) and FL_ID, page index, writer task, flavour, vpn (hi, lo), writer mm
export const UE_FILE = 0;
export const UE_FILE_ID = 1;
export const UE_INDEX = 2;
export const UE_TASK = 3;
export const UE_FLAVOUR = 4;
export const UE_VPN_HI = 5;
export const UE_VPN_LO = 6;
export const UE_MM = 7;
export const UE_WORDS = 8;
// the side array, per page index of the snapshotted file
export const US_SUM = 0; // payload sum when it was write-protected
export const US_STATE = 1; // US_RECORDED | US_PENDING | US_SAVED
export const US_WORDS = 2;
export const US_RECORDED = 1;
export const US_PENDING = 2; // an event for it is queued (one event per page)
export const US_SAVED = 4;
export const US_UNPROTECTED = 8; // the handler's unprotect after the save has finished

// ---- name table (/dev/shm names) ----
export const N_HASH = 0;
export const N_FILE = 1;
export const N_GEN = 2;
export const NAME_WORDS = 4;

export interface Layout {
  readonly config: MachineConfig;
  readonly words: number;
  readonly global: number;
  readonly cpu: number;
  readonly framesPool: number;
  readonly frameStack: number;
  readonly frames: number;
  readonly frameWords: number;
  readonly ptpPool: number;
  readonly ptpStack: number;
  readonly ptps: number;
  readonly mmPool: number;
  readonly mmStack: number;
  readonly mms: number;
  readonly vmaPool: number;
  readonly vmaStack: number;
  readonly vmas: number;
  readonly filePool: number;
  readonly fileStack: number;
  readonly files: number;
  readonly xaPool: number;
  readonly xaStack: number;
  readonly xaNodes: number;
  readonly tasks: number;
  readonly runqueue: number;
  readonly runqueueCap: number;
  readonly barriers: number;
  readonly names: number;
  readonly violations: number;
  readonly fileLedger: number;
  /** userfaultfd: header, event ring (uffdRingCap entries), side array (uffdPages entries). */
  readonly uffd: number;
  readonly uffdRing: number;
  readonly uffdRingCap: number;
  readonly uffdSnap: number;
  readonly uffdPages: number;
  /** Controlled scheduling: one word per decision (the CPU chosen), schedLogCap of them. */
  readonly schedLog: number;
  /** lockdep's class order graph: LOCKDEP_CLASSES x LOCKDEP_CLASSES words, [from][to] = first CPU + 1 to see it. */
  readonly lockdep: number;
  readonly schedLogCap: number;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Computes every region once. Records are line-aligned so hot words do not share lines. */
/**
 * The most machine memory a machine may have: every reference into it (lock words in held-lock
 * stacks, wait words, table and frame offsets) is a 32-bit signed word offset.
 */
export const MAX_MACHINE_WORDS = 2 ** 31 - 1;

export function computeLayout(config: MachineConfig): Layout {
  if (config.cpus > MAX_CPUS) throw new RangeError(`cpus must be at most ${MAX_CPUS}`);
  if ((config.payloadWords & (config.payloadWords - 1)) !== 0) throw new RangeError('payloadWords must be a power of two');
  let at = 0;
  const take = (words: number): number => {
    const base = at;
    at = roundUp(at + words, LINE_WORDS);
    return base;
  };
  const global = take(GLOBAL_WORDS);
  const cpu = take(CPU_WORDS * config.cpus);
  const frameWords = roundUp(F_HDR + config.payloadWords, 4);
  const pool = (n: number, stride: number) => [take(POOL_HDR_WORDS), take(n), take(n * stride)] as const;
  const [framesPool, frameStack, frames] = pool(config.frames, frameWords);
  const [ptpPool, ptpStack, ptps] = pool(config.ptPages, PTP_WORDS);
  const [mmPool, mmStack, mms] = pool(config.mms, MM_WORDS);
  const [vmaPool, vmaStack, vmas] = pool(config.vmas, VMA_WORDS);
  const [filePool, fileStack, files] = pool(config.files, FILE_WORDS);
  const [xaPool, xaStack, xaNodes] = pool(config.xaNodes, XN_WORDS);
  const tasks = take(config.tasks * TASK_WORDS);
  let runqueueCap = 1;
  while (runqueueCap < config.tasks + 1) runqueueCap <<= 1;
  const runqueue = take(runqueueCap);
  const barriers = take(config.barriers * BARRIER_WORDS);
  const names = take(NAME_SLOTS * NAME_WORDS);
  const violations = take(VIOLATION_SLOTS * VIOLATION_WORDS);
  const fileLedger = take(LEDGER_WORDS * (config.fileIds + 1));
  const uffdPages = config.uffdPages ?? 0;
  let uffdRingCap = 64;
  while (uffdRingCap < uffdPages + config.tasks) uffdRingCap <<= 1;
  const uffd = take(UFFD_HDR_WORDS);
  const uffdRing = take(uffdRingCap * UE_WORDS);
  const uffdSnap = take(Math.max(1, uffdPages) * US_WORDS);
  const schedLogCap = config.schedLog ?? 0;
  const schedLog = take(Math.max(1, schedLogCap));
  const lockdep = take(LOCKDEP_CLASSES * LOCKDEP_CLASSES);
  return {
    config, words: at, global, cpu,
    framesPool, frameStack, frames, frameWords,
    ptpPool, ptpStack, ptps,
    mmPool, mmStack, mms,
    vmaPool, vmaStack, vmas,
    filePool, fileStack, files,
    xaPool, xaStack, xaNodes,
    tasks, runqueue, runqueueCap, barriers, names, violations, fileLedger,
    uffd, uffdRing, uffdRingCap, uffdSnap, uffdPages, schedLog, schedLogCap, lockdep,
  };
}
