/*
 * timers_fire.c - periodic timers that expire while the process is frozen
 * must keep running afterwards (restored, or left running).
 *
 * An interval timer re-arms only when its signal is taken (ITIMER_REAL
 * and POSIX timers in dequeue/delivery, a timerfd when read). While the
 * process is frozen its signals wait: such a timer reads as "expired,
 * interval 20 ms" with its signal pending. Restoring it as read (value 0)
 * would disarm it for good.
 *
 * State before READY:
 *   ITIMER_REAL     20 ms, interval 20 ms, SIGALRM counted by a handler
 *   ITIMER_VIRTUAL  10 ms / 10 ms, SIGVTALRM counted (fires only on CPU use)
 *   ITIMER_PROF     10 ms / 10 ms, SIGPROF counted
 *   POSIX timer     CLOCK_MONOTONIC SIGEV_SIGNAL SIGRTMIN+1, 20 ms / 20 ms
 *   timerfd         CLOCK_MONOTONIC 20 ms / 20 ms, TFD_NONBLOCK, never read
 *                   before SIGTERM (so expired, one unread expiration)
 * The dump freezes the process for much more than 20 ms, so the signal
 * timers expire while it is frozen. With argument "held" the process also
 * blocks SIGALRM and SIGRTMIN+1 itself from 100 ms before READY until
 * SIGTERM: then the timers have certainly expired with their signals
 * pending when the dump starts.
 *
 * After SIGTERM (signals unblocked again):
 *   - ITIMER_REAL: interval 20 ms, value in (0, 20 ms];
 *   - within 500 ms: >= 10 SIGALRM, >= 10 SIGRTMIN+1, >= 10 timerfd
 *     expirations (25 expected each; a disarmed timer gives at most 1);
 *   - 200 ms of CPU: >= 5 SIGVTALRM and >= 5 SIGPROF.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>

#include "wlx.h"

#define MS 1000000L

static atomic_int n_alrm, n_vtalrm, n_prof, n_rt;

static void on_sig(int sig)
{
	if (sig == SIGALRM)
		atomic_fetch_add(&n_alrm, 1);
	else if (sig == SIGVTALRM)
		atomic_fetch_add(&n_vtalrm, 1);
	else if (sig == SIGPROF)
		atomic_fetch_add(&n_prof, 1);
	else
		atomic_fetch_add(&n_rt, 1);
}

static void install(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL))
		wl_fail("setup: sigaction %d: %s", sig, strerror(errno));
}

/* Expirations of the timerfd since the last read (0 if none). */
static uint64_t tfd_take(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n)) {
		if (errno != EAGAIN)
			wl_bad("timerfd read: %s", strerror(errno));
		return 0;
	}
	return n;
}

/* Burns `ms` of this thread's CPU time. */
static void spin_cpu_ms(long ms)
{
	struct timespec t0, t;
	volatile uint64_t x = 0;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	do {
		for (int i = 0; i < 100000; i++)
			x += i;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / MS < ms);
}

