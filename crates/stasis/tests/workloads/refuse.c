/* Holds one descriptor stasis cannot checkpoint (argv[1]: socket,
 * unix-outside, fanotify, pidfd-outside, fifo-outside, io_uring) and checks, after SIGTERM, that the descriptor still
 * works: a refused dump must leave the process untouched. */
#include "wl.h"
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <netinet/in.h>
#include <linux/io_uring.h>
#include <fcntl.h>
#include <sys/syscall.h>
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "socket";
	int fd = -1;

	if (!strcmp(kind, "socket")) {
		SYS(fd = socket(AF_INET, SOCK_STREAM, 0));
	} else if (!strcmp(kind, "unix-outside")) {
		/* argv[2]: abstract name of a listener outside the tree. */
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		socklen_t l = offsetof(struct sockaddr_un, sun_path) + 1 +
			      snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "%s", argc > 2 ? argv[2] : "");

		SYS(fd = socket(AF_UNIX, SOCK_STREAM, 0));
		SYS(connect(fd, (struct sockaddr *)&a, l));
	} else if (!strcmp(kind, "fanotify")) {
		SYS(fd = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY));
		SYS(fanotify_mark(fd, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD, AT_FDCWD, "."));
	} else if (!strcmp(kind, "pidfd-outside")) {
		/* The parent: the test harness, outside the tree. */
		SYS(fd = (int)syscall(SYS_pidfd_open, getppid(), 0));
	} else if (!strcmp(kind, "fifo-outside")) {
		/* argv[2]: a FIFO the harness holds open for reading. */
		SYS(fd = open(argc > 2 ? argv[2] : "", O_WRONLY));
		CHECK(write(fd, "abc", 3) == 3, "write fifo: %s", strerror(errno));
	} else {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		fd = (int)syscall(__NR_io_uring_setup, 4, &p);
		if (fd < 0)
			wl_fail("io_uring_setup: %s", strerror(errno));
	}
	wl_note("holding a %s at fd %d", kind, fd);
	wl_ready();
	wl_wait();
	if (!strcmp(kind, "unix-outside")) {
		CHECK(send(fd, "x", 1, MSG_NOSIGNAL) == 1, "unix socket broken: %s", strerror(errno));
	} else if (!strcmp(kind, "socket")) {
		struct sockaddr_in a;
		socklen_t l = sizeof(a);
		CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0, "getsockname: %s", strerror(errno));
	} else if (!strcmp(kind, "fanotify")) {
		int f = open("created", O_CREAT | O_WRONLY, 0600);
		char ev[4096];

		CHECK(f >= 0, "create: %s", strerror(errno));
		CHECK(read(fd, ev, sizeof(ev)) > 0, "fanotify read: %s", strerror(errno));
	} else if (!strcmp(kind, "pidfd-outside")) {
		CHECK(syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) == 0, "pidfd broken: %s",
		      strerror(errno));
	} else if (!strcmp(kind, "fifo-outside")) {
		CHECK(write(fd, "def", 3) == 3, "fifo broken: %s", strerror(errno));
	} else {
		CHECK(fcntl(fd, F_GETFD) >= 0, "io_uring fd closed: %s", strerror(errno));
	}
	wl_pass();
}
