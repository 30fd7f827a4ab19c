/*
 * A fanotify group (FAN_CLASS_NOTIF, non-blocking) with marks:
 *   on the directory "watched": FAN_OPEN|FAN_CLOSE_WRITE|FAN_EVENT_ON_CHILD;
 *   on "watched/quiet": an ignored mask FAN_OPEN (surviving modification);
 *   on the workload's directory's mount... not (a mount mark would see the
 *   whole system's activity).
 * Verified after SIGTERM: the group's fdinfo lists the same marks (same
 * inodes, masks, ignored masks, flags) as before READY; opening
 * watched/f (a name unique to this run) gives a FAN_OPEN event whose fd
 * is that file; opening watched/quiet gives none.
 */
#include "wl.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/fanotify.h>
#include <sys/stat.h>

static int g;
static char before[4096];

static void marks(char *out, size_t len)
{
	char p[64], buf[4096];
	FILE *f;
	size_t n = 0;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", g);
	f = fopen(p, "r");
	out[0] = 0;
	while (f && fgets(buf, sizeof(buf), f))
		if (!strncmp(buf, "fanotify", 8) && n + strlen(buf) < len) {
			strcpy(out + n, buf);
			n += strlen(buf);
		}
	if (f)
		fclose(f);
}

/* Reads events for 2 s; returns 1 if one was an open of `want`. */
static int saw_open(const char *want)
{
	char buf[8192] __attribute__((aligned(8))), path[PATH_MAX], link[64];

	for (int i = 0; i < 200; i++) {
		ssize_t n = read(g, buf, sizeof(buf));

		for (struct fanotify_event_metadata *m = (void *)buf; n > 0 && FAN_EVENT_OK(m, n);
		     m = FAN_EVENT_NEXT(m, n)) {
			ssize_t l;

			if (m->fd < 0)
				continue;
			snprintf(link, sizeof(link), "/proc/self/fd/%d", m->fd);
			l = readlink(link, path, sizeof(path) - 1);
			close(m->fd);
			if (l > 0 && (m->mask & FAN_OPEN)) {
				path[l] = 0;
				if (strlen(path) >= strlen(want) &&
				    !strcmp(path + strlen(path) - strlen(want), want))
					return 1;
			}
		}
		wl_sleep_ms(10);
	}
	return 0;
}

int main(void)
{
	char now[4096], name[64];
	int fd;

	SYS(mkdir("watched", 0700));
	close(SYS(open("watched/quiet", O_CREAT | O_WRONLY, 0600)));
	g = SYS(fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY));
	SYS(fanotify_mark(g, FAN_MARK_ADD, FAN_OPEN | FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, AT_FDCWD,
			  "watched"));
	SYS(fanotify_mark(g, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
			  FAN_OPEN, AT_FDCWD, "watched/quiet"));
	marks(before, sizeof(before));
	CHECK(strstr(before, "mask:"), "no marks in fdinfo");

	wl_ready();
	wl_wait();

	marks(now, sizeof(now));
	CHECK(!strcmp(before, now), "marks changed:\n%s---\n%s", before, now);
	snprintf(name, sizeof(name), "watched/f-%ld", (long)(wl_now_mono() * 1e6));
	fd = SYS(open(name, O_CREAT | O_RDWR, 0600));
	close(fd);
	CHECK(saw_open(name + 8), "no FAN_OPEN event for %s", name);
	close(SYS(open("watched/quiet", O_RDONLY)));
	CHECK(!saw_open("/quiet"), "an open of the ignored file was reported");
	wl_pass();
}
