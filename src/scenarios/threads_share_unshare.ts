/**
 * threads-share-unshare — threads in a sharing model's workload (issue "Catch what nobody
 * planted", item 5). `procs` processes map one shmem file at the same PMD-aligned address (the
 * model's way: MAP_SHARED_PT, or MADV_SHARE_PT for pt-hint); each has two threads (join_mm). The
 * first thread of each stores across the whole range again and again; the second changes parts
 * of it meanwhile, with ranges that start and end inside a 2 MiB table's range (1.5 MiB at
 * +1.25 MiB, crossing the table boundary at 2 MiB; 1.5 MiB at +256 KiB, inside the first table):
 *
 * - mprotect(PROT_READ) of the crossing range and back — mprotect vs fault within one mm (a
 *   sibling thread faults and stores while the VMA splits and, under pt-hint, the tables unshare
 *   with huge_pmd_unshare);
 * - munmap of the inner range and mmap(MAP_FIXED) of the file back there (pt-hint and none; a
 *   partial munmap of a MAP_SHARED_PT mapping is EINVAL by that model's rule) — and under
 *   pt-hint the hint given again, so the next round shares again while the other processes'
 *   threads fault through the same tables.
 *
 * The storing threads take what comes (SIGSEGV while read-only or unmapped). Checkers:
 * stale-tlb-write (a store through a TLB entry after the mprotect or unshare that removed it
 * returned), use-after-free (a walk or fault through a table an unshare or unmap freed),
 * invariant (free_pgtables meets a table still mapping pages; share counts and pgtables_bytes at
 * quiescence), lost-write (a store that landed nowhere in the file), expectation.
 */
import type { Op, Program } from '../proc/program.js';
import { MiB, PMD, sizeMachine, type Scenario } from './common.js';

const AT = 8 * 1024 * MiB; // PMD-aligned: the same address in every process (MAP_SHARED_PT's rule)
const KiB = 1024;
const RW = ['PROT_READ', 'PROT_WRITE'] as const;
/** The crossing range: 1.5 MiB from +1.25 MiB, over the boundary between the first two tables. */
const CROSS = { offset: MiB + 256 * KiB, len: MiB + 512 * KiB };
/** The inner range: 1.5 MiB from +256 KiB, inside the first table's 2 MiB. */
const INNER = { offset: 256 * KiB, len: MiB + 512 * KiB };

export const threadsShareUnshare: Scenario = {
  name: 'threads-share-unshare',
  summary: 'two threads per process: one stores over a shared range while the other mprotects and unmaps/remaps unaligned parts of it (tables shared and unshared at once)',
  details: 'checkers: stale-tlb-write, use-after-free, invariant (free-pgtables, share counts, pgtables_bytes), lost-write, expectation; ' +
    'ranges start and end inside a table\'s 2 MiB (1.5 MiB at +256 KiB; 1.5 MiB at +1.25 MiB across a table boundary); ' +
    'a planted bug it finds: map-shared-pt --bug shootdown-forgets-sharers (a thread\'s mprotect of the shared range leaves the other process\'s hot entries)',
  defaults: { procs: 2, size: 2 * PMD, ops: 3 },
  models: {
    only: ['none', 'pt-hint', 'map-shared-pt'],
    why: 'mshare, container-fd and address-space refuse a partial mprotect or munmap of their mappings (EINVAL): their insides change by ioctl',
  },
  explore: { strategy: 'random', why: 'a stale entry shows only when a store op of the other process lands between one thread\'s mprotect returning and its next one: PCT\'s few change points miss that among four tasks\' thousands of decisions' },
  build(o) {
    if (o.size % PMD !== 0 || o.size < 2 * PMD) throw new Error('threads-share-unshare: --size must be a multiple of 2 MiB, at least 4 MiB');
    const msp = o.model === 'map-shared-pt';
    const hint = o.model === 'pt-hint';
    const procs = o.procs;
    const map = (offset: number, len: number): Op => ({
      op: 'mmap', addr: AT + offset, len, prot: [...RW], flags: msp ? ['MAP_SHARED', 'MAP_FIXED', 'MAP_SHARED_PT'] : ['MAP_SHARED', 'MAP_FIXED'], fd: 'fd', offset, as: offset === 0 ? 'm' : 'piece',
    });
    const programs: Program[] = [];
    // Task p (p < procs): process p's first thread, the storer. Task procs + p: its second, the changer.
    for (let p = 0; p < procs; p++) {
      const prog: Op[] = p === 0
        ? [{ op: 'shm_open', name: '/tsu', create: true, excl: true, as: 'fd' }, { op: 'ftruncate', fd: 'fd', size: o.size }, { op: 'barrier', id: 0 }]
        : [{ op: 'barrier', id: 0 }, { op: 'shm_open', name: '/tsu', as: 'fd' }];
      prog.push(map(0, o.size));
      if (hint) prog.push({ op: 'madvise', region: 'm', len: o.size, advice: 'MADV_SHARE_PT' });
      prog.push({ op: 'touch', region: 'm', len: o.size, stride: 64 * KiB, write: true });
      prog.push({ op: 'barrier', id: 1 });
      if (p === 0) prog.push({ op: 'shm_unlink', name: '/tsu' });
      for (let i = 0; i < o.ops * 2; i++) {
        // A few pages of the crossing range again and again, one store an op (hot in this CPU's
        // TLB, as a stale entry would be: a schedule point between each), then a sweep of the
        // whole range (faults through every table).
        for (let j = 0; j < 8; j++) prog.push({ op: 'store', region: 'm', offset: CROSS.offset + 4096 * (j % 4), value: p + 1, expect: 'any' });
        prog.push({ op: 'touch', region: 'm', offset: ((i * 5 + p) % 8) * 4096, len: o.size - 8 * 4096, stride: 128 * KiB, write: true, value: p + 1, expect: 'any' });
      }
      prog.push({ op: 'barrier', id: 2 }, { op: 'exit', code: 0 });
      programs.push(prog);
    }
    for (let p = 0; p < procs; p++) {
      // Its own fd for the file (opened before process 0 unlinks the name at barrier 1).
      const prog: Op[] = [
        { op: 'barrier', id: 0 }, { op: 'join_mm', task: p }, { op: 'shm_open', name: '/tsu', as: 'fd' }, { op: 'let', as: 'm', addr: AT }, { op: 'barrier', id: 1 },
      ];
      for (let i = 0; i < o.ops; i++) {
        prog.push({ op: 'mprotect', region: 'm', ...CROSS, prot: ['PROT_READ'] });
        prog.push({ op: 'mprotect', region: 'm', ...CROSS, prot: [...RW] });
        if (msp) {
          prog.push({ op: 'munmap', region: 'm', ...INNER, expect: 'EINVAL' });
        } else {
          prog.push({ op: 'munmap', region: 'm', ...INNER });
          prog.push(map(INNER.offset, INNER.len));
          // pt-hint: the hint again over the whole range (the unmap's split unshared and cleared
          // it), so the next round shares again — only the whole 2 MiB ranges inside one VMA can.
          if (hint) prog.push({ op: 'madvise', region: 'm', len: o.size, advice: 'MADV_SHARE_PT' });
        }
      }
      prog.push({ op: 'barrier', id: 2 }, { op: 'exit', code: 0 });
      programs.push(prog);
    }
    return {
      programs,
      config: sizeMachine({ cpus: o.cpus, procs: 2 * procs, sharedBytes: o.size, privateBytes: 0, files: 1, vmasPerProc: 8, mem: o.mem }),
    };
  },
};
