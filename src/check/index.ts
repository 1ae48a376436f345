/**
 * The verdict on a run: what the machine reported while it ran (the violation ring, the
 * watchdog), then the end-of-run checks — no task left, nothing leaked, no write lost.
 */
import {
  G_NEXT_PID, G_UNMET, G_RETIRED_RSS_FILE, B_ARRIVED, BARRIER_WORDS, M_RSS_FILE, M_RSS_ANON, M_PGTABLES, M_NR_VMAS, M_USERS, M_COUNT, R_STATE,
  C_HELD, C_HELD_N, C_SCHED_WORD, C_WAIT_CLASS, C_WAIT_WORD, CPU_WORDS, G_SCHED_DEADLOCK, G_MEM_USED, G_STOP, G_STOP_CLASS, G_STOP_CPU,
  G_STOP_HOLDER, G_STOP_WORD, LEDGER_WORDS, LG_FREED, LG_SUM, M_FLAGS, MAX_FDS, MM_WORDS, MMF_HOST, PL_INUSE, StopReason,
  T_ANON_RETIRED, T_ANON_STORES, T_PID, T_FILE_STORES, T_MM, T_MM_GEN, T_STATE, T_UNTRACKED_STORES, TASK_EXITED, TASK_WORDS,
} from '../shm/layout.js';
import { poolsOf } from '../shm/machine.js';
import { LOCK_CLASS_NAMES } from '../sync/lockdep.js';
import { POOL_NAMES, read_violations, Violation } from '../mm/mmdebug.js';
import { LEVEL_NAMES } from '../mm/pgtable.js';
import { ASSERT_LOCK_NAMES, ASSERT_SITES, GUARDED_NAMES, GUARDED_RULES, LOCK_ASSERT_VIOLATION, LOCKSET_VIOLATION } from '../mm/guarded.js';
import type { MachineRun } from '../proc/orchestrator.js';
import { outcomeName } from '../proc/program.js';
import { checkInvariants, describeInvariant, RSS_FOLLOWS_FAULTER } from './invariants.js';

export interface ViolationReport {
  checker: string;
  message: string;
  /** The CPU that found it, for violations found while the machine ran (the trace marks it there). */
  cpu?: number;
}

const hex = (hi: number, lo: number) => '0x' + (hi * 2 ** 32 + (lo >>> 0)).toString(16);

/** Names an mm for people: the process it belongs to, or the host mm it is. */
function mmName(run: Pick<MachineRun, "machine" | "spec">, mm: number): string {
  const { i32, layout } = run.machine;
  if (mm < 0 || mm >= layout.config.mms) return `mm ${mm}`;
  if ((Atomics.load(i32, layout.mms + mm * MM_WORDS + M_FLAGS) & MMF_HOST) !== 0) return `host mm ${mm}`;
  for (let t = 0; t < run.spec.programs.length; t++) {
    if (Atomics.load(i32, layout.tasks + t * TASK_WORDS + T_MM) === mm) return `process ${t} (mm ${mm})`;
  }
  return `mm ${mm}`;
}

/** Names a task for people: its proc number (forked children are numbered after the programs' processes). */
function taskName(run: Pick<MachineRun, "machine" | "spec">, t: number): string {
  const { i32, layout } = run.machine;
  if (t < 0 || t >= layout.config.tasks) return `task ${t}`;
  const pid = Atomics.load(i32, layout.tasks + t * TASK_WORDS + T_PID);
  return `process ${t < run.spec.programs.length ? t : pid}`;
}

