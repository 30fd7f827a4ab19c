/* Holds one descriptor stasis cannot checkpoint yet (argv[1]: socket,
 * eventfd, io_uring) and checks, after SIGTERM, that the descriptor still
 * works: a refused dump must leave the process untouched. */
#include "wl.h"
#include <sys/eventfd.h>
#include <sys/socket.h>
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
	uint64_t v = 0;

	if (!strcmp(kind, "socket")) {
		SYS(fd = socket(AF_INET, SOCK_STREAM, 0));
	} else if (!strcmp(kind, "eventfd")) {
		SYS(fd = eventfd(41, 0));
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
	if (!strcmp(kind, "socket")) {
		struct sockaddr_in a;
		socklen_t l = sizeof(a);
		CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0, "getsockname: %s", strerror(errno));
	} else if (!strcmp(kind, "eventfd")) {
		CHECK(read(fd, &v, 8) == 8 && v == 41, "eventfd counter %llu", (unsigned long long)v);
	} else {
		CHECK(fcntl(fd, F_GETFD) >= 0, "io_uring fd closed: %s", strerror(errno));
	}
	wl_pass();
}
