/*
 * ptkernel: runs a ptlab program on this machine's Linux (x86-64) and prints what every op did,
 * one JSON line per op, for a differential check against the simulator. The program comes on
 * stdin in a line format (native/README.md; src/cli/native.ts writes it), already validated:
 * names are slots, strings are hex, numbers are decimal.
 *
 * One supervisor (not a simulated process) schedules the simulated processes, real processes,
 * one at a time: each blocks on its own "go" pipe until the supervisor hands it the turn, and
 * tells the supervisor on one shared "report" pipe when it forks, arrives at a barrier, blocks
 * in wait or exits. The processes print their results themselves (only one runs at a time).
 *
 * Safety: before any op runs, every buffer is allocated, room is made under the helper's own
 * mappings (make_room), the window [0x100000, 2^46) is reserved (so nothing of the helper lives
 * there), /proc/self/maps is snapshotted and the window freed. An op that names an address range
 * meeting a snapshot mapping (the helper's own memory) makes the helper refuse the program:
 * exit 2, one line on stderr.
 *
 * cc -O2 -Wall -o dist/ptkernel native/ptkernel.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_mlock2
#define SYS_mlock2 325
#endif

#define PAGE 4096ULL
#define WIN_LO 0x100000ULL
#define WIN_HI (1ULL << 46)
#define ADDR_LIMIT (1ULL << 47) /* ranges at or past this go to the kernel as they are */
#define MAX_PROCS 1000
#define MAX_SLOTS 65536
#define MAX_SNAP 4096
#define IOBUF (1 << 20)
/* An ioctl command no file knows (type 0x7f, nr 0xfe, no direction). */
#define UNKNOWN_IOCTL 0x7ffeU
/* A pid that cannot exist (above PID_MAX_LIMIT): wait4 on it is ECHILD. */
#define NO_SUCH_PID 0x3fffffff

enum {
  OP_MEMFD = 1, OP_SHM_OPEN, OP_SHM_UNLINK, OP_OPEN, OP_UNLINK, OP_IOCTL, OP_MADVISE, OP_PREAD, OP_PWRITE,
  OP_MREMAP, OP_MLOCK, OP_MUNLOCK, OP_MINCORE, OP_MSYNC, OP_FORK, OP_WAIT, OP_MSHARE, OP_MSHARE_UNLINK,
  OP_FTRUNCATE, OP_CLOSE, OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_LOAD, OP_STORE, OP_TOUCH, OP_BARRIER, OP_EXIT,
  OP_LET,
};

/* Each op's name and argument kinds: i = a decimal integer, s = a string (x<hex>). */
static const struct opdef { const char *name; int code; const char *args; } OPDEFS[] = {
  { "memfd_create", OP_MEMFD, "is" },          /* out name */
  { "shm_open", OP_SHM_OPEN, "isiii" },        /* out name access create excl */
  { "shm_unlink", OP_SHM_UNLINK, "s" },        /* name */
  { "open", OP_OPEN, "isiii" },                /* out path access create excl */
  { "unlink", OP_UNLINK, "s" },                /* path */
  { "ioctl", OP_IOCTL, "ii" },                 /* fd out */
  { "madvise", OP_MADVISE, "iiii" },           /* region offset len advice */
  { "pread", OP_PREAD, "iii" },                /* fd offset len */
  { "pwrite", OP_PWRITE, "iiii" },             /* fd offset len value */
  { "mremap", OP_MREMAP, "iiiiiiii" },         /* region offset old_len new_len flags na_slot na_off out */
  { "mlock", OP_MLOCK, "iiii" },               /* region offset len onfault */
  { "munlock", OP_MUNLOCK, "iii" },            /* region offset len */
  { "mincore", OP_MINCORE, "iii" },            /* region offset len */
  { "msync", OP_MSYNC, "iiii" },               /* region offset len flags */
  { "fork", OP_FORK, "ii" },                   /* child_program out */
  { "wait", OP_WAIT, "i" },                    /* pid slot (-1: any child) */
  { "mshare", OP_MSHARE, "" },
  { "mshare_unlink", OP_MSHARE_UNLINK, "" },
  { "ftruncate", OP_FTRUNCATE, "ii" },         /* fd size */
  { "close", OP_CLOSE, "i" },                  /* fd */
  { "mmap", OP_MMAP, "iiiiiiii" },             /* addr_slot addr_off len prot flags fd offset out */
  { "munmap", OP_MUNMAP, "iii" },              /* region offset len */
  { "mprotect", OP_MPROTECT, "iiii" },         /* region offset len prot */
  { "load", OP_LOAD, "ii" },                   /* region offset */
  { "store", OP_STORE, "iii" },                /* region offset value */
  { "touch", OP_TOUCH, "iiiiiii" },            /* region offset len stride write passes value */
  { "barrier", OP_BARRIER, "ii" },             /* id count (0: the live processes) */
  { "exit", OP_EXIT, "i" },                    /* code */
  { "let", OP_LET, "iii" },                    /* out addr_slot addr_off */
};
#define NOPDEFS ((int)(sizeof OPDEFS / sizeof OPDEFS[0]))

struct op {
  int code;
  const char *name;
  int64_t v[8];
  char *str;
};
struct prog {
  int nops;
  struct op *ops;
  int used; /* as a fork's child */
};

/* ---- the program (parsed before anything runs) ---- */
static struct prog *progs;
static int nprogs, ntop, nslots, nprocs_max;
static char **slot_names;

/* ---- per simulated process (copied by fork) ---- */
static int64_t *slots;
static unsigned char *defined;
static pid_t *child_pid; /* by proc number: the real pid of a child this process forked, else 0 */
static int self = -1;
static int next_proc;

/* ---- shared plumbing ---- */
static int *go_r, *go_w; /* per proc: the supervisor writes its turn, the process reads it */
static int rep_r, rep_w;   /* every process reports to the supervisor */
static int out_fd;         /* stdout */
static int internal_base;  /* the helper's own fds are at or above this */
static char shm_prefix[64];
static unsigned char *iobuf;
static unsigned char *mincore_vec;

/* ---- the snapshot of the helper's own mappings ---- */
static struct { uint64_t lo, hi; } snap[MAX_SNAP];
static int nsnap;
static char mapsbuf[1 << 18];

/* ---- supervisor ---- */
enum { ST_NONE, ST_RUNNABLE, ST_RUNNING, ST_BARRIER, ST_WAIT, ST_EXITED };
struct pstate { int st; pid_t pid; int pidfd; int parent; int64_t barrier; int wait_for; };
static struct pstate *ps;
struct barrier { int64_t id; int64_t arrived; int64_t count; };
static struct barrier *barriers;
static int nbarriers, maxbarriers;
static int *queue;
static int qhead, qlen;
static int live;
static long timeout_ms;
static volatile sig_atomic_t stop_sig; /* SIGALRM: the time is up; SIGTERM/SIGINT/SIGHUP: told to stop */

