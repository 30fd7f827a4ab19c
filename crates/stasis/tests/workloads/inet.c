/* TCP and UDP sockets that hold no connection, each with its own options:
 *  - l4: TCP listener on 127.0.0.1 (O_NONBLOCK, backlog 7);
 *  - l6: TCP listener on :: with IPV6_V6ONLY;
 *  - lr: TCP listener on :: (dual stack) with SO_REUSEPORT;
 *  - tb: TCP socket bound to 127.0.0.1, not listening (IP_FREEBIND);
 *  - tu: TCP socket never bound;
 *  - ub: UDP socket bound to 127.0.0.1 (SO_BROADCAST);
 *  - uc: UDP socket connected to ub;
 *  - u6: UDP socket bound to ::1 (IPV6_TCLASS, IPV6_UNICAST_HOPS,
 *    IPV6_FREEBIND).
 * Queued, unread: in ub, a datagram from a socket closed since (its
 * address is free at restore: the sender must be the same) and one from
 * uc; in uc, one from ub; in u6, one from itself.
 * Ports are the kernel's picks (port 0), so tests can run side by side.
 * After SIGTERM: every option reads back as before, addresses are the
 * same, each listener (and tb, once listening) accepts a connection from
 * a client made here, and uc and ub exchange a datagram. */
#include "wl.h"
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

enum { L4, L6, LR, TB, TU, UB, UC, U6, NSOCK };
static const char *names[NSOCK] = { "l4", "l6", "lr", "tb", "tu", "ub", "uc", "u6" };
static int fds[NSOCK];
static struct sockaddr_in6 local[NSOCK];
static struct sockaddr_in gone; /* the closed sender of ub's first datagram */

/* Options read back after setup, compared after restore. */
struct opt {
	int level, name;
	socklen_t len;
	const char *what;
};
static const struct opt opts[] = {
	{ SOL_SOCKET, SO_REUSEADDR, 4, "SO_REUSEADDR" },
	{ SOL_SOCKET, SO_REUSEPORT, 4, "SO_REUSEPORT" },
	{ SOL_SOCKET, SO_KEEPALIVE, 4, "SO_KEEPALIVE" },
	{ SOL_SOCKET, SO_BROADCAST, 4, "SO_BROADCAST" },
	{ SOL_SOCKET, SO_RCVBUF, 4, "SO_RCVBUF" },
	{ SOL_SOCKET, SO_SNDBUF, 4, "SO_SNDBUF" },
	{ SOL_SOCKET, SO_LINGER, sizeof(struct linger), "SO_LINGER" },
	{ SOL_SOCKET, SO_RCVLOWAT, 4, "SO_RCVLOWAT" },
	{ SOL_SOCKET, SO_RCVTIMEO, sizeof(struct timeval), "SO_RCVTIMEO" },
	{ SOL_SOCKET, SO_SNDTIMEO, sizeof(struct timeval), "SO_SNDTIMEO" },
	{ SOL_SOCKET, SO_MARK, 4, "SO_MARK" },
	{ SOL_SOCKET, SO_PRIORITY, 4, "SO_PRIORITY" },
	{ IPPROTO_IP, IP_TOS, 4, "IP_TOS" },
	{ IPPROTO_IP, IP_TTL, 4, "IP_TTL" },
	{ IPPROTO_IP, IP_FREEBIND, 4, "IP_FREEBIND" },
	{ IPPROTO_TCP, TCP_NODELAY, 4, "TCP_NODELAY" },
	{ IPPROTO_TCP, TCP_KEEPIDLE, 4, "TCP_KEEPIDLE" },
	{ IPPROTO_TCP, TCP_KEEPINTVL, 4, "TCP_KEEPINTVL" },
	{ IPPROTO_TCP, TCP_KEEPCNT, 4, "TCP_KEEPCNT" },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, 4, "TCP_USER_TIMEOUT" },
	{ IPPROTO_TCP, TCP_CONGESTION, 16, "TCP_CONGESTION" },
	{ IPPROTO_IPV6, IPV6_V6ONLY, 4, "IPV6_V6ONLY" },
	{ IPPROTO_IPV6, IPV6_TCLASS, 4, "IPV6_TCLASS" },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS, 4, "IPV6_UNICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_FREEBIND, 4, "IPV6_FREEBIND" },
};
#define NOPT (sizeof(opts) / sizeof(opts[0]))
static unsigned char saved[NSOCK][NOPT][16];
static socklen_t saved_len[NSOCK][NOPT];
static int saved_ok[NSOCK][NOPT];

