/*
 * Files without a name, held by fds (see tree_unlinked.c for mappings):
 *  - "big.tmp": 3 MiB + 123 bytes (past CRIU's 1 MiB default limit) with a
 *    1 MiB hole in the middle, unlinked; fd a (O_RDWR, offset 12345), fd b
 *    = dup(a) (shares the offset), fd c opened separately O_RDONLY before
 *    the unlink (offset 777), fd d O_WRONLY|O_APPEND;
 *  - "tmpfile": an O_TMPFILE file in the workload's directory, 5000 bytes;
 *  - "a.txt": unlinked while its hard link "b.txt" remains; fd h O_RDWR;
 *  - memfd "stasis-memfd": 200 KiB, sealed F_SEAL_SHRINK|F_SEAL_GROW, also
 *    mapped MAP_SHARED; memfd "plain" made without MFD_ALLOW_SEALING.
 * Verified after SIGTERM: contents (the hole reads zeros), offsets and
 * their sharing, that writes through one fd are read through another (one
 * inode), link counts, names in /proc/self/fd, the hard link: the fd's
 * inode is b.txt's and a write through the fd is read through b.txt; the
 * memfd's seals, name, that a write through its fd shows in its mapping
 * and that growing it fails (EPERM); the plain memfd reads F_SEAL_SEAL.
 */
#include "wl.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define BIG (3 * 1024 * 1024 + 123)
#define HOLE_AT (1024 * 1024)
#define HOLE_LEN (1024 * 1024)
#define TMP_SIZE 5000
#define MFD_SIZE (200 * 1024)

static int a, b, c, d, t, h, m, plain;
static volatile uint8_t *mmem;

static uint8_t pat(size_t i, uint8_t seed)
{
	return (uint8_t)(seed + i * 13 + (i >> 9));
}

static void fill(int fd, size_t size, uint8_t seed, size_t hole_at, size_t hole_len)
{
	uint8_t *buf = malloc(size);

	for (size_t i = 0; i < size; i++)
		buf[i] = pat(i, seed);
	for (size_t off = 0; off < size;) {
		size_t n = size - off;

		if (hole_len && off < hole_at && off + n > hole_at)
			n = hole_at - off;
		if (hole_len && off == hole_at) {
			off += hole_len;
			continue;
		}
		if (pwrite(fd, buf + off, n, off) != (ssize_t)n)
			wl_fail("pwrite: %s", strerror(errno));
		off += n;
	}
	SYS(ftruncate(fd, size));
	free(buf);
}

static void check_contents(int fd, size_t size, uint8_t seed, size_t hole_at, size_t hole_len,
			   const char *what)
{
	uint8_t *buf = malloc(size);
	ssize_t n = pread(fd, buf, size, 0);
	struct stat st;

	CHECK(n == (ssize_t)size, "%s: read %zd of %zu bytes (%s)", what, n, size, strerror(errno));
	for (size_t i = 0; i < size; i++) {
		uint8_t want = (i >= hole_at && i < hole_at + hole_len) ? 0 : pat(i, seed);

		CHECK(buf[i] == want, "%s: byte %zu is %u, want %u", what, i, buf[i], want);
	}
	SYS(fstat(fd, &st));
	CHECK(st.st_size == (off_t)size, "%s: size %lld, want %zu", what, (long long)st.st_size, size);
	free(buf);
}

static void check_link(int fd, const char *want_suffix)
{
	char p[64], l[512];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	CHECK(n > 0, "readlink %s: %s", p, strerror(errno));
	l[n] = 0;
	CHECK(strlen(l) >= strlen(want_suffix) &&
		      !strcmp(l + strlen(l) - strlen(want_suffix), want_suffix),
	      "fd %d is %s, want ...%s", fd, l, want_suffix);
}

static off_t pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

