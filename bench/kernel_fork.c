// kernel-fork: the real kernel's figure for ptlab's fork bench. A process maps SHARED_MIB of a
// memfd MAP_SHARED and PRIVATE_MIB of anonymous memory MAP_PRIVATE, writes every page of both,
// then forks ROUNDS times; each child exits at once and the parent waits for it. Only the fork()
// calls are timed (in the parent, until fork returns there). Prints one JSON line.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 50;
  size_t shared = (size_t)(argc > 2 ? atoi(argv[2]) : 64) << 20;
  size_t priv = (size_t)(argc > 3 ? atoi(argv[3]) : 64) << 20;
  int fd = memfd_create("kernel-fork", 0);
  if (fd < 0 || ftruncate(fd, shared) != 0) return perror("memfd"), 1;
  char *s = mmap(NULL, shared, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  char *p = mmap(NULL, priv, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED || p == MAP_FAILED) return perror("mmap"), 1;
  for (size_t o = 0; o < shared; o += 4096) s[o] = 1;
  for (size_t o = 0; o < priv; o += 4096) p[o] = 1;
  double inFork = 0;
  for (int i = 0; i < rounds; i++) {
    double t0 = now();
    pid_t c = fork();
    if (c == 0) _exit(0);
    inFork += now() - t0;
    if (c < 0) return perror("fork"), 1;
    waitpid(c, NULL, 0);
  }
  printf("{\"bench\":\"kernel-fork\",\"model\":\"linux\",\"threads\":1,\"ops\":%d,\"seconds\":%.6f,\"rate_per_s\":%.0f}\n", rounds, inFork, rounds / inFork);
  return 0;
}
