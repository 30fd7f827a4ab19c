/*
 * timers.c - interval timers and POSIX timers across checkpoint/restore.
 *
 * State set up before READY:
 *   setitimer ITIMER_REAL    1000 s, interval 500 s
 *             ITIMER_VIRTUAL 2000 s, interval 700 s
 *             ITIMER_PROF    3000 s, interval 900 s
 *   POSIX timers (raw syscalls, kernel ids), created in this order:
 *     A  CLOCK_MONOTONIC SIGEV_SIGNAL SIGRTMIN+2 value 1000   1500 s / 600 s
 *     B  CLOCK_REALTIME  SIGEV_SIGNAL SIGRTMIN+2 value 1001   now+1600 s (ABSTIME) / 601 s
 *     X  CLOCK_MONOTONIC SIGEV_SIGNAL                          deleted
 *     C  CLOCK_BOOTTIME  SIGEV_SIGNAL SIGRTMIN+2 value 1002   1700 s / 602 s
 *     Y  CLOCK_REALTIME  SIGEV_SIGNAL                          deleted
 *     D  CLOCK_MONOTONIC SIGEV_NONE                           1800 s / 603 s
 *     E  CLOCK_MONOTONIC SIGEV_THREAD_ID -> thread W, SIGRTMIN+3 value 1004
 *                                                             1900 s / 604 s
 *     P  CLOCK_MONOTONIC SIGEV_SIGNAL SIGRTMIN+4 value 1005   periodic 200 ms
 *   so the surviving ids have holes.
 *
 * After SIGTERM:
 *   - getitimer: all three armed, remaining <= set and > set - 60 s (checkpoint slack),
 *     interval exactly as set; their signals never fired.
 *   - timer_gettime on every saved id works (remaining plausible, interval
 *     exact, overrun 0), on the deleted ids and on the next unused id gives
 *     EINVAL; /proc/self/timers (id, signal/value, notify target incl. tid,
 *     clock) is identical to before READY.
 *   - P keeps ticking (>= 3 ticks over 1 s), every tick carried
 *     SI_TIMER / value 1005 / its timer id.
 *   - A, B, C, E are re-armed to fire in 10 ms and must deliver their signal
 *     with their own value and timer id (E only in thread W); D (SIGEV_NONE)
 *     must expire silently.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "wlx.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* ---- raw timer syscalls (kernel timer ids) ---- */
static int k_timer_create(clockid_t clk, struct sigevent *sev, int *id)
{
	return syscall(SYS_timer_create, clk, sev, id);
}
static int k_timer_settime(int id, int flags, const struct itimerspec *n, struct itimerspec *o)
{
	return syscall(SYS_timer_settime, id, flags, n, o);
}
static int k_timer_gettime(int id, struct itimerspec *cur)
{
	return syscall(SYS_timer_gettime, id, cur);
}
static int k_timer_getoverrun(int id)
{
	return syscall(SYS_timer_getoverrun, id);
}
static int k_timer_delete(int id)
{
	return syscall(SYS_timer_delete, id);
}

/* ---- signal bookkeeping ---- */
static atomic_int itimer_sigs[3]; /* SIGALRM, SIGVTALRM, SIGPROF */

static void h_itimer(int sig)
{
	atomic_fetch_add(&itimer_sigs[sig == SIGALRM ? 0 : sig == SIGVTALRM ? 1 : 2], 1);
}

struct ev {
	int sig, code, val, timerid, tid;
};
static struct ev evs[256];
static atomic_int nev;

static void h_timer(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	int i = atomic_fetch_add(&nev, 1);
	if (i < 256)
		evs[i] = (struct ev){ sig, si->si_code, si->si_value.sival_int, si->si_timerid, gettid() };
}

static atomic_int ticks, bad_ticks, p_id = -1;
static int bad_tick_code, bad_tick_val, bad_tick_id;

static void h_tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 1005 || si->si_timerid != atomic_load(&p_id)) {
		bad_tick_code = si->si_code;
		bad_tick_val = si->si_value.sival_int;
		bad_tick_id = si->si_timerid;
		atomic_fetch_add(&bad_ticks, 1);
		return;
	}
	atomic_fetch_add(&ticks, 1);
}

