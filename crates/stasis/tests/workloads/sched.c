/*
 * Scheduling attributes, per thread: the main thread runs SCHED_BATCH at
 * nice 5 with a timer slack of 123456 ns; a worker runs SCHED_IDLE at nice
 * 12, pinned to CPU 0, slack 2000000 ns; another keeps the defaults but is
 * pinned to the last CPU with SCHED_RESET_ON_FORK. The process has
 * PR_SET_THP_DISABLE. On SIGTERM each thread checks its own.
 */
#include "wl.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

struct want {
	int policy, nice, cpu;
	unsigned long slack;
};

static const struct want wants[3] = {
	{ SCHED_BATCH, 5, -1, 123456 },
	{ SCHED_IDLE, 12, 0, 2000000 },
	{ SCHED_OTHER | SCHED_RESET_ON_FORK, 0, -2, 0 },
};
static atomic_int stage, checked;
static char why[512];

static void apply(int k)
{
	struct sched_param sp = { 0 };
	const struct want *w = &wants[k];

	if (sched_setscheduler(0, w->policy, &sp))
		wl_fail("sched_setscheduler %d: %s", k, strerror(errno));
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->nice))
		wl_fail("setpriority %d: %s", k, strerror(errno));
	if (w->cpu != -1) {
		cpu_set_t set;
		int cpu = w->cpu == -2 ? (int)sysconf(_SC_NPROCESSORS_ONLN) - 1 : w->cpu;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			wl_fail("sched_setaffinity %d: %s", k, strerror(errno));
	}
	if (w->slack && prctl(PR_SET_TIMERSLACK, w->slack))
		wl_fail("PR_SET_TIMERSLACK %d: %s", k, strerror(errno));
}

/* Empty string if thread k's attributes are as set. */
static void verify(int k, char *out, size_t len)
{
	const struct want *w = &wants[k];
	int pol = sched_getscheduler(0);
	int nice;
	long slack = prctl(PR_GET_TIMERSLACK);
	cpu_set_t set;

	out[0] = 0;
	errno = 0;
	nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
	if (pol != w->policy)
		snprintf(out, len, "thread %d: policy %#x, want %#x", k, pol, w->policy);
	else if (nice != w->nice)
		snprintf(out, len, "thread %d: nice %d, want %d", k, nice, w->nice);
	else if (w->slack && slack != (long)w->slack)
		snprintf(out, len, "thread %d: timer slack %ld, want %lu", k, slack, w->slack);
	else if (w->cpu != -1) {
		int cpu = w->cpu == -2 ? (int)sysconf(_SC_NPROCESSORS_ONLN) - 1 : w->cpu;

		sched_getaffinity(0, sizeof(set), &set);
		if (CPU_COUNT(&set) != 1 || !CPU_ISSET(cpu, &set))
			snprintf(out, len, "thread %d: affinity has %d CPUs, want only CPU %d", k,
				 CPU_COUNT(&set), cpu);
	}
}

static void *worker(void *arg)
{
	int k = (int)(long)arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	apply(k);
	atomic_fetch_add(&stage, 1);
	while (atomic_load(&stage) < 100)
		wl_sleep_ms(5);
	char buf[256];

	verify(k, buf, sizeof(buf));
	if (buf[0])
		snprintf(why, sizeof(why), "%s", buf);
	atomic_fetch_add(&checked, 1);
	return NULL;
}

int main(void)
{
	pthread_t t[2];
	char buf[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	SYS(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
	for (long k = 1; k <= 2; k++)
		CHECK(!pthread_create(&t[k - 1], NULL, worker, (void *)k), "pthread_create");
	while (atomic_load(&stage) < 2)
		wl_sleep_ms(1);
	apply(0);
	wl_ready();
	wl_wait();
	verify(0, buf, sizeof(buf));
	CHECK(!buf[0], "%s", buf);
	CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "PR_GET_THP_DISABLE is %d",
	      prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
	atomic_store(&stage, 100);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK(atomic_load(&checked) == 2, "workers did not check");
	CHECK(!why[0], "%s", why);
	wl_pass();
}
