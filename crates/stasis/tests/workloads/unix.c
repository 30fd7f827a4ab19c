/*
 * Unix domain sockets with state in them:
 *  - a stream socketpair with unread data in both directions, one end
 *    with SO_PASSCRED;
 *  - a stream socketpair half-closed (SHUT_WR) after its last bytes;
 *  - a datagram socketpair with three queued messages of different sizes
 *    (not an empty one: the kernel hides a zero-length datagram from
 *    MSG_PEEK with SO_PEEK_OFF once it was peeked, so a second dump of the
 *    same process would miss it; see README);
 *  - a seqpacket socketpair with two queued records;
 *  - a listener bound to a path in the cwd, and a connection accepted
 *    from it with unread data and a set SO_RCVBUF;
 *  - a datagram socket bound to an abstract name, with two messages
 *    from a socket connected to it;
 *  - a stream socketpair shared with a child.
 * Verified after SIGTERM: every queue holds exactly its messages, with
 * their boundaries; the half-closed pair reads EOF after its data and
 * refuses writes; the listener still accepts new connections at its path;
 * the datagram sender is still connected; options kept; the child reads
 * its message and exits 0.
 */
#include "tree.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int s[2], h[2], d[2], q[2], x[2];
static int lis, cli, acc, rcv, snd;
static int rcvbuf;
static struct sockaddr_un lis_addr, abs_addr;
static socklen_t abs_len;

static void expect(int fd, const char *want, size_t len, const char *what)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	TCHECK(n == (ssize_t)len && !memcmp(buf, want, len), "%s: got %zd bytes (%s), want %zu \"%.*s\"",
	       what, n, n < 0 ? strerror(errno) : "", len, (int)len, want);
}

static void expect_empty(int fd, const char *what)
{
	char buf[16];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	TCHECK(n < 0 && errno == EAGAIN, "%s: more queued (recv %zd)", what, n);
}

static void put(int fd, const char *m, size_t len)
{
	if (send(fd, m, len, 0) != (ssize_t)len)
		wl_fail("send: %s", strerror(errno));
}

static void child(void)
{
	tr_set_who("child");
	close(x[0]);
	tr_wait_term();
	expect(x[1], "hello child", 11, "child's pair");
	tr_exit();
}

int main(void)
{
	char cwd[200];
	pid_t kid;
	int one = 1;

	tr_block_term();
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, x));
	put(x[0], "hello child", 11);
	kid = tr_fork();
	if (kid == 0)
		child();
	close(x[1]);

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, s));
	SYS(setsockopt(s[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)));
	put(s[0], "to-one", 6);
	put(s[1], "to-zero-xyz", 11);

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, h));
	put(h[0], "last words", 10);
	SYS(shutdown(h[0], SHUT_WR));

	SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, d));
	put(d[0], "a", 1);
	put(d[0], "bb", 2);
	put(d[0], "ccc", 3);

	SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q));
	put(q[1], "first", 5);
	put(q[1], "second", 6);

	if (!getcwd(cwd, sizeof(cwd)))
		wl_fail("getcwd: %s", strerror(errno));
	lis_addr.sun_family = AF_UNIX;
	snprintf(lis_addr.sun_path, sizeof(lis_addr.sun_path), "%s/l.sock", cwd);
	lis = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(bind(lis, (struct sockaddr *)&lis_addr, sizeof(lis_addr)));
	SYS(listen(lis, 5));
	cli = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	SYS(connect(cli, (struct sockaddr *)&lis_addr, sizeof(lis_addr)));
	acc = SYS(accept(lis, NULL, NULL));
	rcvbuf = 50000;
	SYS(setsockopt(acc, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)));
	socklen_t l = sizeof(rcvbuf);
	SYS(getsockopt(acc, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &l));
	put(cli, "via-listener", 12);

	abs_addr.sun_family = AF_UNIX;
	abs_len = offsetof(struct sockaddr_un, sun_path) + 1 +
		  snprintf(abs_addr.sun_path + 1, sizeof(abs_addr.sun_path) - 1, "stasis-wl-%d", getpid());
	rcv = SYS(socket(AF_UNIX, SOCK_DGRAM, 0));
	SYS(bind(rcv, (struct sockaddr *)&abs_addr, abs_len));
	snd = SYS(socket(AF_UNIX, SOCK_DGRAM, 0));
	SYS(connect(snd, (struct sockaddr *)&abs_addr, abs_len));
	put(snd, "m1", 2);
	put(snd, "m2", 2);

	wl_ready_sigwait(NULL, NULL);

	expect(s[1], "to-one", 6, "stream pair end 1");
	expect(s[0], "to-zero-xyz", 11, "stream pair end 0");
	int v = 0;
	l = sizeof(v);
	SYS(getsockopt(s[0], SOL_SOCKET, SO_PASSCRED, &v, &l));
	TCHECK(v == 1, "SO_PASSCRED lost");

	expect(h[1], "last words", 10, "half-closed pair");
	char b[8];
	TCHECK(recv(h[1], b, sizeof(b), MSG_DONTWAIT) == 0, "half-closed pair: no EOF after the data");
	TCHECK(send(h[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "write after SHUT_WR did not fail with EPIPE");

	expect(d[1], "a", 1, "datagram 1");
	expect(d[1], "bb", 2, "datagram 2");
	expect(d[1], "ccc", 3, "datagram 3");
	expect_empty(d[1], "datagram pair");

	expect(q[0], "first", 5, "seqpacket 1");
	expect(q[0], "second", 6, "seqpacket 2");
	expect_empty(q[0], "seqpacket pair");

	expect(acc, "via-listener", 12, "accepted connection");
	v = 0;
	l = sizeof(v);
	SYS(getsockopt(acc, SOL_SOCKET, SO_RCVBUF, &v, &l));
	TCHECK(v == rcvbuf, "SO_RCVBUF %d, was %d", v, rcvbuf);
	struct sockaddr_un got;
	l = sizeof(got);
	SYS(getsockname(lis, (struct sockaddr *)&got, &l));
	TCHECK(!strcmp(got.sun_path, lis_addr.sun_path), "listener name %s, was %s", got.sun_path, lis_addr.sun_path);
	int c2 = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	TCHECK(connect(c2, (struct sockaddr *)&lis_addr, sizeof(lis_addr)) == 0, "connect to the listener: %s",
	       strerror(errno));
	int a2 = accept4(lis, NULL, NULL, SOCK_NONBLOCK);
	TCHECK(a2 >= 0, "listener does not accept: %s", strerror(errno));
	put(c2, "new", 3);
	if (a2 >= 0)
		expect(a2, "new", 3, "new connection");

	expect(rcv, "m1", 2, "abstract datagram 1");
	expect(rcv, "m2", 2, "abstract datagram 2");
	expect_empty(rcv, "abstract receiver");
	put(snd, "m3", 2);
	expect(rcv, "m3", 2, "datagram sender still connected");

	tr_stop(kid, "child", 0);
	unlink(lis_addr.sun_path);
	wl_verdict();
}
