/*
 * File-backed mappings:
 *  - MAP_PRIVATE rw of priv.dat (created in cwd) with COW-modified pages:
 *    modified pages keep their new data, unmodified pages read the file, and
 *    the file itself never sees the private writes;
 *  - a second private mapping of priv.dat at a non-zero file offset;
 *  - MAP_SHARED rw of shared.dat: after restore it must still be the file's
 *    page cache: the mapping equals pread(), and a write through the mapping
 *    is seen by pread(). The file carries a generation number so that
 *    restoring the same image twice stays checkable;
 *  - a read-only private mapping of /usr/bin/ls (or /bin/ls).
 */
#include "procmaps.h"

#include <stdint.h>
#include <sys/stat.h>

#define PRIV_PAGES 16
#define SHARED_PAGES 8

static uint64_t file_pat(size_t i)
{
	return 0x46494c4500000000ULL ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL);
}

static uint64_t cow_pat(size_t i)
{
	return 0x434f570000000000ULL ^ ((uint64_t)i * 0xC2B2AE3D27D4EB4FULL);
}

static uint64_t gen_pat(uint64_t gen, size_t i)
{
	return (gen << 48) ^ ((uint64_t)i * 0x165667B19E3779F9ULL);
}

static int is_cow_page(size_t pg)
{
	return pg == 2 || pg == 5 || pg == 11;
}

static char *priv, *priv_off, *shared, *bin;
static size_t bin_len;
static uint64_t bin_sum, gen_at_ready;
static int priv_fd, shared_fd, bin_fd;
static char bin_path[64];
static char buf[64 << 10];

static uint64_t checksum(const unsigned char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void write_all(int fd, const void *p, size_t len, off_t off)
{
	if (pwrite(fd, p, len, off) != (ssize_t)len)
		wl_fail("pwrite: %s", strerror(errno));
}

static void read_all(int fd, void *p, size_t len, off_t off, const char *what)
{
	ssize_t n = pread(fd, p, len, off);

	if (n != (ssize_t)len)
		wl_fail("pread %s: %zd: %s", what, n, strerror(errno));
}

static void *map_file(int fd, size_t len, int prot, int flags, off_t off)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	if (p == MAP_FAILED)
		wl_fail("mmap file: %s", strerror(errno));
	return p;
}

/* Writes generation `gen` through the shared mapping. */
static void shared_write_gen(uint64_t gen)
{
	uint64_t *w = (uint64_t *)shared;

	for (size_t i = 1; i < SHARED_PAGES * PAGE / 8; i++)
		w[i] = gen_pat(gen, i);
	w[0] = gen;
}

