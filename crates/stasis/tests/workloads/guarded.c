/*
 * A busy, multi-threaded target for the dumper/restorer kill campaigns:
 * whatever moment stasis dies at, this process must carry on as if no dump
 * had started.
 *
 * State: 4 worker threads computing a checked integer and floating-point
 * sequence (any register or FPU/AVX change shows up as a wrong value), each
 * with a signal mask of its own; a 20 ms ITIMER_REAL whose SIGALRM is
 * counted by a handler; SIGUSR1 with a handler; a SIGTERM handler.
 *
 * On SIGTERM it checks, each for itself:
 *  - SIGALRM keeps arriving (the timer is armed and the signal not blocked),
 *  - every thread's mask (from /proc/self/task/TID/status) is what it set,
 *    and nothing is left pending,
 *  - every worker made progress with no wrong value,
 *  - SIGUSR1 sent to itself reaches its handler,
 *  - /proc/self/maps and the fd table are what they were at READY (no
 *    mapping or descriptor of the dumper's left behind).
 *
 * With argument "tree", it also forks 3 children that run the same worker
 * loop and ticks and check themselves the same way on SIGTERM (tree.h).
 */
#include "wl.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#define WORKERS 4

static atomic_long ticks;
static atomic_long usr1;
static atomic_long progress[WORKERS];
static atomic_int bad;
static pid_t tids[WORKERS];
static unsigned long long masks[WORKERS];
static char maps_at_ready[65536];
static char fds_at_ready[4096];

static void on_alrm(int s)
{
	(void)s;
	atomic_fetch_add(&ticks, 1);
}

static void on_usr1(int s)
{
	(void)s;
	atomic_fetch_add(&usr1, 1);
}

/* A sequence whose value after n steps is known in closed form. */
static void *worker(void *arg)
{
	long k = (long)arg;
	sigset_t m;

	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	if (k & 1)
		sigaddset(&m, SIGWINCH);
	if (k & 2)
		sigaddset(&m, SIGRTMIN + 3);
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	tids[k] = (pid_t)syscall(SYS_gettid);
	for (;;) {
		volatile double d = 0.5 * (double)k;
		unsigned long x = 0x9e3779b97f4a7c15ull * (unsigned long)(k + 1);
		for (long i = 1; i <= 100000; i++) {
			d += 1.0;
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		}
		unsigned long y = 0x9e3779b97f4a7c15ull * (unsigned long)(k + 1);
		for (long i = 1; i <= 100000; i++)
			y = y * 6364136223846793005ull + 1442695040888963407ull;
		if (d != 0.5 * (double)k + 100000.0 || x != y)
			atomic_store(&bad, 1);
		atomic_fetch_add(&progress[k], 1);
	}
	return NULL;
}

static unsigned long long status_hex(const char *path, const char *key)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;
	char *p;

	if (fd < 0)
		return ~0ull;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return ~0ull;
	buf[n] = 0;
	p = strstr(buf, key);
	if (!p)
		return ~0ull;
	return strtoull(p + strlen(key), NULL, 16);
}

static void read_file(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY);
	size_t got = 0;
	ssize_t n;

	out[0] = 0;
	if (fd < 0)
		return;
	while (got < len - 1 && (n = read(fd, out + got, len - 1 - got)) > 0)
		got += n;
	out[got] = 0;
	close(fd);
}

static void list_fds(char *out, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int own = dirfd(d);
	size_t at = 0;

	out[0] = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == own)
			continue;
		at += snprintf(out + at, len - at, "%s ", e->d_name);
	}
	closedir(d);
}

static unsigned long long want_mask(long k)
{
	unsigned long long m = 1ull << (SIGUSR2 - 1);

	if (k & 1)
		m |= 1ull << (SIGWINCH - 1);
	if (k & 2)
		m |= 1ull << (SIGRTMIN + 3 - 1);
	return m;
}

/* True once cond holds, polled for up to 3 s: on two loaded cores a
 * thread may wait a while for its turn. */
#define EVENTUALLY(cond)                                                      \
	({                                                                    \
		int _ok = 0;                                                  \
		for (int _i = 0; _i < 300 && !(_ok = (cond)); _i++)           \
			wl_sleep_ms(10);                                      \
		_ok;                                                          \
	})

