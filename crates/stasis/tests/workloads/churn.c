/*
 * A target that keeps changing while it is dumped. Argument:
 *   fork     forks children that exit at once, reaping them, all the time
 *   threads  4 threads that each start a thread that exits, in a loop
 *   exec     re-executes itself every few ms (argv[2] counts the execs)
 *   mmap     2 threads that map, fill, check and unmap memory in a loop
 * A dump must either take a consistent picture (the restored copy passes
 * these checks) or refuse with a clear error; the original must never be
 * harmed.
 *
 * On SIGTERM: the churn went on (the counter grew after SIGTERM
 * arrived, within 3 s) with no error: every fork's child exited 0 and was reaped, every
 * thread joined, every mapping held what was written to it.
 */
#include "wl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

static atomic_long done;
static atomic_int bad;
static char bad_why[256];

static void set_bad(const char *why)
{
	if (!atomic_exchange(&bad, 1))
		snprintf(bad_why, sizeof(bad_why), "%s (%s)", why, strerror(errno));
}

static void *nothing(void *arg)
{
	return arg;
}

static void *thread_churn(void *arg)
{
	for (;;) {
		pthread_t t;
		void *ret;

		if (pthread_create(&t, NULL, nothing, arg)) {
			set_bad("pthread_create");
			wl_sleep_ms(10);
			continue;
		}
		if (pthread_join(t, &ret) || ret != arg)
			set_bad("pthread_join");
		atomic_fetch_add(&done, 1);
	}
	return NULL;
}

static void *map_churn(void *arg)
{
	long k = (long)arg;

	for (unsigned long i = 0;; i++) {
		size_t len = (1 + (i % 16)) * 4096;
		unsigned long *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			set_bad("mmap");
			continue;
		}
		for (size_t j = 0; j < len / 8; j += 512)
			p[j] = i * 1000 + j + (unsigned long)k;
		sched_yield();
		for (size_t j = 0; j < len / 8; j += 512)
			if (p[j] != i * 1000 + j + (unsigned long)k)
				set_bad("mapping lost its contents");
		if (munmap(p, len))
			set_bad("munmap");
		atomic_fetch_add(&done, 1);
	}
	return NULL;
}

static void fork_churn_step(void)
{
	int st;
	pid_t c = fork();

	if (c < 0) {
		set_bad("fork");
		return;
	}
	if (c == 0)
		_exit(0);
	pid_t r;

	/* SIGTERM's handler has no SA_RESTART. */
	while ((r = waitpid(c, &st, 0)) < 0 && errno == EINTR)
		;
	if (r != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		set_bad("child did not exit 0");
	atomic_fetch_add(&done, 1);
}

static void exec_self(char **argv, long n)
{
	char num[32];
	char *args[] = { argv[0], "exec", num, NULL };

	snprintf(num, sizeof(num), "%ld", n);
	execv("/proc/self/exe", args);
	wl_fail("execv: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "fork";
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "exec")) {
		long n = argc > 2 ? atol(argv[2]) : 0;
		struct sigaction sa;

		sigset_t term;

		/* SIGTERM stays blocked across each execve (the mask and pending
		 * signals survive it, the handler does not) until the new image
		 * has its handler again. */
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		if (n == 0) {
			wl_ready();
		} else {
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = wl_on_term;
			SYS(sigaction(SIGTERM, &sa, NULL));
		}
		sigprocmask(SIG_UNBLOCK, &term, NULL);
		/* Each image lives a few ms, then the next one starts. */
		for (int i = 0; i < 3 && !wl_term; i++)
			wl_sleep_ms(1);
		sigprocmask(SIG_BLOCK, &term, NULL);
		if (!wl_term)
			exec_self(argv, n + 1);
		CHECK(n > 0, "never re-executed");
		printf("execs: %ld\n", n);
		wl_pass();
	}
	/* SIGTERM is for the main thread alone: its threads inherit it blocked. */
	sigset_t term;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	if (!strcmp(mode, "threads")) {
		for (long k = 0; k < 4; k++)
			CHECK(!pthread_create(&t, NULL, thread_churn, (void *)k), "pthread_create");
	} else if (!strcmp(mode, "mmap")) {
		for (long k = 0; k < 2; k++)
			CHECK(!pthread_create(&t, NULL, map_churn, (void *)k), "pthread_create");
	} else {
		CHECK(!strcmp(mode, "fork"), "unknown mode %s", mode);
	}
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	while (atomic_load(&done) < 10) {
		if (!strcmp(mode, "fork"))
			fork_churn_step();
		else
			wl_sleep_ms(1);
	}
	wl_ready();
	while (!wl_term) {
		if (!strcmp(mode, "fork"))
			fork_churn_step();
		else
			pause();
	}
	long before = atomic_load(&done);
	/* Up to 3 s: on two loaded cores the threads may wait for a turn. */
	double until = wl_now_mono() + 3;
	while (wl_now_mono() < until && atomic_load(&done) < before + 5) {
		if (!strcmp(mode, "fork"))
			fork_churn_step();
		else
			wl_sleep_ms(5);
	}
	CHECK(!atomic_load(&bad), "%s", bad_why);
	CHECK(atomic_load(&done) > before, "%s churn stopped (%ld)", mode, before);
	wl_pass();
}