static void seti(int fd, int level, int name, int v)
{
	SYS(setsockopt(fd, level, name, &v, sizeof(v)));
}

static void bind4(int fd, const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	inet_pton(AF_INET, ip, &a.sin_addr);
	SYS(bind(fd, (struct sockaddr *)&a, sizeof(a)));
}

static void bind6_any(int fd)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };

	SYS(bind(fd, (struct sockaddr *)&a, sizeof(a)));
}

static void read_opts(int i, unsigned char out[][16], socklen_t *lens, int *ok)
{
	for (size_t o = 0; o < NOPT; o++) {
		lens[o] = opts[o].len;
		memset(out[o], 0, 16);
		ok[o] = getsockopt(fds[i], opts[o].level, opts[o].name, out[o], &lens[o]) == 0;
	}
}

static int port_of(int i)
{
	return ntohs(local[i].sin6_port); /* same offset in sockaddr_in */
}

/* Leaves datagrams unread in ub, uc and u6 (see the top). */
static void queue_datagrams(void)
{
	int g = SYS(socket(AF_INET, SOCK_DGRAM, 0));
	socklen_t l = sizeof(gone);

	bind4(g, "127.0.0.1");
	SYS(getsockname(g, (struct sockaddr *)&gone, &l));
	SYS(sendto(g, "gone", 4, 0, (struct sockaddr *)&local[UB], sizeof(struct sockaddr_in)));
	close(g);
	SYS(send(fds[UC], "early", 5, 0));
	SYS(sendto(fds[UB], "to-uc", 5, 0, (struct sockaddr *)&local[UC], sizeof(struct sockaddr_in)));
	SYS(sendto(fds[U6], "q6", 2, 0, (struct sockaddr *)&local[U6], sizeof(local[U6])));
}

/* Reads one datagram from socket i: it must be `want`; from `from` if
 * given. */
static void expect_dgram(int i, const char *want, const struct sockaddr_in *from)
{
	struct sockaddr_in6 f;
	socklen_t l = sizeof(f);
	char b[16] = { 0 };
	ssize_t n = recvfrom(fds[i], b, sizeof(b) - 1, MSG_DONTWAIT, (struct sockaddr *)&f, &l);

	CHECK(n == (ssize_t)strlen(want) && !strcmp(b, want), "%s: queued datagram '%s' lost (got %zd '%s': %s)",
	      names[i], want, n, n > 0 ? b : "", n < 0 ? strerror(errno) : "");
	CHECK(!from || !memcmp(&f, from, sizeof(*from)), "%s: '%s' from port %d, not %d", names[i],
	      want, ntohs(((struct sockaddr_in *)&f)->sin_port), ntohs(from->sin_port));
}