static void setup(void)
{
	uint64_t *w;
	struct stat st;

	/* priv.dat: file pattern, then private COW writes on a few pages. */
	priv_fd = SYS(open("priv.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	w = (uint64_t *)buf;
	for (size_t pg = 0; pg < PRIV_PAGES; pg++) {
		for (size_t i = 0; i < PAGE / 8; i++)
			w[i] = file_pat(pg * PAGE / 8 + i);
		write_all(priv_fd, buf, PAGE, pg * PAGE);
	}
	priv = map_file(priv_fd, PRIV_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0);
	for (size_t pg = 0; pg < PRIV_PAGES; pg++) {
		if (!is_cow_page(pg))
			continue;
		w = (uint64_t *)(priv + pg * PAGE);
		for (size_t i = 0; i < PAGE / 8; i++)
			w[i] = cow_pat(pg * PAGE / 8 + i);
	}
	/* Read (fault in) a couple of unmodified pages too. */
	CHECK(((uint64_t *)priv)[0] == file_pat(0), "priv page 0 at setup");
	priv_off = map_file(priv_fd, 8 * PAGE, PROT_READ, MAP_PRIVATE, 4 * PAGE);

	/* shared.dat: generation 1 written through the mapping, not write(). */
	shared_fd = SYS(open("shared.dat", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	SYS(ftruncate(shared_fd, SHARED_PAGES * PAGE));
	shared = map_file(shared_fd, SHARED_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	shared_write_gen(1);
	gen_at_ready = 1;

	/* A read-only mapping of a system binary. */
	strcpy(bin_path, access("/usr/bin/ls", R_OK) == 0 ? "/usr/bin/ls" : "/bin/ls");
	bin_fd = SYS(open(bin_path, O_RDONLY | O_CLOEXEC));
	SYS(fstat(bin_fd, &st));
	bin_len = st.st_size;
	bin = map_file(bin_fd, bin_len, PROT_READ, MAP_PRIVATE, 0);
	bin_sum = checksum((unsigned char *)bin, bin_len);
	/* The fds are not needed by the mappings; close them. */
	close(bin_fd);
	close(priv_fd);
	close(shared_fd);
}

static void verify(void)
{
	uint64_t *w, gen;
	int fd;

	/* Private mapping: COW pages keep new data, others read the file. */
	fd = SYS(open("priv.dat", O_RDONLY | O_CLOEXEC));
	for (size_t pg = 0; pg < PRIV_PAGES; pg++) {
		w = (uint64_t *)(priv + pg * PAGE);
		for (size_t i = 0; i < PAGE / 8; i++) {
			size_t idx = pg * PAGE / 8 + i;
			uint64_t want = is_cow_page(pg) ? cow_pat(idx) : file_pat(idx);

			CHECK(w[i] == want, "priv.dat mapping page %zu word %zu: %llx want %llx",
			      pg, i, (unsigned long long)w[i], (unsigned long long)want);
		}
		/* The file itself never saw the private writes. */
		read_all(fd, buf, PAGE, pg * PAGE, "priv.dat");
		for (size_t i = 0; i < PAGE / 8; i++)
			CHECK(((uint64_t *)buf)[i] == file_pat(pg * PAGE / 8 + i),
			      "priv.dat file page %zu changed", pg);
	}
	close(fd);
	/* The offset mapping shows file pages 4..11, not the COW copies. */
	w = (uint64_t *)priv_off;
	for (size_t i = 0; i < 8 * PAGE / 8; i++)
		CHECK(w[i] == file_pat(4 * PAGE / 8 + i), "priv.dat offset mapping word %zu", i);

	/* Shared mapping: still the file's pages, and still writable through. */
	fd = SYS(open("shared.dat", O_RDWR | O_CLOEXEC));
	w = (uint64_t *)shared;
	gen = w[0];
	CHECK(gen >= gen_at_ready && gen < 1000, "shared.dat generation %llu (was %llu)",
	      (unsigned long long)gen, (unsigned long long)gen_at_ready);
	for (size_t i = 1; i < SHARED_PAGES * PAGE / 8; i++)
		CHECK(w[i] == gen_pat(gen, i), "shared.dat mapping word %zu (gen %llu)", i,
		      (unsigned long long)gen);
	read_all(fd, buf, SHARED_PAGES * PAGE, 0, "shared.dat");
	CHECK(memcmp(buf, shared, SHARED_PAGES * PAGE) == 0,
	      "shared.dat mapping differs from the file (not shared?)");
	shared_write_gen(gen + 1);
	read_all(fd, buf, SHARED_PAGES * PAGE, 0, "shared.dat");
	CHECK(((uint64_t *)buf)[0] == gen + 1, "write through shared mapping not seen by pread");
	CHECK(memcmp(buf, shared, SHARED_PAGES * PAGE) == 0,
	      "shared.dat file differs from mapping after write");
	SYS(msync(shared, SHARED_PAGES * PAGE, MS_SYNC));
	close(fd);

	/* Read-only binary mapping. */
	CHECK(checksum((unsigned char *)bin, bin_len) == bin_sum, "%s mapping content changed",
	      bin_path);
	{
		uintptr_t s, e;
		char p[5];

		CHECK(pm_vma((uintptr_t)bin, &s, &e, p) && strcmp(p, "r--p") == 0,
		      "%s mapping perms %s", bin_path, p);
	}
}

int main(void)
{
	setup();
	wl_ready();
	wl_wait();
	verify();
	wl_pass();
}
