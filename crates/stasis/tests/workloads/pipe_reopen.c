/*
 * Pipes with more than one open file description per end: opening
 * /proc/self/fd/N of a pipe end makes a new description of the same pipe,
 * with its own status flags (and, for O_RDWR, both ends in one).
 *   A  pipe(a); r2 = open(a[0], O_RDONLY|O_NONBLOCK); w2 = open(a[1],
 *      O_WRONLY); rd = dup(a[0]); wd = dup(w2); 5000 bytes unread;
 *   B  pipe(b); r3 = open(b[0], O_RDONLY): two read descriptions, one
 *      write; 3000 bytes unread;
 *   C  pipe(c); rw = open(c[1], O_RDWR|O_NONBLOCK), then c[0] and c[1]
 *      closed: the pipe is held by one read-write description only; 2000
 *      bytes unread. Left out with the argument "no-rdwr" (the image of
 *      the reported restore panic had A and B only).
 *
 * Verified after SIGTERM:
 *   every fd is still on its pipe (one inode per pipe, three pipes) with its access
 *   mode; the descriptions are distinct (kcmp) and dups still share one;
 *   O_NONBLOCK is on r2 and rw only, and setting it on rd shows on a[0]
 *   but not on r2's sibling descriptions; the unread bytes read back
 *   through r2, r3 and rw; writes through w2, b[1] and rw arrive; once
 *   every write end of A is closed, a[0] sees EOF (no writer leaked by a
 *   restore).
 */
#include "tree.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#define A_DATA 5000
#define B_DATA 3000
#define C_DATA 2000

#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

static int a[2], r2, w2, rd, wd;
static int b[2], r3;
static int rw = -1;
static unsigned char buf[A_DATA];

static int reopen(int fd, int flags)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	return SYS(open(p, flags));
}

static void fill(int seed, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = tr_byte(seed, i);
}

/* 0: same description, 1/2: different, -1: kcmp failed. */
static long same_desc(int x, int y)
{
	return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, x, y);
}

/* The pipe's inode, read again after restore (a restored pipe is a new
 * one): every fd of one pipe must be on the same. */
static ino_t ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

static void check_fd(int fd, const char *name, ino_t ino, int mode, int nonblock)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fstat(fd, &st) || !S_ISFIFO(st.st_mode) || st.st_ino != ino) {
		wl_bad("%s (fd %d) is not on its pipe", name, fd);
		return;
	}
	TCHECK((fl & O_ACCMODE) == mode, "%s: access mode %d, want %d", name, fl & O_ACCMODE,
	       mode);
	TCHECK(!!(fl & O_NONBLOCK) == nonblock, "%s: O_NONBLOCK is %s", name,
	       nonblock ? "off" : "on");
}

static void check_desc(int x, int y, const char *what, int want_same)
{
	long r = same_desc(x, y);

	if (r < 0)
		wl_bad("kcmp(%s): %s", what, strerror(errno));
	else
		TCHECK((r == 0) == want_same, "%s: %s, want %s", what,
		       r == 0 ? "one description" : "two descriptions",
		       want_same ? "one" : "two");
}

static void ping(int w, int r, const char *what)
{
	char got[8] = "";

	TCHECK(write(w, "ping", 4) == 4, "%s: write: %s", what, strerror(errno));
	TCHECK(read(r, got, 4) == 4 && !memcmp(got, "ping", 4), "%s: ping not read back", what);
}

int main(int argc, char **argv)
{
	int with_rdwr = !(argc > 1 && !strcmp(argv[1], "no-rdwr"));
	ino_t ia, ib, ic = 0;

	SYS(pipe(a));
	fill(1, A_DATA);
	if (write(a[1], buf, A_DATA) != A_DATA)
		wl_fail("write A: %s", strerror(errno));
	r2 = reopen(a[0], O_RDONLY | O_NONBLOCK);
	w2 = reopen(a[1], O_WRONLY);
	rd = SYS(dup(a[0]));
	wd = SYS(dup(w2));

	SYS(pipe(b));
	r3 = reopen(b[0], O_RDONLY);
	fill(2, B_DATA);
	if (write(b[1], buf, B_DATA) != B_DATA)
		wl_fail("write B: %s", strerror(errno));

	if (with_rdwr) {
		int c[2];

		SYS(pipe(c));
		rw = reopen(c[1], O_RDWR | O_NONBLOCK);
		close(c[0]);
		close(c[1]);
		fill(3, C_DATA);
		if (write(rw, buf, C_DATA) != C_DATA)
			wl_fail("write C: %s", strerror(errno));
	}

	wl_ready_sigwait(NULL, NULL);

	ia = ino_of(a[0]);
	ib = ino_of(b[0]);
	if (with_rdwr)
		ic = ino_of(rw);

	check_fd(a[0], "A read end", ia, O_RDONLY, 0);
	check_fd(rd, "A read dup", ia, O_RDONLY, 0);
	check_fd(r2, "A second read description", ia, O_RDONLY, 1);
	check_fd(a[1], "A write end", ia, O_WRONLY, 0);
	check_fd(w2, "A second write description", ia, O_WRONLY, 0);
	check_fd(wd, "A write dup", ia, O_WRONLY, 0);
	check_fd(b[0], "B read end", ib, O_RDONLY, 0);
	check_fd(r3, "B second read description", ib, O_RDONLY, 0);
	check_fd(b[1], "B write end", ib, O_WRONLY, 0);
	if (with_rdwr)
		check_fd(rw, "C read-write description", ic, O_RDWR, 1);
	TCHECK(ia != ib && ib != ic && ia != ic, "pipes merged: inodes %lu %lu %lu",
	       (unsigned long)ia, (unsigned long)ib, (unsigned long)ic);

	check_desc(a[0], rd, "A read end / its dup", 1);
	check_desc(w2, wd, "A second write description / its dup", 1);
	check_desc(a[0], r2, "A read end / second read description", 0);
	check_desc(a[1], w2, "A write end / second write description", 0);
	check_desc(b[0], r3, "B read end / second read description", 0);

	/* Status flags follow the description: rd's change shows on a[0]. */
	SYS(fcntl(rd, F_SETFL, O_NONBLOCK));
	TCHECK(fcntl(a[0], F_GETFL) & O_NONBLOCK, "O_NONBLOCK set on the dup is not on a[0]");
	SYS(fcntl(r2, F_SETFL, 0));
	TCHECK(fcntl(a[0], F_GETFL) & O_NONBLOCK,
	       "clearing O_NONBLOCK on the second read description cleared it on a[0]");
	SYS(fcntl(rd, F_SETFL, 0));
	SYS(fcntl(r2, F_SETFL, O_NONBLOCK));

	tr_read_stream(r2, 1, A_DATA, buf, "A second read description");
	ping(w2, a[0], "A second write description -> read end");
	ping(wd, r2, "A write dup -> second read description");
	tr_read_stream(r3, 2, B_DATA, buf, "B second read description");
	ping(b[1], b[0], "B write end -> read end");
	if (with_rdwr) {
		tr_read_stream(rw, 3, C_DATA, buf, "C read-write description");
		ping(rw, rw, "C read-write description");
	}

	close(a[1]);
	close(w2);
	close(wd);
	{
		struct pollfd pfd = { a[0], POLLIN, 0 };
		char ch;

		if (poll(&pfd, 1, 5000) != 1)
			wl_bad("A: no EOF within 5 s after every writer closed (a write end leaked?)");
		else
			TCHECK(read(a[0], &ch, 1) == 0, "A: read after the writers closed is not EOF");
	}
	wl_verdict();
}