static void install(int sig, void *fn, int siginfo)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	if (siginfo)
		sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))fn;
	else
		sa.sa_handler = (void (*)(int))fn;
	sa.sa_flags = SA_RESTART | (siginfo ? SA_SIGINFO : 0);
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL))
		wl_fail("setup: sigaction %d: %s", sig, strerror(errno));
}

/* ---- thread W: target of the SIGEV_THREAD_ID timer ---- */
static atomic_int w_tid;

static void *thread_w(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 2);
	sigaddset(&s, SIGRTMIN + 4);
	sigaddset(&s, SIGALRM);
	sigaddset(&s, SIGVTALRM);
	sigaddset(&s, SIGPROF);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 3);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	atomic_store(&w_tid, gettid());
	for (;;)
		pause();
	return NULL;
}

/* ---- timers table ---- */
struct tmr {
	const char *name;
	clockid_t clk;
	int notify;  /* SIGEV_* */
	int sig;
	int val;
	int del;     /* deleted before READY */
	double v, i; /* armed value / interval, seconds */
	int abs;     /* arm with TIMER_ABSTIME */
	int id;
};

static struct tmr T[] = {
	{ "A", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, 1000, 0, 1500, 600, 0, -1 },
	{ "B", CLOCK_REALTIME, SIGEV_SIGNAL, 0, 1001, 0, 1600, 601, 1, -1 },
	{ "X", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, 1090, 1, 0, 0, 0, -1 },
	{ "C", CLOCK_BOOTTIME, SIGEV_SIGNAL, 0, 1002, 0, 1700, 602, 0, -1 },
	{ "Y", CLOCK_REALTIME, SIGEV_SIGNAL, 0, 1091, 1, 0, 0, 0, -1 },
	{ "D", CLOCK_MONOTONIC, SIGEV_NONE, 0, 1003, 0, 1800, 603, 0, -1 },
	{ "E", CLOCK_MONOTONIC, SIGEV_THREAD_ID, 0, 1004, 0, 1900, 604, 0, -1 },
	{ "P", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, 1005, 0, 0.2, 0.2, 0, -1 },
};
#define NTMR ((int)(sizeof T / sizeof T[0]))

static struct timespec d2ts(double d)
{
	struct timespec ts;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9 + 0.5);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* ---- /proc/self/timers snapshot (sorted blocks) ---- */
static char *proc_timers(void)
{
	FILE *f = fopen("/proc/self/timers", "r");
	if (!f)
		return NULL;
	char line[256];
	char *blocks[64];
	int nb = 0;
	char cur[1024] = "";
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "ID:", 3) && cur[0]) {
			if (nb < 64)
				blocks[nb++] = strdup(cur);
			cur[0] = 0;
		}
		strncat(cur, line, sizeof cur - strlen(cur) - 1);
	}
	if (cur[0] && nb < 64)
		blocks[nb++] = strdup(cur);
	fclose(f);
	for (int i = 0; i < nb; i++)
		for (int j = i + 1; j < nb; j++)
			if (strcmp(blocks[i], blocks[j]) > 0) {
				char *t = blocks[i];
				blocks[i] = blocks[j];
				blocks[j] = t;
			}
	size_t len = 1;
	for (int i = 0; i < nb; i++)
		len += strlen(blocks[i]);
	char *out = calloc(1, len);
	for (int i = 0; i < nb; i++) {
		strcat(out, blocks[i]);
		free(blocks[i]);
	}
	return out;
}

static int wait_event(int from, int sig, int timeout_ms)
{
	double end = wl_now_mono() + timeout_ms / 1000.0;
	while (wl_now_mono() < end) {
		int n = atomic_load(&nev);
		for (int i = from; i < n; i++)
			if (evs[i].sig == sig)
				return i;
		wl_sleep_ms(2);
	}
	return -1;
}

