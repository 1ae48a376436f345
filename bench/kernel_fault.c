/*
 * kernel-minor-fault: the real kernel's MAP_SHARED memfd minor fault, the yardstick for ptlab's
 * minor-fault benchmark (same shape: a 32 MiB file, populated once, then R rounds of
 * mmap / write one byte per page / munmap).
 *
 * Minor faults are counted with getrusage(RUSAGE_SELF).ru_minflt and timed with
 * clock_gettime(CLOCK_MONOTONIC) around the touch loops only (as ptlab times only its touch ops);
 * mmap and munmap are timed apart. Prints one JSON line. Usage: kernel_fault [rounds] [MiB]
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long minflt(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static void die(const char *what) {
	perror(what);
	exit(1);
}

int main(int argc, char **argv) {
	const int rounds = argc > 1 ? atoi(argv[1]) : 40;
	const size_t bytes = (size_t)(argc > 2 ? atoi(argv[2]) : 32) << 20;
	const long page = sysconf(_SC_PAGESIZE);
	const size_t pages = bytes / page;

	int fd = memfd_create("ptlab-bench", 0);
	if (fd < 0) die("memfd_create");
	if (ftruncate(fd, bytes) < 0) die("ftruncate");

	/* Populate the page cache: write every page once. */
	volatile char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) die("mmap");
	for (size_t i = 0; i < pages; i++) p[i * page] = 1;
	munmap((void *)p, bytes);

	double touch_s = 0, map_s = 0;
	long faults = 0;
	for (int r = 0; r < rounds; r++) {
		double t0 = now_s();
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) die("mmap");
		long f0 = minflt();
		double t1 = now_s();
		for (size_t i = 0; i < pages; i++) p[i * page] = (char)r;
		double t2 = now_s();
		faults += minflt() - f0;
		munmap((void *)p, bytes);
		double t3 = now_s();
		touch_s += t2 - t1;
		map_s += (t1 - t0) + (t3 - t2);
	}
	close(fd);
	printf("{\"bench\":\"kernel-minor-fault\",\"model\":\"linux\",\"threads\":1,\"ops\":%ld,\"seconds\":%.4f,"
	       "\"rate_per_s\":%.0f,\"expected_faults\":%zu,\"rounds\":%d,\"file_bytes\":%zu,\"mmap_munmap_seconds\":%.4f}\n",
	       faults, touch_s, faults / touch_s, pages * (size_t)rounds, rounds, bytes, map_s);
	return 0;
}
