/*
 * POSIX timers firing every millisecond while the process is dumped and
 * restored: one SIGEV_THREAD timer (glibc runs it through a helper thread
 * that waits for its internal signal 32), and one SIGEV_THREAD_ID timer
 * aimed at a worker thread with SIGRTMIN+1. Restore must not trip over
 * these signals arriving while it still drives the threads (it did: "got
 * signal 32 instead of a syscall stop"), and both must keep firing after.
 *
 * On SIGTERM: both counters grow by 20 within 3 s, and every SIGRTMIN+1 ran in
 * the worker it was aimed at.
 */
#include "wl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static atomic_long by_thread_cb, by_thread_id, wrong_thread;
static volatile pid_t worker_tid;

static void on_timer_thread(union sigval v)
{
	(void)v;
	atomic_fetch_add(&by_thread_cb, 1);
}

static void on_rt(int s)
{
	(void)s;
	if ((pid_t)syscall(SYS_gettid) != worker_tid)
		atomic_fetch_add(&wrong_thread, 1);
	atomic_fetch_add(&by_thread_id, 1);
}

static void *worker(void *arg)
{
	sigset_t m;

	(void)arg;
	worker_tid = (pid_t)syscall(SYS_gettid);
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + 1);
	pthread_sigmask(SIG_UNBLOCK, &m, NULL);
	/* SIGTERM is for the main thread, which waits for it in pause(). */
	sigemptyset(&m);
	sigaddset(&m, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	struct sigevent sev;
	struct sigaction sa;
	struct itimerspec its = { { 0, 1000000 }, { 0, 1000000 } };
	timer_t t1, t2;
	pthread_t th;
	sigset_t m;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_rt;
	sa.sa_flags = SA_RESTART;
	SYS(sigaction(SIGRTMIN + 1, &sa, NULL));
	/* Only the worker takes SIGRTMIN+1. */
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + 1);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	if (pthread_create(&th, NULL, worker, NULL))
		wl_fail("pthread_create");
	while (!worker_tid)
		wl_sleep_ms(1);

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = on_timer_thread;
	SYS(timer_create(CLOCK_MONOTONIC, &sev, &t1));
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGRTMIN + 1;
	sev._sigev_un._tid = worker_tid;
	SYS(timer_create(CLOCK_MONOTONIC, &sev, &t2));
	SYS(timer_settime(t1, 0, &its, NULL));
	SYS(timer_settime(t2, 0, &its, NULL));
	/* On two loaded cores glibc's first callback thread may take a while. */
	for (int i = 0; i < 300 && !(atomic_load(&by_thread_cb) > 0 && atomic_load(&by_thread_id) > 0); i++)
		wl_sleep_ms(10);
	CHECK(atomic_load(&by_thread_cb) > 0 && atomic_load(&by_thread_id) > 0, "timers do not fire");
	wl_ready();
	wl_wait();

	long a = atomic_load(&by_thread_cb), b = atomic_load(&by_thread_id);
	for (int i = 0; i < 300 && (atomic_load(&by_thread_cb) - a < 20 || atomic_load(&by_thread_id) - b < 20);
	     i++)
		wl_sleep_ms(10);
	CHECK(atomic_load(&by_thread_cb) - a >= 20, "SIGEV_THREAD timer ran %ld times in 3 s",
	      atomic_load(&by_thread_cb) - a);
	CHECK(atomic_load(&by_thread_id) - b >= 20, "SIGEV_THREAD_ID timer fired %ld times in 3 s",
	      atomic_load(&by_thread_id) - b);
	CHECK(atomic_load(&wrong_thread) == 0, "%ld SIGRTMIN+1 ran outside the worker",
	      atomic_load(&wrong_thread));
	wl_pass();
}
