/*
 * Pipes between a parent and its child, with unread data in flight:
 *   P1  root -> child, default size, 10 KiB written by the root;
 *   P2  child -> root, F_SETPIPE_SZ 256 KiB, 200 KiB written by the child
 *       (more than a default 64 KiB pipe can hold).
 * Each process holds only its own ends (the others are closed).
 *
 * Verified after SIGTERM:
 *   root:  F_GETPIPE_SZ of both its ends unchanged; FIONREAD on P2 is
 *          200 KiB; reads exactly those bytes; closes its P1 write end and
 *          stops the child;
 *   child: same sizes; FIONREAD on P1 is 10 KiB; reads exactly those
 *          bytes, then sees EOF on P1 (no other write end of P1 exists,
 *          e.g. leaked by a restore); writes "bye" to P2 and closes it;
 *   root:  reads "bye" then EOF on P2; the child exits 0.
 */
#include "tree.h"


#define BIG_PIPE (256 * 1024)
#define P1_DATA (10 * 1024)
#define P2_DATA (200 * 1024)

static int p1[2], p2[2];
static int default_size;
static unsigned char buf[P2_DATA];

static void fill(int pipe_no, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = tr_byte(pipe_no, i);
}

static void check_size(int fd, const char *name, int want)
{
	int sz = fcntl(fd, F_GETPIPE_SZ);

	TCHECK(sz == want, "%s: F_GETPIPE_SZ %d, want %d", name, sz, want);
}

/* Expects EOF on fd within 5 s: poll says readable/hung up, read gives 0. */
static void expect_eof(int fd, const char *name)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char c;

	if (poll(&pfd, 1, 5000) != 1) {
		tr_bad("%s: no EOF within 5 s after the writer closed (a write end leaked?)",
		       name);
		return;
	}
	ssize_t r = read(fd, &c, 1);
	TCHECK(r == 0, "%s: read after the writer closed returned %zd, want EOF", name, r);
}

static void __attribute__((noreturn)) child(pid_t root)
{
	char bye[8];

	tr_set_who("child");
	close(p1[1]);
	close(p2[0]);
	fill(2, P2_DATA);
	if (write(p2[1], buf, P2_DATA) != P2_DATA)
		wl_fail("child: write P2: %s", strerror(errno));
	tr_sync_send(0);
	tr_wait_term();

	TCHECK(getppid() == root, "getppid() %d, want the root %d", getppid(), root);
	check_size(p1[0], "P1 read end", default_size);
	check_size(p2[1], "P2 write end", BIG_PIPE);
	tr_read_stream(p1[0], 1, P1_DATA, buf, "P1 read end");
	expect_eof(p1[0], "P1 read end");
	memcpy(bye, "bye", 3);
	TCHECK(write(p2[1], bye, 3) == 3, "write bye to P2: %s", strerror(errno));
	close(p2[1]);
	tr_exit();
}

int main(void)
{
	pid_t root = getpid(), kid;
	char bye[8] = "";

	SYS(pipe(p1));
	SYS(pipe(p2));
	default_size = SYS(fcntl(p1[0], F_GETPIPE_SZ));
	if (fcntl(p2[0], F_SETPIPE_SZ, BIG_PIPE) < BIG_PIPE)
		wl_fail("F_SETPIPE_SZ %d: %s", BIG_PIPE, strerror(errno));
	tr_block_term();
	tr_sync_open();
	if ((kid = tr_fork()) == 0)
		child(root);
	close(p1[0]);
	close(p2[1]);
	fill(1, P1_DATA);
	if (write(p1[1], buf, P1_DATA) != P1_DATA)
		wl_fail("write P1: %s", strerror(errno));
	tr_sync_recv(1, NULL);
	wl_ready_sigwait(NULL, NULL);

	check_size(p1[1], "P1 write end", default_size);
	check_size(p2[0], "P2 read end", BIG_PIPE);
	tr_read_stream(p2[0], 2, P2_DATA, buf, "P2 read end");
	close(p1[1]);
	if (kill(kid, SIGTERM))
		wl_bad("kill(child): %s", strerror(errno));
	{
		struct pollfd pfd = { p2[0], POLLIN, 0 };

		/* Longer than the child's own EOF wait, so its reason comes first. */
		if (poll(&pfd, 1, 10000) != 1 || read(p2[0], bye, 3) != 3 || memcmp(bye, "bye", 3))
			wl_bad("no \"bye\" from the child on P2");
		else
			expect_eof(p2[0], "P2 read end");
	}
	tr_reap(kid, "child", 0);
	tr_check_no_children();
	wl_verdict();
}
