/*
 * signals.c - signal dispositions, masks, alternate stacks and pending
 * signals across checkpoint/restore.
 *
 * State set up before READY:
 *   dispositions (all compared after restore against a full snapshot of
 *   signals 1..64, handler + sa_flags (incl. SA_RESTORER) + restorer + mask):
 *     SIGUSR1    SA_SIGINFO|SA_RESTART, mask {SIGUSR2}
 *     SIGUSR2    SA_SIGINFO|SA_ONSTACK
 *     SIGHUP     SA_NODEFER|SA_RESETHAND, mask {SIGINT}
 *     SIGALRM    SA_RESTART, mask {SIGUSR1, SIGWINCH, SIGRTMIN+5}
 *     SIGCHLD    SA_NOCLDSTOP|SA_RESTART
 *     SIGPIPE    SIG_IGN
 *     SIGTRAP    SA_RESTART (a handler: single-stepping would reset it)
 *     SIGSYS     SIG_IGN
 *     SIGRTMIN+1 SA_SIGINFO, mask {SIGRTMIN+6}
 *     SIGRTMIN+2 SA_SIGINFO|SA_RESTART
 *     SIGRTMIN+3 SA_SIGINFO
 *     SIGRTMIN+4 SA_SIGINFO
 *   sigaltstack for main (98304 bytes) and for thread T (73728 bytes)
 *   blocked masks: main and T have distinct masks
 *   pending:
 *     process-wide (shared): SIGUSR1 (kill x2 -> coalesced to one),
 *       SIGRTMIN+1 x5 (sigqueue values 100..104), SIGRTMIN+4 x2 (200, 201)
 *     main-thread private:   SIGALRM (raise), SIGRTMIN+3 (pthread_sigqueue 4242)
 *     thread T private:      SIGRTMIN+2 x2 (pthread_sigqueue 777, 778)
 *
 * After SIGTERM: compare masks, altstacks, dispositions, per-thread
 * sigpending() sets (which also tells shared from private pending), then
 * unblock the signals one by one and check each handler ran the expected
 * number of times, in the expected thread, with the expected siginfo
 * (si_code, si_pid, si_uid, si_value) and in queue order; SIGUSR2 must run on
 * the alternate stack, SIGHUP must not be self-blocked and must reset to
 * SIG_DFL, SIGALRM's handler must run with its sa_mask, SIGPIPE must stay
 * ignored (write to a broken pipe gives EPIPE).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wlx.h"

/* ---- delivery log, written from handlers ---- */
struct ev {
	int sig, code, val, tid, pid, uid;
	int extra; /* handler specific check result, 1 = good */
};
static struct ev evs[128];
static atomic_int nev;

static void log_ev(int sig, const siginfo_t *si, int extra)
{
	int i = atomic_fetch_add(&nev, 1);
	if (i >= (int)(sizeof evs / sizeof evs[0]))
		return;
	evs[i].sig = sig;
	evs[i].tid = gettid();
	evs[i].extra = extra;
	if (si) {
		evs[i].code = si->si_code;
		evs[i].val = si->si_value.sival_int;
		evs[i].pid = si->si_pid;
		evs[i].uid = si->si_uid;
	} else {
		evs[i].code = evs[i].val = evs[i].pid = evs[i].uid = -1;
	}
}

static int mask_has(int sig)
{
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, sig) == 1;
}

static void h_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	log_ev(sig, si, mask_has(SIGUSR2) && mask_has(SIGUSR1));
}

static void h_usr2(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	volatile char here;
	stack_t cur;
	int ok = 0;
	if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_ONSTACK) && (uintptr_t)&here >= (uintptr_t)cur.ss_sp &&
	    (uintptr_t)&here < (uintptr_t)cur.ss_sp + cur.ss_size)
		ok = 1;
	log_ev(sig, si, ok);
}

static void h_hup(int sig)
{
	/* SA_NODEFER: SIGHUP itself not blocked; sa_mask: SIGINT blocked */
	log_ev(sig, NULL, !mask_has(SIGHUP) && mask_has(SIGINT));
}

static void h_alrm(int sig)
{
	log_ev(sig, NULL, mask_has(SIGALRM) && mask_has(SIGUSR1) && mask_has(SIGWINCH) && mask_has(SIGRTMIN + 5));
}