/** One violation from the ring, in words (verdict uses it for each). */
export function describeViolation(run: Pick<MachineRun, "machine" | "spec">, kind: Violation, cpu: number, a: number[]): ViolationReport {
  switch (kind) {
    case Violation.UafPageTable:
      return {
        checker: 'use-after-free',
        message: `cpu${cpu} running ${mmName(run, a[4])} reached ${LEVEL_NAMES[a[1]]} page-table page #${a[0]} through an entry tagged generation ${a[2]}, ` +
          `but that page ${a[5] === 0 ? 'is free' : `was reused as a ${LEVEL_NAMES[a[5]]} table`} (generation now ${a[3] & 63})`,
      };
    case Violation.BadTable:
      return { checker: 'use-after-free', message: `cpu${cpu} running ${mmName(run, a[4])} expected a ${LEVEL_NAMES[a[1]]} table at #${a[0]} but found a ${LEVEL_NAMES[a[5]] ?? a[5]} table` };
    case Violation.UafObject:
      return a[2] === -1
        ? { checker: 'use-after-free', message: `cpu${cpu} reached ${POOL_NAMES[a[0]]} #${a[1]} through a PTE, but it is free (generation ${a[3]})` }
        : { checker: 'use-after-free', message: `cpu${cpu} used ${POOL_NAMES[a[0]]} #${a[1]} of generation ${a[2]}, but it is now generation ${a[3]}` };
    case Violation.DoubleFree:
      return { checker: 'double-free', message: `cpu${cpu} freed ${POOL_NAMES[a[0]]} #${a[1]} (generation ${a[2]}), which was already free` };
    case Violation.StaleTlbWrite:
      return {
        checker: 'stale-tlb-write',
        message: `process ${a[0]} on cpu${cpu} stored to ${hex(a[1], a[2])} (frame ${a[3]}) through a TLB entry after the change that ` +
          `forbade it returned (PTE now 0x${(a[4] >>> 0).toString(16)}): a shootdown missed this CPU`,
      };
    case Violation.Refcount:
      return { checker: 'refcount', message: `${POOL_NAMES[a[0]]} #${a[1]} reference count went to ${a[2]}` };
    case Violation.Expectation: {
      const op = run.spec.programs[a[0]]?.[a[1]];
      return {
        checker: 'expectation',
        message: `process ${a[0]} op #${a[1]} ${op ? JSON.stringify(op) : ''} expected ${outcomeName(a[2])}, got ${outcomeName(a[3])}`,
      };
    }
    case Violation.Invariant:
      switch (a[0]) {
        case 1: return { checker: 'invariant:mapcount', message: `frame ${a[1]} still has map count ${a[2]} when file #${a[3]} is freed` };
        case 2: return { checker: 'invariant:free-pgtables', message: `free_pgtables found PTEs left in table #${a[1]} of ${mmName(run, a[2])}` };
        case 3: return { checker: 'livelock', message: `process ${a[1]} faulted 1000 times at ${hex(a[2], a[3])} without progress` };
        case 4: return { checker: 'invariant:shared-pmd', message: `${mmName(run, a[1])}: a PMD entry points to table #${a[2]}, not the host's #${a[3]}` };
        case 7: {
          const [from, to, len, first, last] = [a[1], a[2], a[3], a[4], a[5]];
          const chain = len <= 2 ? [to, from] : len === 3 ? [to, first, from] : len === 4 ? [to, first, last, from] : [to, first, -1, last, from];
          const name = (c: number) => (c < 0 ? '...' : LOCK_CLASS_NAMES[c] ?? `class ${c}`);
          return {
            checker: 'lockdep:circular',
            message: `possible circular locking dependency: cpu${cpu} took ${name(to)} while holding ${name(from)}, ` +
              `but ${chain.map(name).join(' -> ')} was taken before (each while holding the one before it)`,
          };
        }
        case LOCK_ASSERT_VIOLATION: {
          // [code, site, mm, lock (AssertLock), held for read only, holder cpu + 1 (0: not known)]
          const site = ASSERT_SITES[a[1]] ?? `site ${a[1]}`;
          const on = a[2] >= 0 ? ` on ${mmName(run, a[2])}` : '';
          const lock = ASSERT_LOCK_NAMES[a[3]] ?? `lock ${a[3]}`;
          // Who holds what: the lock's writer when its word names one (an rwsem's owner, a spinlock).
          const what = a[3] === 4 ? 'it' : a[3] === 5 ? "the VMA's lock for write" : a[3] === 6 ? "the mm's mmap_lock for write" : 'it for write';
          const who = a[5] > 0 ? `; ${a[5] - 1 === cpu ? 'this CPU' : `cpu${a[5] - 1}`} holds ${what}` : '';
          if (a[3] >= 7) {
            // assert_fault_locked: the VMA a fault holds the read lock of is not what the lock promised.
            return {
              checker: 'lockdep:assert',
              message: `cpu${cpu} ran ${site}${on} under the VMA's read lock on ${a[3] === 7 ? 'a detached VMA' : 'a VMA a writer has write-locked'} ` +
                `(it needs ${lock})${a[5] > 0 ? `; cpu${a[5] - 1} holds the mm's mmap_lock for write` : ''}`,
            };
          }
          return {
            checker: 'lockdep:assert',
            message: `cpu${cpu} ran ${site}${on} without holding ${lock}${a[4] ? ' (it holds it for read only)' : ''}${who}`,
          };
        }
        case LOCKSET_VIOLATION: {
          // [code, class | site << 8, object, mm, classes held for write (bits), classes held for read (bits)]
          const cls = a[1] & 0xff;
          const site = ASSERT_SITES[a[1] >>> 8] ?? `site ${a[1] >>> 8}`;
          const held: string[] = [];
          for (let c = 0; c < LOCK_CLASS_NAMES.length; c++) {
            if ((a[4] >>> c) & 1) held.push(`${LOCK_CLASS_NAMES[c]}(W)`);
            if ((a[5] >>> c) & 1) held.push(`${LOCK_CLASS_NAMES[c]}(R)`);
          }
          const obj = cls <= 2 ? ` of table #${a[2]}` : cls === 3 ? ` (VMA #${a[2]})` : cls >= 6 ? ` of file #${a[2]}` : '';
          const of = a[3] >= 0 ? ` of ${mmName(run, a[3])}` : '';
          return {
            checker: 'lockset',
            message: `cpu${cpu} wrote ${/^[aeiou]/i.test(GUARDED_NAMES[cls] ?? '') ? 'an' : 'a'} ${GUARDED_NAMES[cls] ?? `class ${cls}`}${obj}${of} in ${site} holding [${held.join(', ')}]; ` +
              `declared protection (__guarded_by): ${GUARDED_RULES[cls] ?? '?'}`,
          };
        }
        case 6: return { checker: 'lockdep:bad-unlock', message: `cpu${cpu} released the mmap_lock of ${mmName(run, a[1])}, which it does not hold (lockdep: bad unlock balance); the fault was on ${mmName(run, a[2])}, whose lock stays held` };
        case 5: return { checker: 'harness', message: `process ${a[1]} stored into too many files to account (file id ${a[2]})` };
        default: return describeInvariant(a[0], a.slice(1), (mm) => mmName(run, mm), (t) => taskName(run, t), cpu);
      }
    case Violation.Snapshot: {
      // uffd-wp background snapshot (seed 003): what the handler saved must be what the page held when protected.
      const page = `page ${a[2]} of file #${a[1]}`;
      const by = a[3] >= 0 ? ` (the event came from process ${a[3]})` : '';
      switch (a[0]) {
        case 1: return { checker: 'snapshot', message: `cpu${cpu}: ${page} was saved twice${by}: a write fault on it after it was saved and unprotected` };
        case 2: return { checker: 'snapshot', message: `cpu${cpu}: ${page} was written before it was saved${by}: payload sum ${a[5]}, ${a[4]} when it was write-protected` };
        default: return { checker: 'snapshot', message: `${page} changed during the snapshot (payload sum ${a[4]} -> ${a[5]}) but was never saved: a write escaped write-protection` };
      }
    }
    default:
      return { checker: 'unknown', message: `violation ${kind} (${a.join(', ')})` };
  }
}

