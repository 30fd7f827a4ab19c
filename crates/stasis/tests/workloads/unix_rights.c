/*
 * Descriptors in flight (SCM_RIGHTS) in unix socket queues, not yet
 * received, each closed by the sender so the queue is all that holds it:
 *   stream pair (a, b), sent on b:
 *     "msg1" with [the read end of a pipe (the process keeps the write
 *             end; "pipe data" waits in it), a file open at offset 5];
 *     "msg2" with nothing;
 *     "msg3" with [one end of another socketpair, whose other end the
 *             process keeps];
 *   datagram pair (c, d), sent on d: "dgram" with [an eventfd, counter 7];
 *   seqpacket pair (e, f), sent on f: "rec1" plain, then "rec2" with [a
 *             pipe write end the process also keeps open].
 * On the stream, "msg2" and "msg3" are read with one recvmsg (a stream
 * keeps no boundary; the descriptors come with that read either way); the
 * seqpacket records keep their boundaries and "rec1" brings nothing.
 * Verified after SIGTERM: each message comes with its descriptors: the
 * pipe end reads "pipe data" and then what is written to the kept write
 * end, the file's offset is 5 and it reads the file's bytes from there,
 * the socket end reaches its peer, the eventfd reads 7.
 */
#include "wl.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

static int a, b, c, d, sq, sq2, w, keep;

static void send_fds(int s, const char *data, const int *fds, int n)
{
	char ctl[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n) {
		struct cmsghdr *cm;

		memset(ctl, 0, sizeof(ctl));
		m.msg_control = ctl;
		m.msg_controllen = CMSG_SPACE(n * sizeof(int));
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	}
	if (sendmsg(s, &m, 0) != (ssize_t)strlen(data))
		wl_fail("sendmsg %s: %s", data, strerror(errno));
}

/* Receives exactly `data` and returns how many fds came (into fds). */
static int recv_fds(int s, const char *data, int *fds, const char *what)
{
	char buf[64] = "", ctl[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { buf, strlen(data) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	ssize_t r = recvmsg(s, &m, MSG_DONTWAIT);
	int n = 0;

	CHECK(r == (ssize_t)strlen(data) && !memcmp(buf, data, r), "%s: got %zd \"%s\", want \"%s\"",
	      what, r, r > 0 ? buf : "", data);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
		}
	return n;
}

int main(void)
{
	int sp[2], pp[2], pr[2], f, e, fds[4];
	char buf[32] = "";
	uint64_t v = 0;

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
	a = sp[0];
	b = sp[1];
	SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp));
	c = sp[0];
	d = sp[1];
	SYS(pipe(pp));
	w = pp[1];
	CHECK(write(w, "pipe data", 9) == 9, "write pipe");
	f = SYS(open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0600));
	CHECK(write(f, "0123456789", 10) == 10, "write file");
	SYS(lseek(f, 5, SEEK_SET));
	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, pr));
	keep = pr[0];
	e = SYS(eventfd(7, 0));

	fds[0] = pp[0];
	fds[1] = f;
	send_fds(b, "msg1", fds, 2);
	close(pp[0]);
	send_fds(b, "msg2", NULL, 0);
	fds[0] = pr[1];
	send_fds(b, "msg3", fds, 1);
	fds[0] = e;
	send_fds(d, "dgram", fds, 1);
	SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp));
	sq = sp[0];
	sq2 = sp[1];
	send_fds(sq2, "rec1", NULL, 0);
	SYS(pipe(pp));
	fds[0] = pp[1];
	send_fds(sq2, "rec2", fds, 1);
	close(pp[1]);
	close(f);
	close(pr[1]);
	close(e);

	wl_ready();
	wl_wait();

	CHECK(recv_fds(a, "msg1", fds, "msg1") == 2, "msg1 did not bring 2 fds");
	CHECK(read(fds[0], buf, 9) == 9 && !memcmp(buf, "pipe data", 9), "pipe in flight: \"%s\"", buf);
	CHECK(write(w, "more", 4) == 4 && read(fds[0], buf, 4) == 4 && !memcmp(buf, "more", 4),
	      "the pipe in flight is not the kept write end's pipe");
	CHECK(lseek(fds[1], 0, SEEK_CUR) == 5, "file in flight at offset %lld",
	      (long long)lseek(fds[1], 0, SEEK_CUR));
	CHECK(read(fds[1], buf, 5) == 5 && !memcmp(buf, "56789", 5), "file in flight reads \"%.5s\"",
	      buf);
	CHECK(recv_fds(a, "msg2msg3", fds, "msg2+msg3") == 1, "msg2+msg3 did not bring one fd");
	CHECK(send(fds[0], "ping", 4, 0) == 4 && recv(keep, buf, 4, 0) == 4 && !memcmp(buf, "ping", 4),
	      "the socket in flight does not reach its peer");
	CHECK(recv_fds(c, "dgram", fds, "dgram") == 1, "dgram did not bring an fd");
	CHECK(read(fds[0], &v, 8) == 8 && v == 7, "eventfd in flight counter %llu",
	      (unsigned long long)v);
	CHECK(recv_fds(sq, "rec1", fds, "rec1") == 0, "rec1 brought fds");
	CHECK(recv_fds(sq, "rec2", fds, "rec2") == 1, "rec2 did not bring an fd");
	CHECK(write(fds[0], "x", 1) == 1 && read(pp[0], buf, 1) == 1 && buf[0] == 'x',
	      "the pipe write end in flight is not the kept pipe's");
	wl_pass();
}