enum { M_GO = 1, M_FORK, M_BARRIER, M_WAIT, M_EXIT, M_REFUSE, M_FAIL };
struct msg { int32_t type; int32_t proc; int64_t a, b; char text[232]; };

/* ------------------------------------------------------------------------------------------ */

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static void die_usage(int code, const char *fmt, ...) {
  char b[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  size_t n = strlen(b);
  b[n++] = '\n';
  write_all(2, b, n);
  _exit(code);
}

static const char *errname(int e) {
  const char *n = strerrorname_np(e);
  static char b[16];
  if (n) return n;
  snprintf(b, sizeof b, "E%d", e);
  return b;
}

static const char *signame(int s, char *b, size_t n) {
  const char *a = sigabbrev_np(s);
  if (a) snprintf(b, n, "SIG%s", a);
  else snprintf(b, n, "SIG%d", s);
  return b;
}

static const char *codename(int sig, int code, char *b, size_t n) {
  if (code == SI_KERNEL) return "SI_KERNEL";
  if (sig == SIGSEGV) {
    static const char *const s[] = { 0, "SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR", "SEGV_ACCADI", "SEGV_ADIDERR",
      "SEGV_ADIPERR", "SEGV_MTEAERR", "SEGV_MTESERR", "SEGV_CPERR" };
    if (code > 0 && code < (int)(sizeof s / sizeof s[0])) return s[code];
  }
  if (sig == SIGBUS) {
    static const char *const s[] = { 0, "BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR", "BUS_MCEERR_AR", "BUS_MCEERR_AO" };
    if (code > 0 && code < (int)(sizeof s / sizeof s[0])) return s[code];
  }
  snprintf(b, n, "%d", code);
  return b;
}

/* Appends s as a JSON string (quoted) to b at *n. */
static void json_str(char *b, size_t cap, size_t *n, const char *s) {
  if (*n < cap) b[(*n)++] = '"';
  for (; *s && *n + 8 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      b[(*n)++] = '\\';
      b[(*n)++] = (char)c;
    } else if (c < 0x20) {
      *n += (size_t)snprintf(b + *n, cap - *n, "\\u%04x", c);
    } else {
      b[(*n)++] = (char)c;
    }
  }
  if (*n < cap) b[(*n)++] = '"';
}

/* "name+0x1000" / "name-0x8" */
static void fmt_rel(char *b, size_t n, const char *name, uint64_t delta) {
  int64_t d = (int64_t)delta;
  if (d < 0) snprintf(b, n, "%s-0x%llx", name, (unsigned long long)(0 - delta));
  else snprintf(b, n, "%s+0x%llx", name, (unsigned long long)delta);
}

/* ---- results ---- */
struct res {
  const char *ret_s;
  int has_ret;
  int64_t ret;
  const char *err;
  int sig, code;
  const char *at;
  int has_value;
  uint32_t value;
  const char *status_s;
  int has_status;
  int status;
};

static void emit(int index, const char *op, const struct res *r) {
  char b[2048];
  size_t n = 0;
  char t[64];
  n += (size_t)snprintf(b + n, sizeof b - n, "{\"proc\":%d,\"index\":%d,\"op\":", self, index);
  json_str(b, sizeof b, &n, op);
  if (r->ret_s) {
    n += (size_t)snprintf(b + n, sizeof b - n, ",\"ret\":");
    json_str(b, sizeof b, &n, r->ret_s);
  } else if (r->has_ret) {
    n += (size_t)snprintf(b + n, sizeof b - n, ",\"ret\":%lld", (long long)r->ret);
  }
  if (r->err) n += (size_t)snprintf(b + n, sizeof b - n, ",\"errno\":\"%s\"", r->err);
  if (r->sig) {
    n += (size_t)snprintf(b + n, sizeof b - n, ",\"signal\":\"%s\"", signame(r->sig, t, sizeof t));
    n += (size_t)snprintf(b + n, sizeof b - n, ",\"code\":\"%s\"", codename(r->sig, r->code, t, sizeof t));
    n += (size_t)snprintf(b + n, sizeof b - n, ",\"at\":");
    json_str(b, sizeof b, &n, r->at);
  }
  if (r->has_value) n += (size_t)snprintf(b + n, sizeof b - n, ",\"value\":%u", r->value);
  if (r->status_s) n += (size_t)snprintf(b + n, sizeof b - n, ",\"status\":\"%s\"", r->status_s);
  else if (r->has_status) n += (size_t)snprintf(b + n, sizeof b - n, ",\"status\":%d", r->status);
  if (n + 2 > sizeof b) n = sizeof b - 2;
  b[n++] = '}';
  b[n++] = '\n';
  write_all(out_fd, b, n);
}

/* ---- talking to the supervisor (from a simulated process) ---- */
static void send_msg(int type, int64_t a, int64_t b, const char *text) {
  struct msg m;
  memset(&m, 0, sizeof m);
  m.type = type;
  m.proc = self;
  m.a = a;
  m.b = b;
  if (text) snprintf(m.text, sizeof m.text, "%s", text);
  write_all(rep_w, (const char *)&m, sizeof m);
}

static void wait_go(void) {
  struct msg m;
  for (;;) {
    ssize_t r = read(go_r[self], &m, sizeof m);
    if (r == (ssize_t)sizeof m && m.type == M_GO) {
      next_proc = (int)m.a;
      return;
    }
    if (r < 0 && errno == EINTR) continue;
    _exit(125); /* the supervisor is gone */
  }
}

static void refuse(const char *fmt, ...) {
  char b[232];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  send_msg(M_REFUSE, 0, 0, b);
  _exit(124);
}

static void fail(const char *fmt, ...) {
  char b[232];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  send_msg(M_FAIL, 0, 0, b);
  _exit(123);
}

/* ---- safety ---- */

/* Does [lo, lo+len) (page-rounded) meet a mapping of the helper's own? Ranges starting at or past 2^47 go to the kernel as they are. */
static int meets_helper(uint64_t lo, uint64_t len) {
  if (lo >= ADDR_LIMIT) return 0;
  unsigned __int128 hi = (unsigned __int128)lo + len;
  uint64_t plo = lo & ~(PAGE - 1);
  unsigned __int128 phi = (hi + PAGE - 1) & ~(unsigned __int128)(PAGE - 1);
  if (phi <= plo) return 0;
  for (int i = 0; i < nsnap; i++)
    if (snap[i].lo < phi && plo < snap[i].hi) return 1;
  return 0;
}

static void guard(const char *what, int index, uint64_t lo, uint64_t len) {
  if (meets_helper(lo, len))
    refuse("refused: proc %d op %d (%s) names [0x%llx, +0x%llx), which meets the helper's own memory", self, index, what,
      (unsigned long long)lo, (unsigned long long)len);
}

static int fdval(int64_t slot) {
  if (slot < 0 || !defined[slot]) return -1;
  int64_t v = slots[slot];
  if (v < 0 || v >= internal_base) return -1; /* not a file the program opened: never one of the helper's */
  return (int)v;
}

