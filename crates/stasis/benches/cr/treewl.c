/*
 * The process-tree workload of benches/cr.rs (cases tree100 and cow8; the
 * Rust side is cr/tree.rs).
 *
 *   treewl NPROCS BYTES private   the root forks NPROCS-1 children; then
 *                                 every process (root included) maps BYTES
 *                                 of private anonymous memory and fills it
 *                                 with a pattern of its own index, so no
 *                                 page is shared;
 *   treewl NPROCS BYTES cow       the root maps and fills BYTES, then forks
 *                                 NPROCS-1 children that only ever read it:
 *                                 all NPROCS share the same frames
 *                                 copy-on-write.
 *
 * Every process writes "READY idx pid fill_ms" once set up, then waits in
 * sigwaitinfo() for SIGUSR1 or SIGTERM, both blocked from before the first
 * fork: a signal sent at any time is never lost and never kills (pause()
 * with a handler would have a lost-wakeup window between the flag test and
 * the sleep). EINTR, which a checkpoint's stop causes, is retried.
 *
 * SIGUSR1 to any process: it checks its pid, its parent (the root, for a
 * child) and every word of its memory, then writes "VERIFY k idx pid OK ms"
 * or "VERIFY k idx pid FAIL ..." (k counts its own SIGUSR1s).
 * SIGTERM to the root: it checks itself, sends SIGTERM to every child, each
 * of which checks itself and exits 0 (1 and a BAD line on failure), reaps
 * them all and prints PASS and exits 0 when all passed, else FAIL, exit 1.
 *
 * Output: one write() per line on the O_APPEND log the bench gave as
 * stdout, so lines of different processes never interleave; no stdio
 * buffer is ever inherited across fork.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXPROCS 4096

static uint64_t seed;	/* random per run; set before the forks */
static pid_t root_pid;
static pid_t my_pid;	/* as forked: after restore getpid() must match */
static int my_idx;	/* 0 for the root, 1..n-1 for the children */
static int pat_idx;	/* whose pattern the memory holds (0 for cow) */
static pid_t kids[MAXPROCS];
static int nkids;
static uint64_t *mem;
static size_t nwords;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(1, buf, n) != n)
		_exit(3);
}

/* Word i of process idx's memory: distinct per process and per position. */
static inline uint64_t pat(int idx, size_t i)
{
	uint64_t x = seed ^ ((uint64_t)idx << 44) ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL);

	return x ^ (x >> 31);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void map_mem(size_t bytes)
{
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		say("FAIL: idx %d: mmap %zu bytes: %s", my_idx, bytes, strerror(errno));
		_exit(1);
	}
	nwords = bytes / 8;
}

/* Returns the fill time in ms. */
static double fill(void)
{
	double t0 = now_ms();

	for (size_t i = 0; i < nwords; i++)
		mem[i] = pat(pat_idx, i);
	/* `mem` is global and read back later anyway; this makes sure the
	 * stores are emitted here, before READY. */
	__asm__ volatile("" ::: "memory");
	return now_ms() - t0;
}

/* Checks identity and memory; writes what is wrong into why (empty: OK). */
static void check(char *why, size_t len)
{
	size_t bad = 0, first = 0;

	why[0] = 0;
	if (getpid() != my_pid) {
		snprintf(why, len, "getpid() %d, was %d", getpid(), my_pid);
		return;
	}
	if (my_idx && getppid() != root_pid) {
		snprintf(why, len, "getppid() %d, want the root %d", getppid(), root_pid);
		return;
	}
	for (size_t i = 0; i < nwords; i++) {
		if (mem[i] != pat(pat_idx, i)) {
			if (!bad)
				first = i;
			bad++;
		}
	}
	if (bad)
		snprintf(why, len, "%zu of %zu words wrong, first word %zu is %016llx, want %016llx",
			 bad, nwords, first, (unsigned long long)mem[first],
			 (unsigned long long)pat(pat_idx, first));
}

/* The root's verdict on SIGTERM: itself, then every child's exit status. */
static void __attribute__((noreturn)) root_finish(void)
{
	char why[256];
	int fails = 0;

	check(why, sizeof(why));
	if (why[0]) {
		say("BAD: root: %s", why);
		fails++;
	}
	for (int i = 0; i < nkids; i++)
		if (kill(kids[i], SIGTERM)) {
			say("BAD: kill(child %d, pid %d): %s", i + 1, kids[i], strerror(errno));
			fails++;
		}
	for (int i = 0; i < nkids; i++) {
		int st = 0;
		pid_t r;

		do
			r = waitpid(kids[i], &st, 0);
		while (r < 0 && errno == EINTR);
		if (r != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			say("BAD: child %d (pid %d): waitpid %d, status %#x", i + 1, kids[i], r, st);
			fails++;
		}
	}
	if (fails) {
		say("FAIL: %d of %d processes bad", fails, nkids + 1);
		_exit(1);
	}
	say("PASS %d processes", nkids + 1);
	_exit(0);
}

static void __attribute__((noreturn)) serve(void)
{
	sigset_t set;
	unsigned long k = 0;
	char why[256];

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);

		if (sig < 0) {
			if (errno == EINTR)
				continue;
			say("FAIL: idx %d: sigwaitinfo: %s", my_idx, strerror(errno));
			_exit(1);
		}
		if (sig == SIGUSR1) {
			double t0 = now_ms();

			k++;
			check(why, sizeof(why));
			if (why[0])
				say("VERIFY %lu %d %d FAIL %s", k, my_idx, getpid(), why);
			else
				say("VERIFY %lu %d %d OK %.1f ms", k, my_idx, getpid(), now_ms() - t0);
		} else if (my_idx == 0) {
			root_finish();
		} else {
			check(why, sizeof(why));
			if (why[0]) {
				say("BAD: child %d (pid %d): %s", my_idx, getpid(), why);
				_exit(1);
			}
			_exit(0);
		}
	}
}

int main(int argc, char **argv)
{
	struct timespec ts;
	sigset_t set;
	size_t bytes;
	int n, cow;
	double ms = 0;

	if (argc != 4 || (strcmp(argv[3], "private") && strcmp(argv[3], "cow"))) {
		say("FAIL: usage: %s NPROCS BYTES private|cow", argv[0]);
		return 2;
	}
	n = atoi(argv[1]);
	bytes = strtoull(argv[2], NULL, 0);
	cow = !strcmp(argv[3], "cow");
	if (n < 1 || n > MAXPROCS || bytes < 8) {
		say("FAIL: NPROCS must be 1..%d and BYTES >= 8", MAXPROCS);
		return 2;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 50);
	root_pid = my_pid = getpid();

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL)) {
		say("FAIL: sigprocmask: %s", strerror(errno));
		return 1;
	}
	if (cow) {
		map_mem(bytes);
		ms = fill();
	}
	for (int i = 1; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			say("FAIL: fork %d: %s", i, strerror(errno));
			/* the children made so far see no root and are killed by
			 * the bench's cleanup */
			return 1;
		}
		if (pid == 0) {
			my_idx = i;
			my_pid = getpid();
			nkids = 0;
			if (!cow) {
				pat_idx = i;
				map_mem(bytes);
				ms = fill();
			}
			say("READY %d %d %.1f", my_idx, my_pid, cow ? 0.0 : ms);
			serve();
		}
		kids[nkids++] = pid;
	}
	if (!cow) {
		map_mem(bytes);
		ms = fill();
	}
	say("READY 0 %d %.1f", my_pid, ms);
	serve();
}
