/*
 * A large private anonymous region, every page written with its own
 * pattern, then riddled with single-page holes that lose read access:
 * most become PROT_NONE, every 64th PROT_EXEC (execute-only: no VM_READ).
 * process_vm_readv cannot read such pages, yet their data is the
 * process's: after restore, mprotect back to PROT_READ|PROT_WRITE must
 * show exactly what was written before the holes were made.
 *
 * Usage: mem_holes [MiB [holes]]   (default 64 MiB, 512 holes; the
 * original report was 512 MiB with 512 holes)
 *
 * After SIGTERM:
 *  - every page of the region sits in a VMA with the permissions it was
 *    given (---p, --xp or rw-p), read from one pass over /proc/self/maps;
 *  - reading the first holes faults;
 *  - with every hole made PROT_READ|PROT_WRITE again, every word of every
 *    page holds its pattern.
 */
#include "procmaps.h"

#include <stdint.h>

#define MiB (1UL << 20)

static uint64_t seed; /* random per run; in .bss, must survive too */
static char *region;
static size_t npages;
static unsigned char *prot_of; /* per page: 0 rw, 1 none, 2 exec-only */

static uint64_t pat(size_t page, size_t word)
{
	uint64_t x = seed ^ (page * 0x9E3779B97F4A7C15ULL) ^ (word * 0xC2B2AE3D27D4EB4FULL);

	x ^= x >> 29;
	return x * 0xBF58476D1CE4E5B9ULL;
}

static uint64_t rnd(void)
{
	static uint64_t s;

	if (!s)
		s = seed | 1;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

static const char *perms_of(unsigned char p)
{
	return p == 0 ? "rw-p" : p == 1 ? "---p" : "--xp";
}

static int prot_bits(unsigned char p)
{
	return p == 0 ? PROT_READ | PROT_WRITE : p == 1 ? PROT_NONE : PROT_EXEC;
}

/* Every page of the region against the VMAs of one /proc/self/maps read. */
static void check_prots(const char *when)
{
	uintptr_t lo = (uintptr_t)region, hi = lo + npages * PAGE;
	char *line = pm_buf;
	size_t seen = 0;

	pm_read("/proc/self/maps");
	while (*line) {
		unsigned long s, e;
		char p[5];
		char *nl = strchr(line, '\n');

		if (sscanf(line, "%lx-%lx %4s", &s, &e, p) == 3 && e > lo && s < hi) {
			CHECK(s >= lo && e <= hi, "%s: VMA %lx-%lx %s reaches past the region %lx-%lx", when, s,
			      e, p, (unsigned long)lo, (unsigned long)hi);
			for (uintptr_t a = s; a < e; a += PAGE) {
				size_t pg = (a - lo) / PAGE;

				CHECK(strcmp(p, perms_of(prot_of[pg])) == 0,
				      "%s: page %zu (%lx) is in VMA %lx-%lx %s, want %s", when, pg,
				      (unsigned long)a, s, e, p, perms_of(prot_of[pg]));
			}
			seen += (e - s) / PAGE;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	CHECK(seen == npages, "%s: VMAs cover %zu of the region's %zu pages", when, seen, npages);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	size_t holes = argc > 2 ? strtoul(argv[2], NULL, 0) : 512, made = 0, bad = 0;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)getpid() ^ (uint64_t)ts.tv_sec;
	npages = mib * MiB / PAGE;
	CHECK(holes > 0 && holes <= npages / 4, "setup: %zu holes in %zu pages", holes, npages);
	prot_of = calloc(npages, 1);
	CHECK(prot_of, "setup: calloc");
	/* PROT_NONE guards on both sides keep the region's VMAs its own. */
	char *r = SYS(mmap(NULL, (npages + 2) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	region = SYS(mmap(r + PAGE, npages * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	for (size_t pg = 0; pg < npages; pg++) {
		uint64_t *w = (uint64_t *)(region + pg * PAGE);

		for (size_t i = 0; i < PAGE / 8; i++)
			w[i] = pat(pg, i);
	}
	while (made < holes) {
		size_t pg = rnd() % npages;

		if (prot_of[pg])
			continue;
		prot_of[pg] = made % 64 == 0 ? 2 : 1;
		SYS(mprotect(region + pg * PAGE, PAGE, prot_bits(prot_of[pg])));
		made++;
	}
	check_prots("setup");
	pm_install_fault_handler();
	wl_note("%zu MiB at %p, %zu holes", mib, (void *)region, holes);

	wl_ready();
	wl_wait();

	check_prots("after checkpoint");
	for (size_t pg = 0, probed = 0; pg < npages && probed < 16; pg++) {
		if (prot_of[pg] != 1)
			continue;
		CHECK(pm_probe_read(region + pg * PAGE), "PROT_NONE page %zu is readable", pg);
		probed++;
	}
	for (size_t pg = 0; pg < npages; pg++)
		if (prot_of[pg])
			SYS(mprotect(region + pg * PAGE, PAGE, PROT_READ | PROT_WRITE));
	for (size_t pg = 0; pg < npages; pg++) {
		const uint64_t *w = (const uint64_t *)(region + pg * PAGE);

		for (size_t i = 0; i < PAGE / 8; i++) {
			if (w[i] == pat(pg, i))
				continue;
			if (bad++ < 8)
				wl_note("page %zu (%s before) word %zu is %llx, want %llx", pg,
					perms_of(prot_of[pg]), i, (unsigned long long)w[i],
					(unsigned long long)pat(pg, i));
			break;
		}
	}
	CHECK(bad == 0, "%zu of %zu pages lost their contents", bad, npages);
	wl_pass();
}
