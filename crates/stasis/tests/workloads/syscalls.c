/*
 * syscalls.c - threads parked in interruptible syscalls across checkpoint/restore.
 *
 * Before READY every thread is verified (via /proc/self/task/<tid>/syscall)
 * to be blocked in its syscall:
 *   ns     nanosleep(3600 s)                          SYS_nanosleep
 *   abs    clock_nanosleep(MONOTONIC, ABSTIME, ~4 s)  SYS_clock_nanosleep
 *   read   read() on pipe A                           SYS_read
 *   futex  FUTEX_WAIT_PRIVATE on a word               SYS_futex
 *   poll   poll() on pipe B, 1 h timeout              SYS_poll
 *   pause  pause()                                    SYS_pause
 *   main   sigwaitinfo({SIGTERM})
 *
 * After restore each syscall must behave "as after a signal without a
 * handler":
 *   - read() and pause() must be restarted transparently (they return
 *     -ERESTARTSYS / -ERESTARTNOHAND in the kernel): an EINTR without a
 *     handler having run is a FAIL.
 *   - nanosleep() and poll() use the restart block (-ERESTART_RESTARTBLOCK);
 *     a restorer may legitimately turn that into EINTR.  The loops continue
 *     with the remaining time; for nanosleep the kernel writes `rem` when it
 *     is interrupted, and it must be consistent (rem <= req, and it may not
 *     claim more sleep than the wall time that passed).  Returning 0 early is
 *     a FAIL.
 *   - futex wait may wake spuriously (allowed, loop re-checks the word), but
 *     after SIGTERM the thread must be back in FUTEX_WAIT so that FUTEX_WAKE
 *     wakes exactly one waiter.
 *   - the absolute clock_nanosleep must never return before its deadline.
 *   - sigwaitinfo may return EINTR after a stop (Linux behaviour); main loops.
 *
 * After SIGTERM main wakes every thread in a defined way and checks the wake
 * reason each thread recorded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wlx.h"

enum { T_NS, T_ABS, T_READ, T_FUTEX, T_POLL, T_PAUSE, NT };

struct result {
	const char *name;
	long sysnr;             /* syscall it must be blocked in */
	pthread_t th;
	atomic_int tid;
	atomic_int done;
	int ok;
	char msg[512];
};

static struct result R[NT] = {
	[T_NS] = { .name = "nanosleep", .sysnr = SYS_nanosleep },
	[T_ABS] = { .name = "clock_nanosleep", .sysnr = SYS_clock_nanosleep },
	[T_READ] = { .name = "read", .sysnr = SYS_read },
	[T_FUTEX] = { .name = "futex", .sysnr = SYS_futex },
	[T_POLL] = { .name = "poll", .sysnr = SYS_poll },
	[T_PAUSE] = { .name = "pause", .sysnr = SYS_pause },
};

static void finish(struct result *r, int ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	r->ok = ok;
	atomic_store(&r->done, 1);
}

/* Set by main before it wakes the respective thread. */
static atomic_int wake_ns, wake_pause, wake_poll;
/* Set by main once it is collecting results: lets the absolute sleeper,
 * which may wake on its own (its deadline can pass while the process is
 * checkpointed or restored a second time), stay alive until then so the
 * thread set stays stable for the harness's before/after comparison. */
static atomic_int collecting;
static double t_term;  /* monotonic time SIGTERM was received */

static __thread volatile sig_atomic_t usr1_hits;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_hits++;
}

static int pipe_a[2], pipe_b[2];
static _Atomic unsigned int futex_word;
static double abs_deadline;
static char read_msg[128];