static void h_chld(int sig)
{
	log_ev(sig, NULL, 0);
}

static void h_rt(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	int extra = 1;
	if (sig == SIGRTMIN + 1)
		extra = mask_has(SIGRTMIN + 6) && mask_has(SIGRTMIN + 1);
	log_ev(sig, si, extra);
}

/* ---- configuration ---- */
struct disp {
	int sig;
	void *handler; /* SIG_IGN / function */
	int siginfo;
	int flags;
	int mask[4];
};

#define MAXSIG 64
static struct sigaction snap[MAXSIG + 1];
static int snap_ok[MAXSIG + 1];

static int set_disp(int sig, void *handler, int flags, const int *mask, int nmask)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))handler;
	else
		sa.sa_handler = (void (*)(int))handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < nmask; i++)
		sigaddset(&sa.sa_mask, mask[i]);
	if (sigaction(sig, &sa, NULL))
		wl_fail("setup: sigaction(%d): %s", sig, strerror(errno));
	/* verify what the kernel reports right away */
	struct sigaction q;
	sigaction(sig, NULL, &q);
	if ((void *)q.sa_handler != handler || (q.sa_flags & flags) != flags)
		wl_fail("setup: sigaction(%d) readback handler %p flags 0x%x", sig, (void *)q.sa_handler, q.sa_flags);
	for (int i = 0; i < nmask; i++)
		if (sigismember(&q.sa_mask, mask[i]) != 1)
			wl_fail("setup: sigaction(%d) readback mask lacks %d", sig, mask[i]);
	return 0;
}

static void take_snapshot(void)
{
	for (int s = 1; s <= MAXSIG; s++)
		snap_ok[s] = sigaction(s, NULL, &snap[s]) == 0;
}

static void compare_snapshot(void)
{
	int diffs = 0;
	for (int s = 1; s <= MAXSIG; s++) {
		struct sigaction q;
		int ok = sigaction(s, NULL, &q) == 0;
		if (ok != snap_ok[s]) {
			wl_bad("sigaction(%d) query result changed (%d -> %d)", s, snap_ok[s], ok);
			diffs++;
			continue;
		}
		if (!ok)
			continue;
		if (q.sa_handler != snap[s].sa_handler || q.sa_flags != snap[s].sa_flags ||
		    (void *)q.sa_restorer != (void *)snap[s].sa_restorer) {
			wl_bad("sig %d (%s): disposition %p flags 0x%x restorer %p, expected %p flags 0x%x restorer %p", s,
			       strsignal(s), (void *)q.sa_handler, q.sa_flags, (void *)q.sa_restorer,
			       (void *)snap[s].sa_handler, snap[s].sa_flags, (void *)snap[s].sa_restorer);
			diffs++;
			continue;
		}
		for (int m = 1; m <= MAXSIG; m++)
			if (sigismember(&q.sa_mask, m) != sigismember(&snap[s].sa_mask, m)) {
				wl_bad("sig %d: sa_mask differs at signal %d", s, m);
				diffs++;
				break;
			}
	}
	if (!diffs)
		wl_say("dispositions: all 64 match the snapshot");
}

static void fmt_set(const sigset_t *set, char *buf, size_t len)
{
	size_t l = 0;
	buf[0] = 0;
	for (int s = 1; s <= MAXSIG && l < len; s++)
		if (sigismember(set, s) == 1)
			l += snprintf(buf + l, len - l, "%d ", s);
}

static int sets_equal(const sigset_t *a, const sigset_t *b, int ignore)
{
	for (int s = 1; s <= MAXSIG; s++)
		if (s != ignore && sigismember(a, s) != sigismember(b, s))
			return 0;
	return 1;
}

static void check_set(const char *what, const sigset_t *got, const sigset_t *want, int ignore)
{
	char g[400], w[400];
	fmt_set(got, g, sizeof g);
	fmt_set(want, w, sizeof w);
	if (!sets_equal(got, want, ignore))
		wl_bad("%s: got {%s} expected {%s}", what, g, w);
	else
		wl_say("%s ok: {%s}", what, g);
}

static void mkset(sigset_t *s, const int *sigs, int n)
{
	sigemptyset(s);
	for (int i = 0; i < n; i++)
		sigaddset(s, sigs[i]);
}