static void setup(void)
{
	struct linger lg = { 1, 3 };
	struct timeval rt = { 2, 500000 }, st = { 3, 0 };
	socklen_t l;

	fds[L4] = SYS(socket(AF_INET, SOCK_STREAM, 0));
	seti(fds[L4], SOL_SOCKET, SO_REUSEADDR, 1);
	seti(fds[L4], SOL_SOCKET, SO_KEEPALIVE, 1);
	seti(fds[L4], IPPROTO_TCP, TCP_NODELAY, 1);
	seti(fds[L4], IPPROTO_TCP, TCP_KEEPIDLE, 120);
	seti(fds[L4], IPPROTO_TCP, TCP_KEEPINTVL, 11);
	seti(fds[L4], IPPROTO_TCP, TCP_KEEPCNT, 4);
	seti(fds[L4], SOL_SOCKET, SO_RCVBUF, 65536);
	seti(fds[L4], IPPROTO_IP, IP_TOS, 0x10);
	seti(fds[L4], IPPROTO_IP, IP_TTL, 33);
	seti(fds[L4], SOL_SOCKET, SO_MARK, 7);
	seti(fds[L4], SOL_SOCKET, SO_PRIORITY, 3);
	bind4(fds[L4], "127.0.0.1");
	SYS(listen(fds[L4], 7));
	SYS(fcntl(fds[L4], F_SETFL, O_NONBLOCK));

	fds[L6] = SYS(socket(AF_INET6, SOCK_STREAM, 0));
	seti(fds[L6], IPPROTO_IPV6, IPV6_V6ONLY, 1);
	seti(fds[L6], IPPROTO_TCP, TCP_USER_TIMEOUT, 5000);
	SYS(setsockopt(fds[L6], IPPROTO_TCP, TCP_CONGESTION, "reno", 4));
	seti(fds[L6], SOL_SOCKET, SO_SNDBUF, 32768);
	SYS(setsockopt(fds[L6], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	bind6_any(fds[L6]);
	SYS(listen(fds[L6], 3));

	fds[LR] = SYS(socket(AF_INET6, SOCK_STREAM, 0));
	seti(fds[LR], IPPROTO_IPV6, IPV6_V6ONLY, 0);
	seti(fds[LR], SOL_SOCKET, SO_REUSEPORT, 1);
	seti(fds[LR], SOL_SOCKET, SO_RCVLOWAT, 5);
	SYS(setsockopt(fds[LR], SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt)));
	SYS(setsockopt(fds[LR], SOL_SOCKET, SO_SNDTIMEO, &st, sizeof(st)));
	bind6_any(fds[LR]);
	SYS(listen(fds[LR], 100));

	fds[TB] = SYS(socket(AF_INET, SOCK_STREAM, 0));
	seti(fds[TB], IPPROTO_IP, IP_FREEBIND, 1);
	bind4(fds[TB], "127.0.0.1");

	fds[TU] = SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	seti(fds[TU], SOL_SOCKET, SO_PRIORITY, 5);
	seti(fds[TU], SOL_SOCKET, SO_KEEPALIVE, 1);

	fds[UB] = SYS(socket(AF_INET, SOCK_DGRAM, 0));
	seti(fds[UB], SOL_SOCKET, SO_BROADCAST, 1);
	seti(fds[UB], IPPROTO_IP, IP_TTL, 9);
	seti(fds[UB], SOL_SOCKET, SO_RCVBUF, 50000);
	bind4(fds[UB], "127.0.0.1");

	fds[U6] = SYS(socket(AF_INET6, SOCK_DGRAM, 0));
	seti(fds[U6], IPPROTO_IPV6, IPV6_TCLASS, 0x20);
	seti(fds[U6], IPPROTO_IPV6, IPV6_UNICAST_HOPS, 17);
	seti(fds[U6], IPPROTO_IPV6, IPV6_FREEBIND, 1);
	{
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

		SYS(bind(fds[U6], (struct sockaddr *)&a, sizeof(a)));
	}

	fds[UC] = SYS(socket(AF_INET, SOCK_DGRAM, 0));
	seti(fds[UC], IPPROTO_IP, IP_TOS, 0x08);
	for (int i = 0; i < NSOCK; i++) {
		l = sizeof(local[i]);
		SYS(getsockname(fds[i], (struct sockaddr *)&local[i], &l));
	}
	SYS(connect(fds[UC], (struct sockaddr *)&local[UB], sizeof(struct sockaddr_in)));
	l = sizeof(local[UC]);
	SYS(getsockname(fds[UC], (struct sockaddr *)&local[UC], &l));
	for (int i = 0; i < NSOCK; i++)
		read_opts(i, saved[i], saved_len[i], saved_ok[i]);
	queue_datagrams();
}

static void check_opts(int i)
{
	unsigned char now[NOPT][16];
	socklen_t lens[NOPT];
	int ok[NOPT];

	read_opts(i, now, lens, ok);
	for (size_t o = 0; o < NOPT; o++) {
		CHECK(ok[o] == saved_ok[i][o], "%s %s: readable %d, was %d", names[i], opts[o].what,
		      ok[o], saved_ok[i][o]);
		if (!ok[o])
			continue;
		CHECK(lens[o] == saved_len[i][o] && !memcmp(now[o], saved[i][o], lens[o]),
		      "%s %s: %d, was %d", names[i], opts[o].what, *(int *)now[o],
		      *(int *)saved[i][o]);
	}
}

/* Connects a new client of `family` to `ip`:`port`, accepts it on
 * `lfd`, passes a byte each way, closes the client first (its end keeps
 * TIME_WAIT, not the listener's port). */
static void serve_one(int i, int family, const char *ip, int port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct pollfd p = { .fd = fds[i], .events = POLLIN };
	int c = SYS(socket(family, SOCK_STREAM, 0)), s;
	char b = 0;

	if (family == AF_INET6)
		inet_pton(AF_INET6, ip, &a6.sin6_addr);
	else
		inet_pton(AF_INET, ip, &a4.sin_addr);
	CHECK(connect(c, family == AF_INET6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4,
		      family == AF_INET6 ? sizeof(a6) : sizeof(a4)) == 0,
	      "%s: connect to %s port %d: %s", names[i], ip, port, strerror(errno));
	CHECK(poll(&p, 1, 5000) == 1, "%s: no connection to accept", names[i]);
	s = accept(fds[i], NULL, NULL);
	CHECK(s >= 0, "%s: accept: %s", names[i], strerror(errno));
	CHECK(write(c, "x", 1) == 1 && read(s, &b, 1) == 1 && b == 'x', "%s: client -> server",
	      names[i]);
	CHECK(write(s, "y", 1) == 1 && read(c, &b, 1) == 1 && b == 'y', "%s: server -> client",
	      names[i]);
	close(c);
	CHECK(read(s, &b, 1) == 0, "%s: no end of file after the client closed", names[i]);
	close(s);
}

static void check_udp(void)
{
	struct sockaddr_in from;
	socklen_t l = sizeof(from);
	char b[8] = { 0 };

	expect_dgram(UB, "gone", &gone);
	expect_dgram(UB, "early", NULL);
	expect_dgram(UC, "to-uc", NULL);
	expect_dgram(U6, "q6", NULL);

	CHECK(send(fds[UC], "ping", 4, 0) == 4, "uc send: %s", strerror(errno));
	CHECK(recvfrom(fds[UB], b, sizeof(b), 0, (struct sockaddr *)&from, &l) == 4 &&
		      !memcmp(b, "ping", 4),
	      "ub recv: %s", strerror(errno));
	CHECK(!memcmp(&from, &local[UC], sizeof(from)), "ub: datagram from port %d, not uc's %d",
	      ntohs(from.sin_port), port_of(UC));
	CHECK(sendto(fds[UB], "pong", 4, 0, (struct sockaddr *)&from, l) == 4, "ub sendto: %s",
	      strerror(errno));
	CHECK(recv(fds[UC], b, sizeof(b), 0) == 4 && !memcmp(b, "pong", 4), "uc recv: %s",
	      strerror(errno));
	/* u6 to itself. */
	CHECK(sendto(fds[U6], "six", 3, 0, (struct sockaddr *)&local[U6], sizeof(local[U6])) == 3,
	      "u6 sendto: %s", strerror(errno));
	CHECK(recv(fds[U6], b, sizeof(b), 0) == 3 && !memcmp(b, "six", 3), "u6 recv: %s",
	      strerror(errno));
}

int main(void)
{
	struct sockaddr_in6 now, peer;
	socklen_t l;
	int fl;

	setup();
	wl_note("ports: l4 %d l6 %d lr %d tb %d ub %d uc %d u6 %d", port_of(L4), port_of(L6),
		port_of(LR), port_of(TB), port_of(UB), port_of(UC), port_of(U6));
	wl_ready();
	wl_wait();
	for (int i = 0; i < NSOCK; i++) {
		check_opts(i);
		l = sizeof(now);
		memset(&now, 0, sizeof(now));
		CHECK(getsockname(fds[i], (struct sockaddr *)&now, &l) == 0, "%s getsockname: %s",
		      names[i], strerror(errno));
		CHECK(!memcmp(&now, &local[i], l), "%s: local address changed (port %d, was %d)",
		      names[i], ntohs(now.sin6_port), port_of(i));
	}
	l = sizeof(peer);
	CHECK(getpeername(fds[UC], (struct sockaddr *)&peer, &l) == 0 &&
		      !memcmp(&peer, &local[UB], sizeof(struct sockaddr_in)),
	      "uc: peer changed");
	l = sizeof(peer);
	CHECK(getpeername(fds[UB], (struct sockaddr *)&peer, &l) == -1 && errno == ENOTCONN,
	      "ub: connected");
	fl = fcntl(fds[L4], F_GETFL);
	CHECK(fl & O_NONBLOCK, "l4: O_NONBLOCK lost");
	CHECK(!(fcntl(fds[L4], F_GETFD) & FD_CLOEXEC), "l4: close-on-exec set");
	CHECK(fcntl(fds[TU], F_GETFD) & FD_CLOEXEC, "tu: close-on-exec lost");
	serve_one(L4, AF_INET, "127.0.0.1", port_of(L4));
	serve_one(L6, AF_INET6, "::1", port_of(L6));
	serve_one(LR, AF_INET, "127.0.0.1", port_of(LR));
	serve_one(LR, AF_INET6, "::1", port_of(LR));
	SYS(listen(fds[TB], 1));
	serve_one(TB, AF_INET, "127.0.0.1", port_of(TB));
	check_udp();
	wl_pass();
}
