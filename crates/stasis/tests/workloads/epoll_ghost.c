/*
 * epoll registrations whose fd numbers moved on:
 *   A: eventfd a registered as fd 50 (data 0xa), then fd 50 is dup'd to 51
 *      and closed: the registration stays, under number 50, for the file
 *      now only at 51;
 *   B: a new eventfd b is put at fd 50 and registered too (data 0xb): two
 *      registrations under number 50, for two files;
 *   C: eventfd c at fd 52 registered normally (data 0xc).
 * Verified after SIGTERM: nothing is ready; writing a (through fd 51)
 * reports exactly data 0xa, b (fd 50) exactly 0xb, c exactly 0xc; deleting
 * number 50 removes b's registration (the one whose file is at 50 now) and
 * a's still reports; fd 50 is b and 51 is a (counters read back).
 */
#include "wl.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int ep;

static void add(int fd, uint64_t data)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };

	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

/* Waits 1 s for events; fails unless exactly `want` (0: none) is ready. */
static void expect(uint64_t want, const char *what)
{
	struct epoll_event out[4];
	int n = epoll_wait(ep, out, 4, want ? 1000 : 50);

	if (!want) {
		CHECK(n == 0, "%s: %d events ready, want none (first data %#llx)", what, n,
		      n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);
		return;
	}
	CHECK(n == 1 && out[0].data.u64 == want, "%s: %d events, first data %#llx, want one %#llx",
	      what, n, n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL, (unsigned long long)want);
}

static void bump(int fd)
{
	uint64_t one = 1;

	CHECK(write(fd, &one, 8) == 8, "write eventfd %d: %s", fd, strerror(errno));
}

static void drain(int fd, uint64_t want, const char *what)
{
	uint64_t v = 0;

	CHECK(read(fd, &v, 8) == 8 && v == want, "%s: counter %llu, want %llu", what,
	      (unsigned long long)v, (unsigned long long)want);
}

int main(void)
{
	int a, b, c;

	ep = SYS(epoll_create1(0));
	a = SYS(eventfd(100, EFD_NONBLOCK));
	SYS(dup2(a, 50));
	close(a);
	/* Not ready at READY: read the counters down to 0 after adding. */
	add(50, 0xa);
	SYS(dup2(50, 51));
	close(50);
	b = SYS(eventfd(200, EFD_NONBLOCK));
	SYS(dup2(b, 50));
	close(b);
	add(50, 0xb);
	c = SYS(eventfd(300, EFD_NONBLOCK));
	SYS(dup2(c, 52));
	close(c);
	add(52, 0xc);
	drain(51, 100, "a at setup");
	drain(50, 200, "b at setup");
	drain(52, 300, "c at setup");

	wl_ready();
	wl_wait();

	expect(0, "after restore");
	bump(51);
	expect(0xa, "a written through fd 51");
	drain(51, 1, "a");
	bump(50);
	expect(0xb, "b written through fd 50");
	drain(50, 1, "b");
	bump(52);
	expect(0xc, "c");
	drain(52, 1, "c");
	SYS(epoll_ctl(ep, EPOLL_CTL_DEL, 50, NULL));
	bump(50);
	expect(0, "b after deleting number 50");
	drain(50, 1, "b again");
	bump(51);
	expect(0xa, "a after deleting number 50");
	wl_pass();
}
