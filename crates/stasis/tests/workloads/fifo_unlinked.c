/*
 * FIFOs whose name was unlinked while they were open, with unread data:
 *   u.fifo  a reader (O_RDONLY|O_NONBLOCK) and a writer (O_WRONLY), and a
 *           dup of the writer; 4000 bytes unread; mode 0640;
 *   v.fifo  one O_RDWR description with 70000 bytes in a 128 KiB pipe;
 *   w.fifo  a reader only (its writer wrote 1000 bytes and closed), so an
 *           open of it for reading alone would wait forever (opened first:
 *           the dump that hung met it first).
 * All three names are unlinked before READY.
 *
 * Verified after SIGTERM:
 *   each fd names "<dir>/X.fifo (deleted)", is a FIFO with no link left,
 *   mode 0640 for u.fifo, its access mode and O_NONBLOCK as before; the
 *   dup still shares the writer's description and the reader is another
 *   one (kcmp); no file is left under either name; the unread bytes read
 *   back; a write to each arrives; once u.fifo's writers close, its reader
 *   sees EOF, and w.fifo's reader sees EOF after its bytes (no writer
 *   leaked by a restore).
 */
#include "tree.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#define U_DATA 4000
#define V_DATA 70000
#define V_PIPE (128 * 1024)
#define W_DATA 1000

#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

static int ur, uw, uw2, v, wr;
static unsigned char buf[V_DATA];
static char cwd[512];

static void check_fd(int fd, const char *name, int mode, int nonblock)
{
	char p[64], l[1024], want[1100];
	ssize_t n;
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	l[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%s/%s (deleted)", cwd, name);
	TCHECK(!strcmp(l, want), "fd %d is \"%s\", want \"%s\"", fd, l, want);
	if (fstat(fd, &st) || !S_ISFIFO(st.st_mode)) {
		wl_bad("fd %d (%s) is not a FIFO", fd, name);
		return;
	}
	TCHECK(st.st_nlink == 0, "fd %d (%s) has %lu links, want 0", fd, name,
	       (unsigned long)st.st_nlink);
	TCHECK((fl & O_ACCMODE) == mode, "fd %d (%s): access mode %d, want %d", fd, name,
	       fl & O_ACCMODE, mode);
	TCHECK(!!(fl & O_NONBLOCK) == nonblock, "fd %d (%s): O_NONBLOCK is %s", fd, name,
	       nonblock ? "off" : "on");
}

static void check_desc(int x, int y, const char *what, int want_same)
{
	long r = syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, x, y);

	if (r < 0)
		wl_bad("kcmp(%s): %s", what, strerror(errno));
	else
		TCHECK((r == 0) == want_same, "%s: %s, want %s", what,
		       r == 0 ? "one description" : "two descriptions",
		       want_same ? "one" : "two");
}

int main(void)
{
	struct stat st, su;
	char got[8] = "";

	if (!getcwd(cwd, sizeof(cwd)))
		wl_fail("getcwd: %s", strerror(errno));
	/* First, so that it is the lowest fd, the one a dump looks at first. */
	SYS(mkfifo("w.fifo", 0600));
	wr = SYS(open("w.fifo", O_RDONLY | O_NONBLOCK));
	{
		int ww = SYS(open("w.fifo", O_WRONLY));

		for (size_t i = 0; i < W_DATA; i++)
			buf[i] = tr_byte(3, i);
		if (write(ww, buf, W_DATA) != W_DATA)
			wl_fail("write w.fifo: %s", strerror(errno));
		close(ww);
	}
	SYS(mkfifo("u.fifo", 0600));
	SYS(chmod("u.fifo", 0640));
	SYS(mkfifo("v.fifo", 0600));
	ur = SYS(open("u.fifo", O_RDONLY | O_NONBLOCK));
	uw = SYS(open("u.fifo", O_WRONLY));
	uw2 = SYS(dup(uw));
	v = SYS(open("v.fifo", O_RDWR));
	if (fcntl(v, F_SETPIPE_SZ, V_PIPE) < V_PIPE)
		wl_fail("F_SETPIPE_SZ: %s", strerror(errno));
	for (size_t i = 0; i < U_DATA; i++)
		buf[i] = tr_byte(1, i);
	if (write(uw, buf, U_DATA) != U_DATA)
		wl_fail("write u.fifo: %s", strerror(errno));
	for (size_t i = 0; i < V_DATA; i++)
		buf[i] = tr_byte(2, i);
	if (write(v, buf, V_DATA) != V_DATA)
		wl_fail("write v.fifo: %s", strerror(errno));
	SYS(unlink("u.fifo"));
	SYS(unlink("v.fifo"));
	SYS(unlink("w.fifo"));

	wl_ready_sigwait(NULL, NULL);

	check_fd(ur, "u.fifo", O_RDONLY, 1);
	check_fd(uw, "u.fifo", O_WRONLY, 0);
	check_fd(uw2, "u.fifo", O_WRONLY, 0);
	check_fd(v, "v.fifo", O_RDWR, 0);
	check_fd(wr, "w.fifo", O_RDONLY, 1);
	if (fstat(ur, &st) == 0 && fstat(uw, &su) == 0) {
		TCHECK(st.st_ino == su.st_ino, "u.fifo's reader and writer are two FIFOs");
		TCHECK((st.st_mode & 07777) == 0640, "u.fifo mode %o, want 640",
		       st.st_mode & 07777);
	}
	check_desc(uw, uw2, "u.fifo writer / its dup", 1);
	check_desc(ur, uw, "u.fifo reader / writer", 0);
	TCHECK(access("u.fifo", F_OK) && errno == ENOENT, "u.fifo exists again");
	TCHECK(access("v.fifo", F_OK) && errno == ENOENT, "v.fifo exists again");
	TCHECK(access("w.fifo", F_OK) && errno == ENOENT, "w.fifo exists again");

	tr_read_stream(ur, 1, U_DATA, buf, "u.fifo");
	TCHECK(fcntl(v, F_GETPIPE_SZ) == V_PIPE, "v.fifo: F_GETPIPE_SZ %d, want %d",
	       fcntl(v, F_GETPIPE_SZ), V_PIPE);
	tr_read_stream(v, 2, V_DATA, buf, "v.fifo");
	TCHECK(write(uw2, "ping", 4) == 4, "write u.fifo: %s", strerror(errno));
	TCHECK(read(ur, got, 4) == 4 && !memcmp(got, "ping", 4), "u.fifo: ping not read back");
	TCHECK(write(v, "pong", 4) == 4, "write v.fifo: %s", strerror(errno));
	TCHECK(read(v, got, 4) == 4 && !memcmp(got, "pong", 4), "v.fifo: pong not read back");
	tr_read_stream(wr, 3, W_DATA, buf, "w.fifo");
	TCHECK(read(wr, got, 1) == 0, "w.fifo: no EOF after its bytes (a writer leaked?)");
	close(uw);
	close(uw2);
	{
		struct pollfd pfd = { ur, POLLIN, 0 };
		char ch;

		if (poll(&pfd, 1, 5000) != 1)
			wl_bad("u.fifo: no EOF within 5 s after its writers closed (a writer leaked?)");
		else
			TCHECK(read(ur, &ch, 1) == 0, "u.fifo: read after the writers closed is not EOF");
	}
	wl_verdict();
}
