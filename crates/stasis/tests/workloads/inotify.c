/*
 * inotify instances with watches whose numbers have gaps:
 *   in (IN_NONBLOCK): wd 1 on "watched" (IN_CREATE|IN_DELETE), a watch on
 *      "gone" (wd 2) removed again (its IN_IGNORED read before READY),
 *      wd 3 on "b" (IN_ATTRIB), wd 4 on "watched/f" (IN_MODIFY);
 *   empty: no watches, blocking.
 * Verified after SIGTERM: no IN_IGNORED event is waiting (nothing left
 * over from setting the watches up); creating watched/new-N gives IN_CREATE on
 * wd 1, writing watched/f gives IN_MODIFY on wd 4, chmod b gives IN_ATTRIB
 * on wd 3; a new watch gets wd 5 (the counter continues); the flags of both
 * instances are as they were.
 */
#include "wl.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/stat.h>

static int in, empty;

/* Reads events until one matches (other copies of this workload, run
 * from the same directory, cause events too) within 2 s. */
static void expect(int wd, uint32_t bit, const char *want_name, const char *what)
{
	char buf[4096] __attribute__((aligned(8)));

	for (int i = 0; i < 200; i++) {
		ssize_t r = read(in, buf, sizeof(buf));

		for (ssize_t off = 0; r > 0 && off < r;) {
			struct inotify_event *e = (struct inotify_event *)(buf + off);

			if (e->wd == wd && (e->mask & bit) && !strcmp(e->len ? e->name : "", want_name))
				return;
			off += sizeof(*e) + e->len;
		}
		if (r <= 0)
			wl_sleep_ms(10);
	}
	wl_fail("%s: no event on wd %d with mask %#x and name \"%s\"", what, wd, bit, want_name);
}

/* Fails if an IN_IGNORED event is waiting (left over from the restore
 * setting up the watches); other events may come from other copies. */
static void no_ignored(void)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t r;

	while ((r = read(in, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < r;) {
			struct inotify_event *e = (struct inotify_event *)(buf + off);

			CHECK(!(e->mask & IN_IGNORED), "an IN_IGNORED event (wd %d) was waiting after the restore",
			      e->wd);
			off += sizeof(*e) + e->len;
		}
	CHECK(errno == EAGAIN, "read inotify: %s", strerror(errno));
}

int main(void)
{
	char buf[4096], name[64], path[128];
	int w, fd;

	SYS(mkdir("watched", 0700));
	close(SYS(open("watched/f", O_CREAT | O_WRONLY, 0600)));
	close(SYS(open("gone", O_CREAT | O_WRONLY, 0600)));
	close(SYS(open("b", O_CREAT | O_WRONLY, 0600)));
	in = SYS(inotify_init1(IN_NONBLOCK));
	CHECK((w = inotify_add_watch(in, "watched", IN_CREATE | IN_DELETE)) == 1, "wd %d", w);
	CHECK((w = inotify_add_watch(in, "gone", IN_ATTRIB)) == 2, "wd %d", w);
	CHECK((w = inotify_add_watch(in, "b", IN_ATTRIB)) == 3, "wd %d", w);
	CHECK((w = inotify_add_watch(in, "watched/f", IN_MODIFY)) == 4, "wd %d", w);
	SYS(inotify_rm_watch(in, 2));
	CHECK(read(in, buf, sizeof(buf)) > 0, "no IN_IGNORED after the removal");
	empty = SYS(inotify_init1(0));

	wl_ready();
	wl_wait();

	no_ignored();
	CHECK(fcntl(in, F_GETFL) & O_NONBLOCK, "inotify lost O_NONBLOCK");
	CHECK(!(fcntl(empty, F_GETFL) & O_NONBLOCK), "empty inotify gained O_NONBLOCK");
	snprintf(name, sizeof(name), "new-%ld", (long)(wl_now_mono() * 1e9));
	snprintf(path, sizeof(path), "watched/%s", name);
	close(SYS(open(path, O_CREAT | O_WRONLY, 0600)));
	expect(1, IN_CREATE, name, "create in watched");
	fd = SYS(open("watched/f", O_WRONLY));
	CHECK(write(fd, "x", 1) == 1, "write: %s", strerror(errno));
	close(fd);
	expect(4, IN_MODIFY, "", "write watched/f");
	SYS(chmod("b", 0640));
	expect(3, IN_ATTRIB, "", "chmod b");
	CHECK((w = inotify_add_watch(in, "gone", IN_ATTRIB)) == 5, "new watch got wd %d, want 5", w);
	CHECK((w = inotify_add_watch(empty, "gone", IN_ATTRIB)) == 1, "empty instance: new wd %d", w);
	wl_pass();
}
