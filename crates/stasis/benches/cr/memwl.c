/* The memory workload of benches/cr.rs: see the module doc there. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_term;
static uint64_t *mem;
static size_t nwords;
static uint64_t seed; /* random per run, in .bss: must survive restore too */

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

/* Word i of the memory: depends on the seed and on the position. */
static inline uint64_t pat(size_t i)
{
	uint64_t x = seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL);

	return x ^ (x >> 31);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Number of wrong words; *first is the index of the first one. */
static size_t check(size_t *first)
{
	size_t bad = 0;

	*first = 0;
	for (size_t i = 0; i < nwords; i++) {
		if (mem[i] != pat(i)) {
			if (!bad)
				*first = i;
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	struct timespec ts;
	struct sigaction sa;
	unsigned long k = 0;
	size_t bytes, first, bad;
	double t0, t1;

	if (argc != 2 && !(argc == 3 && !strcmp(argv[2], "memfd"))) {
		printf("FAIL: usage: %s BYTES [memfd]\n", argv[0]);
		return 2;
	}
	bytes = strtoull(argv[1], NULL, 0);
	nwords = bytes / 8;
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 44);
	if (argc == 3) {
		/* A memfd mapped shared, its fd closed: a file with no name. */
		int fd = memfd_create("memwl", 0);

		if (fd < 0 || ftruncate(fd, bytes)) {
			printf("FAIL: memfd of %zu bytes: %m\n", bytes);
			return 1;
		}
		mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
	} else {
		mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (mem == MAP_FAILED) {
		printf("FAIL: mmap %zu bytes: %m\n", bytes);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: interrupts nanosleep */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	t0 = now_ms();
	for (size_t i = 0; i < nwords; i++)
		mem[i] = pat(i);
	t1 = now_ms();
	printf("READY bytes=%zu at=%p seed=%016llx fill_ms=%.0f\n", bytes, (void *)mem,
	       (unsigned long long)seed, t1 - t0);
	fflush(stdout);

	for (;;) {
		/* Polling sleep rather than pause(): no lost-wakeup window. */
		while (!got_usr1 && !got_term) {
			struct timespec d = { 0, 100 * 1000 * 1000 };

			nanosleep(&d, NULL);
		}
		if (got_usr1) {
			got_usr1 = 0;
			k++;
			t0 = now_ms();
			bad = check(&first);
			t1 = now_ms();
			if (bad)
				printf("VERIFY %lu FAIL %zu of %zu words wrong, first word %zu "
				       "(addr %p) is %016llx, want %016llx\n",
				       k, bad, nwords, first, (void *)&mem[first],
				       (unsigned long long)mem[first], (unsigned long long)pat(first));
			else
				printf("VERIFY %lu OK %zu bytes checked in %.0f ms\n", k, bytes, t1 - t0);
			fflush(stdout);
		}
		if (got_term) {
			bad = check(&first);
			if (bad) {
				printf("FAIL: %zu of %zu words wrong, first word %zu is %016llx, want %016llx\n",
				       bad, nwords, first, (unsigned long long)mem[first],
				       (unsigned long long)pat(first));
				fflush(stdout);
				_exit(1);
			}
			printf("PASS\n");
			fflush(stdout);
			return 0;
		}
	}
}
