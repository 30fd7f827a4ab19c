/*
 * A file descriptor table with varied state:
 *  - regular files opened O_RDONLY, O_WRONLY, O_RDWR|O_APPEND, O_RDONLY|
 *    O_NONBLOCK, O_RDWR|O_CLOEXEC, each at a distinct offset;
 *  - fd 100, a dup2() of the O_RDONLY fd: after restore they must still
 *    share one file description (one offset);
 *  - a directory fd (O_DIRECTORY) on a subdirectory, used with openat();
 *  - /dev/null, /dev/zero, /dev/urandom.
 * Verified: F_GETFL / F_GETFD values, offsets, that each fd is the same file
 * (inode) as its path, content reads, O_APPEND writes going to the end, and
 * openat through the directory fd.
 */
#include "wl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct fdspec {
	const char *path;
	int flags;
	off_t pos;
	int fd;
	int fl;	 /* F_GETFL at setup */
	int fdf; /* F_GETFD at setup */
};

enum { RO, WO, RWA, NB, CX, NFILES };

static struct fdspec files[NFILES] = {
	[RO] = { "ro.txt", O_RDONLY, 100 },
	[WO] = { "wo.txt", O_WRONLY, 200 },
	[RWA] = { "rwa.txt", O_RDWR | O_APPEND, 50 },
	[NB] = { "ro.txt", O_RDONLY | O_NONBLOCK, 7 },
	[CX] = { "wo.txt", O_RDWR | O_CLOEXEC, 333 },
};

#define FILE_SIZE 4096
#define DUP_FD 100

static int dir_fd, null_fd, zero_fd, urandom_fd;
static int dir_fl, null_fl, zero_fl, urandom_fl;

static char content(const char *path, off_t off)
{
	return (char)('A' + (path[0] * 7 + off * 13) % 26);
}

static void create_file(const char *path)
{
	char buf[FILE_SIZE];
	int fd = SYS(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));

	for (int i = 0; i < FILE_SIZE; i++)
		buf[i] = content(path, i);
	CHECK(write(fd, buf, FILE_SIZE) == FILE_SIZE, "write %s", path);
	close(fd);
}

static void check_same_file(int fd, const char *path)
{
	struct stat a, b;

	SYS(fstat(fd, &a));
	SYS(stat(path, &b));
	CHECK(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "fd %d is not %s (ino %lu vs %lu)",
	      fd, path, (unsigned long)a.st_ino, (unsigned long)b.st_ino);
}

static void check_chardev(int fd, unsigned maj, unsigned min, const char *what)
{
	struct stat st;

	SYS(fstat(fd, &st));
	CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == maj && minor(st.st_rdev) == min,
	      "fd %d is not %s", fd, what);
}

static void setup(void)
{
	SYS(mkdir("sub", 0755));
	create_file("ro.txt");
	create_file("wo.txt");
	create_file("rwa.txt");
	create_file("sub/inner.txt");

	for (int i = 0; i < NFILES; i++) {
		struct fdspec *f = &files[i];

		f->fd = SYS(open(f->path, f->flags));
		SYS(lseek(f->fd, f->pos, SEEK_SET));
	}
	SYS(dup2(files[RO].fd, DUP_FD));
	dir_fd = SYS(open("sub", O_RDONLY | O_DIRECTORY));
	null_fd = SYS(open("/dev/null", O_WRONLY));
	zero_fd = SYS(open("/dev/zero", O_RDONLY));
	urandom_fd = SYS(open("/dev/urandom", O_RDONLY | O_CLOEXEC));

	for (int i = 0; i < NFILES; i++) {
		files[i].fl = SYS(fcntl(files[i].fd, F_GETFL));
		files[i].fdf = SYS(fcntl(files[i].fd, F_GETFD));
	}
	dir_fl = SYS(fcntl(dir_fd, F_GETFL));
	null_fl = SYS(fcntl(null_fd, F_GETFL));
	zero_fl = SYS(fcntl(zero_fd, F_GETFL));
	urandom_fl = SYS(fcntl(urandom_fd, F_GETFL));
}