int main(int argc, char **argv)
{
	int held = argc > 1 && strcmp(argv[1], "held") == 0;
	struct itimerval real = { { 0, 20000 }, { 0, 20000 } };
	struct itimerval cpu = { { 0, 10000 }, { 0, 10000 } };
	struct sigevent sev;
	int tid = -1;
	sigset_t hold;

	install(SIGALRM);
	install(SIGVTALRM);
	install(SIGPROF);
	install(SIGRTMIN + 1);
	SYS(setitimer(ITIMER_REAL, &real, NULL));
	SYS(setitimer(ITIMER_VIRTUAL, &cpu, NULL));
	SYS(setitimer(ITIMER_PROF, &cpu, NULL));

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 1;
	SYS(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &tid));
	struct itimerspec its = { { 0, 20 * MS }, { 0, 20 * MS } };
	SYS(syscall(SYS_timer_settime, tid, 0, &its, NULL));

	int tfd = SYS(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
	SYS(timerfd_settime(tfd, 0, &its, NULL));

	/* The handlers work: timers tick before READY. */
	wl_sleep_ms(100);
	spin_cpu_ms(50);
	if (atomic_load(&n_alrm) < 2 || atomic_load(&n_rt) < 2)
		wl_fail("setup: %d SIGALRM, %d SIGRTMIN+1 in 100 ms", atomic_load(&n_alrm),
			atomic_load(&n_rt));
	if (atomic_load(&n_vtalrm) < 1 || atomic_load(&n_prof) < 1)
		wl_fail("setup: %d SIGVTALRM, %d SIGPROF in 50 ms of CPU", atomic_load(&n_vtalrm),
			atomic_load(&n_prof));
	tfd_take(tfd);

	sigemptyset(&hold);
	sigaddset(&hold, SIGALRM);
	sigaddset(&hold, SIGRTMIN + 1);
	if (held) {
		sigset_t pend;

		pthread_sigmask(SIG_BLOCK, &hold, NULL);
		wl_sleep_ms(100);
		sigpending(&pend);
		if (!sigismember(&pend, SIGALRM) || !sigismember(&pend, SIGRTMIN + 1))
			wl_fail("setup: SIGALRM/SIGRTMIN+1 not pending while blocked");
	}
	wl_note("timers armed%s; POSIX timer id %d, timerfd %d",
		held ? ", SIGALRM and SIGRTMIN+1 held" : "", tid, tfd);

	wl_ready_sigwait(NULL, NULL);

	if (held) {
		sigset_t pend;

		sigpending(&pend);
		if (!sigismember(&pend, SIGALRM))
			wl_bad("held SIGALRM no longer pending");
		if (!sigismember(&pend, SIGRTMIN + 1))
			wl_bad("held SIGRTMIN+1 no longer pending");
	}
	/* Read before the held signals are taken: that would re-arm it. */
	struct itimerval cur;
	SYS(getitimer(ITIMER_REAL, &cur));
	pthread_sigmask(SIG_UNBLOCK, &hold, NULL);
	if (cur.it_interval.tv_sec != 0 || cur.it_interval.tv_usec != 20000)
		wl_bad("ITIMER_REAL interval %ld.%06ld s, want 0.020000", (long)cur.it_interval.tv_sec,
		       (long)cur.it_interval.tv_usec);
	else if (cur.it_value.tv_sec != 0 || cur.it_value.tv_usec <= 0 || cur.it_value.tv_usec > 20000)
		wl_say("note: ITIMER_REAL value %ld.%06ld s (pending SIGALRM re-arms it)",
		       (long)cur.it_value.tv_sec, (long)cur.it_value.tv_usec);
	else
		wl_say("ITIMER_REAL ok: value %ld us, interval 20 ms", (long)cur.it_value.tv_usec);

	int a0 = atomic_load(&n_alrm), r0 = atomic_load(&n_rt);
	uint64_t t0 = tfd_take(tfd);
	wl_sleep_ms(500);
	int da = atomic_load(&n_alrm) - a0, dr = atomic_load(&n_rt) - r0;
	uint64_t dt = tfd_take(tfd);

	if (da < 10)
		wl_bad("ITIMER_REAL: %d SIGALRM in 500 ms, want ~25 (timer disarmed?)", da);
	else
		wl_say("ITIMER_REAL ok: %d SIGALRM in 500 ms", da);
	if (dr < 10)
		wl_bad("POSIX timer: %d SIGRTMIN+1 in 500 ms, want ~25 (timer disarmed?)", dr);
	else
		wl_say("POSIX timer ok: %d signals in 500 ms", dr);
	if (dt < 10)
		wl_bad("timerfd: %llu expirations in 500 ms (%llu unread at SIGTERM), want ~25",
		       (unsigned long long)dt, (unsigned long long)t0);
	else
		wl_say("timerfd ok: %llu expirations in 500 ms (%llu unread at SIGTERM)",
		       (unsigned long long)dt, (unsigned long long)t0);

	int v0 = atomic_load(&n_vtalrm), p0 = atomic_load(&n_prof);
	spin_cpu_ms(200);
	int dv = atomic_load(&n_vtalrm) - v0, dp = atomic_load(&n_prof) - p0;
	if (dv < 5 || dp < 5)
		wl_bad("CPU itimers: %d SIGVTALRM, %d SIGPROF in 200 ms of CPU, want ~16 each", dv, dp);
	else
		wl_say("CPU itimers ok: %d SIGVTALRM, %d SIGPROF in 200 ms of CPU", dv, dp);
	wl_verdict();
}