static uint64_t slotval(int64_t slot) { return slot < 0 ? 0 : (uint64_t)slots[slot]; }

static void set_slot(int64_t slot, int64_t v) {
  if (slot < 0) return;
  slots[slot] = v;
  defined[slot] = 1;
}

/* /dev/shm names: the program's "/x" is this run's "ptlab-<pid>-x" (glibc's rules for what a name is). */
static int shm_real_name(const char *name, char *out, size_t n) {
  const char *s = name;
  while (*s == '/') s++;
  if (*s == 0 || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
    /* glibc refuses it (EINVAL) or it names /dev/shm or /dev itself: as it is, touching nothing of ours */
    snprintf(out, n, "%s", name);
    return 0;
  }
  snprintf(out, n, "/%s%s", shm_prefix, s);
  return 0;
}

/* open/unlink paths: under /dev/shm/ they are real (this run's names); any other path is ENOENT. */
static int real_path(const char *path, char *out, size_t n) {
  if (strcmp(path, "/dev/shm") == 0) {
    snprintf(out, n, "/dev/shm");
    return 0;
  }
  if (strncmp(path, "/dev/shm/", 9) != 0) return -ENOENT;
  const char *s = path + 9;
  for (;;) {
    while (*s == '/') s++;
    if (s[0] == '.' && (s[1] == '/' || s[1] == 0)) {
      s++;
      continue;
    }
    break;
  }
  if (*s == 0) {
    snprintf(out, n, "/dev/shm/");
    return 0;
  }
  if (s[0] == '.' && s[1] == '.' && (s[2] == '/' || s[2] == 0)) return -ENOENT; /* leaves /dev/shm */
  snprintf(out, n, "/dev/shm/%s%s", shm_prefix, s);
  return 0;
}

/* ---- accesses ---- */
static sigjmp_buf access_jb;
static volatile sig_atomic_t in_access;
static volatile int fault_sig, fault_code;
static volatile uint64_t fault_addr;

static void on_fault(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (!in_access) {
    signal(sig, SIG_DFL); /* the helper's own fault: die of it */
    return;
  }
  in_access = 0;
  fault_sig = sig;
  fault_code = si->si_code;
  fault_addr = (uint64_t)(uintptr_t)si->si_addr;
  siglongjmp(access_jb, 1);
}

/*
 * count accesses at base + i*stride (each the aligned word holding it), passes times; stops at
 * the first signal (returns it, fault_* set), else 0. *value gets the last load.
 */
static int accesses(int index, const char *what, uint64_t base, uint64_t stride, uint64_t count, uint64_t passes, int write,
  uint32_t wvalue, uint32_t *value) {
  if (count == 0 || passes == 0) return 0;
  unsigned __int128 span = (unsigned __int128)(count - 1) * stride + 4;
  volatile int check = (base & ~3ULL) < ADDR_LIMIT && (span > (unsigned __int128)UINT64_MAX || meets_helper(base & ~3ULL, (uint64_t)span));
  volatile uint32_t last = 0;
  fault_sig = 0;
  if (sigsetjmp(access_jb, 1) == 0) {
    in_access = 1;
    for (uint64_t p = 0; p < passes; p++) {
      for (uint64_t i = 0; i < count; i++) {
        uint64_t a = (base + i * stride) & ~3ULL;
        if (check && meets_helper(a, 4)) {
          in_access = 0;
          guard(what, index, a, 4);
        }
        volatile uint32_t *w = (volatile uint32_t *)(uintptr_t)a;
        if (write) *w = wvalue;
        else last = *w;
      }
    }
    in_access = 0;
  }
  if (value) *value = last;
  return fault_sig;
}

/* ---- the ops ---- */
static const char *region_name(int64_t slot) { return slot >= 0 && slot < nslots ? slot_names[slot] : "?"; }

static void fail_errno(struct res *r, int e) { r->err = errname(e); }

static void run_program(int prog);

static void do_fork(int index, const struct op *o) {
  struct res r = { 0 };
  int n = next_proc;
  if (n >= nprocs_max) fail("internal: more processes than forks in the program");
  pid_t pid = fork();
  if (pid < 0) {
    fail_errno(&r, errno);
    emit(index, o->name, &r);
    return;
  }
  if (pid == 0) {
    self = n;
    for (int i = 0; i < nprocs_max; i++) child_pid[i] = 0; /* a new process has no children */
    wait_go();
    run_program((int)o->v[0]);
    /* not reached */
  }
  child_pid[n] = pid;
  send_msg(M_FORK, n, pid, NULL);
  next_proc = n + 1;
  set_slot(o->v[1], n);
  r.has_ret = 1;
  r.ret = n;
  emit(index, o->name, &r);
}

static void do_wait(int index, const struct op *o) {
  struct res r = { 0 };
  int target = -1;
  pid_t pid = -1;
  if (o->v[0] >= 0) {
    int64_t v = defined[o->v[0]] ? slots[o->v[0]] : 0;
    target = (int)v;
    pid = v >= 0 && v < nprocs_max && child_pid[v] > 0 ? child_pid[v] : NO_SUCH_PID;
  }
  for (;;) {
    int status = 0;
    pid_t got = wait4(pid, &status, WNOHANG, NULL);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      fail_errno(&r, errno);
      break;
    }
    if (got == 0) {
      send_msg(M_WAIT, target, 0, NULL); /* a child lives: block until it (any) exits */
      wait_go();
      continue;
    }
    int who = -1;
    for (int i = 0; i < nprocs_max; i++)
      if (child_pid[i] == got) who = i;
    if (who >= 0) child_pid[who] = 0;
    r.has_ret = 1;
    r.ret = who;
    char sb[32];
    if (WIFEXITED(status)) {
      r.has_status = 1;
      r.status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      static char keep[32];
      snprintf(keep, sizeof keep, "%s", signame(WTERMSIG(status), sb, sizeof sb));
      r.status_s = keep;
    }
    break;
  }
  emit(index, o->name, &r);
}

static void proc_exit(int code) {
  send_msg(M_EXIT, code, 0, NULL);
  _exit(code);
}

