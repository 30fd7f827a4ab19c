/* Holds one TCP/UDP socket stasis must refuse (argv[1]):
 *  - established: both ends of a loopback TCP connection;
 *  - pending: a listener with a connection not yet accepted;
 *  - udp-empty: a bound UDP socket with a zero-length datagram not yet
 *    read (a peek cannot get past it);
 *  - udplite: a UDP-Lite socket.
 * After SIGTERM it checks the socket still works: a refused dump must
 * leave the process untouched. */
#include "wl.h"
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

static struct sockaddr_in any_loopback(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	return a;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "established";
	struct sockaddr_in a = any_loopback();
	socklen_t l = sizeof(a);
	int s = -1, c = -1;
	char b[4];

	if (!strcmp(kind, "udp-empty")) {
		s = SYS(socket(AF_INET, SOCK_DGRAM, 0));
		c = SYS(socket(AF_INET, SOCK_DGRAM, 0));
		SYS(bind(s, (struct sockaddr *)&a, sizeof(a)));
		SYS(getsockname(s, (struct sockaddr *)&a, &l));
		SYS(sendto(c, "", 0, 0, (struct sockaddr *)&a, sizeof(a)));
	} else if (!strcmp(kind, "udplite")) {
		s = SYS(socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE));
	} else {
		int ls = SYS(socket(AF_INET, SOCK_STREAM, 0));

		SYS(bind(ls, (struct sockaddr *)&a, sizeof(a)));
		SYS(getsockname(ls, (struct sockaddr *)&a, &l));
		SYS(listen(ls, 4));
		c = SYS(socket(AF_INET, SOCK_STREAM, 0));
		SYS(connect(c, (struct sockaddr *)&a, sizeof(a)));
		if (!strcmp(kind, "pending")) {
			s = ls;
		} else {
			s = SYS(accept(ls, NULL, NULL));
			close(ls);
		}
	}
	wl_note("holding %s at fd %d", kind, s);
	wl_ready();
	wl_wait();
	if (!strcmp(kind, "udp-empty")) {
		CHECK(recv(s, b, sizeof(b), 0) == 0, "datagram lost: %s", strerror(errno));
	} else if (!strcmp(kind, "pending")) {
		int n = accept(s, NULL, NULL);

		CHECK(n >= 0, "connection lost: %s", strerror(errno));
		CHECK(write(c, "x", 1) == 1 && read(n, b, 1) == 1, "connection broken");
	} else if (!strcmp(kind, "established")) {
		CHECK(write(c, "x", 1) == 1 && read(s, b, 1) == 1, "connection broken");
	} else {
		CHECK(getsockname(s, (struct sockaddr *)&a, &l) == 0, "getsockname: %s",
		      strerror(errno));
	}
	wl_pass();
}
