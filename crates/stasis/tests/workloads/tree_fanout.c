/*
 * The root forks 16 children. Each child writes 32 KiB of private data of
 * its own (in memory inherited from the root, so it diverges copy-on-write
 * from the root's, which keeps its own pattern there).
 *
 * Verified after SIGTERM: each child checks getpid(), getppid() (the root)
 * and its private data, and exits with its own code 20 + index (1 when a
 * check failed). The root checks its own copy of the data, then stops all
 * children and reaps them with waitpid(-1): exactly the 16 pids it forked,
 * each once, each with its distinct exit code, and no other child.
 */
#include "tree.h"

#define NCHILD 16
#define WORDS (32 * 1024 / 8)

static uint64_t data[WORDS];
static pid_t kids[NCHILD];

static void child(int idx, pid_t root)
{
	pid_t me = getpid();

	tr_set_who("child %d", idx);
	tr_fill(data, WORDS, 100 + idx, me);
	tr_sync_send(idx);
	tr_wait_term();
	TCHECK(getpid() == me, "getpid() %d, was %d", getpid(), me);
	TCHECK(getppid() == root, "getppid() %d, want the root %d", getppid(), root);
	long bad = tr_check_fill(data, WORDS, 100 + idx, me);
	TCHECK(bad < 0, "private data word %ld changed", bad);
	tr_exit_code(20 + idx);
}

int main(void)
{
	pid_t root = getpid();
	int seen[NCHILD] = { 0 };

	tr_block_term();
	tr_sync_open();
	tr_fill(data, WORDS, 1, root);
	for (int i = 0; i < NCHILD; i++) {
		pid_t pid = tr_fork();

		if (pid == 0)
			child(i, root);
		kids[i] = pid;
	}
	tr_sync_recv(NCHILD, NULL);
	wl_ready_sigwait(NULL, NULL);

	long bad = tr_check_fill(data, WORDS, 1, root);
	TCHECK(bad < 0, "root's data word %ld changed", bad);
	for (int i = 0; i < NCHILD; i++)
		if (kill(kids[i], SIGTERM))
			wl_bad("kill(child %d, pid %d): %s", i, kids[i], strerror(errno));

	/* Reap whatever exits, and account for every pid. */
	for (int n = 0; n < NCHILD; n++) {
		int st, idx = -1;
		pid_t pid;

		do
			pid = waitpid(-1, &st, 0);
		while (pid < 0 && errno == EINTR);
		if (pid < 0) {
			wl_bad("waitpid(-1) after %d children: %s", n, strerror(errno));
			break;
		}
		for (int i = 0; i < NCHILD; i++)
			if (kids[i] == pid)
				idx = i;
		if (idx < 0) {
			wl_bad("reaped pid %d (%s), which the root did not fork", pid, tr_status_str(st));
			continue;
		}
		if (seen[idx]++)
			wl_bad("reaped child %d (pid %d) twice", idx, pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 20 + idx)
			wl_bad("child %d (pid %d): %s, want exit %d", idx, pid, tr_status_str(st),
			       20 + idx);
	}
	for (int i = 0; i < NCHILD; i++)
		if (!seen[i])
			wl_bad("child %d (pid %d) was never reaped", i, kids[i]);
	tr_check_no_children();
	wl_verdict();
}
