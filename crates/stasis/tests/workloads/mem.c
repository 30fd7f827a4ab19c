/*
 * Anonymous memory of every common shape:
 *  - private anon regions filled with a seeded pattern (4 MiB + 1 MiB);
 *  - a 64 MiB region touched on every 7th page only: untouched pages must
 *    stay zero AND non-resident (a restore must not materialise holes);
 *  - an untouched 16 MiB region: still not resident after restore (mincore);
 *  - MAP_SHARED|MAP_ANONYMOUS with data (still rw-s, content intact);
 *  - a PROT_NONE reservation (still ---p, access faults);
 *  - 12 pages with the middle 4 mprotect'ed PROT_READ (3 VMAs);
 *  - a MAP_GROWSDOWN region above a hole (gd flag, still grows);
 *  - MADV_DONTFORK / MADV_WIPEONFORK / MADV_HUGEPAGE regions (VmFlags
 *    dc/wf/hg, and fork() semantics checked in a child);
 *  - a MADV_GUARD_INSTALL guard page (faults; neighbours keep data);
 *  - many small malloc blocks, with sbrk(0) unchanged;
 *  - a 256 KiB pattern in main's stack frame.
 */
#include "procmaps.h"

#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define MiB (1UL << 20)

static uint64_t seed; /* random per run; lives in .bss, must survive too */

static uint64_t pat(unsigned region, size_t i)
{
	return seed ^ ((uint64_t)region << 56) ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL);
}

static void fill(void *p, size_t len, unsigned region)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = pat(region, i);
}

static void check_fill(const void *p, size_t len, unsigned region, const char *what)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		CHECK(w[i] == pat(region, i), "%s: word %zu is %llx, want %llx", what, i,
		      (unsigned long long)w[i], (unsigned long long)pat(region, i));
}

/*
 * mmap surrounded by one PROT_NONE page on each side, so that neighbouring
 * regions never merge into one VMA and every check sees exact boundaries.
 */