static void exec_op(int index, const struct op *o) {
  struct res r = { 0 };
  char at[160], rets[160], path[512];
  const int64_t *v = o->v;
  long x;
  switch (o->code) {
  case OP_MEMFD:
    x = syscall(SYS_memfd_create, o->str, 0);
    if (x < 0) fail_errno(&r, errno);
    else set_slot(v[0], x);
    break;
  case OP_SHM_OPEN: {
    int fl = (int)v[1] | (v[2] ? O_CREAT : 0) | (v[3] ? O_EXCL : 0);
    shm_real_name(o->str, path, sizeof path);
    x = shm_open(path, fl, 0600);
    if (x < 0) fail_errno(&r, errno);
    else set_slot(v[0], x);
    break;
  }
  case OP_SHM_UNLINK:
    shm_real_name(o->str, path, sizeof path);
    if (shm_unlink(path) < 0) fail_errno(&r, errno);
    break;
  case OP_OPEN: {
    int fl = (int)v[1] | (v[2] ? O_CREAT : 0) | (v[3] ? O_EXCL : 0);
    int e = real_path(o->str, path, sizeof path);
    if (e < 0) fail_errno(&r, -e);
    else if ((x = open(path, fl, 0600)) < 0) fail_errno(&r, errno);
    else set_slot(v[0], x);
    break;
  }
  case OP_UNLINK: {
    int e = real_path(o->str, path, sizeof path);
    if (e < 0) fail_errno(&r, -e);
    else if (unlink(path) < 0) fail_errno(&r, errno);
    break;
  }
  case OP_IOCTL:
    x = ioctl(fdval(v[0]), UNKNOWN_IOCTL, 0);
    if (x < 0) fail_errno(&r, errno);
    else set_slot(v[1], x);
    break;
  case OP_MADVISE: {
    uint64_t a = slotval(v[0]) + (uint64_t)v[1];
    guard(o->name, index, a, (uint64_t)v[2]);
    if (syscall(SYS_madvise, a, (uint64_t)v[2], (int)v[3]) < 0) fail_errno(&r, errno);
    break;
  }
  case OP_PREAD: {
    int fd = fdval(v[0]);
    uint64_t off = (uint64_t)v[1], len = (uint64_t)v[2], done = 0;
    int first = 1;
    uint32_t w = 0;
    do {
      size_t n = len - done > IOBUF ? IOBUF : (size_t)(len - done);
      ssize_t g = pread(fd, iobuf, n, (off_t)(off + done));
      if (g < 0) {
        if (done == 0) fail_errno(&r, errno);
        break;
      }
      if (first && g >= 4) memcpy(&w, iobuf, 4);
      first = 0;
      done += (uint64_t)g;
      if ((size_t)g < n) break;
    } while (done < len);
    if (!r.err) {
      r.has_ret = 1;
      r.ret = (int64_t)done;
      if (done >= 4) {
        r.has_value = 1;
        r.value = w;
      }
    }
    break;
  }
  case OP_PWRITE: {
    int fd = fdval(v[0]);
    uint64_t off = (uint64_t)v[1], len = (uint64_t)v[2], done = 0;
    uint32_t w = (uint32_t)v[3];
    unsigned char wb[4] = { (unsigned char)w, (unsigned char)(w >> 8), (unsigned char)(w >> 16), (unsigned char)(w >> 24) };
    size_t fill = len > IOBUF ? IOBUF : (size_t)len;
    for (size_t i = 0; i < fill; i++) iobuf[i] = wb[i & 3];
    do {
      size_t n = len - done > IOBUF ? IOBUF : (size_t)(len - done);
      ssize_t g = pwrite(fd, iobuf, n, (off_t)(off + done));
      if (g < 0) {
        if (done == 0) fail_errno(&r, errno);
        break;
      }
      done += (uint64_t)g;
      if ((size_t)g < n) break;
    } while (done < len);
    if (!r.err) {
      r.has_ret = 1;
      r.ret = (int64_t)done;
    }
    break;
  }
  case OP_MREMAP: {
    uint64_t base = slotval(v[0]);
    uint64_t old = base + (uint64_t)v[1];
    uint64_t old_len = (uint64_t)v[2], new_len = (uint64_t)v[3];
    int flags = (int)v[4];
    uint64_t na = v[5] == -2 ? 0 : v[5] == -1 ? (uint64_t)v[6] : slotval(v[5]) + (uint64_t)v[6];
    guard(o->name, index, old, old_len ? old_len : 1);
    if (flags & MREMAP_FIXED) guard(o->name, index, na, new_len);
    x = syscall(SYS_mremap, old, old_len, new_len, flags, na);
    if (x == -1) {
      fail_errno(&r, errno);
      break;
    }
    uint64_t got = (uint64_t)x;
    set_slot(v[7], (int64_t)got);
    if (got == old) fmt_rel(rets, sizeof rets, region_name(v[0]), got - base);
    else if (flags & MREMAP_FIXED) {
      if (v[5] >= 0) fmt_rel(rets, sizeof rets, region_name(v[5]), got - slotval(v[5]));
      else snprintf(rets, sizeof rets, "0x%llx", (unsigned long long)got);
    } else snprintf(rets, sizeof rets, "moved");
    r.ret_s = rets;
    break;
  }
  case OP_MLOCK: {
    uint64_t a = slotval(v[0]) + (uint64_t)v[1];
    guard(o->name, index, a, (uint64_t)v[2]);
    x = v[3] ? syscall(SYS_mlock2, a, (uint64_t)v[2], 1 /* MLOCK_ONFAULT */) : syscall(SYS_mlock, a, (uint64_t)v[2]);
    if (x < 0) fail_errno(&r, errno);
    break;
  }
  case OP_MUNLOCK: {
    uint64_t a = slotval(v[0]) + (uint64_t)v[1];
    guard(o->name, index, a, (uint64_t)v[2]);
    if (syscall(SYS_munlock, a, (uint64_t)v[2]) < 0) fail_errno(&r, errno);
    break;
  }
  case OP_MINCORE: {
    /* in chunks of IOBUF pages (mincore has no side effect): the first error is the call's */
    uint64_t a = slotval(v[0]) + (uint64_t)v[1], len = (uint64_t)v[2], done = 0;
    uint32_t bits = 0;
    int first = 1;
    do {
      uint64_t n = len - done > (uint64_t)IOBUF * PAGE ? (uint64_t)IOBUF * PAGE : len - done;
      if (syscall(SYS_mincore, a + done, n, mincore_vec) < 0) {
        fail_errno(&r, errno);
        break;
      }
      if (first)
        for (uint64_t i = 0; i < 32 && i * PAGE < n; i++) bits |= (uint32_t)(mincore_vec[i] & 1) << i;
      first = 0;
      done += n;
    } while (done < len);
    if (!r.err) {
      r.has_value = 1;
      r.value = bits;
    }
    break;
  }
  case OP_MSYNC: {
    uint64_t a = slotval(v[0]) + (uint64_t)v[1];
    guard(o->name, index, a, (uint64_t)v[2]);
    if (syscall(SYS_msync, a, (uint64_t)v[2], (int)v[3]) < 0) fail_errno(&r, errno);
    break;
  }
  case OP_MSHARE:
  case OP_MSHARE_UNLINK:
    fail_errno(&r, ENOSYS);
    break;
  case OP_FTRUNCATE:
    if (ftruncate(fdval(v[0]), (off_t)v[1]) < 0) fail_errno(&r, errno);
    break;
  case OP_CLOSE:
    if (close(fdval(v[0])) < 0) fail_errno(&r, errno);
    break;
  case OP_MMAP: {
    uint64_t a = v[0] == -1 ? (uint64_t)v[1] : slotval(v[0]) + (uint64_t)v[1];
    int flags = (int)v[4];
    int fd = v[5] < 0 ? -1 : fdval(v[5]);
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) guard(o->name, index, a, (uint64_t)v[2]);
    x = syscall(SYS_mmap, a, (uint64_t)v[2], (int)v[3], flags, fd, (uint64_t)v[6]);
    if (x == -1) fail_errno(&r, errno);
    else set_slot(v[7], x);
    break;
  }
  case OP_MUNMAP: {
    uint64_t a = slotval(v[0]) + (uint64_t)v[1];
    guard(o->name, index, a, (uint64_t)v[2]);
    if (syscall(SYS_munmap, a, (uint64_t)v[2]) < 0) fail_errno(&r, errno);
    break;
  }
  case OP_MPROTECT: {
    uint64_t a = slotval(v[0]) + (uint64_t)v[1];
    guard(o->name, index, a, (uint64_t)v[2]);
    if (syscall(SYS_mprotect, a, (uint64_t)v[2], (int)v[3]) < 0) fail_errno(&r, errno);
    break;
  }
  case OP_LOAD:
  case OP_STORE:
  case OP_TOUCH: {
    uint64_t base = slotval(v[0]);
    uint64_t a = base + (uint64_t)v[1];
    uint32_t got = 0;
    int sig;
    if (o->code == OP_LOAD) sig = accesses(index, o->name, a, 4, 1, 1, 0, 0, &got);
    else if (o->code == OP_STORE) sig = accesses(index, o->name, a, 4, 1, 1, 1, (uint32_t)v[2], NULL);
    else {
      uint64_t len = (uint64_t)v[2], stride = (uint64_t)v[3];
      uint64_t count = len / stride + (len % stride != 0);
      sig = accesses(index, o->name, a, stride, count, (uint64_t)v[5], (int)v[4], (uint32_t)v[6], NULL);
    }
    if (sig) {
      r.sig = sig;
      r.code = fault_code;
      if (fault_code == SI_KERNEL) snprintf(at, sizeof at, "0x%llx", (unsigned long long)fault_addr);
      else fmt_rel(at, sizeof at, region_name(v[0]), fault_addr - base);
      r.at = at;
    } else if (o->code == OP_LOAD) {
      r.has_value = 1;
      r.value = got;
    }
    break;
  }
  case OP_LET: {
    uint64_t a = v[1] == -1 ? (uint64_t)v[2] : slotval(v[1]) + (uint64_t)v[2];
    set_slot(v[0], (int64_t)a);
    break;
  }
  default:
    fail("internal: op code %d", o->code);
  }
  emit(index, o->name, &r);
}

