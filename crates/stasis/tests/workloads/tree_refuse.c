/* A tree holding something stasis must refuse (argv[1]):
 *  - child-socket: a child holds a socket;
 *  - vfork: a child is inside vfork(2), waiting for its grandchild;
 *  - outside-pipe: a grandchild that left the tree (reparented to the
 *    test's subreaper) holds the read end of a pipe whose write end the
 *    root holds.
 * After SIGTERM the root checks that the tree still works as before the
 * refused dump: a refused dump must leave every process untouched. */
#include "wl.h"
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "child-socket";
	int p[2], st;
	pid_t c = -1;

	if (!strcmp(kind, "child-socket")) {
		c = SYS(fork());
		if (c == 0) {
			int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP); /* still refused */
			struct sockaddr_in a;
			socklen_t l = sizeof(a);
			sigset_t s;
			int sig;

			sigemptyset(&s);
			sigaddset(&s, SIGUSR1);
			sigprocmask(SIG_BLOCK, &s, NULL);
			sigwait(&s, &sig);
			_exit(getsockname(fd, (struct sockaddr *)&a, &l) == 0 ? 0 : 1);
		}
	} else if (!strcmp(kind, "vfork")) {
		SYS(pipe(p));
		c = SYS(fork());
		if (c == 0) {
			pid_t v = vfork();
			if (v == 0) {
				char b;
				/* Blocks until the root writes: keeps the parent in vfork. */
				if (read(p[0], &b, 1) != 1)
					_exit(2);
				_exit(0);
			}
			_exit(waitpid(v, &st, 0) == v && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
		}
	} else if (!strcmp(kind, "outside-pipe")) {
		SYS(pipe(p));
		c = SYS(fork());
		if (c == 0) {
			if (fork() == 0) {
				char b[6] = { 0 };
				close(p[1]);
				/* Orphaned: reparented out of the tree. */
				if (read(p[0], b, 5) != 5)
					_exit(1);
				_exit(0);
			}
			_exit(0);
		}
		close(p[0]);
		SYS(waitpid(c, &st, 0));
		c = -1;
	}
	wl_note("holding %s", kind);
	wl_ready();
	wl_wait();
	if (!strcmp(kind, "child-socket")) {
		kill(c, SIGUSR1);
		CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child's socket broken: %#x", st);
	} else if (!strcmp(kind, "vfork")) {
		CHECK(write(p[1], "x", 1) == 1, "write: %s", strerror(errno));
		CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "vfork child ended badly: %#x", st);
	} else {
		CHECK(write(p[1], "hello", 5) == 5, "write: %s", strerror(errno));
	}
	wl_pass();
}