function watchdogReport(run: MachineRun): ViolationReport {
  const { i32, layout } = run.machine;
  const cpu = Atomics.load(i32, G_STOP_CPU);
  const cls = LOCK_CLASS_NAMES[Atomics.load(i32, G_STOP_CLASS)] ?? '?';
  const holder = Atomics.load(i32, G_STOP_HOLDER);
  const deadlock = Atomics.load(i32, G_SCHED_DEADLOCK) !== 0;
  const parts = deadlock
    ? ['controlled mode: no CPU could run — each waits for a word another must change (a deadlock of the simulated kernel)']
    : [`cpu${cpu} waited more than ${run.spec.deadlineMs} ms for ${cls} (word ${Atomics.load(i32, G_STOP_WORD)})` + (holder >= 0 ? `, held by cpu${holder}` : '')];
  for (let c = 0; c < run.spec.cpus; c++) {
    const b = layout.cpu + c * CPU_WORDS;
    const held: string[] = [];
    for (let d = 0; d < Atomics.load(i32, b + C_HELD_N); d++) {
      const w = Atomics.load(i32, b + C_HELD + 2 * d);
      const cm = Atomics.load(i32, b + C_HELD + 2 * d + 1);
      held.push(`${LOCK_CLASS_NAMES[cm & 0xffff]}${cm >> 16 ? '(R)' : '(W)'}@${w}`);
    }
    const ww = deadlock ? Atomics.load(i32, b + C_SCHED_WORD) : Atomics.load(i32, b + C_WAIT_WORD);
    const waits = deadlock ? ` and waits for word ${ww} to change` : ` and waits for ${LOCK_CLASS_NAMES[Atomics.load(i32, b + C_WAIT_CLASS)]}@${ww}`;
    parts.push(`cpu${c} holds [${held.join(', ')}]` + (ww >= 0 ? waits : ''));
  }
  if (run.timedOut) parts.unshift(`the run exceeded its ${run.spec.runTimeoutMs} ms limit`);
  return { checker: deadlock ? 'deadlock' : 'watchdog', message: parts.join('; ') };
}

