/*
 * Children that share kernel state with their parent beyond fork:
 *  - child S was cloned with CLONE_FILES | CLONE_FS: one fd table and one
 *    cwd/root/umask with the root;
 *  - child P was forked plainly and shares nothing.
 *  - child X was cloned with exit signal SIGUSR2 instead of SIGCHLD.
 * Verified after SIGTERM, X first: when it exits the root gets SIGUSR2
 * (blocked, so it stays pending) and waits for it with __WALL. Then P: P opens a file, changes directory and
 * umask, and exits with the new fd's number; the root must see none of
 * it. Then S does the same; the root must see S's new fd (same file),
 * S's cwd and S's umask.
 */
#include "tree.h"

#include <sched.h>
#include <sys/stat.h>

static char stack[256 * 1024];

/* Opens a file, moves to sub/, sets umask 077; exits with the fd number. */
static int change_things(void *name)
{
	int fd;

	tr_wait_term();
	fd = open((const char *)name, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || chdir("sub") || fd > 255)
		_exit(255);
	umask(077);
	_exit(fd);
}

static int just_wait(void *arg)
{
	(void)arg;
	tr_wait_term();
	_exit(0);
}

static int wait_code(pid_t pid, const char *who)
{
	int st;

	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 255) {
		wl_bad("%s ended badly: %#x", who, st);
		return -1;
	}
	return WEXITSTATUS(st);
}

int main(void)
{
	char cwd[4096], link[64], target[4096];
	pid_t s, p, x;
	int fd, st;
	ssize_t n;
	sigset_t usr2, pending;

	tr_block_term();
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	SYS(sigprocmask(SIG_BLOCK, &usr2, NULL));
	x = SYS(clone(just_wait, stack + sizeof(stack) / 2, SIGUSR2, NULL));
	SYS(mkdir("sub", 0755));
	umask(022);
	s = SYS(clone(change_things, stack + sizeof(stack),
		      CLONE_FILES | CLONE_FS | SIGCHLD, "from_s.txt"));
	if ((p = SYS(fork())) == 0)
		change_things("from_p.txt");
	wl_ready_sigwait(NULL, NULL);

	/* The child with another exit signal. */
	kill(x, SIGTERM);
	TCHECK(waitpid(x, &st, __WALL) == x && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "child with exit signal SIGUSR2 ended badly: %#x", st);
	sigpending(&pending);
	TCHECK(sigismember(&pending, SIGUSR2), "its exit did not send SIGUSR2");

	/* The plain child: nothing of its changes is ours. */
	kill(p, SIGTERM);
	fd = wait_code(p, "plain child");
	if (fd >= 0)
		TCHECK(fcntl(fd, F_GETFD) < 0, "fd %d of the plain child is in our table", fd);
	TCHECK(getcwd(cwd, sizeof(cwd)) && !strstr(cwd, "/sub"), "the plain child moved our cwd to %s", cwd);
	TCHECK(umask(022) == 022, "the plain child changed our umask");

	/* The sharing child: its changes are ours. */
	kill(s, SIGTERM);
	fd = wait_code(s, "sharing child");
	if (fd >= 0) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = 0;
		TCHECK(n > 0 && strstr(target, "/from_s.txt"), "fd %d of the sharing child: %s", fd, n > 0 ? target : strerror(errno));
	}
	TCHECK(getcwd(cwd, sizeof(cwd)) && strstr(cwd, "/sub"), "cwd %s, not the sharing child's sub/", cwd);
	TCHECK(umask(022) == 077, "umask not the sharing child's 077");
	wl_verdict();
}
