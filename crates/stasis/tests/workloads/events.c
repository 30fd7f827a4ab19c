/*
 * Event descriptors, each with state that must survive:
 *  - eventfd with counter 41 (O_NONBLOCK), and one in semaphore mode with
 *    counter 3;
 *  - signalfd for SIGUSR1|SIGUSR2 with SIGUSR1 blocked and pending;
 *  - timerfd (CLOCK_MONOTONIC) firing every 50 ms, and a one-shot timerfd
 *    that already expired once and was not read (ticks stay readable);
 *  - a disarmed timerfd with an interval set to nothing;
 *  - epoll watching the counter-41 eventfd (EPOLLIN, data 0x1234) and the
 *    read end of a pipe (EPOLLIN|EPOLLET, data 77).
 * Verified after SIGTERM: counters (semaphore reads 1 at a time), the
 * signalfd delivers SIGUSR1, the periodic timer ticks again and its
 * settings read back, the one-shot timer has 1 tick and is disarmed,
 * epoll_wait reports exactly the eventfd with its data, the pipe's
 * registration fires on a write and can be deleted by its fd number.
 */
#include "wl.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static int efd, sem, sfd, tfd, once, off, ep, pp[2];

int main(void)
{
	sigset_t usr;
	struct itimerspec its = { 0 }, got;
	struct epoll_event ev;
	uint64_t v;
	struct signalfd_siginfo si;

	efd = SYS(eventfd(41, EFD_NONBLOCK));
	sem = SYS(eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK));
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigaddset(&usr, SIGUSR2);
	SYS(sigprocmask(SIG_BLOCK, &usr, NULL));
	sfd = SYS(signalfd(-1, &usr, SFD_NONBLOCK));
	SYS(kill(getpid(), SIGUSR1));
	tfd = SYS(timerfd_create(CLOCK_MONOTONIC, 0));
	its.it_value.tv_nsec = its.it_interval.tv_nsec = 50 * 1000 * 1000;
	SYS(timerfd_settime(tfd, 0, &its, NULL));
	once = SYS(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
	memset(&its, 0, sizeof(its));
	its.it_value.tv_nsec = 1000 * 1000;
	SYS(timerfd_settime(once, 0, &its, NULL));
	off = SYS(timerfd_create(CLOCK_REALTIME, 0));
	SYS(pipe2(pp, O_NONBLOCK));
	ep = SYS(epoll_create1(0));
	ev.events = EPOLLIN;
	ev.data.u64 = 0x1234;
	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 77;
	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev));
	wl_sleep_ms(20); /* the one-shot timer expires */
	wl_ready();
	wl_wait();

	/* epoll first, before anything is read. */
	{
		struct epoll_event out[4];
		int n = epoll_wait(ep, out, 4, 0);

		CHECK(n == 1 && out[0].data.u64 == 0x1234 && (out[0].events & EPOLLIN),
		      "epoll_wait: %d events, first data %#llx", n,
		      n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);
		CHECK(write(pp[1], "x", 1) == 1, "pipe write");
		n = epoll_wait(ep, out, 4, 1000);
		CHECK(n == 2, "after a pipe write epoll_wait gives %d events", n);
		CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, pp[0], NULL) == 0,
		      "EPOLL_CTL_DEL of the pipe by its fd number: %s", strerror(errno));
	}
	CHECK(read(efd, &v, 8) == 8 && v == 41, "eventfd counter %llu", (unsigned long long)v);
	CHECK(read(efd, &v, 8) < 0 && errno == EAGAIN, "eventfd not empty after a read");
	for (int i = 0; i < 3; i++)
		CHECK(read(sem, &v, 8) == 8 && v == 1, "semaphore read %d gave %llu", i, (unsigned long long)v);
	CHECK(read(sem, &v, 8) < 0 && errno == EAGAIN, "semaphore not empty after 3 reads");
	CHECK(fcntl(efd, F_GETFL) & O_NONBLOCK, "eventfd lost O_NONBLOCK");
	CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1,
	      "signalfd did not give SIGUSR1");
	CHECK(read(sfd, &si, sizeof(si)) < 0 && errno == EAGAIN, "signalfd gave a second signal");
	CHECK(read(once, &v, 8) == 8 && v == 1, "one-shot timer ticks %llu", (unsigned long long)v);
	CHECK(timerfd_gettime(once, &got) == 0 && !got.it_value.tv_sec && !got.it_value.tv_nsec,
	      "one-shot timer still armed");
	CHECK(timerfd_gettime(tfd, &got) == 0 && got.it_interval.tv_nsec == 50 * 1000 * 1000,
	      "periodic timer interval %ld ns", got.it_interval.tv_nsec);
	CHECK(read(tfd, &v, 8) == 8 && v >= 1, "periodic timer: %s", strerror(errno));
	CHECK(timerfd_gettime(off, &got) == 0 && !got.it_value.tv_sec && !got.it_value.tv_nsec,
	      "disarmed timer armed");
	wl_pass();
}