static void *map(size_t len, int prot, int flags)
{
	char *r = mmap(NULL, len + 2 * PAGE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *p;

	if (r == MAP_FAILED)
		wl_fail("mmap reserve %zu: %s", len, strerror(errno));
	p = mmap(r + PAGE, len, prot, flags | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		wl_fail("mmap %zu: %s", len, strerror(errno));
	return p;
}

static void check_vma(void *addr, size_t len, const char *perms, const char *what)
{
	uintptr_t s, e;
	char p[5];

	CHECK(pm_vma((uintptr_t)addr, &s, &e, p), "%s: no VMA at %p", what, addr);
	CHECK(s == (uintptr_t)addr && e == (uintptr_t)addr + len,
	      "%s: VMA is %lx-%lx, want %p+%zx", what, (unsigned long)s, (unsigned long)e, addr, len);
	CHECK(strcmp(p, perms) == 0, "%s: perms %s, want %s", what, p, perms);
}

/* Pages of [p, p+len) that are resident, as a count; marks each in `out` if given. */
static size_t resident(void *p, size_t len, unsigned char *vec)
{
	size_t n = len / PAGE, r = 0;

	if (mincore(p, len, vec))
		wl_fail("mincore %p: %s", p, strerror(errno));
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

/* The regions, global so that setup and verify share them. */
static char *big;	/* 4 MiB private, pattern 1 */
static char *small;	/* 1 MiB private, pattern 2 */
static char *sparse;	/* 64 MiB, every 7th page, pattern 3 */
static char *untouched; /* 16 MiB */
static char *shared;	/* 1 MiB MAP_SHARED anon, pattern 4 */
static char *none;	/* 8 MiB PROT_NONE */
static char *split;	/* 12 pages, middle 4 PROT_READ, pattern 5 */
static char *gd;	/* 64 KiB MAP_GROWSDOWN at the top of a hole, pattern 6 */
static char *dontfork;	/* 256 KiB MADV_DONTFORK, pattern 7 */
static char *wipe;	/* 256 KiB MADV_WIPEONFORK, pattern 8 */
static char *huge;	/* 4 MiB MADV_HUGEPAGE, pattern 9 (2 MiB aligned) */
static char *guard;	/* 4 pages, page 1 guarded, pattern 10 */
static int have_huge, have_guard;

#define NBLOCKS 20000
static unsigned char *blocks[NBLOCKS];
static void *brk0;

static unsigned char vec[64 * MiB / PAGE];

static size_t block_size(int i)
{
	return 8 + (i * 37) % 300;
}

static void setup(void)
{
	big = map(4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(big, 4 * MiB, 1);
	small = map(1 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(small, 1 * MiB, 2);

	sparse = map(64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
	SYS(madvise(sparse, 64 * MiB, MADV_NOHUGEPAGE));
	for (size_t pg = 0; pg < 64 * MiB / PAGE; pg += 7)
		fill(sparse + pg * PAGE, PAGE, 3);

	untouched = map(16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
	SYS(madvise(untouched, 16 * MiB, MADV_NOHUGEPAGE));

	shared = map(1 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED);
	fill(shared, 1 * MiB, 4);

	none = map(8 * MiB, PROT_NONE, MAP_PRIVATE | MAP_NORESERVE);

	split = map(12 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(split, 12 * PAGE, 5);
	SYS(mprotect(split + 4 * PAGE, 4 * PAGE, PROT_READ));

	/* 4 MiB area: a PROT_NONE bottom half, a hole, and 64 KiB growsdown on top. */
	{
		char *area = map(4 * MiB, PROT_NONE, MAP_PRIVATE | MAP_NORESERVE);

		SYS(munmap(area + 2 * MiB, 2 * MiB - 64 * 1024));
		gd = mmap(area + 4 * MiB - 64 * 1024, 64 * 1024, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0);
		if (gd == MAP_FAILED)
			wl_fail("mmap MAP_GROWSDOWN: %s", strerror(errno));
		fill(gd, 64 * 1024, 6);
	}

	dontfork = map(256 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(dontfork, 256 * 1024, 7);
	SYS(madvise(dontfork, 256 * 1024, MADV_DONTFORK));
	wipe = map(256 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(wipe, 256 * 1024, 8);
	SYS(madvise(wipe, 256 * 1024, MADV_WIPEONFORK));

	{
		char *raw = map(6 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
		uintptr_t a = ((uintptr_t)raw + 2 * MiB - 1) & ~(2 * MiB - 1);

		huge = (char *)a;
		if (huge > raw)
			SYS(munmap(raw, huge - raw));
		SYS(munmap(huge + 4 * MiB, raw + 6 * MiB - (huge + 4 * MiB)));
		if (madvise(huge, 4 * MiB, MADV_HUGEPAGE) == 0)
			have_huge = 1;
		else
			wl_note("MADV_HUGEPAGE: %s; not checked", strerror(errno));
		fill(huge, 4 * MiB, 9);
	}

	guard = map(4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(guard, 4 * PAGE, 10);
	if (madvise(guard + PAGE, PAGE, MADV_GUARD_INSTALL) == 0)
		have_guard = 1;
	else if (errno == EINVAL)
		wl_note("MADV_GUARD_INSTALL not supported; guard part skipped");
	else
		wl_fail("MADV_GUARD_INSTALL: %s", strerror(errno));

	for (int i = 0; i < NBLOCKS; i++) {
		blocks[i] = malloc(block_size(i));
		if (!blocks[i])
			wl_fail("malloc");
		for (size_t j = 0; j < block_size(i); j++)
			blocks[i][j] = (unsigned char)(seed + i * 7 + j);
	}
	/* Free every third block so the heap has holes in its free lists. */
	for (int i = 0; i < NBLOCKS; i += 3) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
}

static void verify(void)
{
	size_t r;

	/* First, before anything could allocate. */
	CHECK(sbrk(0) == brk0, "sbrk(0) is %p, was %p", sbrk(0), brk0);

	/* Residency before any read faults pages in. */
	r = resident(untouched, 16 * MiB, vec);
	CHECK(r == 0, "untouched 16 MiB region has %zu resident pages", r);
	resident(sparse, 64 * MiB, vec);
	for (size_t pg = 0; pg < 64 * MiB / PAGE; pg++)
		CHECK((pg % 7 == 0) == (vec[pg] & 1), "sparse page %zu: resident=%d", pg,
		      vec[pg] & 1);

	check_fill(big, 4 * MiB, 1, "4 MiB region");
	check_fill(small, 1 * MiB, 2, "1 MiB region");
	for (size_t pg = 0; pg < 64 * MiB / PAGE; pg++) {
		if (pg % 7 == 0) {
			check_fill(sparse + pg * PAGE, PAGE, 3, "sparse touched page");
		} else {
			const uint64_t *w = (const uint64_t *)(sparse + pg * PAGE);

			for (size_t i = 0; i < PAGE / 8; i++)
				CHECK(w[i] == 0, "sparse hole page %zu not zero", pg);
		}
	}
	for (size_t i = 0; i < 16 * MiB; i += PAGE)
		CHECK(untouched[i] == 0, "untouched region not zero at %zu", i);

	check_vma(shared, 1 * MiB, "rw-s", "shared anon");
	check_fill(shared, 1 * MiB, 4, "shared anon");

	{
		/* It merges with the PROT_NONE padding around it: check containment. */
		uintptr_t s, e;
		char p[5];

		CHECK(pm_vma((uintptr_t)none, &s, &e, p) && strcmp(p, "---p") == 0 &&
			      s <= (uintptr_t)none && e >= (uintptr_t)none + 8 * MiB,
		      "PROT_NONE reservation: VMA %lx-%lx %s", (unsigned long)s,
		      (unsigned long)e, p);
	}
	CHECK(pm_probe_read(none + 3 * MiB), "PROT_NONE reservation is readable");

	check_vma(split, 4 * PAGE, "rw-p", "split head");
	check_vma(split + 4 * PAGE, 4 * PAGE, "r--p", "split middle");
	check_vma(split + 8 * PAGE, 4 * PAGE, "rw-p", "split tail");
	check_fill(split, 12 * PAGE, 5, "split region");
	CHECK(pm_probe_write(split + 5 * PAGE, 1), "PROT_READ middle is writable");
	CHECK(!pm_probe_write(split + 9 * PAGE + 8, (char)split[9 * PAGE + 8]),
	      "tail of split region not writable");

	check_vma(gd, 64 * 1024, "rw-p", "growsdown region");
	CHECK(pm_has_vmflag((uintptr_t)gd, "gd"), "growsdown region lost VmFlag gd");
	check_fill(gd, 64 * 1024, 6, "growsdown region");
	CHECK(!pm_probe_write(gd - 2 * PAGE, 1), "growsdown region does not grow");
	check_vma(gd - 2 * PAGE, 64 * 1024 + 2 * PAGE, "rw-p", "grown growsdown region");

	CHECK(pm_has_vmflag((uintptr_t)dontfork, "dc"), "MADV_DONTFORK region lost VmFlag dc");
	CHECK(pm_has_vmflag((uintptr_t)wipe, "wf"), "MADV_WIPEONFORK region lost VmFlag wf");
	check_fill(dontfork, 256 * 1024, 7, "MADV_DONTFORK region");
	check_fill(wipe, 256 * 1024, 8, "MADV_WIPEONFORK region");
	{
		int st;
		pid_t c = fork();

		if (c < 0)
			wl_fail("fork: %s", strerror(errno));
		if (c == 0) {
			/* Child: the wipe region reads zero, the dontfork one is absent. */
			if (wipe[0] != 0 || wipe[256 * 1024 - 1] != 0)
				_exit(10);
			if (!pm_probe_read(dontfork))
				_exit(11);
			_exit(0);
		}
		SYS(waitpid(c, &st, 0));
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 10, "WIPEONFORK region not wiped in child");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 11, "DONTFORK region present in child");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child status %x", st);
		check_fill(wipe, 256 * 1024, 8, "MADV_WIPEONFORK region after fork");
	}

	if (have_huge)
		CHECK(pm_has_vmflag((uintptr_t)huge, "hg"), "MADV_HUGEPAGE region lost VmFlag hg");
	check_fill(huge, 4 * MiB, 9, "MADV_HUGEPAGE region");

	if (have_guard) {
		CHECK(pm_probe_read(guard + PAGE), "guard page is readable");
		CHECK(pm_probe_write(guard + PAGE + 100, 1), "guard page is writable");
	}
	check_fill(guard, PAGE, 10, "page before guard");
	for (size_t i = 2 * PAGE / 8; i < 4 * PAGE / 8; i++)
		CHECK(((uint64_t *)guard)[i] == pat(10, i), "page after guard: word %zu", i);

	for (int i = 0; i < NBLOCKS; i++) {
		if (!blocks[i])
			continue;
		for (size_t j = 0; j < block_size(i); j++)
			CHECK(blocks[i][j] == (unsigned char)(seed + i * 7 + j),
			      "malloc block %d byte %zu", i, j);
	}
}

int main(void)
{
	volatile uint64_t stack_data[32768]; /* 256 KiB in main's frame */

	seed = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ 0xA5A5F00DULL;
	for (size_t i = 0; i < 32768; i++)
		stack_data[i] = pat(11, i);
	pm_install_fault_handler();
	setup();
	/*
	 * verify() is not run before READY: it changes state on purpose (reads
	 * fault in zero pages, the growsdown region grows). The plain_mem test
	 * validates it.
	 */
	wl_ready();
	brk0 = sbrk(0); /* after READY's printf allocated the stdio buffer */
	wl_wait();
	for (size_t i = 0; i < 32768; i++)
		CHECK(stack_data[i] == pat(11, i), "stack word %zu", i);
	verify();
	wl_pass();
}