/** Unmet expectations listed one by one in a report (the rest are counted). */
export const UNMET_SHOWN = 50;

/** Every violation of the run, first the ones found while it ran. */
export function verdict(run: MachineRun): { violations: ViolationReport[]; notes: string[] } {
  const { i32, layout } = run.machine;
  const violations: ViolationReport[] = [];
  const notes: string[] = [];
  for (const v of read_violations(i32, layout)) violations.push({ ...describeViolation(run, v.kind, v.cpu, v.args), cpu: v.cpu });
  // Unmet expectations: every one is reported (none stops the run), in the order they ran.
  const unmet = run.cpus.flatMap((c) => c.unmet ?? []).sort((a, b) => a.seq - b.seq);
  for (const u of unmet.slice(0, UNMET_SHOWN)) violations.push({ checker: 'expectation', message: `process ${u.proc} op #${u.index} ${u.text} ${u.why}` });
  const more = Atomics.load(i32, G_UNMET) - Math.min(unmet.length, UNMET_SHOWN);
  if (more > 0) violations.push({ checker: 'expectation', message: `... and ${more} more unmet expectation(s)` });
  const stop = Atomics.load(i32, G_STOP);
  if (stop === StopReason.Watchdog) violations.push(watchdogReport(run));
  for (const e of run.workerErrors) violations.push({ checker: 'crash', message: e.split('\n')[0] });
  if (stop !== StopReason.None || run.workerErrors.length > 0) {
    notes.push('the machine stopped early: end-of-run checks (leaks, lost writes) were skipped');
    return { violations, notes };
  }
  const tasks = run.spec.programs.length;
  for (let t = 0; t < tasks; t++) {
    if (Atomics.load(i32, layout.tasks + t * TASK_WORDS + T_STATE) !== TASK_EXITED) {
      violations.push({ checker: 'harness', message: `process ${t} did not exit` });
    }
  }
  // Nothing may be left once every process has exited.
  const { findings } = checkInvariants(i32, layout, { model: run.spec.model });
  for (const f of findings) violations.push(describeInvariant(f.code, f.args, (mm) => mmName(run, mm), (t) => taskName(run, t)));
  violations.push(...endCounters(run));
  const pools = poolsOf(layout);
  for (const [name, p] of Object.entries(pools)) {
    const inuse = Atomics.load(i32, p.hdr + PL_INUSE);
    if (inuse !== 0) violations.push({ checker: 'leak', message: `${inuse} ${name} still allocated after every process exited` });
  }
  const used = Atomics.load(i32, G_MEM_USED);
  if (used !== 0) violations.push({ checker: 'leak', message: `${used * 4096} bytes of physical memory still charged after every process exited` });
  violations.push(...lostWrites(run, notes));
  return { violations, notes };
}

/**
 * Every counter ptlab keeps is back to zero once every process has exited (kernel/fork.c check_mm
 * for each mm, and the machine-wide ones): an mm still allocated names its counters — rss (file,
 * anon), pgtables_bytes, VMAs, users; what freed mms left is check_mm's finding (checkInvariants),
 * and pt-hint's machine-wide file RSS must come back to zero too. Then the machine's own: no task
 * live or queued, no barrier half-arrived. (The pools, the memory charge and
 * the files' ledgers are checked by verdict and lostWrites.)
 */
