/*
 * A tree of 100 processes: the root, 9 children, and 10 children under
 * each of those (1 + 9 + 90). Every process writes 8 KiB of private data
 * after its fork (a pattern of its pid), over memory inherited from its
 * parent.
 *
 * Verified after SIGTERM: each process checks getpid(), getppid() and its
 * data. A middle process stops its 10 children, reaps them (each must exit
 * 0) and exits 0 only when they all passed; the root does the same with
 * its 9 children, so its verdict covers all 100 processes.
 */
#include "tree.h"

#define NMID 9
#define NLEAF 10
#define WORDS (8 * 1024 / 8)

static uint64_t data[WORDS];
static pid_t kids[NLEAF];

static void set_data(void)
{
	tr_fill(data, WORDS, 7, getpid());
}

static void check(pid_t me, pid_t parent)
{
	long bad = tr_check_fill(data, WORDS, 7, me);

	TCHECK(getpid() == me, "getpid() %d, was %d", getpid(), me);
	if (parent)
		TCHECK(getppid() == parent, "getppid() %d, want %d", getppid(), parent);
	TCHECK(bad < 0, "private data word %ld changed", bad);
}

/* Stops and reaps n children; returns how many exited 0. */
static int stop_all(int n, const char *kind)
{
	int ok = 0;

	for (int i = 0; i < n; i++)
		if (kill(kids[i], SIGTERM))
			tr_bad("kill(%s %d, pid %d): %s", kind, i, kids[i], strerror(errno));
	for (int i = 0; i < n; i++) {
		char who[32];

		snprintf(who, sizeof(who), "%s %d", kind, i);
		ok += tr_reap(kids[i], who, 0);
	}
	return ok;
}

static void __attribute__((noreturn)) leaf(int m, int l, pid_t parent)
{
	pid_t me = getpid();

	tr_set_who("leaf %d.%d", m, l);
	set_data();
	tr_sync_send(1);
	tr_wait_term();
	check(me, parent);
	tr_exit();
}

static void __attribute__((noreturn)) middle(int m, pid_t root)
{
	pid_t me = getpid();

	tr_set_who("middle %d", m);
	set_data();
	for (int l = 0; l < NLEAF; l++)
		if ((kids[l] = tr_fork()) == 0)
			leaf(m, l, me);
	tr_sync_send(0);
	tr_wait_term();
	check(me, root);
	stop_all(NLEAF, "leaf");
	tr_check_no_children();
	tr_exit();
}

int main(void)
{
	pid_t root = getpid();
	int ok;

	tr_block_term();
	tr_sync_open();
	set_data();
	for (int m = 0; m < NMID; m++)
		if ((kids[m] = tr_fork()) == 0)
			middle(m, root);
	tr_sync_recv(NMID * (1 + NLEAF), NULL);
	wl_ready_sigwait(NULL, NULL);

	check(root, 0);
	ok = stop_all(NMID, "middle");
	tr_check_no_children();
	if (ok == NMID && !wl_fails)
		wl_say("all %d processes verified", 1 + NMID * (1 + NLEAF));
	wl_verdict();
}