int main(void)
{
	struct stat st, st2;
	char buf[32];
	uint32_t mark;

	/* The big unlinked file, with a hole. */
	a = SYS(open("big.tmp", O_RDWR | O_CREAT | O_TRUNC, 0640));
	fill(a, BIG, 1, HOLE_AT, HOLE_LEN);
	c = SYS(open("big.tmp", O_RDONLY));
	d = SYS(open("big.tmp", O_WRONLY | O_APPEND));
	SYS(unlink("big.tmp"));
	b = SYS(dup(a));
	SYS(lseek(a, 12345, SEEK_SET));
	SYS(lseek(c, 777, SEEK_SET));

	/* O_TMPFILE. */
	t = SYS(open(".", O_TMPFILE | O_RDWR, 0600));
	fill(t, TMP_SIZE, 2, 0, 0);
	SYS(lseek(t, 100, SEEK_SET));

	/* Unlinked, with another name left. */
	h = SYS(open("a.txt", O_RDWR | O_CREAT | O_TRUNC, 0644));
	fill(h, 4096, 3, 0, 0);
	SYS(link("a.txt", "b.txt"));
	SYS(unlink("a.txt"));

	/* memfds. */
	m = SYS(memfd_create("stasis-memfd", MFD_ALLOW_SEALING));
	fill(m, MFD_SIZE, 4, 0, 0);
	mmem = mmap(NULL, MFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	CHECK(mmem != MAP_FAILED, "mmap memfd: %s", strerror(errno));
	SYS(fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
	plain = SYS(memfd_create("plain", 0));
	SYS(write(plain, "plain memfd", 11));

	wl_ready();
	wl_wait();

	/* The big file: contents, offsets, one description for a and b. */
	CHECK(pos(a) == 12345 && pos(b) == 12345, "offsets a %lld b %lld, want 12345",
	      (long long)pos(a), (long long)pos(b));
	CHECK(pos(c) == 777, "offset c %lld, want 777", (long long)pos(c));
	check_contents(c, BIG, 1, HOLE_AT, HOLE_LEN, "big.tmp");
	SYS(lseek(a, 5, SEEK_CUR));
	CHECK(pos(b) == 12350, "dup does not share the offset: b at %lld", (long long)pos(b));
	CHECK(pos(c) == 777, "c shares a's offset: %lld", (long long)pos(c));
	SYS(fstat(a, &st));
	SYS(fstat(c, &st2));
	CHECK(st.st_nlink == 0, "big.tmp has %lu links", (unsigned long)st.st_nlink);
	CHECK(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev, "a and c are different files");
	CHECK((fcntl(a, F_GETFL) & O_ACCMODE) == O_RDWR, "a is not O_RDWR");
	CHECK((fcntl(c, F_GETFL) & O_ACCMODE) == O_RDONLY, "c is not O_RDONLY");
	CHECK(fcntl(d, F_GETFL) & O_APPEND, "d lost O_APPEND");
	CHECK(write(d, "END", 3) == 3, "append: %s", strerror(errno));
	CHECK(pread(c, buf, 3, BIG) == 3 && !memcmp(buf, "END", 3), "append through d not seen");
	mark = (uint32_t)getpid() * 2654435761u;
	CHECK(pwrite(a, &mark, 4, 8) == 4, "pwrite a: %s", strerror(errno));
	CHECK(pread(c, buf, 4, 8) == 4 && !memcmp(buf, &mark, 4), "write through a not seen by c");
	check_link(a, "/big.tmp (deleted)");
	check_link(c, "/big.tmp (deleted)");

	/* O_TMPFILE. */
	CHECK(pos(t) == 100, "tmpfile offset %lld", (long long)pos(t));
	check_contents(t, TMP_SIZE, 2, 0, 0, "tmpfile");
	SYS(fstat(t, &st));
	CHECK(st.st_nlink == 0 && (st.st_mode & 07777) == 0600, "tmpfile links %lu mode %o",
	      (unsigned long)st.st_nlink, st.st_mode & 07777);

	/* The hard link. */
	SYS(fstat(h, &st));
	CHECK(stat("b.txt", &st2) == 0, "b.txt: %s", strerror(errno));
	CHECK(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev,
	      "fd h is inode %lu, b.txt is %lu: not the same file", (unsigned long)st.st_ino,
	      (unsigned long)st2.st_ino);
	CHECK(st.st_nlink == 1, "a.txt/b.txt has %lu links", (unsigned long)st.st_nlink);
	CHECK(pwrite(h, &mark, 4, 0) == 4, "pwrite h: %s", strerror(errno));
	{
		int bf = SYS(open("b.txt", O_RDONLY));

		CHECK(pread(bf, buf, 4, 0) == 4 && !memcmp(buf, &mark, 4),
		      "a write through the unlinked a.txt is not read through b.txt");
		close(bf);
	}
	check_link(h, "/a.txt (deleted)");
	for (size_t i = 4; i < 4096; i++) {
		CHECK(pread(h, buf, 1, i) == 1 && (uint8_t)buf[0] == pat(i, 3),
		      "a.txt byte %zu changed", i);
	}

	/* memfds. */
	check_contents(m, MFD_SIZE, 4, 0, 0, "memfd");
	CHECK(fcntl(m, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "memfd seals %#x",
	      fcntl(m, F_GET_SEALS));
	check_link(m, "/memfd:stasis-memfd (deleted)");
	CHECK(pwrite(m, &mark, 4, 4096) == 4, "pwrite memfd: %s", strerror(errno));
	CHECK(!memcmp((const void *)(mmem + 4096), &mark, 4),
	      "a write through the memfd does not show in its mapping");
	CHECK(ftruncate(m, 2 * MFD_SIZE) == -1 && errno == EPERM,
	      "growing the sealed memfd did not fail with EPERM");
	CHECK(fcntl(plain, F_GET_SEALS) == F_SEAL_SEAL, "plain memfd seals %#x",
	      fcntl(plain, F_GET_SEALS));
	CHECK(pread(plain, buf, 11, 0) == 11 && !memcmp(buf, "plain memfd", 11),
	      "plain memfd contents");
	check_link(plain, "/memfd:plain (deleted)");
	wl_pass();
}
