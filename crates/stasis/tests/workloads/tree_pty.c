/*
 * A pseudo-terminal made inside the tree, as tmux or script do:
 *   root:   opens /dev/ptmx (posix_openpt, unlockpt), sets 40x120, keeps
 *           the master;
 *   child:  setsid(), opens the slave, makes it its controlling terminal
 *           (TIOCSCTTY) on fds 0-2; turns ICRNL off (a termios change to
 *           keep); writes "hello from slave\n" (not read before the dump);
 *   grand:  a grandchild in a process group of its own, made the
 *           terminal's foreground group;
 *   root:   writes "typed line\n" to the master, which the slave echoes
 *           and the child does not read before the dump.
 *
 * Verified after SIGTERM:
 *   root:   the master holds exactly "hello from slave\r\ntyped line\r\n"
 *           (output and echo, nothing twice), 40x120, then stops the child;
 *   child:  its controlling terminal is the slave (/dev/tty opens the same
 *           device), tcgetsid is itself, the foreground group is the
 *           grandchild's, ICRNL is still off and ECHO on, 40x120, and it
 *           reads "typed line\n"; then it stops the grandchild and writes
 *           "bye\n", which the root reads as "bye\r\n".
 */
#include "tree.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>

static int m;

/* Reads exactly `want` from fd within 5 s. */
static void read_exact(int fd, const char *want, const char *what)
{
	char buf[256];
	size_t n = strlen(want), got = 0;

	while (got < n) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&pfd, 1, 5000) != 1) {
			buf[got] = 0;
			tr_bad("%s: got \"%s\" then nothing, want \"%s\"", what, buf, want);
			return;
		}
		r = read(fd, buf + got, n - got);
		if (r <= 0) {
			tr_bad("%s: read: %s", what, r < 0 ? strerror(errno) : "EOF");
			return;
		}
		got += r;
	}
	buf[got] = 0;
	TCHECK(!memcmp(buf, want, n), "%s: got \"%s\", want \"%s\"", what, buf, want);
}

static void check_winsize(int fd, const char *who)
{
	struct winsize w = { 0 };

	TCHECK(ioctl(fd, TIOCGWINSZ, &w) == 0 && w.ws_row == 40 && w.ws_col == 120,
	       "%s: window %ux%u, want 40x120", who, w.ws_row, w.ws_col);
}

static void __attribute__((noreturn)) grand(void)
{
	tr_set_who("grandchild");
	tr_wait_term();
	tr_exit();
}

static void __attribute__((noreturn)) child(void)
{
	struct termios t;
	pid_t g;
	int s, tty;

	tr_set_who("child");
	SYS(setsid());
	s = SYS(open(ptsname(m), O_RDWR));
	close(m);
	SYS(ioctl(s, TIOCSCTTY, 0));
	SYS(tcgetattr(s, &t));
	t.c_iflag &= ~ICRNL;
	SYS(tcsetattr(s, TCSANOW, &t));
	if ((g = tr_fork()) == 0)
		grand();
	SYS(setpgid(g, g));
	signal(SIGTTOU, SIG_IGN);
	SYS(tcsetpgrp(s, g));
	if (write(s, "hello from slave\n", 17) != 17)
		wl_fail("child: write: %s", strerror(errno));
	tr_sync_send(0);
	tr_wait_term();

	tty = open("/dev/tty", O_RDWR);
	TCHECK(tty >= 0, "no controlling terminal: /dev/tty: %s", strerror(errno));
	TCHECK(tty < 0 || tcgetsid(tty) == getpid(), "/dev/tty is not this session's terminal");
	TCHECK(tcgetsid(s) == getpid(), "tcgetsid %d, want %d", tcgetsid(s), getpid());
	TCHECK(tcgetpgrp(s) == g, "foreground group %d, want the grandchild's %d", tcgetpgrp(s), g);
	TCHECK(tcgetattr(s, &t) == 0 && !(t.c_iflag & ICRNL) && (t.c_lflag & ECHO),
	       "termios changed: iflag %#x lflag %#x", t.c_iflag, t.c_lflag);
	check_winsize(s, "child");
	tr_stop(g, "grandchild", 0);
	/* Back in the foreground, to read. */
	TCHECK(tcsetpgrp(s, getpgrp()) == 0, "tcsetpgrp: %s", strerror(errno));
	read_exact(s, "typed line\n", "child reading the slave");
	TCHECK(write(s, "bye\n", 4) == 4, "write bye: %s", strerror(errno));
	tr_exit();
}

int main(void)
{
	struct winsize w = { .ws_row = 40, .ws_col = 120 };
	pid_t kid;

	m = SYS(posix_openpt(O_RDWR | O_NOCTTY));
	SYS(grantpt(m));
	SYS(unlockpt(m));
	SYS(ioctl(m, TIOCSWINSZ, &w));
	tr_block_term();
	tr_sync_open();
	if ((kid = tr_fork()) == 0)
		child();
	tr_sync_recv(1, NULL);
	if (write(m, "typed line\n", 11) != 11)
		wl_fail("write master: %s", strerror(errno));
	wl_sleep_ms(50); /* the echo reaches the master */
	wl_ready_sigwait(NULL, NULL);

	read_exact(m, "hello from slave\r\ntyped line\r\n", "root reading the master");
	{
		struct pollfd pfd = { m, POLLIN, 0 };

		TCHECK(poll(&pfd, 1, 100) == 0, "more output than written (something twice?)");
	}
	check_winsize(m, "root");
	SYS(kill(kid, SIGTERM));
	read_exact(m, "bye\r\n", "root reading bye");
	tr_reap(kid, "child", 0);
	tr_check_no_children();
	wl_verdict();
}
