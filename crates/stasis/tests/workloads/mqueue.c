/*
 * POSIX message queues in the workload's own IPC namespace (it calls
 * unshare(CLONE_NEWIPC) first, as a container would have one):
 *   q1 "/stasis-q1": maxmsg 8, msgsize 128, mode 0640, five messages of
 *      priorities 1, 5, 1, 9, 5 (sent in that order), opened twice: a
 *      read-write O_NONBLOCK description and a write-only one;
 *   q2 "/stasis-q2": unlinked after opening, maxmsg 4, msgsize 64, two
 *      messages of priority 0.
 * Verified after SIGTERM: attributes (maxmsg, msgsize, O_NONBLOCK per
 * description, curmsgs), mode, that q1's name still opens it, that q2's
 * does not; messages come out highest priority first, oldest first within
 * a priority (9, 5a, 5b, 1a, 1b), with their bytes; a message sent through
 * the write-only description is received through the other one.
 */
#include "wl.h"

#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/stat.h>

static mqd_t q1, q1w, q2;

static void expect(mqd_t q, const char *want, unsigned prio, const char *what)
{
	char buf[256] = "";
	unsigned p = 99;
	ssize_t n = mq_receive(q, buf, sizeof(buf), &p);

	CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, n) && p == prio,
	      "%s: got %zd \"%s\" prio %u, want \"%s\" prio %u", what, n, n > 0 ? buf : "", p, want,
	      prio);
}

int main(void)
{
	struct mq_attr a = { .mq_maxmsg = 8, .mq_msgsize = 128 }, b = { .mq_maxmsg = 4, .mq_msgsize = 64 };
	struct stat st;

	SYS(unshare(CLONE_NEWIPC));
	umask(0);
	q1 = SYS(mq_open("/stasis-q1", O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0640, &a));
	q1w = SYS(mq_open("/stasis-q1", O_WRONLY));
	SYS(mq_send(q1, "1a", 2, 1));
	SYS(mq_send(q1, "5a", 2, 5));
	SYS(mq_send(q1, "1b", 2, 1));
	SYS(mq_send(q1, "9a", 2, 9));
	SYS(mq_send(q1, "5b", 2, 5));
	q2 = SYS(mq_open("/stasis-q2", O_CREAT | O_EXCL | O_RDWR, 0600, &b));
	SYS(mq_unlink("/stasis-q2"));
	SYS(mq_send(q2, "first", 5, 0));
	SYS(mq_send(q2, "second", 6, 0));

	wl_ready();
	wl_wait();

	SYS(mq_getattr(q1, &a));
	CHECK(a.mq_maxmsg == 8 && a.mq_msgsize == 128 && a.mq_curmsgs == 5 && (a.mq_flags & O_NONBLOCK),
	      "q1 attributes: maxmsg %ld msgsize %ld curmsgs %ld flags %#lx", a.mq_maxmsg, a.mq_msgsize,
	      a.mq_curmsgs, a.mq_flags);
	SYS(mq_getattr(q1w, &a));
	CHECK(!(a.mq_flags & O_NONBLOCK), "q1's write-only description gained O_NONBLOCK");
	CHECK((fcntl(q1w, F_GETFL) & O_ACCMODE) == O_WRONLY, "q1w is not write-only");
	SYS(mq_getattr(q2, &b));
	CHECK(b.mq_maxmsg == 4 && b.mq_msgsize == 64 && b.mq_curmsgs == 2,
	      "q2 attributes: maxmsg %ld msgsize %ld curmsgs %ld", b.mq_maxmsg, b.mq_msgsize,
	      b.mq_curmsgs);
	CHECK(fstat(q1, &st) == 0 && (st.st_mode & 0777) == 0640, "q1 mode %o", st.st_mode & 0777);
	{
		mqd_t again = mq_open("/stasis-q1", O_RDONLY);

		CHECK(again >= 0, "q1 no longer opens by name: %s", strerror(errno));
		mq_close(again);
		CHECK(mq_open("/stasis-q2", O_RDONLY) < 0 && errno == ENOENT,
		      "q2 opens by name: it was unlinked");
	}
	expect(q1, "9a", 9, "q1 #1");
	expect(q1, "5a", 5, "q1 #2");
	expect(q1, "5b", 5, "q1 #3");
	expect(q1, "1a", 1, "q1 #4");
	expect(q1, "1b", 1, "q1 #5");
	SYS(mq_send(q1w, "via w", 5, 3));
	expect(q1, "via w", 3, "q1 through the write-only description");
	expect(q2, "first", 0, "q2 #1");
	expect(q2, "second", 0, "q2 #2");
	wl_pass();
}