static void dump_status(int tid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Sig", 3) || !strncmp(line, "ShdPnd", 6))
			printf("  [%d] %s", tid, line);
	fclose(f);
	fflush(stdout);
}

/* ---- thread T ---- */
static int ctl[2], reply[2];
static atomic_int t_tid;
static stack_t t_alt;
static sigset_t t_mask;

static int altstack_equal(const stack_t *a, const stack_t *b)
{
	return a->ss_sp == b->ss_sp && a->ss_size == b->ss_size && (a->ss_flags & ~SS_ONSTACK) == (b->ss_flags & ~SS_ONSTACK);
}

static char t_result[1024];
static int t_fails;

static void tbad(const char *fmt, ...)
{
	va_list ap;
	size_t l = strlen(t_result);
	if (l)
		l += snprintf(t_result + l, sizeof t_result - l, "; ");
	va_start(ap, fmt);
	vsnprintf(t_result + l, sizeof t_result - l, fmt, ap);
	va_end(ap);
	t_fails++;
}

static void *thread_t(void *arg)
{
	(void)arg;
	void *mem;
	sigset_t add, del;

	atomic_store(&t_tid, gettid());
	mem = mmap(NULL, 81920, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		abort();
	t_alt.ss_sp = (char *)mem + 128;
	t_alt.ss_size = 73728;
	t_alt.ss_flags = 0;
	if (sigaltstack(&t_alt, NULL))
		abort();
	/* T's mask: inherited + SIGPROF, minus SIGWINCH */
	sigemptyset(&add);
	sigaddset(&add, SIGPROF);
	sigemptyset(&del);
	sigaddset(&del, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &add, NULL);
	pthread_sigmask(SIG_UNBLOCK, &del, NULL);
	pthread_sigmask(SIG_BLOCK, NULL, &t_mask);
	if (write(reply[1], "r", 1) != 1)
		abort();

	/* nothing can interrupt this read with a handler: it must be restarted */
	char c;
	ssize_t n = read(ctl[0], &c, 1);
	if (n != 1) {
		tbad("T: control read returned %zd (%s)", n, n < 0 ? strerror(errno) : "EOF");
		goto out;
	}

	/* mask */
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (!sets_equal(&cur, &t_mask, 0)) {
		char g[400], w[400];
		fmt_set(&cur, g, sizeof g);
		fmt_set(&t_mask, w, sizeof w);
		tbad("T blocked mask {%s} expected {%s}", g, w);
	}
	/* altstack */
	stack_t st;
	sigaltstack(NULL, &st);
	if (!altstack_equal(&st, &t_alt))
		tbad("T altstack sp=%p size=%zu flags=%d expected sp=%p size=%zu", st.ss_sp, st.ss_size, st.ss_flags,
		     t_alt.ss_sp, t_alt.ss_size);
	/* pending: shared + own private */
	sigset_t pend, want;
	int w[] = { SIGUSR1, SIGRTMIN + 1, SIGRTMIN + 4, SIGRTMIN + 2 };
	mkset(&want, w, 4);
	sigpending(&pend);
	if (!sets_equal(&pend, &want, SIGTERM)) {
		char g[400], ws[400];
		fmt_set(&pend, g, sizeof g);
		fmt_set(&want, ws, sizeof ws);
		tbad("T sigpending {%s} expected {%s}", g, ws);
	}
	/* deliver the thread-directed signals */
	int before = atomic_load(&nev);
	sigset_t rt2;
	sigemptyset(&rt2);
	sigaddset(&rt2, SIGRTMIN + 2);
	pthread_sigmask(SIG_UNBLOCK, &rt2, NULL);
	pthread_sigmask(SIG_BLOCK, &rt2, NULL);
	int after = atomic_load(&nev);
	int vals[2] = { 777, 778 }, k = 0;
	for (int i = before; i < after; i++) {
		struct ev *e = &evs[i];
		if (e->sig != SIGRTMIN + 2) {
			tbad("T: unexpected signal %d delivered", e->sig);
			continue;
		}
		if (k >= 2) {
			tbad("T: extra SIGRTMIN+2 delivered (value %d)", e->val);
			continue;
		}
		if (e->val != vals[k] || e->code != SI_QUEUE || e->tid != gettid() || e->pid != getpid() ||
		    e->uid != (int)getuid())
			tbad("T: SIGRTMIN+2 #%d: value %d code %d tid %d pid %d uid %d; expected %d SI_QUEUE tid %d pid %d uid %d",
			     k, e->val, e->code, e->tid, e->pid, e->uid, vals[k], gettid(), getpid(), getuid());
		k++;
	}
	if (k != 2)
		tbad("T: %d SIGRTMIN+2 delivered, expected 2 (777, 778)", k);
out:
	if (write(reply[1], "d", 1) != 1)
		abort();
	return NULL;
}

static int wait_byte(int fd, char want, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		return 0;
	return read(fd, &c, 1) == 1 && c == want;
}

/* unblock one signal in main and return the events it produced */
static int deliver(int sig, int *first)
{
	sigset_t s;
	*first = atomic_load(&nev);
	sigemptyset(&s);
	sigaddset(&s, sig);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	return atomic_load(&nev) - *first;
}

static void expect_queue(const char *name, int sig, const int *vals, int nvals)
{
	int first, n = deliver(sig, &first);
	int me = gettid();
	if (n != nvals)
		wl_bad("%s: %d deliveries, expected %d", name, n, nvals);
	for (int i = 0; i < n && i < nvals; i++) {
		struct ev *e = &evs[first + i];
		if (e->sig != sig || e->val != vals[i] || e->code != SI_QUEUE || e->pid != getpid() ||
		    e->uid != (int)getuid() || e->tid != me || !e->extra) {
			wl_bad("%s #%d: sig %d value %d code %d pid %d uid %d tid %d maskok %d; expected sig %d value %d SI_QUEUE pid %d uid %d tid %d",
			       name, i, e->sig, e->val, e->code, e->pid, e->uid, e->tid, e->extra, sig, vals[i], getpid(),
			       getuid(), me);
		}
	}
	if (n == nvals) {
		char b[256];
		size_t l = 0;
		for (int i = 0; i < n; i++)
			l += snprintf(b + l, sizeof b - l, "%d ", evs[first + i].val);
		wl_say("%s ok: values in order: %s", name, b);
	}
}

int main(void)
{
	pthread_t th;
	void *mem;
	stack_t alt, st;
	const int me = gettid();

	/* dispositions */
	{
		int m_usr1[] = { SIGUSR2 };
		int m_hup[] = { SIGINT };
		int m_alrm[] = { SIGUSR1, SIGWINCH, SIGRTMIN + 5 };
		int m_rt1[] = { SIGRTMIN + 6 };
		set_disp(SIGUSR1, (void *)h_usr1, SA_SIGINFO | SA_RESTART, m_usr1, 1);
		set_disp(SIGUSR2, (void *)h_usr2, SA_SIGINFO | SA_ONSTACK, NULL, 0);
		set_disp(SIGHUP, (void *)h_hup, SA_NODEFER | SA_RESETHAND, m_hup, 1);
		set_disp(SIGALRM, (void *)h_alrm, SA_RESTART, m_alrm, 3);
		set_disp(SIGCHLD, (void *)h_chld, SA_NOCLDSTOP | SA_RESTART, NULL, 0);
		set_disp(SIGPIPE, (void *)SIG_IGN, 0, NULL, 0);
		/* A SIGTRAP handler (bash has one) and an ignored SIGSYS: a
		 * checkpoint must not trap the thread with signals of its own. */
		set_disp(SIGTRAP, (void *)h_chld, SA_RESTART, NULL, 0);
		set_disp(SIGSYS, (void *)SIG_IGN, 0, NULL, 0);
		set_disp(SIGRTMIN + 1, (void *)h_rt, SA_SIGINFO, m_rt1, 1);
		set_disp(SIGRTMIN + 2, (void *)h_rt, SA_SIGINFO | SA_RESTART, NULL, 0);
		set_disp(SIGRTMIN + 3, (void *)h_rt, SA_SIGINFO, NULL, 0);
		set_disp(SIGRTMIN + 4, (void *)h_rt, SA_SIGINFO, NULL, 0);
	}

	/* main altstack */
	mem = mmap(NULL, 131072, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	alt.ss_sp = (char *)mem + 64;
	alt.ss_size = 98304;
	alt.ss_flags = 0;
	if (sigaltstack(&alt, NULL)) {
		perror("sigaltstack");
		return 1;
	}

	/* main blocked mask (T inherits it, then modifies its own) */
	sigset_t main_mask;
	{
		int b[] = { SIGUSR1, SIGALRM, SIGTERM, SIGWINCH, SIGRTMIN + 1, SIGRTMIN + 2,
			    SIGRTMIN + 3, SIGRTMIN + 4, SIGRTMAX };
		sigset_t s;
		mkset(&s, b, sizeof b / sizeof b[0]);
		pthread_sigmask(SIG_SETMASK, &s, NULL);
		pthread_sigmask(SIG_BLOCK, NULL, &main_mask);
	}

	if (pipe(ctl) || pipe(reply)) {
		perror("pipe");
		return 1;
	}
	if (pthread_create(&th, NULL, thread_t, NULL))
		wl_fail("pthread_create");
	if (!wait_byte(reply[0], 'r', 5000))
		wl_fail("setup: thread T did not start");

	/* pending signals */
	union sigval v;
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR1); /* standard signal: coalesces */
	for (int i = 0; i < 5; i++) {
		v.sival_int = 100 + i;
		if (sigqueue(getpid(), SIGRTMIN + 1, v))
			wl_fail("setup: sigqueue: %s", strerror(errno));
	}
	for (int i = 0; i < 2; i++) {
		v.sival_int = 200 + i;
		sigqueue(getpid(), SIGRTMIN + 4, v);
	}
	raise(SIGALRM);
	v.sival_int = 4242;
	pthread_sigqueue(pthread_self(), SIGRTMIN + 3, v);
	v.sival_int = 777;
	pthread_sigqueue(th, SIGRTMIN + 2, v);
	v.sival_int = 778;
	pthread_sigqueue(th, SIGRTMIN + 2, v);

	if (atomic_load(&nev) != 0)
		wl_fail("setup: %d signals delivered while they should be blocked", atomic_load(&nev));
	take_snapshot();
	{
		sigset_t pend;
		char b[400];
		sigpending(&pend);
		fmt_set(&pend, b, sizeof b);
		wl_say("main pending before READY: {%s}", b);
	}
	dump_status(me);
	dump_status(atomic_load(&t_tid));
	wl_say("main altstack sp=%p size=%zu; T altstack sp=%p size=%zu", alt.ss_sp, alt.ss_size, t_alt.ss_sp,
	       t_alt.ss_size);

	wl_ready_sigwait(NULL, "main");
	wl_say("main: got SIGTERM");
	dump_status(me);
	dump_status(atomic_load(&t_tid));

	if (atomic_load(&nev) != 0)
		wl_bad("%d signal(s) were delivered before SIGTERM (first: sig %d)", atomic_load(&nev), evs[0].sig);

	/* 1. blocked mask */
	{
		sigset_t cur;
		pthread_sigmask(SIG_BLOCK, NULL, &cur);
		check_set("main blocked mask", &cur, &main_mask, 0);
	}
	/* 2. altstack */
	sigaltstack(NULL, &st);
	if (!altstack_equal(&st, &alt) || (st.ss_flags & SS_ONSTACK))
		wl_bad("main altstack sp=%p size=%zu flags=%d, expected sp=%p size=%zu flags=0", st.ss_sp, st.ss_size,
		       st.ss_flags, alt.ss_sp, alt.ss_size);
	else
		wl_say("main altstack ok: sp=%p size=%zu", st.ss_sp, st.ss_size);
	/* 3. dispositions */
	compare_snapshot();
	/* 4. pending as seen by main: shared + main-private, not T's */
	{
		int w[] = { SIGUSR1, SIGALRM, SIGRTMIN + 1, SIGRTMIN + 3, SIGRTMIN + 4 };
		sigset_t pend, ws;
		mkset(&ws, w, 5);
		sigpending(&pend);
		check_set("main sigpending", &pend, &ws, SIGTERM);
	}
	/* 5. thread T checks its own state and receives its signals */
	if (write(ctl[1], "c", 1) != 1 || !wait_byte(reply[0], 'd', 5000)) {
		wl_bad("thread T did not report back");
	} else {
		pthread_join(th, NULL);
		if (t_fails)
			wl_bad("%s", t_result);
		else
			wl_say("thread T ok: mask, altstack, sigpending, SIGRTMIN+2 x2 (777, 778) delivered to T in order");
	}
	/* 6. unblock in main, one signal at a time */
	{
		int first, n = deliver(SIGALRM, &first);
		if (n != 1 || evs[first].sig != SIGALRM || evs[first].tid != me || !evs[first].extra)
			wl_bad("SIGALRM: %d deliveries (sig %d tid %d, handler mask ok %d), expected 1 in main with sa_mask applied",
			       n, n ? evs[first].sig : 0, n ? evs[first].tid : 0, n ? evs[first].extra : 0);
		else
			wl_say("SIGALRM ok: delivered once, sa_mask in effect");
	}
	{
		int first, n = deliver(SIGUSR1, &first);
		struct ev *e = &evs[first];
		if (n != 1 || e->sig != SIGUSR1 || e->code != SI_USER || e->pid != getpid() || e->uid != (int)getuid() ||
		    e->tid != me || !e->extra)
			wl_bad("SIGUSR1: %d deliveries (sig %d code %d pid %d uid %d tid %d maskok %d), expected 1 SI_USER from pid %d",
			       n, e->sig, e->code, e->pid, e->uid, e->tid, e->extra, getpid());
		else
			wl_say("SIGUSR1 ok: delivered once, SI_USER from pid %d, sa_mask in effect", e->pid);
	}
	{
		int v1[] = { 100, 101, 102, 103, 104 };
		int v3[] = { 4242 };
		int v4[] = { 200, 201 };
		expect_queue("SIGRTMIN+1", SIGRTMIN + 1, v1, 5);
		expect_queue("SIGRTMIN+3", SIGRTMIN + 3, v3, 1);
		expect_queue("SIGRTMIN+4", SIGRTMIN + 4, v4, 2);
	}
	/* 7. SA_ONSTACK */
	{
		int first = atomic_load(&nev);
		raise(SIGUSR2);
		int n = atomic_load(&nev) - first;
		if (n != 1 || evs[first].sig != SIGUSR2 || !evs[first].extra)
			wl_bad("SIGUSR2 (SA_ONSTACK): %d deliveries, on altstack %d", n, n ? evs[first].extra : -1);
		else
			wl_say("SIGUSR2 ok: handler ran on the alternate stack");
	}
	/* 8. SA_NODEFER | SA_RESETHAND */
	{
		int first = atomic_load(&nev);
		raise(SIGHUP);
		int n = atomic_load(&nev) - first;
		struct sigaction q;
		sigaction(SIGHUP, NULL, &q);
		if (n != 1 || evs[first].sig != SIGHUP || !evs[first].extra)
			wl_bad("SIGHUP: %d deliveries, mask ok %d (expected SIGHUP unblocked, SIGINT blocked)", n,
			       n ? evs[first].extra : -1);
		else if (q.sa_handler != SIG_DFL)
			wl_bad("SIGHUP: SA_RESETHAND did not reset the handler (now %p)", (void *)q.sa_handler);
		else
			wl_say("SIGHUP ok: SA_NODEFER + sa_mask in handler, reset to SIG_DFL afterwards");
	}
	/* 9. SIG_IGN for SIGPIPE */
	{
		int p[2];
		if (pipe(p) == 0) {
			close(p[0]);
			ssize_t r = write(p[1], "x", 1);
			if (r != -1 || errno != EPIPE)
				wl_bad("SIGPIPE: write to broken pipe returned %zd (%s), expected EPIPE", r, strerror(errno));
			else
				wl_say("SIGPIPE ok: ignored, write gave EPIPE");
			close(p[1]);
		}
	}
	/* 10. nothing else pending or delivered */
	{
		sigset_t pend, none;
		sigemptyset(&none);
		sigpending(&pend);
		check_set("main sigpending after delivery", &pend, &none, SIGTERM);
		for (int i = 0; i < atomic_load(&nev); i++)
			if (evs[i].sig == SIGCHLD)
				wl_bad("unexpected SIGCHLD delivery");
	}
	wl_verdict();
}
