/*
 * Private memory shared copy-on-write after fork, partly diverged.
 *
 * The root maps a 4 MiB private anonymous region (1024 pages) and fills
 * pages 0-767 (seed 1); 768-1023 stay untouched. It forks three children:
 *  - child 0 changes nothing;
 *  - child 1 rewrites pages 0-63 (seed 2);
 *  - child 2 writes pages 900-915, untouched before the fork (seed 5).
 * After the forks the root rewrites pages 64-127 (seed 3) and writes pages
 * 800-831 (seed 4), which stay zero in the children.
 *
 * Verified after SIGTERM, in every process: every page of the region
 * holds what that process wrote or inherited, and zeros where it never
 * had data. And the memory is still shared: pages 128-767 were written
 * only before the fork, so all four processes map the same frames there;
 * the region's Shared_Dirty in /proc/self/smaps must cover those 640
 * pages (2560 kB). A restore that gave each process its own copy fails
 * here.
 */
#include "tree.h"

#include <sys/mman.h>

#define PAGES 1024
#define PW (4096 / 8) /* words per page */
#define SHARED_KB (640 * 4)

static uint64_t *region;

/* Fills page `pg` with seed `seed`. */
static void put(int pg, int seed)
{
	tr_fill(region + (size_t)pg * PW, PW, seed, pg);
}

/* The seed each page of this process must hold (0: zeros). */
static int want(int role, int pg)
{
	if (role == 1 && pg < 64)
		return 2;
	if (role == 2 && pg >= 900 && pg < 916)
		return 5;
	if (role < 0 && pg >= 64 && pg < 128)
		return 3;
	if (role < 0 && pg >= 800 && pg < 832)
		return 4;
	return pg < 768 ? 1 : 0;
}

/* Shared_Dirty (kB) of the VMA at `region`, or -1. */
static long shared_dirty_kb(void)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = s == (unsigned long)region;
			continue;
		}
		if (in && sscanf(line, "Shared_Dirty: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* Checks the region's contents and its sharing; role -1 is the root. */
static void verify(int role)
{
	static const uint64_t zero[PW];

	for (int pg = 0; pg < PAGES; pg++) {
		int s = want(role, pg);
		const uint64_t *p = region + (size_t)pg * PW;

		if (s == 0) {
			TCHECK(!memcmp(p, zero, sizeof(zero)), "page %d is not zero", pg);
		} else {
			long bad = tr_check_fill(p, PW, s, pg);

			TCHECK(bad < 0, "page %d word %ld differs (want seed %d)", pg, bad, s);
		}
	}
	long kb = shared_dirty_kb();

	TCHECK(kb >= SHARED_KB, "region Shared_Dirty %ld kB, want >= %d kB (memory no longer shared)", kb,
	       SHARED_KB);
}

static void child(int role)
{
	tr_set_who("child %d", role);
	if (role == 1)
		for (int pg = 0; pg < 64; pg++)
			put(pg, 2);
	if (role == 2)
		for (int pg = 900; pg < 916; pg++)
			put(pg, 5);
	tr_sync_send(role);
	tr_wait_term();
	verify(role);
	tr_exit();
}

int main(void)
{
	pid_t kids[3];

	region = mmap(NULL, PAGES * 4096L, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	/* Keep the region out of THP and its own VMA. */
	madvise(region, PAGES * 4096L, MADV_NOHUGEPAGE);
	tr_block_term();
	tr_sync_open();
	for (int pg = 0; pg < 768; pg++)
		put(pg, 1);
	for (int i = 0; i < 3; i++) {
		kids[i] = tr_fork();
		if (kids[i] == 0)
			child(i);
	}
	tr_sync_recv(3, NULL);
	for (int pg = 64; pg < 128; pg++)
		put(pg, 3);
	for (int pg = 800; pg < 832; pg++)
		put(pg, 4);
	wl_ready_sigwait(NULL, NULL);

	verify(-1);
	for (int i = 0; i < 3; i++) {
		char who[16];

		snprintf(who, sizeof(who), "child %d", i);
		tr_stop(kids[i], who, 0);
	}
	tr_check_no_children();
	wl_verdict();
}