static long sys_futex(_Atomic unsigned int *uaddr, int op, unsigned int val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static void unblock_usr1(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

static void *th_ns(void *arg)
{
	struct result *r = arg;
	const double req0 = 3600.0;
	struct timespec req = { 3600, 0 }, rem;
	double t0 = wl_now_mono(), consumed = 0;
	int spurious = 0;

	atomic_store(&r->tid, gettid());
	unblock_usr1();
	for (;;) {
		rem.tv_sec = -1;
		rem.tv_nsec = -1;
		double c0 = wl_now_mono();
		long ret = syscall(SYS_nanosleep, &req, &rem);
		int e = errno;
		double c1 = wl_now_mono();
		if (ret == 0) {
			finish(r, 0, "nanosleep returned 0 after %.3f s (requested %.3f s): early return", c1 - t0, req0);
			return NULL;
		}
		if (e != EINTR) {
			finish(r, 0, "nanosleep failed: %s", strerror(e));
			return NULL;
		}
		if (rem.tv_sec < 0 || rem.tv_nsec < 0 || rem.tv_nsec >= 1000000000L) {
			finish(r, 0, "nanosleep EINTR but rem not written/invalid (%ld.%09ld)", (long)rem.tv_sec, rem.tv_nsec);
			return NULL;
		}
		double reqd = wl_ts2d(&req), remd = wl_ts2d(&rem);
		if (remd > reqd + 1e-6) {
			finish(r, 0, "nanosleep rem %.6f > req %.6f", remd, reqd);
			return NULL;
		}
		if (reqd - remd > (c1 - c0) + 0.5) {
			finish(r, 0, "nanosleep rem %.6f claims %.3f s slept but only %.3f s passed", remd, reqd - remd, c1 - c0);
			return NULL;
		}
		consumed += reqd - remd;
		if (usr1_hits > 0) {
			if (!atomic_load(&wake_ns)) {
				finish(r, 0, "SIGUSR1 handler ran before main requested the wake");
				return NULL;
			}
			if (c1 < t_term) {
				finish(r, 0, "woke at %.3f before SIGTERM at %.3f", c1, t_term);
				return NULL;
			}
			finish(r, 1, "woken by SIGUSR1 (EINTR) after %.3f s; slept %.3f s in %d call(s) (%d spurious EINTR), rem %.3f",
			       c1 - t0, consumed, spurious + 1, spurious, remd);
			return NULL;
		}
		spurious++;
		wl_say("ns: spurious EINTR #%d after %.3f s, rem %ld.%09ld (slept %.3f of %.3f in this call), continuing with rem",
		       spurious, c1 - t0, (long)rem.tv_sec, rem.tv_nsec, reqd - remd, c1 - c0);
		req = rem;
	}
}

static void *th_abs(void *arg)
{
	struct result *r = arg;
	struct timespec dl;
	int spurious = 0;

	dl.tv_sec = (time_t)abs_deadline;
	dl.tv_nsec = (long)((abs_deadline - dl.tv_sec) * 1e9);
	atomic_store(&r->tid, gettid());
	for (;;) {
		long ret = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
		int e = errno;
		double t = wl_now_mono();
		if (ret == 0) {
			if (t < abs_deadline) {
				finish(r, 0, "absolute sleep returned %.3f s BEFORE its deadline", abs_deadline - t);
				return NULL;
			}
			finish(r, 1, "deadline reached, woke %.3f s after deadline (%d spurious EINTR)", t - abs_deadline, spurious);
			while (!atomic_load(&collecting))
				wl_sleep_ms(5);
			return NULL;
		}
		if (e != EINTR) {
			finish(r, 0, "clock_nanosleep failed: %s", strerror(e));
			return NULL;
		}
		spurious++;
		wl_say("abs: spurious EINTR #%d, %.3f s before deadline; retrying", spurious, abs_deadline - t);
	}
}

static void *th_read(void *arg)
{
	struct result *r = arg;
	char buf[256];

	atomic_store(&r->tid, gettid());
	ssize_t n = read(pipe_a[0], buf, sizeof buf);
	int e = errno;
	if (n < 0) {
		finish(r, 0, "read() returned -1 (%s) without any signal handler: syscall was not restarted", strerror(e));
		return NULL;
	}
	size_t want = strlen(read_msg);
	if ((size_t)n != want || memcmp(buf, read_msg, want) != 0) {
		finish(r, 0, "read() got %zd bytes '%.*s', expected %zu bytes '%s'", n, (int)(n > 0 ? n : 0), buf, want, read_msg);
		return NULL;
	}
	finish(r, 1, "received exactly the message (%zd bytes)", n);
	return NULL;
}

static void *th_futex(void *arg)
{
	struct result *r = arg;
	int spurious = 0;

	atomic_store(&r->tid, gettid());
	while (atomic_load(&futex_word) == 0) {
		long ret = sys_futex(&futex_word, FUTEX_WAIT_PRIVATE, 0);
		int e = errno;
		if (ret == 0 || e == EAGAIN)
			continue;
		if (e == EINTR) {
			spurious++;
			wl_say("futex: spurious EINTR #%d (word=%u)", spurious, atomic_load(&futex_word));
			continue;
		}
		finish(r, 0, "FUTEX_WAIT failed: %s", strerror(e));
		return NULL;
	}
	unsigned int w = atomic_load(&futex_word);
	if (w != 0x5ca1ab1eu) {
		finish(r, 0, "futex word is 0x%x, expected 0x5ca1ab1e", w);
		return NULL;
	}
	finish(r, 1, "woken with word 0x%x (%d spurious EINTR)", w, spurious);
	return NULL;
}

static void *th_poll(void *arg)
{
	struct result *r = arg;
	const int total_ms = 3600 * 1000;
	double t0 = wl_now_mono();
	int spurious = 0, timeout = total_ms;

	atomic_store(&r->tid, gettid());
	for (;;) {
		struct pollfd pfd = { .fd = pipe_b[0], .events = POLLIN };
		int ret = poll(&pfd, 1, timeout);
		int e = errno;
		double el = wl_now_mono() - t0;
		if (ret == 0) {
			finish(r, 0, "poll timed out after %.3f s (1 h timeout)", el);
			return NULL;
		}
		if (ret < 0) {
			if (e != EINTR) {
				finish(r, 0, "poll failed: %s", strerror(e));
				return NULL;
			}
			spurious++;
			timeout = total_ms - (int)(el * 1000);
			wl_say("poll: spurious EINTR #%d after %.3f s; continuing with %d ms", spurious, el, timeout);
			continue;
		}
		if (!atomic_load(&wake_poll)) {
			finish(r, 0, "poll returned %d (revents 0x%x) before main wrote", ret, pfd.revents);
			return NULL;
		}
		if (!(pfd.revents & POLLIN)) {
			finish(r, 0, "poll revents 0x%x without POLLIN", pfd.revents);
			return NULL;
		}
		char c = 0;
		ssize_t n = read(pipe_b[0], &c, 1);
		if (n != 1 || c != 'P') {
			finish(r, 0, "after poll read %zd byte(s) '%c', expected 'P'", n, c);
			return NULL;
		}
		finish(r, 1, "POLLIN after %.3f s, got 'P' (%d spurious EINTR)", el, spurious);
		return NULL;
	}
}

static void *th_pause(void *arg)
{
	struct result *r = arg;

	atomic_store(&r->tid, gettid());
	unblock_usr1();
	long ret = syscall(SYS_pause);
	int e = errno;
	if (usr1_hits == 0) {
		finish(r, 0, "pause() returned %ld (%s) without a handler running: syscall was not restarted", ret,
		       strerror(e));
		return NULL;
	}
	if (!atomic_load(&wake_pause)) {
		finish(r, 0, "SIGUSR1 handler ran before main requested the wake");
		return NULL;
	}
	if (ret != -1 || e != EINTR) {
		finish(r, 0, "pause() returned %ld errno %d, expected -1/EINTR", ret, e);
		return NULL;
	}
	finish(r, 1, "woken by SIGUSR1 handler (EINTR)");
	return NULL;
}

static long current_syscall(int tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -2;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -2;
	buf[n] = 0;
	if (buf[0] < '0' || buf[0] > '9')
		return -1; /* "running" */
	return strtol(buf, NULL, 10);
}

static int wait_in_syscall(struct result *r, int timeout_ms)
{
	double end = wl_now_mono() + timeout_ms / 1000.0;
	long cur = -3;
	while (wl_now_mono() < end) {
		int tid = atomic_load(&r->tid);
		if (tid > 0) {
			cur = current_syscall(tid);
			if (cur == r->sysnr)
				return 1;
		}
		if (atomic_load(&r->done))
			return 0;
		wl_sleep_ms(5);
	}
	wl_say("%s: thread %d not in syscall %ld (last seen %ld)", r->name, atomic_load(&r->tid), r->sysnr, cur);
	return 0;
}

static int join_until(struct result *r, double deadline_mono)
{
	atomic_store(&collecting, 1);
	while (!atomic_load(&r->done) && wl_now_mono() < deadline_mono)
		wl_sleep_ms(5);
	if (!atomic_load(&r->done))
		return 0;
	pthread_join(r->th, NULL);
	return 1;
}

/* Send SIGUSR1 to a thread until it finished (covers the window between a
 * spurious EINTR and re-entering the syscall). */
static int kick_until_done(struct result *r, atomic_int *flag)
{
	atomic_store(flag, 1);
	double end = wl_now_mono() + 5.0;
	while (!atomic_load(&r->done) && wl_now_mono() < end) {
		pthread_kill(r->th, SIGUSR1);
		for (int i = 0; i < 20 && !atomic_load(&r->done); i++)
			wl_sleep_ms(5);
	}
	return join_until(r, wl_now_mono() + 0.1);
}

int main(void)
{
	static void *(*const fns[NT])(void *) = {
		[T_NS] = th_ns, [T_ABS] = th_abs, [T_READ] = th_read,
		[T_FUTEX] = th_futex, [T_POLL] = th_poll, [T_PAUSE] = th_pause,
	};
	struct sigaction sa;
	sigset_t blk;
	int fails = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = 0; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL)) {
		perror("sigaction");
		return 1;
	}
	sigemptyset(&blk);
	sigaddset(&blk, SIGTERM);
	sigaddset(&blk, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &blk, NULL); /* inherited by all threads */

	if (pipe(pipe_a) || pipe(pipe_b)) {
		perror("pipe");
		return 1;
	}
	snprintf(read_msg, sizeof read_msg, "stasis-read-check pid=%d magic=%08lx\n", getpid(),
		 (unsigned long)(wl_now_mono() * 1e6) & 0xffffffffUL);
	abs_deadline = wl_now_mono() + 8.0;

	for (int i = 0; i < NT; i++) {
		if (pthread_create(&R[i].th, NULL, fns[i], &R[i]))
			wl_fail("pthread_create %s", R[i].name);
	}
	for (int i = 0; i < NT; i++) {
		if (!wait_in_syscall(&R[i], 10000))
			wl_fail("setup: %s thread did not block in syscall %ld (%s)", R[i].name, R[i].sysnr,
				atomic_load(&R[i].done) ? R[i].msg : "timeout");
		wl_say("%s: tid %d blocked in syscall %ld", R[i].name, atomic_load(&R[i].tid), R[i].sysnr);
	}
	wl_say("abs deadline is %.3f s from now", abs_deadline - wl_now_mono());

	siginfo_t si;
	int eintr = wl_ready_sigwait(&si, "main");
	t_term = wl_now_mono();
	wl_say("main: got SIGTERM (si_code %d, from pid %d) after %d EINTR; abs deadline %+.3f s", si.si_code, si.si_pid,
	       eintr, abs_deadline - t_term);

	/* Early results: nothing may have finished on its own before SIGTERM,
	 * except the absolute sleep once its deadline has passed. */
	for (int i = 0; i < NT; i++) {
		if (i != T_ABS && atomic_load(&R[i].done)) {
			wl_say("%s: finished before SIGTERM: %s", R[i].name, R[i].msg);
		}
	}

	/* nanosleep: SIGUSR1 (handler without SA_RESTART) */
	if (!atomic_load(&R[T_NS].done) && !kick_until_done(&R[T_NS], &wake_ns))
		finish(&R[T_NS], 0, "did not wake on SIGUSR1 within 5 s");
	/* pause: SIGUSR1 */
	if (!atomic_load(&R[T_PAUSE].done) && !kick_until_done(&R[T_PAUSE], &wake_pause))
		finish(&R[T_PAUSE], 0, "did not wake on SIGUSR1 within 5 s");
	/* read: write the known message */
	if (!atomic_load(&R[T_READ].done)) {
		size_t len = strlen(read_msg);
		if (write(pipe_a[1], read_msg, len) != (ssize_t)len)
			finish(&R[T_READ], 0, "main: write to pipe A failed: %s", strerror(errno));
		else if (!join_until(&R[T_READ], wl_now_mono() + 5))
			finish(&R[T_READ], 0, "reader did not return within 5 s of the write");
	}
	/* futex: change the word, then FUTEX_WAKE */
	if (!atomic_load(&R[T_FUTEX].done)) {
		int in = wait_in_syscall(&R[T_FUTEX], 5000);
		atomic_store(&futex_word, 0x5ca1ab1eu);
		long nw = sys_futex(&futex_word, FUTEX_WAKE_PRIVATE, 1);
		if (!join_until(&R[T_FUTEX], wl_now_mono() + 5))
			finish(&R[T_FUTEX], 0, "waiter did not return within 5 s of FUTEX_WAKE (woke %ld)", nw);
		else if (R[T_FUTEX].ok && nw != 1)
			finish(&R[T_FUTEX], 0, "FUTEX_WAKE woke %ld waiters (expected 1; in futex before wake: %d)", nw, in);
		else if (R[T_FUTEX].ok)
			wl_say("futex: FUTEX_WAKE woke %ld waiter", nw);
	}
	/* poll: write one byte to pipe B */
	if (!atomic_load(&R[T_POLL].done)) {
		atomic_store(&wake_poll, 1);
		if (write(pipe_b[1], "P", 1) != 1)
			finish(&R[T_POLL], 0, "main: write to pipe B failed: %s", strerror(errno));
		else if (!join_until(&R[T_POLL], wl_now_mono() + 5))
			finish(&R[T_POLL], 0, "poller did not return within 5 s of the write");
	}
	/* absolute sleep: wait for the deadline (+5 s slack) */
	{
		double t = wl_now_mono();
		double until = (t > abs_deadline ? t : abs_deadline) + 5.0;
		if (!join_until(&R[T_ABS], until))
			finish(&R[T_ABS], 0, "did not wake within 5 s after max(now, deadline)");
	}

	for (int i = 0; i < NT; i++) {
		wl_say("%-16s %s: %s", R[i].name, R[i].ok ? "ok  " : "BAD ", R[i].msg);
		if (!R[i].ok)
			fails++;
	}
	if (fails) {
		char all[4096] = "";
		for (int i = 0; i < NT; i++)
			if (!R[i].ok) {
				size_t l = strlen(all);
				snprintf(all + l, sizeof all - l, "%s%s: %s", l ? "; " : "", R[i].name, R[i].msg);
			}
		wl_say("FAIL: %s", all);
		return 1;
	}
	wl_pass();
}
