/**
 * race-mshare-retry — seed 004, on mshare v1's handle_mm_fault: after VM_FAULT_RETRY it releases
 * current->mm's mmap_lock, and Dave Hansen asks "Are we guaranteed that current->mm == the
 * original vma->vm_mm?" Process 0 turns a memfd mapping into an mshare v1 region and
 * write-protects the memfd with file-level uffd-wp (so a write fault in the host waits for the
 * handler: VM_FAULT_RETRY). Process 1 writes into process 0's region remotely (fixup_user_fault,
 * as process_vm_writev or a futex would): current->mm is process 1's, the mm faulted on is
 * process 0's. Process 0 handles the event and unmaps the region (its mmap_lock for write).
 *
 * Checker: lockdep:bad-unlock (the retry releases a lock the CPU does not hold; process 0's stays
 * held and its munmap would wait for ever). Planted bug: mshare --bug retry-unlocks-current-mm.
 */
import type { Op, Program } from '../proc/program.js';
import { sizeMachine, type Scenario } from './common.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const AT = 4 * GiB;
const LEN = 2 * MiB;

export const raceMshareRetry: Scenario = {
  name: 'race-mshare-retry',
  summary: 'two processes (--procs and --size are ignored): a remote write fault in an mshare v1 region waits on uffd-wp and is retried',
  details: 'checker: lockdep:bad-unlock (the retry releases current->mm\'s lock, not the faulted mm\'s); ' +
    'planted bug: mshare --bug retry-unlocks-current-mm (v1\'s handle_mm_fault epilogue, seed 004)',
  defaults: { procs: 2, size: LEN, ops: 1 },
  models: { only: ['mshare'], why: 'the epilogue is mshare v1\'s (the bug is that model\'s)' },
  build(o) {
    const owner: Op[] = [
      { op: 'memfd_create', name: 'A', as: 'a' },
      { op: 'ftruncate', fd: 'a', size: LEN },
      { op: 'mmap', addr: AT, len: LEN, prot: ['PROT_READ', 'PROT_WRITE'], flags: ['MAP_SHARED', 'MAP_FIXED'], fd: 'a', as: 'm' },
      { op: 'touch', region: 'm', len: LEN, stride: 256 * 1024, write: true },
      { op: 'mshare', name: 'retry', addr: AT, len: GiB, create: true, excl: true },
      { op: 'uffd_register_file', fd: 'a' },
      { op: 'uffd_wp_file', fd: 'a', protect: true },
      { op: 'barrier', id: 0 },
      { op: 'uffd_handle', count: 1 },
      { op: 'barrier', id: 1 },
      { op: 'let', as: 'r', addr: AT },
      { op: 'munmap', region: 'r', len: GiB }, // mmap_lock for write: waits for ever on a leaked read hold
      { op: 'mshare_unlink', name: 'retry' },
      { op: 'exit', code: 0 },
    ];
    const writer: Op[] = [
      { op: 'barrier', id: 0 },
      { op: 'fault_remote', task: 0, addr: AT + 8, write: true },
      { op: 'barrier', id: 1 },
      { op: 'exit', code: 0 },
    ];
    const programs: Program[] = [owner, writer];
    const config = sizeMachine({ cpus: o.cpus, procs: 2, sharedBytes: LEN, privateBytes: 0, files: 2, vmasPerProc: 4, mem: o.mem });
    return { programs, config: { ...config, barriers: Math.max(config.barriers, 2) } };
  },
};
