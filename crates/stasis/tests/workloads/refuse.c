/* Holds one descriptor stasis cannot checkpoint (argv[1]: socket,
 * unix-outside, userfaultfd, pidfd-outside, fifo-outside, io_uring) and checks, after SIGTERM, that the descriptor still
 * works: a refused dump must leave the process untouched. */
#include "wl.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <netinet/in.h>
#include <linux/io_uring.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <stdint.h>
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

static int pp[2];
static char rbuf[16];

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "socket";
	int fd = -1;

	if (!strcmp(kind, "socket")) {
		/* Raw: still refused now that TCP and UDP sockets are not. */
		SYS(fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
	} else if (!strcmp(kind, "unix-outside")) {
		/* argv[2]: abstract name of a listener outside the tree. */
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		socklen_t l = offsetof(struct sockaddr_un, sun_path) + 1 +
			      snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "%s", argc > 2 ? argv[2] : "");

		SYS(fd = socket(AF_UNIX, SOCK_STREAM, 0));
		SYS(connect(fd, (struct sockaddr *)&a, l));
	} else if (!strcmp(kind, "userfaultfd")) {
		SYS(fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
	} else if (!strcmp(kind, "pidfd-outside")) {
		/* The parent: the test harness, outside the tree. */
		SYS(fd = (int)syscall(SYS_pidfd_open, getppid(), 0));
	} else if (!strcmp(kind, "fifo-outside")) {
		/* argv[2]: a FIFO the harness holds open for reading. */
		SYS(fd = open(argc > 2 ? argv[2] : "", O_WRONLY));
		CHECK(write(fd, "abc", 3) == 3, "write fifo: %s", strerror(errno));
	} else {
		/* A read on an empty pipe: a request in flight. */
		struct io_uring_params p;
		struct io_uring_sqe *sqe;
		uint8_t *sq;

		memset(&p, 0, sizeof(p));
		fd = (int)syscall(__NR_io_uring_setup, 4, &p);
		if (fd < 0)
			wl_fail("io_uring_setup: %s", strerror(errno));
		SYS(pipe(pp));
		sq = mmap(NULL, p.sq_off.array + 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			  IORING_OFF_SQ_RING);
		sqe = mmap(NULL, 4 * sizeof(*sqe), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			   IORING_OFF_SQES);
		if (sq == MAP_FAILED || sqe == MAP_FAILED)
			wl_fail("mmap: %s", strerror(errno));
		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = IORING_OP_READ;
		sqe->fd = pp[0];
		sqe->addr = (uint64_t)(uintptr_t)rbuf;
		sqe->len = sizeof(rbuf);
		((uint32_t *)(sq + p.sq_off.array))[0] = 0;
		*(uint32_t *)(sq + p.sq_off.tail) = 1;
		if (syscall(__NR_io_uring_enter, fd, 1, 0, 0, NULL, 0) != 1)
			wl_fail("io_uring_enter: %s", strerror(errno));
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
	} else if (!strcmp(kind, "userfaultfd")) {
		CHECK(fcntl(fd, F_GETFD) >= 0, "userfaultfd closed: %s", strerror(errno));
	} else if (!strcmp(kind, "pidfd-outside")) {
		CHECK(syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) == 0, "pidfd broken: %s",
		      strerror(errno));
	} else if (!strcmp(kind, "fifo-outside")) {
		CHECK(write(fd, "def", 3) == 3, "fifo broken: %s", strerror(errno));
	} else {
		/* The read completes once the pipe has data. */
		CHECK(write(pp[1], "x", 1) == 1, "write pipe: %s", strerror(errno));
		CHECK(syscall(__NR_io_uring_enter, fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0) == 0,
		      "io_uring_enter(GETEVENTS): %s", strerror(errno));
	}
	wl_pass();
}
