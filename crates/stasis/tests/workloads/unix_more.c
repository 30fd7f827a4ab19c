/*
 * Unix sockets in states between connect and close:
 *   - a listener on "pend.sock" with two connections not yet accepted,
 *     from clients c1 and c2 (connected in that order, nothing sent);
 *   - a stream pair whose one end sent "last words" and was closed: the
 *     other end x holds the data, then end of file;
 *   - the same for a seqpacket pair (two records, then EOF).
 * Verified after SIGTERM: accept() gives c1's connection first, then
 * c2's (each client sends its name, read from the accepted socket);
 * getpeername of the clients names the listener's path; x reads
 * "last words" then EOF; the seqpacket end reads its two records then EOF.
 */
#include "wl.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int lst, c1, c2, x, q;

static socklen_t addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s", path);
	return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static void expect_read(int fd, const char *want, const char *what)
{
	char buf[64] = "";
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, n), "%s: read %zd \"%s\", want \"%s\"",
	      what, n, n > 0 ? buf : "", want);
}

static void expect_eof(int fd, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	CHECK(n == 0, "%s: read returned %zd (%s), want end of file", what, n,
	      n < 0 ? strerror(errno) : "data");
}

int main(void)
{
	struct sockaddr_un a, got;
	socklen_t l = addr(&a, "pend.sock"), gl = sizeof(got);
	int sp[2];

	lst = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(bind(lst, (struct sockaddr *)&a, l));
	SYS(listen(lst, 8));
	c1 = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(connect(c1, (struct sockaddr *)&a, l));
	c2 = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(connect(c2, (struct sockaddr *)&a, l));
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
	x = sp[0];
	CHECK(send(sp[1], "last words", 10, 0) == 10, "send: %s", strerror(errno));
	close(sp[1]);
	SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp));
	q = sp[0];
	CHECK(send(sp[1], "rec1", 4, 0) == 4 && send(sp[1], "record2", 7, 0) == 7, "send seqpacket: %s",
	      strerror(errno));
	close(sp[1]);

	wl_ready();
	wl_wait();

	CHECK(send(c1, "c1", 2, 0) == 2 && send(c2, "c2", 2, 0) == 2, "clients send: %s",
	      strerror(errno));
	{
		int s1 = accept(lst, NULL, NULL), s2 = accept(lst, NULL, NULL);

		CHECK(s1 >= 0 && s2 >= 0, "accept: %s", strerror(errno));
		expect_read(s1, "c1", "first accepted connection");
		expect_read(s2, "c2", "second accepted connection");
	}
	CHECK(getpeername(c1, (struct sockaddr *)&got, &gl) == 0 && !strcmp(got.sun_path + strlen(got.sun_path) - 9, "pend.sock"),
	      "c1's peer is not the listener's path");
	expect_read(x, "last words", "stream end whose peer closed");
	expect_eof(x, "stream end whose peer closed");
	expect_read(q, "rec1", "seqpacket record 1");
	expect_read(q, "record2", "seqpacket record 2");
	expect_eof(q, "seqpacket end whose peer closed");
	wl_pass();
}