static void verify(void)
{
	char buf[64];
	struct stat st;

	for (int i = 0; i < NFILES; i++) {
		struct fdspec *f = &files[i];
		int fl = fcntl(f->fd, F_GETFL), fdf = fcntl(f->fd, F_GETFD);
		off_t pos = lseek(f->fd, 0, SEEK_CUR);

		CHECK(fl == f->fl, "fd %d (%s) F_GETFL %#o, was %#o", f->fd, f->path, fl, f->fl);
		CHECK((fl & (O_ACCMODE | O_APPEND | O_NONBLOCK)) ==
			      (f->flags & (O_ACCMODE | O_APPEND | O_NONBLOCK)),
		      "fd %d (%s) flags %#o, opened with %#o", f->fd, f->path, fl, f->flags);
		CHECK(fdf == f->fdf && !!(fdf & FD_CLOEXEC) == !!(f->flags & O_CLOEXEC),
		      "fd %d (%s) F_GETFD %d, was %d", f->fd, f->path, fdf, f->fdf);
		CHECK(pos == f->pos, "fd %d (%s) offset %lld, want %lld", f->fd, f->path,
		      (long long)pos, (long long)f->pos);
		check_same_file(f->fd, f->path);
	}

	/* fd 100 shares the O_RDONLY fd's file description (and offset). */
	CHECK(lseek(DUP_FD, 0, SEEK_CUR) == files[RO].pos, "fd %d offset %lld", DUP_FD,
	      (long long)lseek(DUP_FD, 0, SEEK_CUR));
	CHECK(fcntl(DUP_FD, F_GETFL) == files[RO].fl, "fd %d flags", DUP_FD);
	CHECK(fcntl(DUP_FD, F_GETFD) == 0, "fd %d has FD_CLOEXEC", DUP_FD);
	check_same_file(DUP_FD, "ro.txt");
	CHECK(read(files[RO].fd, buf, 10) == 10, "read ro.txt");
	for (int i = 0; i < 10; i++)
		CHECK(buf[i] == content("ro.txt", files[RO].pos + i), "ro.txt byte %d", i);
	CHECK(lseek(DUP_FD, 0, SEEK_CUR) == files[RO].pos + 10,
	      "fd %d no longer shares the file description of fd %d", DUP_FD, files[RO].fd);
	CHECK(read(DUP_FD, buf, 5) == 5, "read fd %d", DUP_FD);
	CHECK(buf[0] == content("ro.txt", files[RO].pos + 10), "fd %d content", DUP_FD);

	/* Reads at the recorded offsets. */
	CHECK(read(files[NB].fd, buf, 8) == 8, "read O_NONBLOCK fd");
	for (int i = 0; i < 8; i++)
		CHECK(buf[i] == content("ro.txt", files[NB].pos + i), "O_NONBLOCK fd byte %d", i);
	CHECK(read(files[CX].fd, buf, 8) == 8, "read O_CLOEXEC fd");
	for (int i = 0; i < 8; i++)
		CHECK(buf[i] == content("wo.txt", files[CX].pos + i), "O_CLOEXEC fd byte %d", i);
	CHECK(read(files[WO].fd, buf, 1) < 0 && errno == EBADF, "O_WRONLY fd is readable");

	/* O_APPEND: a write lands at the end whatever the offset; then undo it. */
	CHECK(write(files[RWA].fd, "Z", 1) == 1, "write O_APPEND fd");
	SYS(fstat(files[RWA].fd, &st));
	CHECK(st.st_size == FILE_SIZE + 1, "O_APPEND write: size %lld", (long long)st.st_size);
	CHECK(pread(files[RWA].fd, buf, 1, FILE_SIZE) == 1 && buf[0] == 'Z',
	      "O_APPEND write not at the end");
	CHECK(pread(files[RWA].fd, buf, 1, files[RWA].pos) == 1 &&
		      buf[0] == content("rwa.txt", files[RWA].pos),
	      "O_APPEND write overwrote the offset");
	SYS(ftruncate(files[RWA].fd, FILE_SIZE));

	/* Directory fd still works for openat. */
	CHECK(fcntl(dir_fd, F_GETFL) == dir_fl, "dir fd flags");
	{
		int fd = openat(dir_fd, "inner.txt", O_RDONLY | O_CLOEXEC);
		struct stat a, b;

		CHECK(fd >= 0, "openat(dir fd, inner.txt): %s", strerror(errno));
		CHECK(pread(fd, buf, 4, 9) == 4 && buf[0] == content("sub/inner.txt", 9),
		      "inner.txt content via openat");
		close(fd);
		SYS(fstat(dir_fd, &a));
		SYS(stat("sub", &b));
		CHECK(a.st_ino == b.st_ino && S_ISDIR(a.st_mode), "dir fd is not ./sub");
	}

	/* Character devices. */
	CHECK(fcntl(null_fd, F_GETFL) == null_fl, "/dev/null flags");
	CHECK(fcntl(zero_fd, F_GETFL) == zero_fl, "/dev/zero flags");
	CHECK(fcntl(urandom_fd, F_GETFL) == urandom_fl, "/dev/urandom flags");
	CHECK(fcntl(urandom_fd, F_GETFD) == FD_CLOEXEC, "/dev/urandom lost FD_CLOEXEC");
	check_chardev(null_fd, 1, 3, "/dev/null");
	check_chardev(zero_fd, 1, 5, "/dev/zero");
	check_chardev(urandom_fd, 1, 9, "/dev/urandom");
	CHECK(write(null_fd, "x", 1) == 1, "write /dev/null");
	memset(buf, 1, sizeof(buf));
	CHECK(read(zero_fd, buf, sizeof(buf)) == sizeof(buf), "read /dev/zero");
	for (size_t i = 0; i < sizeof(buf); i++)
		CHECK(buf[i] == 0, "/dev/zero gave nonzero");
	memset(buf, 0, sizeof(buf));
	CHECK(read(urandom_fd, buf, 32) == 32, "read /dev/urandom");
	{
		int nz = 0;

		for (int i = 0; i < 32; i++)
			nz += buf[i] != 0;
		CHECK(nz > 0, "/dev/urandom gave 32 zero bytes");
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
