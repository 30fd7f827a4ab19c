/*
 * Sessions and process groups in a tree. The root R leads its session (the
 * harness starts it with setsid) and is a child subreaper.
 *
 *   R   group R, session R
 *   A   child of R, leads group A (setpgid(0, 0))
 *   B   child of A, in group A
 *   C   child of R, leads group C, forks D, then EXITS and is reaped by R:
 *       group C lives on with a dead leader
 *   D   child of C, in group C (setpgid by both C and D); orphaned by C's
 *       exit, so reparented to R (the subreaper)
 *   E   child of R, setsid(): leads session E and group E
 *   F   child of E, in session E, group E
 *
 * Verified after SIGTERM: every process checks its own getpid(),
 * getppid(), getpgid(0) and getsid(0); the root also checks everybody's
 * getpgid(pid)/getsid(pid) from outside, that it is still a child
 * subreaper, and that C's pid is not a live process while group C exists.
 * The root then stops the others by signalling their groups (kill(-A),
 * kill(-C), kill(-E)): a group that lost members does not reach them.
 * Parents reap their children and report the result in their exit status.
 */
#include "tree.h"

#include <sys/prctl.h>

enum { A, B, C, D, E, F, NROLES };
static const char *const names[NROLES] = { "A", "B", "C", "D", "E", "F" };

static pid_t R, pids[NROLES];

/* Checks the calling process's identity: pid, parent, group, session. */
static void check_self(pid_t pid, pid_t ppid, pid_t pgid, pid_t sid)
{
	TCHECK(getpid() == pid, "getpid() %d, was %d", getpid(), pid);
	TCHECK(getppid() == ppid, "getppid() %d, want %d", getppid(), ppid);
	TCHECK(getpgid(0) == pgid, "getpgid(0) %d, want %d", getpgid(0), pgid);
	TCHECK(getsid(0) == sid, "getsid(0) %d, want %d", getsid(0), sid);
}

/* A child that only waits and checks itself. */
static void __attribute__((noreturn)) leaf(int role, pid_t ppid, pid_t pgid, pid_t sid)
{
	pid_t me = getpid();

	tr_set_who("%s", names[role]);
	tr_sync_send(role);
	tr_wait_term();
	check_self(me, ppid, pgid, sid);
	tr_exit();
}

static void __attribute__((noreturn)) run_a(void)
{
	pid_t me = getpid(), b;

	tr_set_who("A");
	if (setpgid(0, 0))
		wl_fail("A: setpgid(0, 0): %s", strerror(errno));
	b = tr_fork();
	if (b == 0)
		leaf(B, me, me, R);
	tr_sync_send(A);
	tr_wait_term();
	check_self(me, R, me, R);
	tr_reap(b, "B", 0);
	tr_exit();
}

static void __attribute__((noreturn)) run_c(void)
{
	pid_t me = getpid(), d;

	tr_set_who("C");
	if (setpgid(0, 0))
		wl_fail("C: setpgid(0, 0): %s", strerror(errno));
	d = tr_fork();
	if (d == 0) {
		tr_set_who("D");
		if (setpgid(0, me))
			wl_fail("D: setpgid(0, %d): %s", me, strerror(errno));
		/* D's parent will be R once C has exited. */
		leaf(D, R, me, R);
	}
	if (setpgid(d, me) && errno != EACCES)
		wl_fail("C: setpgid(%d, %d): %s", d, me, strerror(errno));
	_exit(0);
}

static void __attribute__((noreturn)) run_e(void)
{
	pid_t me, f;

	tr_set_who("E");
	if (setsid() < 0)
		wl_fail("E: setsid: %s", strerror(errno));
	me = getpid();
	f = tr_fork();
	if (f == 0)
		leaf(F, me, me, me);
	tr_sync_send(E);
	tr_wait_term();
	check_self(me, R, me, me);
	tr_reap(f, "F", 0);
	tr_exit();
}

int main(void)
{
	struct tr_msg msgs[NROLES - 1];
	int sub = -1;

	R = getpid();
	if (getsid(0) != R || getpgid(0) != R)
		wl_fail("the root must lead its session and group (sid %d pgid %d)", getsid(0),
			getpgid(0));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		wl_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	tr_block_term();
	tr_sync_open();
	if ((pids[A] = tr_fork()) == 0)
		run_a();
	if ((pids[C] = tr_fork()) == 0)
		run_c();
	if ((pids[E] = tr_fork()) == 0)
		run_e();
	/* Everybody but C reports; D only after joining group C. */
	tr_sync_recv(NROLES - 1, msgs);
	for (int i = 0; i < NROLES - 1; i++)
		pids[msgs[i].role] = msgs[i].pid;
	if (!tr_reap(pids[C], "C", 0))
		wl_fail("C did not exit cleanly");
	CHECK(getpgid(pids[D]) == pids[C], "D is not in group C before READY");
	wl_ready_sigwait(NULL, NULL);

	check_self(R, getppid(), R, R);
	{
		/* Expected group and session of each role (C is gone). */
		const pid_t pg[NROLES] = { pids[A], pids[A], 0, pids[C], pids[E], pids[E] };
		const pid_t sid[NROLES] = { R, R, 0, R, pids[E], pids[E] };

		for (int i = 0; i < NROLES; i++) {
			if (i == C)
				continue;
			TCHECK(getpgid(pids[i]) == pg[i], "getpgid(%s = %d) %d, want %d", names[i],
			       pids[i], getpgid(pids[i]), pg[i]);
			TCHECK(getsid(pids[i]) == sid[i], "getsid(%s = %d) %d, want %d", names[i],
			       pids[i], getsid(pids[i]), sid[i]);
		}
	}
	TCHECK(prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0) == 0 && sub == 1,
	       "the root is no longer a child subreaper (%d)", sub);
	TCHECK(kill(pids[C], 0) < 0 && errno == ESRCH, "C's pid %d is a live process again",
	       pids[C]);
	TCHECK(kill(-pids[C], 0) == 0, "group C (%d) is gone: %s", pids[C], strerror(errno));

	/* Stop everybody through their process groups. */
	TCHECK(kill(-pids[A], SIGTERM) == 0, "kill(-A): %s", strerror(errno));
	TCHECK(kill(-pids[C], SIGTERM) == 0, "kill(-C): %s", strerror(errno));
	TCHECK(kill(-pids[E], SIGTERM) == 0, "kill(-E): %s", strerror(errno));
	tr_reap(pids[A], "A", 0);
	tr_reap(pids[D], "D", 0);
	tr_reap(pids[E], "E", 0);
	tr_check_no_children();
	wl_verdict();
}