static void run_program(int prog) {
  const struct prog *p = &progs[prog];
  for (int i = 0; i < p->nops; i++) {
    const struct op *o = &p->ops[i];
    switch (o->code) {
    case OP_FORK: do_fork(i, o); break;
    case OP_WAIT: do_wait(i, o); break;
    case OP_BARRIER:
      send_msg(M_BARRIER, o->v[0], o->v[1], NULL);
      wait_go();
      break;
    case OP_EXIT: proc_exit((int)o->v[0]); break;
    default: exec_op(i, o);
    }
  }
  proc_exit(0);
}

/* ------------------------------------------------------------------------------------------ */
/* parsing */

static char *input;
static size_t input_len;

static void read_input(void) {
  size_t cap = 1 << 16;
  input = malloc(cap);
  if (!input) die_usage(1, "ptkernel: out of memory");
  for (;;) {
    if (input_len + 1 >= cap) {
      cap *= 2;
      input = realloc(input, cap);
      if (!input) die_usage(1, "ptkernel: out of memory");
    }
    ssize_t r = read(0, input + input_len, cap - input_len - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die_usage(1, "ptkernel: reading stdin: %s", strerror(errno));
    if (r == 0) break;
    input_len += (size_t)r;
  }
  input[input_len] = 0;
}

static int lineno;
static char *cursor;

/* The next line's tokens (in place); returns the count, -1 at the end. */
static int next_line(char **tok, int max) {
  for (;;) {
    if (!cursor || !*cursor) return -1;
    char *line = cursor;
    char *nl = strchr(cursor, '\n');
    if (nl) {
      *nl = 0;
      cursor = nl + 1;
    } else cursor = NULL;
    lineno++;
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
      if (n == max) die_usage(2, "ptkernel: refused: line %d: too many fields", lineno);
      tok[n++] = t;
    }
    if (n > 0) return n;
  }
}

static int64_t parse_int(const char *t) {
  char *end;
  errno = 0;
  long long v = strtoll(t, &end, 10);
  if (errno || *end || end == t) die_usage(2, "ptkernel: refused: line %d: expected an integer, got '%s'", lineno, t);
  return v;
}

static char *parse_hex(const char *t) {
  if (t[0] != 'x') die_usage(2, "ptkernel: refused: line %d: expected a string (x<hex>), got '%s'", lineno, t);
  size_t n = strlen(t + 1);
  if (n % 2) die_usage(2, "ptkernel: refused: line %d: odd hex string", lineno);
  char *s = malloc(n / 2 + 1);
  if (!s) die_usage(1, "ptkernel: out of memory");
  for (size_t i = 0; i < n / 2; i++) {
    unsigned int c;
    if (sscanf(t + 1 + 2 * i, "%2x", &c) != 1) die_usage(2, "ptkernel: refused: line %d: bad hex string", lineno);
    if (c == 0) die_usage(2, "ptkernel: refused: line %d: a string holds a NUL", lineno);
    s[i] = (char)c;
  }
  s[n / 2] = 0;
  return s;
}

static void check_slot(int64_t s, int64_t lowest) {
  if (s < lowest || s >= nslots) die_usage(2, "ptkernel: refused: line %d: name slot %lld out of range", lineno, (long long)s);
}

