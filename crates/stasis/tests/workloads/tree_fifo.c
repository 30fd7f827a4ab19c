/*
 * FIFOs (named pipes) with unread data, held by two processes:
 *   a.fifo  the root reads (O_RDONLY|O_NONBLOCK, opened before the fork);
 *           the child opens it O_WRONLY on its own (a second description)
 *           and writes 3000 bytes, which nobody reads before the dump;
 *   b.fifo  the root holds it O_RDWR, with 70000 bytes in a 128 KiB pipe;
 *   c.fifo  the root reads and writes it through two descriptions
 *           (O_RDONLY, O_WRONLY), empty.
 *
 * Verified after SIGTERM:
 *   root:  each fd still names its FIFO with its access mode; FIONREAD on
 *          a.fifo is 3000 and those bytes read back; b.fifo holds its
 *          70000 bytes in a pipe of 128 KiB; a write to c.fifo is read back;
 *          then it stops the child;
 *   child: writes "bye" to a.fifo and closes it;
 *   root:  reads "bye" then EOF on a.fifo (no writer left behind, such as
 *          one of the restore's own).
 */
#include "tree.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define A_DATA 3000
#define B_DATA 70000
#define B_PIPE (128 * 1024)

static int ar, b, cr, cw;
static unsigned char buf[B_DATA];

static void check_fd(int fd, const char *name, int mode)
{
	char p[64], l[512];
	ssize_t n;
	struct stat st;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	l[n > 0 ? n : 0] = 0;
	TCHECK(n > 0 && strlen(l) > strlen(name) && !strcmp(l + strlen(l) - strlen(name), name),
	       "fd %d is %s, want .../%s", fd, l, name);
	TCHECK(fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode), "fd %d is not a FIFO", fd);
	TCHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == mode, "fd %d (%s) access mode %d, want %d", fd,
	       name, fcntl(fd, F_GETFL) & O_ACCMODE, mode);
}

static void __attribute__((noreturn)) child(void)
{
	int aw;

	tr_set_who("child");
	close(ar);
	close(b);
	close(cr);
	close(cw);
	aw = SYS(open("a.fifo", O_WRONLY));
	for (size_t i = 0; i < A_DATA; i++)
		buf[i] = tr_byte(1, i);
	if (write(aw, buf, A_DATA) != A_DATA)
		wl_fail("child: write a.fifo: %s", strerror(errno));
	tr_sync_send(0);
	tr_wait_term();

	check_fd(aw, "a.fifo", O_WRONLY);
	TCHECK(write(aw, "bye", 3) == 3, "write bye to a.fifo: %s", strerror(errno));
	close(aw);
	tr_exit();
}

int main(void)
{
	pid_t kid;
	char bye[8] = "";

	SYS(mkfifo("a.fifo", 0640));
	SYS(mkfifo("b.fifo", 0600));
	SYS(mkfifo("c.fifo", 0600));
	ar = SYS(open("a.fifo", O_RDONLY | O_NONBLOCK));
	b = SYS(open("b.fifo", O_RDWR));
	if (fcntl(b, F_SETPIPE_SZ, B_PIPE) < B_PIPE)
		wl_fail("F_SETPIPE_SZ: %s", strerror(errno));
	for (size_t i = 0; i < B_DATA; i++)
		buf[i] = tr_byte(2, i);
	if (write(b, buf, B_DATA) != B_DATA)
		wl_fail("write b.fifo: %s", strerror(errno));
	cr = SYS(open("c.fifo", O_RDONLY | O_NONBLOCK));
	cw = SYS(open("c.fifo", O_WRONLY));
	tr_block_term();
	tr_sync_open();
	if ((kid = tr_fork()) == 0)
		child();
	tr_sync_recv(1, NULL);
	wl_ready_sigwait(NULL, NULL);

	check_fd(ar, "a.fifo", O_RDONLY);
	check_fd(b, "b.fifo", O_RDWR);
	check_fd(cr, "c.fifo", O_RDONLY);
	check_fd(cw, "c.fifo", O_WRONLY);
	TCHECK(fcntl(ar, F_GETFL) & O_NONBLOCK, "a.fifo lost O_NONBLOCK");
	TCHECK(!(fcntl(b, F_GETFL) & O_NONBLOCK), "b.fifo gained O_NONBLOCK");
	tr_read_stream(ar, 1, A_DATA, buf, "a.fifo");
	TCHECK(fcntl(b, F_GETPIPE_SZ) == B_PIPE, "b.fifo: F_GETPIPE_SZ %d, want %d",
	       fcntl(b, F_GETPIPE_SZ), B_PIPE);
	tr_read_stream(b, 2, B_DATA, buf, "b.fifo");
	TCHECK(write(cw, "ping", 4) == 4, "write c.fifo: %s", strerror(errno));
	TCHECK(read(cr, bye, 4) == 4 && !memcmp(bye, "ping", 4), "c.fifo: ping not read back");
	if (kill(kid, SIGTERM))
		wl_bad("kill(child): %s", strerror(errno));
	{
		struct pollfd pfd = { ar, POLLIN, 0 };

		memset(bye, 0, sizeof(bye));
		if (poll(&pfd, 1, 10000) != 1 || read(ar, bye, 3) != 3 || memcmp(bye, "bye", 3)) {
			wl_bad("no \"bye\" from the child on a.fifo");
		} else {
			tr_reap(kid, "child", 0);
			kid = 0;
			pfd.revents = 0;
			TCHECK(poll(&pfd, 1, 5000) == 1 && read(ar, bye, 1) == 0,
			       "a.fifo: no EOF after the child closed it (a writer leaked?)");
		}
	}
	if (kid)
		tr_reap(kid, "child", 0);
	tr_check_no_children();
	wl_verdict();
}
