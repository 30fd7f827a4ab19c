/*
 * pidfds of processes inside the tree:
 *   root:  k = pidfd_open(child, 0) (close-on-exec, as pidfd_open makes
 *          it), kn = pidfd_open(child, PIDFD_NONBLOCK) moved to fd 40
 *          without close-on-exec, self = pidfd_open(getpid());
 *   child: r = pidfd_open(root).
 *
 * Verified after SIGTERM:
 *   child: r still refers to the root (fdinfo Pid is getppid()), is not
 *          readable (the root lives), and pidfd_send_signal through it
 *          reaches the root (SIGUSR1, which the root then finds pending);
 *   root:  each fd is "anon_inode:[pidfd]" with its Pid, flags and
 *          close-on-exec bit; self refers to itself; it waits for the
 *          child's SIGUSR1, stops the child through pidfd_send_signal(k),
 *          sees kn become readable once the child exits, and reaps it with
 *          waitid(P_PIDFD, k), exit 0.
 */
#include "tree.h"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open_(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int pidfd_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* The Pid: line of fd's fdinfo (-2 if missing). */
static long fdinfo_pid(int fd)
{
	char p[64], line[256];
	long pid = -2;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pid:", 4))
			pid = strtol(line + 4, NULL, 10);
	if (f)
		fclose(f);
	return pid;
}

static void check_pidfd(int fd, pid_t want, int nonblock, int cloexec, const char *name)
{
	char p[64], l[128];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	l[n > 0 ? n : 0] = 0;
	TCHECK(!strcmp(l, "anon_inode:[pidfd]"), "%s (fd %d) is %s", name, fd, l);
	TCHECK(fdinfo_pid(fd) == want, "%s: fdinfo Pid %ld, want %d", name, fdinfo_pid(fd), want);
	TCHECK(!!(fcntl(fd, F_GETFL) & O_NONBLOCK) == nonblock, "%s: O_NONBLOCK is %d, want %d",
	       name, !!(fcntl(fd, F_GETFL) & O_NONBLOCK), nonblock);
	TCHECK(!!(fcntl(fd, F_GETFD) & FD_CLOEXEC) == cloexec, "%s: FD_CLOEXEC is %d, want %d",
	       name, !!(fcntl(fd, F_GETFD) & FD_CLOEXEC), cloexec);
}

static void __attribute__((noreturn)) child(pid_t root)
{
	int r = pidfd_open_(root, 0);
	struct pollfd pfd;

	if (r < 0)
		wl_fail("child: pidfd_open(root): %s", strerror(errno));
	tr_sync_send(0);
	tr_wait_term();

	check_pidfd(r, root, 0, 1, "child's pidfd of the root");
	TCHECK(getppid() == root, "getppid %d, want %d", getppid(), root);
	pfd.fd = r;
	pfd.events = POLLIN;
	pfd.revents = 0;
	TCHECK(poll(&pfd, 1, 0) == 0, "the root's pidfd is readable: the root exited?");
	TCHECK(pidfd_signal(r, SIGUSR1) == 0, "pidfd_send_signal(root, SIGUSR1): %s",
	       strerror(errno));
	tr_exit();
}

int main(void)
{
	pid_t root = getpid(), kid;
	int k, kn, self;
	sigset_t usr1;
	siginfo_t si;
	struct timespec ts = { 5, 0 };
	struct pollfd pfd;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	SYS(sigprocmask(SIG_BLOCK, &usr1, NULL));
	tr_block_term();
	tr_sync_open();
	if ((kid = tr_fork()) == 0)
		child(root);
	k = SYS(pidfd_open_(kid, 0));
	kn = SYS(pidfd_open_(kid, PIDFD_NONBLOCK));
	SYS(dup2(kn, 40));
	close(kn);
	kn = 40;
	self = SYS(pidfd_open_(root, 0));
	tr_sync_recv(1, NULL);
	wl_ready_sigwait(NULL, NULL);

	check_pidfd(k, kid, 0, 1, "pidfd of the child");
	check_pidfd(kn, kid, 1, 0, "non-blocking pidfd of the child");
	check_pidfd(self, root, 0, 1, "pidfd of itself");
	TCHECK(pidfd_signal(k, SIGTERM) == 0, "pidfd_send_signal(child, SIGTERM): %s",
	       strerror(errno));
	TCHECK(sigtimedwait(&usr1, &si, &ts) == SIGUSR1, "no SIGUSR1 from the child's pidfd");
	pfd.fd = kn;
	pfd.events = POLLIN;
	pfd.revents = 0;
	TCHECK(poll(&pfd, 1, 10000) == 1, "the child's pidfd did not become readable");
	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)k, &si, WEXITED) != 0)
		tr_bad("waitid(P_PIDFD): %s", strerror(errno));
	else
		TCHECK(si.si_pid == kid && si.si_code == CLD_EXITED && si.si_status == 0,
		       "child ended with code %d status %d", si.si_code, si.si_status);
	tr_check_no_children();
	wl_verdict();
}