static void parse_program(void) {
  char *tok[16];
  cursor = input;
  int n = next_line(tok, 16);
  if (n != 5 || strcmp(tok[0], "ptkernel") != 0 || strcmp(tok[1], "1") != 0)
    die_usage(2, "ptkernel: refused: line 1: expected 'ptkernel 1 <programs> <processes> <names>'");
  nprogs = (int)parse_int(tok[2]);
  ntop = (int)parse_int(tok[3]);
  nslots = (int)parse_int(tok[4]);
  if (nprogs < 1 || nprogs > MAX_PROCS || ntop < 1 || ntop > nprogs || nslots < 0 || nslots > MAX_SLOTS)
    die_usage(2, "ptkernel: refused: %d programs, %d processes, %d names (at most %d programs and %d names)", nprogs, ntop, nslots,
      MAX_PROCS, MAX_SLOTS);
  progs = calloc((size_t)nprogs, sizeof *progs);
  slot_names = calloc((size_t)nslots + 1, sizeof *slot_names);
  if (!progs || !slot_names) die_usage(1, "ptkernel: out of memory");
  for (int i = 0; i < nslots; i++) slot_names[i] = "?";
  int forks = 0, barrier_ops = 0;
  int cur = -1, filled = 0;
  for (;;) {
    n = next_line(tok, 16);
    if (n < 0) die_usage(2, "ptkernel: refused: the input ends without 'end'");
    if (strcmp(tok[0], "end") == 0) break;
    if (strcmp(tok[0], "name") == 0) {
      if (n != 3) die_usage(2, "ptkernel: refused: line %d: expected 'name <slot> <x-hex>'", lineno);
      int64_t s = parse_int(tok[1]);
      check_slot(s, 0);
      slot_names[s] = parse_hex(tok[2]);
      continue;
    }
    if (strcmp(tok[0], "prog") == 0) {
      if (cur >= 0 && filled != progs[cur].nops) die_usage(2, "ptkernel: refused: line %d: program %d has too few ops", lineno, cur);
      if (n != 3) die_usage(2, "ptkernel: refused: line %d: expected 'prog <id> <ops>'", lineno);
      cur = (int)parse_int(tok[1]);
      int64_t nops = parse_int(tok[2]);
      if (cur < 0 || cur >= nprogs || progs[cur].ops || nops < 0 || nops > 100000)
        die_usage(2, "ptkernel: refused: line %d: bad program header", lineno);
      progs[cur].nops = (int)nops;
      progs[cur].ops = calloc((size_t)nops + 1, sizeof(struct op));
      if (!progs[cur].ops) die_usage(1, "ptkernel: out of memory");
      filled = 0;
      continue;
    }
    if (cur < 0 || filled >= progs[cur].nops) die_usage(2, "ptkernel: refused: line %d: an op outside a program", lineno);
    const struct opdef *d = NULL;
    for (int i = 0; i < NOPDEFS; i++)
      if (strcmp(OPDEFS[i].name, tok[0]) == 0) d = &OPDEFS[i];
    if (!d) die_usage(2, "ptkernel: refused: line %d: the helper cannot run op '%s'", lineno, tok[0]);
    if (n - 1 != (int)strlen(d->args)) die_usage(2, "ptkernel: refused: line %d: '%s' takes %d fields", lineno, d->name, (int)strlen(d->args));
    struct op *o = &progs[cur].ops[filled++];
    o->code = d->code;
    o->name = d->name;
    int k = 0;
    for (int i = 0; d->args[i]; i++) {
      if (d->args[i] == 's') o->str = parse_hex(tok[i + 1]);
      else o->v[k++] = parse_int(tok[i + 1]);
    }
    /* name slots: -1 = none where a name is optional */
    switch (o->code) {
    case OP_MEMFD: case OP_SHM_OPEN: case OP_OPEN: check_slot(o->v[0], 0); break;
    case OP_IOCTL: check_slot(o->v[0], 0); check_slot(o->v[1], -1); break;
    case OP_MADVISE: case OP_PREAD: case OP_PWRITE: case OP_MLOCK: case OP_MUNLOCK: case OP_MINCORE: case OP_MSYNC:
    case OP_FTRUNCATE: case OP_CLOSE: case OP_MUNMAP: case OP_MPROTECT: case OP_LOAD: case OP_STORE:
      check_slot(o->v[0], 0);
      break;
    case OP_TOUCH:
      check_slot(o->v[0], 0);
      if (o->v[3] < 1 || o->v[5] < 1) die_usage(2, "ptkernel: refused: line %d: touch needs stride >= 1 and passes >= 1", lineno);
      break;
    case OP_MREMAP: check_slot(o->v[0], 0); check_slot(o->v[5], -2); check_slot(o->v[7], 0); break;
    case OP_MMAP: check_slot(o->v[0], -1); check_slot(o->v[5], -1); check_slot(o->v[7], 0); break;
    case OP_LET: check_slot(o->v[0], 0); check_slot(o->v[1], -1); break;
    case OP_WAIT: check_slot(o->v[0], -1); break;
    case OP_FORK: {
      check_slot(o->v[1], -1);
      int64_t c = o->v[0];
      if (c < ntop || c >= nprogs || progs[c].used) die_usage(2, "ptkernel: refused: line %d: bad child program %lld", lineno, (long long)c);
      progs[c].used = 1;
      forks++;
      break;
    }
    case OP_BARRIER: barrier_ops++; break;
    default: break;
    }
  }
  if (cur >= 0 && filled != progs[cur].nops) die_usage(2, "ptkernel: refused: program %d has too few ops", cur);
  for (int i = 0; i < nprogs; i++) {
    if (!progs[i].ops) die_usage(2, "ptkernel: refused: program %d is missing", i);
    if (i >= ntop && !progs[i].used) die_usage(2, "ptkernel: refused: program %d is no process's and no fork's", i);
  }
  nprocs_max = ntop + forks;
  if (nprocs_max > MAX_PROCS) die_usage(2, "ptkernel: refused: %d processes (at most %d)", nprocs_max, MAX_PROCS);
  maxbarriers = barrier_ops + 1;
}

/* ------------------------------------------------------------------------------------------ */
/* the supervisor */

static void qpush(int p) {
  queue[(qhead + qlen) % nprocs_max] = p;
  qlen++;
  ps[p].st = ST_RUNNABLE;
}

static int qpop(void) {
  int p = queue[qhead];
  qhead = (qhead + 1) % nprocs_max;
  qlen--;
  return p;
}

static void send_go(int p) {
  struct msg m;
  memset(&m, 0, sizeof m);
  m.type = M_GO;
  m.proc = p;
  m.a = next_proc;
  write_all(go_w[p], (const char *)&m, sizeof m);
}

static void remove_names(void) {
  DIR *d = opendir("/dev/shm");
  if (!d) return;
  size_t n = strlen(shm_prefix);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, shm_prefix, n) == 0) unlinkat(dirfd(d), e->d_name, 0);
  closedir(d);
}

/* Kills every process still alive, reaps them all (the supervisor is their subreaper), removes this run's names. */
static void teardown(void) {
  for (int p = 0; p < next_proc; p++)
    if (ps[p].st != ST_EXITED && ps[p].pid > 0) kill(ps[p].pid, SIGKILL);
  for (;;) {
    int st;
    pid_t w = waitpid(-1, &st, __WALL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) break;
  }
  remove_names();
}

static struct barrier *barrier_of(int64_t id) {
  for (int i = 0; i < nbarriers; i++)
    if (barriers[i].id == id) return &barriers[i];
  if (nbarriers == maxbarriers) return NULL;
  struct barrier *b = &barriers[nbarriers++];
  b->id = id;
  b->arrived = 0;
  b->count = 0;
  return b;
}

static int barrier_complete(const struct barrier *b) {
  int64_t need = b->count ? b->count : live;
  return b->arrived > 0 && b->arrived >= need;
}

/* Every process waiting on b but `self_` goes to the queue's tail, in increasing proc number. */
static void barrier_release(struct barrier *b, int self_) {
  b->arrived = 0;
  for (int q = 0; q < next_proc; q++)
    if (q != self_ && ps[q].st == ST_BARRIER && ps[q].barrier == b->id) qpush(q);
}