static void check_all(const char *who)
{
	char path[64], now[sizeof(maps_at_ready)];
	long p0[WORKERS], t0 = atomic_load(&ticks);
	unsigned long long main_mask;

	for (int k = 0; k < WORKERS; k++)
		p0[k] = atomic_load(&progress[k]);
	CHECK(EVENTUALLY(atomic_load(&ticks) - t0 >= 5),
	      "%s: SIGALRM arrived %ld times in 3 s (20 ms timer)", who, atomic_load(&ticks) - t0);
	CHECK(!atomic_load(&bad), "%s: a worker computed a wrong value (registers or FPU changed)", who);
	for (int k = 0; k < WORKERS; k++) {
		CHECK(EVENTUALLY(atomic_load(&progress[k]) > p0[k]), "%s: worker %d made no progress in 3 s",
		      who, k);
		snprintf(path, sizeof(path), "/proc/self/task/%d/status", tids[k]);
		masks[k] = status_hex(path, "SigBlk:");
		CHECK(masks[k] == want_mask(k), "%s: worker %d mask %llx, want %llx", who, k, masks[k],
		      want_mask(k));
		/* A signal may be pending for a moment; one left pending stays. */
		CHECK(EVENTUALLY(status_hex(path, "SigPnd:") == 0), "%s: worker %d keeps pending signals %llx",
		      who, k, status_hex(path, "SigPnd:"));
	}
	main_mask = status_hex("/proc/self/status", "SigBlk:");
	CHECK(main_mask == 0, "%s: main thread mask %llx", who, main_mask);
	CHECK(EVENTUALLY(status_hex("/proc/self/status", "ShdPnd:") == 0),
	      "%s: process-wide pending signals stay: %llx", who, status_hex("/proc/self/status", "ShdPnd:"));
	long u = atomic_load(&usr1);
	kill(getpid(), SIGUSR1);
	CHECK(EVENTUALLY(atomic_load(&usr1) != u) && atomic_load(&usr1) == u + 1,
	      "%s: SIGUSR1 handler ran %ld times", who, atomic_load(&usr1) - u);
	read_file("/proc/self/maps", now, sizeof(now));
	CHECK(!strcmp(now, maps_at_ready), "%s: mappings changed:\n--- at READY\n%s--- now\n%s", who,
	      maps_at_ready, now);
	list_fds(now, sizeof(fds_at_ready));
	CHECK(!strcmp(now, fds_at_ready), "%s: fds changed: [%s] -> [%s]", who, fds_at_ready, now);
}

static void setup(void)
{
	struct sigaction sa;
	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
	pthread_t th;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm;
	sa.sa_flags = SA_RESTART;
	SYS(sigaction(SIGALRM, &sa, NULL));
	sa.sa_handler = on_usr1;
	SYS(sigaction(SIGUSR1, &sa, NULL));
	for (long k = 0; k < WORKERS; k++)
		if (pthread_create(&th, NULL, worker, (void *)k))
			wl_fail("pthread_create");
	for (int k = 0; k < WORKERS; k++)
		while (!tids[k] || !atomic_load(&progress[k]))
			wl_sleep_ms(1);
	SYS(setitimer(ITIMER_REAL, &it, NULL));
}

int main(int argc, char **argv)
{
	int tree = argc > 1 && !strcmp(argv[1], "tree");
	pid_t kids[3];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (tree) {
		for (int i = 0; i < 3; i++) {
			kids[i] = SYS(fork());
			if (kids[i] == 0) {
				/* Children report through their exit status. */
				setup();
				{
					struct sigaction sa;

					memset(&sa, 0, sizeof(sa));
					sa.sa_handler = wl_on_term;
					SYS(sigaction(SIGTERM, &sa, NULL));
				}
				read_file("/proc/self/maps", maps_at_ready, sizeof(maps_at_ready));
				list_fds(fds_at_ready, sizeof(fds_at_ready));
				while (!wl_term)
					pause();
				check_all("child");
				_exit(0);
			}
		}
	}
	setup();
	read_file("/proc/self/maps", maps_at_ready, sizeof(maps_at_ready));
	list_fds(fds_at_ready, sizeof(fds_at_ready));
	wl_ready();
	wl_wait();
	check_all("root");
	if (tree) {
		for (int i = 0; i < 3; i++) {
			int st;

			kill(kids[i], SIGTERM);
			CHECK(waitpid(kids[i], &st, 0) == kids[i], "waitpid child %d", kids[i]);
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed its checks (status %x)",
			      kids[i], st);
		}
	}
	wl_pass();
}
