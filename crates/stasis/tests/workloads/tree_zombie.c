/*
 * Zombies: the root forks three children that die before READY and are
 * NOT reaped (they are zombies at checkpoint time), and one live child.
 *
 *   Z3  exits with code 3
 *   Z5  exits with code 5
 *   ZS  dies of a signal: raise(SIGUSR2) with the default action
 *   L   live, waits for SIGTERM, checks getpid()/getppid(), exits 0
 *
 * Before READY the root confirms each death with waitid(WNOWAIT), which
 * leaves the zombie in place. Verified after SIGTERM: each zombie is still
 * waitable without reaping (waitid(WNOHANG | WNOWAIT) reports it with the
 * right si_code/si_status), then waitpid() reaps it with WIFEXITED +
 * WEXITSTATUS 3 / 5, or WIFSIGNALED + WTERMSIG SIGUSR2; the live child is
 * stopped and exits 0; then no child is left.
 */
#include "tree.h"

enum { Z3, Z5, ZS, NZOMBIES };
static const char *const names[NZOMBIES] = { "Z3", "Z5", "ZS" };
static const int want_code[NZOMBIES] = { CLD_EXITED, CLD_EXITED, CLD_KILLED };
static const int want_status[NZOMBIES] = { 3, 5, SIGUSR2 };

static void __attribute__((noreturn)) zombie(int z)
{
	if (z == ZS) {
		raise(SIGUSR2);
		_exit(100); /* not reached: SIGUSR2's default action terminates */
	}
	_exit(want_status[z]);
}

int main(void)
{
	pid_t root = getpid(), z[NZOMBIES], live;

	tr_block_term();
	tr_sync_open();
	for (int i = 0; i < NZOMBIES; i++)
		if ((z[i] = tr_fork()) == 0)
			zombie(i);
	if ((live = tr_fork()) == 0) {
		pid_t me = getpid();

		tr_set_who("live child");
		tr_sync_send(0);
		tr_wait_term();
		TCHECK(getpid() == me, "getpid() %d, was %d", getpid(), me);
		TCHECK(getppid() == root, "getppid() %d, want the root %d", getppid(), root);
		tr_exit();
	}
	tr_sync_recv(1, NULL);
	for (int i = 0; i < NZOMBIES; i++) {
		siginfo_t si;

		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, z[i], &si, WEXITED | WNOWAIT))
			wl_fail("waitid(%s): %s", names[i], strerror(errno));
		CHECK(si.si_code == want_code[i] && si.si_status == want_status[i],
		      "%s died with si_code %d si_status %d before READY", names[i], si.si_code,
		      si.si_status);
	}
	wl_ready_sigwait(NULL, NULL);

	for (int i = 0; i < NZOMBIES; i++) {
		siginfo_t si;

		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, z[i], &si, WEXITED | WNOHANG | WNOWAIT)) {
			wl_bad("waitid(%s, pid %d, WNOWAIT): %s", names[i], z[i], strerror(errno));
			continue;
		}
		if (si.si_pid != z[i]) {
			wl_bad("%s (pid %d) is not a zombie after restore (waitid gave pid %d)",
			       names[i], z[i], si.si_pid);
			continue;
		}
		TCHECK(si.si_code == want_code[i] && si.si_status == want_status[i],
		       "%s: waitid si_code %d si_status %d, want %d %d", names[i], si.si_code,
		       si.si_status, want_code[i], want_status[i]);
	}
	for (int i = 0; i < NZOMBIES; i++) {
		int st;
		pid_t r = waitpid(z[i], &st, WNOHANG);

		if (r != z[i]) {
			wl_bad("waitpid(%s, pid %d) returned %d (%s)", names[i], z[i], r,
			       r < 0 ? strerror(errno) : "not exited");
			continue;
		}
		if (i == ZS)
			TCHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR2, "%s: %s, want signal %d",
			       names[i], tr_status_str(st), SIGUSR2);
		else
			TCHECK(WIFEXITED(st) && WEXITSTATUS(st) == want_status[i],
			       "%s: %s, want exit %d", names[i], tr_status_str(st), want_status[i]);
	}
	tr_stop(live, "live child", 0);
	tr_check_no_children();
	wl_verdict();
}