static void on_exit_proc(int p) {
  ps[p].st = ST_EXITED;
  live--;
  /* barriers in increasing id that the exit completes */
  for (;;) {
    struct barrier *best = NULL;
    for (int i = 0; i < nbarriers; i++) {
      struct barrier *b = &barriers[i];
      if (barrier_complete(b) && (!best || b->id < best->id)) best = b;
    }
    if (!best) break;
    barrier_release(best, -1);
  }
  int q = ps[p].parent;
  if (q >= 0 && ps[q].st == ST_WAIT && (ps[q].wait_for == -1 || ps[q].wait_for == p)) qpush(q);
}

static void on_stop(int sig) { stop_sig = sig; }

/* Told to stop (or out of time) while waiting: every process goes, then the helper. */
static void check_stop(void) {
  if (!stop_sig) return;
  teardown();
  if (stop_sig == SIGALRM) die_usage(3, "ptkernel: the program did not finish in %ld ms (its processes were killed)", timeout_ms);
  die_usage(1, "ptkernel: stopped by %s (its processes were killed)", strsignal(stop_sig));
}

static void wait_dead(int p) {
  struct pollfd f = { .fd = ps[p].pidfd, .events = POLLIN };
  while (poll(&f, 1, -1) < 0 && errno == EINTR) check_stop();
}

/* The next message from the running process p; 0 when it died without one. */
static int recv_from(int p, struct msg *m) {
  for (;;) {
    struct pollfd f[2] = { { .fd = rep_r, .events = POLLIN }, { .fd = ps[p].pidfd, .events = POLLIN } };
    int n = poll(f, 2, -1);
    if (n < 0 && errno == EINTR) {
      check_stop();
      continue;
    }
    if (n < 0) return 0;
    if (f[0].revents & POLLIN) {
      ssize_t r = read(rep_r, m, sizeof *m);
      if (r == (ssize_t)sizeof *m) return 1;
      if (r < 0 && errno == EINTR) {
        check_stop();
        continue;
      }
      return 0;
    }
    if (f[1].revents) return 0;
  }
}