function endCounters(run: MachineRun): ViolationReport[] {
  const { i32, layout } = run.machine;
  const out: ViolationReport[] = [];
  for (let mm = 0; mm < layout.config.mms; mm++) {
    const b = layout.mms + mm * MM_WORDS;
    if (Atomics.load(i32, b + R_STATE) === 0) continue;
    const c = {
      MM_FILEPAGES: Atomics.load(i32, b + M_RSS_FILE), MM_ANONPAGES: Atomics.load(i32, b + M_RSS_ANON),
      pgtables_bytes: Atomics.load(i32, b + M_PGTABLES) * 4096, map_count: Atomics.load(i32, b + M_NR_VMAS),
      mm_users: Atomics.load(i32, b + M_USERS), mm_count: Atomics.load(i32, b + M_COUNT),
    };
    out.push({ checker: 'invariant:counters', message: `${mmName(run, mm)} is still allocated after every process exited: ${Object.entries(c).map(([k, v]) => `${k} ${v}`).join(', ')}` });
  }
  if (RSS_FOLLOWS_FAULTER.has(run.spec.model)) {
    const left = Atomics.load(i32, G_RETIRED_RSS_FILE);
    if (left !== 0) out.push({ checker: 'invariant:counters', message: `BUG: Bad rss-counter state: the freed mms' MM_FILEPAGES add up to ${left}, not 0 (pt-hint moves file RSS between sharers, but what one mm gains another must lose)` });
  }
  for (let id = 0; id < layout.config.barriers; id++) {
    const arrived = Atomics.load(i32, layout.barriers + id * BARRIER_WORDS + B_ARRIVED);
    if (arrived !== 0) out.push({ checker: 'invariant:counters', message: `barrier ${id} still counts ${arrived} arrived tasks after every process exited` });
  }
  return out;
}

/** Every store a process made must be in the payload of the page it meant: files and private memory. */
function lostWrites(run: MachineRun, notes: string[]): ViolationReport[] {
  const { i32, layout } = run.machine;
  const out: ViolationReport[] = [];
  const stored = new Map<number, number>();
  const anon = new Map<string, { tasks: number[]; stored: number; held: number }>();
  let untracked = 0;
  // Forked children share their parent's pages copy-on-write: private memory is no longer one
  // address space's, so its check is off (files are checked as ever, children's stores included).
  const forked = Atomics.load(i32, G_NEXT_PID) > run.spec.programs.length;
  if (forked) notes.push('the program forks: the lost-write check of private memory is off (pages are shared copy-on-write between address spaces)');
  for (let t = 0; t < layout.config.tasks; t++) {
    const tb = layout.tasks + t * TASK_WORDS;
    untracked += Atomics.load(i32, tb + T_UNTRACKED_STORES);
    for (let e = 0; e < MAX_FDS; e++) {
      const id = Atomics.load(i32, tb + T_FILE_STORES + 3 * e);
      if (id > 0) stored.set(id, ((stored.get(id) ?? 0) + Atomics.load(i32, tb + T_FILE_STORES + 3 * e + 2)) | 0);
    }
    // Private memory belongs to an address space, which threads share: sum by the mm a task
    // ended on (index and generation); what its pages held was credited to the mm's first task.
    const key = `${Atomics.load(i32, tb + T_MM)}/${Atomics.load(i32, tb + T_MM_GEN)}`;
    const g = anon.get(key) ?? { tasks: [] as number[], stored: 0, held: 0 };
    g.tasks.push(t);
    g.stored = (g.stored + Atomics.load(i32, tb + T_ANON_STORES)) | 0;
    g.held = (g.held + Atomics.load(i32, tb + T_ANON_RETIRED)) | 0;
    anon.set(key, g);
  }
  for (const g of forked ? [] : anon.values()) {
    if (g.stored !== g.held) {
      const who = g.tasks.length === 1 ? `process ${g.tasks[0]}` : `the threads ${g.tasks.join(', ')}`;
      out.push({ checker: 'lost-write', message: `${who} stored ${g.stored} into private memory, but its pages held ${g.held}` });
    }
  }
  if (untracked !== 0) {
    notes.push('some stores went through mappings whose backing file the model could not name: the per-file lost-write check was skipped');
    return out;
  }
  for (const [id, sum] of stored) {
    if (id > layout.config.fileIds) continue;
    const lg = layout.fileLedger + id * LEDGER_WORDS;
    if (Atomics.load(i32, lg + LG_FREED) === 0) continue; // still alive: reported as a leak
    const held = Atomics.load(i32, lg + LG_SUM);
    if (held !== sum) out.push({ checker: 'lost-write', message: `processes stored ${sum} into file #${id}, but its pages held ${held} when it was freed` });
  }
  return out;
}