/*
 * For ITIMER_VIRTUAL/ITIMER_PROF the kernel adds one tick (TICK_NSEC, 4 ms at
 * HZ=250) to the value passed to setitimer() so the timer cannot fire early;
 * getitimer() right after setitimer() therefore reports set + 1 tick, and a
 * restorer re-arming with the dumped value adds one more.  Allow `slack`.
 */
static void check_itimer(const char *name, int which, double v, double i, double slack)
{
	struct itimerval cur;
	if (getitimer(which, &cur)) {
		wl_bad("getitimer(%s): %s", name, strerror(errno));
		return;
	}
	double rem = cur.it_value.tv_sec + cur.it_value.tv_usec / 1e6;
	double iv = cur.it_interval.tv_sec + cur.it_interval.tv_usec / 1e6;
	if (rem <= 0 || rem > v + slack || rem <= v - 60)
		wl_bad("%s: remaining %.6f s, expected in (%g, %g]", name, rem, v - 60, v + slack);
	else if (cur.it_interval.tv_sec != (time_t)i || cur.it_interval.tv_usec != 0)
		wl_bad("%s: interval %.6f s, expected %g", name, iv, i);
	else
		wl_say("%s ok: remaining %.3f s, interval %.6f s", name, rem, iv);
}

int main(void)
{
	const int me = gettid();
	pthread_t w;

	install(SIGALRM, (void *)h_itimer, 0);
	install(SIGVTALRM, (void *)h_itimer, 0);
	install(SIGPROF, (void *)h_itimer, 0);
	install(SIGRTMIN + 2, (void *)h_timer, 1);
	install(SIGRTMIN + 3, (void *)h_timer, 1);
	install(SIGRTMIN + 4, (void *)h_tick, 1);

	sigset_t blk;
	sigemptyset(&blk);
	sigaddset(&blk, SIGTERM);
	sigaddset(&blk, SIGRTMIN + 3);
	pthread_sigmask(SIG_BLOCK, &blk, NULL);

	if (pthread_create(&w, NULL, thread_w, NULL))
		wl_fail("pthread_create");
	while (!atomic_load(&w_tid))
		wl_sleep_ms(1);

	/* itimers */
	struct itimerval itv[3] = {
		{ { 500, 0 }, { 1000, 0 } },
		{ { 700, 0 }, { 2000, 0 } },
		{ { 900, 0 }, { 3000, 0 } },
	};
	if (setitimer(ITIMER_REAL, &itv[0], NULL) || setitimer(ITIMER_VIRTUAL, &itv[1], NULL) ||
	    setitimer(ITIMER_PROF, &itv[2], NULL))
		wl_fail("setup: setitimer: %s", strerror(errno));

	/* POSIX timers */
	for (int k = 0; k < NTMR; k++) {
		struct tmr *t = &T[k];
		struct sigevent sev;
		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = t->notify;
		sev.sigev_value.sival_int = t->val;
		t->sig = t->notify == SIGEV_THREAD_ID ? SIGRTMIN + 3 : t->name[0] == 'P' ? SIGRTMIN + 4 : SIGRTMIN + 2;
		sev.sigev_signo = t->sig;
		if (t->notify == SIGEV_THREAD_ID)
			sev.sigev_notify_thread_id = atomic_load(&w_tid);
		if (k_timer_create(t->clk, &sev, &t->id))
			wl_fail("setup: timer_create %s: %s", t->name, strerror(errno));
		if (t->name[0] == 'P')
			atomic_store(&p_id, t->id);
	}
	for (int k = 0; k < NTMR; k++) {
		struct tmr *t = &T[k];
		if (t->del) {
			if (k_timer_delete(t->id))
				wl_fail("setup: timer_delete %s: %s", t->name, strerror(errno));
			continue;
		}
		struct itimerspec its = { .it_interval = d2ts(t->i), .it_value = d2ts(t->v) };
		if (t->abs) {
			struct timespec now;
			clock_gettime(t->clk, &now);
			its.it_value.tv_sec += now.tv_sec;
			its.it_value.tv_nsec += now.tv_nsec;
			if (its.it_value.tv_nsec >= 1000000000L) {
				its.it_value.tv_sec++;
				its.it_value.tv_nsec -= 1000000000L;
			}
		}
		if (k_timer_settime(t->id, t->abs ? TIMER_ABSTIME : 0, &its, NULL))
			wl_fail("setup: timer_settime %s: %s", t->name, strerror(errno));
	}
	{
		char b[256];
		size_t l = 0;
		for (int k = 0; k < NTMR; k++)
			l += snprintf(b + l, sizeof b - l, "%s=%d%s ", T[k].name, T[k].id, T[k].del ? "(deleted)" : "");
		wl_say("timer ids: %s; W tid %d", b, atomic_load(&w_tid));
	}
	char *proc_before = proc_timers();
	if (proc_before)
		printf("/proc/self/timers:\n%s", proc_before);
	else
		wl_note("/proc/self/timers not available");

	/* let P tick a bit so the handler is known to work before READY */
	wl_sleep_ms(500);
	if (atomic_load(&ticks) < 1 || atomic_load(&bad_ticks))
		wl_fail("setup: periodic timer: %d ticks, %d bad", atomic_load(&ticks), atomic_load(&bad_ticks));
	int nev_ready = atomic_load(&nev);

	/* P's handler interrupts the wait 5 times a second */
	int eintr = wl_ready_sigwait(NULL, NULL);
	wl_say("main: got SIGTERM (%d EINTR while waiting, %d ticks so far)", eintr, atomic_load(&ticks));

	/* 1. itimers */
	check_itimer("ITIMER_REAL", ITIMER_REAL, 1000, 500, 0);
	check_itimer("ITIMER_VIRTUAL", ITIMER_VIRTUAL, 2000, 700, 0.05);
	check_itimer("ITIMER_PROF", ITIMER_PROF, 3000, 900, 0.05);
	for (int k = 0; k < 3; k++)
		if (atomic_load(&itimer_sigs[k]))
			wl_bad("itimer signal %s fired %d time(s)", k == 0 ? "SIGALRM" : k == 1 ? "SIGVTALRM" : "SIGPROF",
			       atomic_load(&itimer_sigs[k]));
	if (atomic_load(&nev) != nev_ready)
		wl_bad("%d unexpected timer signal(s) before SIGTERM (first sig %d value %d)", atomic_load(&nev) - nev_ready,
		       evs[nev_ready].sig, evs[nev_ready].val);

	/* 2. POSIX timers by saved id */
	int max_id = -1;
	for (int k = 0; k < NTMR; k++) {
		struct tmr *t = &T[k];
		struct itimerspec cur;
		if (t->id > max_id)
			max_id = t->id;
		int r = k_timer_gettime(t->id, &cur);
		if (t->del) {
			if (r == 0 || errno != EINVAL)
				wl_bad("deleted timer %s (id %d): timer_gettime returned %d (%s), expected EINVAL", t->name, t->id,
				       r, r ? strerror(errno) : "success");
			else
				wl_say("timer %s (id %d) ok: deleted, EINVAL", t->name, t->id);
			continue;
		}
		if (r) {
			wl_bad("timer %s (id %d): timer_gettime: %s", t->name, t->id, strerror(errno));
			continue;
		}
		double rem = wl_ts2d(&cur.it_value);
		struct timespec wi = d2ts(t->i);
		if (cur.it_interval.tv_sec != wi.tv_sec || cur.it_interval.tv_nsec != wi.tv_nsec) {
			wl_bad("timer %s (id %d): interval %ld.%09ld, expected %ld.%09ld", t->name, t->id,
			       (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec, (long)wi.tv_sec, wi.tv_nsec);
			continue;
		}
		if (t->name[0] == 'P') {
			if (rem <= 0 || rem > t->i + 0.001)
				wl_bad("timer P (id %d): remaining %.6f s, expected (0, 0.2]", t->id, rem);
			else
				wl_say("timer P (id %d) ok: remaining %.3f s, interval 0.2 s", t->id, rem);
			continue;
		}
		int ov = k_timer_getoverrun(t->id);
		if (rem <= 0 || rem > t->v || rem <= t->v - 60)
			wl_bad("timer %s (id %d): remaining %.6f s, expected in (%g, %g]", t->name, t->id, rem, t->v - 60, t->v);
		else if (ov != 0)
			wl_bad("timer %s (id %d): overrun %d, expected 0", t->name, t->id, ov);
		else
			wl_say("timer %s (id %d) ok: remaining %.3f s, interval %g s", t->name, t->id, rem, t->i);
	}
	{
		struct itimerspec cur;
		int r = k_timer_gettime(max_id + 1, &cur);
		if (r == 0 || errno != EINVAL)
			wl_bad("unused timer id %d: timer_gettime returned %d, expected EINVAL", max_id + 1, r);
	}
	if (proc_before) {
		char *after = proc_timers();
		if (!after || strcmp(after, proc_before)) {
			wl_bad("/proc/self/timers differs from before checkpoint");
			printf("after:\n%s", after ? after : "(unreadable)\n");
		} else {
			wl_say("/proc/self/timers ok: identical (ids, signals, values, notify targets, clocks)");
		}
		free(after);
	}

	/* 3. the periodic timer keeps ticking */
	{
		int c0 = atomic_load(&ticks);
		wl_sleep_ms(1000);
		int c1 = atomic_load(&ticks);
		if (c1 - c0 < 3)
			wl_bad("periodic timer P: %d ticks in 1 s after SIGTERM, expected ~5", c1 - c0);
		else
			wl_say("periodic timer P ok: %d ticks in 1 s (%d total)", c1 - c0, c1);
		if (atomic_load(&bad_ticks))
			wl_bad("periodic timer P: %d tick(s) with wrong siginfo (code %d value %d timerid %d)",
			       atomic_load(&bad_ticks), bad_tick_code, bad_tick_val, bad_tick_id);
	}

	/* 4. fire each timer once and check the notification */
	for (int k = 0; k < NTMR; k++) {
		struct tmr *t = &T[k];
		if (t->del || t->name[0] == 'P')
			continue;
		struct itimerspec its = { .it_value = { 0, 10 * 1000000L } };
		int from = atomic_load(&nev);
		if (k_timer_settime(t->id, 0, &its, NULL)) {
			wl_bad("timer %s: re-arm: %s", t->name, strerror(errno));
			continue;
		}
		if (t->notify == SIGEV_NONE) {
			wl_sleep_ms(100);
			struct itimerspec cur;
			k_timer_gettime(t->id, &cur);
			if (atomic_load(&nev) != from)
				wl_bad("timer %s (SIGEV_NONE) delivered signal %d", t->name, evs[from].sig);
			else if (cur.it_value.tv_sec || cur.it_value.tv_nsec)
				wl_bad("timer %s (SIGEV_NONE) did not expire: %ld.%09ld left", t->name, (long)cur.it_value.tv_sec,
				       cur.it_value.tv_nsec);
			else
				wl_say("timer %s ok: SIGEV_NONE expired silently", t->name);
			continue;
		}
		int i = wait_event(from, t->sig, 2000);
		if (i < 0) {
			wl_bad("timer %s (id %d): no signal %d within 2 s of firing", t->name, t->id, t->sig);
			continue;
		}
		struct ev *e = &evs[i];
		int want_tid = t->notify == SIGEV_THREAD_ID ? atomic_load(&w_tid) : me;
		if (e->code != SI_TIMER || e->val != t->val || e->timerid != t->id || e->tid != want_tid)
			wl_bad("timer %s: got code %d value %d timerid %d in tid %d; expected SI_TIMER value %d timerid %d tid %d",
			       t->name, e->code, e->val, e->timerid, e->tid, t->val, t->id, want_tid);
		else
			wl_say("timer %s ok: fired signal %d value %d timerid %d in tid %d", t->name, e->sig, e->val, e->timerid,
			       e->tid);
	}
	wl_verdict();
}