static int pidfd_of(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static void supervise(void) {
  while (qlen > 0) {
    int p = qpop();
    ps[p].st = ST_RUNNING;
    send_go(p);
    for (int running = 1; running;) {
      struct msg m;
      if (!recv_from(p, &m)) {
        on_exit_proc(p); /* killed (no exit message) */
        break;
      }
      switch (m.type) {
      case M_FORK: {
        int c = (int)m.a;
        if (c != next_proc || c >= nprocs_max) {
          teardown();
          die_usage(1, "ptkernel: internal: fork numbering");
        }
        next_proc++;
        ps[c].pid = (pid_t)m.b;
        ps[c].parent = p;
        ps[c].pidfd = pidfd_of(ps[c].pid);
        if (ps[c].pidfd < 0) {
          teardown();
          die_usage(1, "ptkernel: pidfd_open: %s", strerror(errno));
        }
        live++;
        qpush(c);
        break;
      }
      case M_BARRIER: {
        struct barrier *b = barrier_of(m.a);
        if (!b) {
          teardown();
          die_usage(1, "ptkernel: internal: too many barriers");
        }
        b->arrived++;
        b->count = m.b;
        ps[p].st = ST_BARRIER;
        ps[p].barrier = m.a;
        if (barrier_complete(b)) {
          barrier_release(b, p);
          ps[p].st = ST_RUNNING;
          send_go(p);
        } else running = 0;
        break;
      }
      case M_WAIT:
        ps[p].st = ST_WAIT;
        ps[p].wait_for = (int)m.a;
        running = 0;
        break;
      case M_EXIT:
        wait_dead(p); /* a zombie before anyone else runs: a parent's wait4 finds it */
        on_exit_proc(p);
        running = 0;
        break;
      case M_REFUSE:
        teardown();
        die_usage(2, "ptkernel: %s", m.text);
        break;
      default:
        teardown();
        die_usage(1, "ptkernel: %s", m.type == M_FAIL ? m.text : "internal: a bad message");
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* setup */

static int high_fd(int fd) {
  int h = fcntl(fd, F_DUPFD, internal_base);
  if (h < 0) die_usage(1, "ptkernel: fcntl(F_DUPFD): %s", strerror(errno));
  close(fd);
  return h;
}

/* Grows the stack now, so that nothing it needs later can be in the way of an op. */
static void __attribute__((noinline)) grow_stack(void) {
  volatile char b[512 * 1024];
  for (size_t i = 0; i < sizeof b; i += 4096) b[i] = 0;
  b[sizeof b - 1] = 0;
}

/* /proc/self/maps into snap[] (ranges, in address order); returns how many. */
static int read_maps(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) die_usage(1, "ptkernel: /proc/self/maps: %s", strerror(errno));
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, mapsbuf + n, sizeof mapsbuf - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (n == sizeof mapsbuf - 1) die_usage(1, "ptkernel: /proc/self/maps is too long");
  }
  close(fd);
  mapsbuf[n] = 0;
  int k = 0;
  for (char *l = mapsbuf; l && *l;) {
    unsigned long long lo, hi;
    if (sscanf(l, "%llx-%llx", &lo, &hi) == 2) {
      if (k == MAX_SNAP) die_usage(1, "ptkernel: too many mappings");
      snap[k].lo = lo;
      snap[k++].hi = hi;
    }
    l = strchr(l, '\n');
    if (l) l++;
  }
  return k;
}

/*
 * Room around the helper: the kernel puts a program's first mappings right under the helper's
 * lowest one (top-down), or into a hole between two of the helper's, so an access just past
 * such a mapping would meet the helper (and be refused). Holes up to 1 GiB between the helper's
 * mappings are filled (PROT_NONE); under each mapping with a larger gap below it goes a
 * MAP_GROWSDOWN "moat" of MOAT bytes (PROT_NONE), which makes the kernel keep its stack guard
 * gap (1 MiB by default) free under it. A fault in that gap tries to grow the moat and fails
 * (RLIMIT_STACK is at most MOAT): SIGSEGV SEGV_MAPERR, as with nothing there.
 */
#define MOAT (8ULL << 20)
#define FILL_MAX (1ULL << 30)
static void make_room(void) {
  struct rlimit rs;
  if (getrlimit(RLIMIT_STACK, &rs) == 0 && (rs.rlim_cur == RLIM_INFINITY || rs.rlim_cur > MOAT)) {
    rs.rlim_cur = MOAT;
    setrlimit(RLIMIT_STACK, &rs);
  }
  int n = read_maps();
  for (int i = 0; i < n; i++) {
    uint64_t top = snap[i].lo, below = i > 0 ? snap[i - 1].hi : 0;
    if (top >= ADDR_LIMIT || top <= below) continue;
    if (below >= WIN_HI && top - below <= FILL_MAX)
      mmap((void *)below, top - below, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    else if (top - below > FILL_MAX && top >= WIN_HI + MOAT)
      mmap((void *)(top - MOAT), MOAT, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, 0);
  }
}

/* Nothing of the helper in the window; everything of it (outside the window) in snap[]. */
static void snapshot(void) {
  void *w = mmap((void *)WIN_LO, WIN_HI - WIN_LO, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (w == MAP_FAILED || w != (void *)WIN_LO)
    die_usage(2, "ptkernel: refused: the helper's own memory lies in [0x%llx, 0x%llx): %s", WIN_LO, WIN_HI,
      w == MAP_FAILED ? strerror(errno) : "the window could not be reserved");
  int n = read_maps();
  /* the window itself is not the helper's: what lies outside it is (in place, snap[] shrinks or stays) */
  static struct { uint64_t lo, hi; } all[MAX_SNAP];
  memcpy(all, snap, sizeof(all[0]) * (size_t)n);
  nsnap = 0;
  for (int i = 0; i < n; i++) {
    uint64_t lo = all[i].lo, hi = all[i].hi;
    if (lo < WIN_LO && nsnap < MAX_SNAP) {
      snap[nsnap].lo = lo;
      snap[nsnap++].hi = hi < WIN_LO ? hi : WIN_LO;
    }
    if (hi > WIN_HI && nsnap < MAX_SNAP) {
      snap[nsnap].lo = lo > WIN_HI ? lo : WIN_HI;
      snap[nsnap++].hi = hi;
    }
  }
  if (nsnap == MAX_SNAP) die_usage(1, "ptkernel: too many mappings");
#ifdef PTKERNEL_DEBUG_MAPS
  write_all(2, mapsbuf, strlen(mapsbuf));
#endif
  munmap((void *)WIN_LO, WIN_HI - WIN_LO);
}

int main(int argc, char **argv) {
  signal(SIGCHLD, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  if (argc > 1) timeout_ms = strtol(argv[1], NULL, 10); /* ms; 0 or none: no limit */
  read_input();
  parse_program();

  /* fds: 0-2 stay (/dev/null for the processes), the program's start at 3 as in the simulator; the
     helper's own are at 1024 and up (a larger base would make every fork copy a large fd table) */
  struct rlimit rl;
  long need = 2L * nprocs_max + 8;
  long want = 1024 + need + 64;
  internal_base = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want) {
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)want) {
      /* a low hard limit: the helper's fds just under it */
      want = (long)rl.rlim_max;
      internal_base = (int)(want - need - 16);
      if (internal_base < 64)
        die_usage(2, "ptkernel: refused: %d processes need %ld file descriptors (the hard limit is %ld)", nprocs_max, need + 80, want);
    }
    rl.rlim_cur = (rlim_t)want;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  out_fd = high_fd(dup(1));

  go_r = calloc((size_t)nprocs_max, sizeof(int));
  go_w = calloc((size_t)nprocs_max, sizeof(int));
  ps = calloc((size_t)nprocs_max, sizeof *ps);
  queue = calloc((size_t)nprocs_max, sizeof(int));
  barriers = calloc((size_t)maxbarriers, sizeof *barriers);
  slots = calloc((size_t)nslots + 1, sizeof *slots);
  defined = calloc((size_t)nslots + 1, 1);
  child_pid = calloc((size_t)nprocs_max, sizeof *child_pid);
  iobuf = malloc(IOBUF);
  mincore_vec = malloc(IOBUF);
  if (!go_r || !go_w || !ps || !queue || !barriers || !slots || !defined || !child_pid || !iobuf || !mincore_vec)
    die_usage(1, "ptkernel: out of memory");
  memset(iobuf, 0, IOBUF);
  memset(mincore_vec, 0, IOBUF);
  for (int p = 0; p < nprocs_max; p++) {
    int f[2];
    if (pipe(f) < 0) die_usage(1, "ptkernel: pipe: %s", strerror(errno));
    go_r[p] = high_fd(f[0]);
    go_w[p] = high_fd(f[1]);
    ps[p].pidfd = -1;
    ps[p].parent = -1;
  }
  {
    int f[2];
    if (pipe(f) < 0) die_usage(1, "ptkernel: pipe: %s", strerror(errno));
    rep_r = high_fd(f[0]);
    rep_w = high_fd(f[1]);
  }
  snprintf(shm_prefix, sizeof shm_prefix, "ptlab-%d-", (int)getpid());

  /* faults in accesses are caught; orphans come here to be reaped; the processes go first at OOM */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  /* stop cleanly when told to, when the caller dies, and when the time is up */
  struct sigaction st;
  memset(&st, 0, sizeof st);
  st.sa_handler = on_stop;
  sigemptyset(&st.sa_mask);
  sigaction(SIGTERM, &st, NULL);
  sigaction(SIGINT, &st, NULL);
  sigaction(SIGHUP, &st, NULL);
  sigaction(SIGALRM, &st, NULL);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  {
    int f = open("/proc/self/oom_score_adj", O_WRONLY);
    if (f >= 0) {
      write_all(f, "1000", 4);
      close(f);
    }
  }

  struct utsname u;
  uname(&u);
  {
    char b[512], rel[400];
    size_t n = 0;
    snprintf(rel, sizeof rel, "%s %s", u.release, u.machine);
    n += (size_t)snprintf(b, sizeof b, "{\"uname\":");
    json_str(b, sizeof b, &n, rel);
    b[n++] = '}';
    b[n++] = '\n';
    write_all(out_fd, b, n);
  }

  grow_stack();
  make_room();
  snapshot();

  /* the programs' processes */
  next_proc = ntop;
  for (int p = 0; p < ntop; p++) {
    pid_t pid = fork();
    if (pid < 0) {
      teardown();
      die_usage(1, "ptkernel: fork: %s", strerror(errno));
    }
    if (pid == 0) {
      self = p;
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      signal(SIGALRM, SIG_DFL);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (int q = 0; q < nprocs_max; q++) close(go_w[q]);
      close(rep_r);
      int nul = open("/dev/null", O_RDWR);
      if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        if (nul > 2) close(nul);
      }
      wait_go();
      run_program(p);
    }
    ps[p].pid = pid;
  }
  for (int p = 0; p < ntop; p++) {
    ps[p].pidfd = pidfd_of(ps[p].pid);
    if (ps[p].pidfd < 0) {
      teardown();
      die_usage(1, "ptkernel: pidfd_open: %s", strerror(errno));
    }
    qpush(p);
  }
  live = ntop;
  if (timeout_ms > 0) {
    struct itimerval it = { .it_value = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
  }
  check_stop();
  supervise();
  signal(SIGALRM, SIG_IGN);

  /* done: who is still blocked, then everything goes */
  char b[8192];
  size_t n = (size_t)snprintf(b, sizeof b, "{\"done\":true,\"blocked\":[");
  int first = 1;
  for (int p = 0; p < next_proc && n + 16 < sizeof b; p++)
    if (ps[p].st == ST_BARRIER || ps[p].st == ST_WAIT) {
      n += (size_t)snprintf(b + n, sizeof b - n, "%s%d", first ? "" : ",", p);
      first = 0;
    }
  n += (size_t)snprintf(b + n, sizeof b - n, "]}\n");
  teardown();
  write_all(out_fd, b, n);
  return 0;
}
