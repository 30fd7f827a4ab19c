/*
 * One open file description shared by a parent and its child: data.bin is
 * opened O_RDWR by the root before it forks (fd F in both), and the child
 * also dup()s it (fd G, same description, no FD_CLOEXEC). The child opens
 * data.bin once more by itself (fd H, its own description). Before READY
 * the child reads through F, moving the shared offset to 1100 (the root
 * had set 1000); H is at 5000.
 *
 * Verified after SIGTERM:
 *   root:  F's offset is 1100 (the child's read moved it), F_GETFL kept;
 *          then it stops the child and waits for it;
 *   child: F and G both at 1100, H at 5000; reads 50 bytes through G (the
 *          file's content at 1100) and writes 10 bytes through F; F and G
 *          are then at 1160, H still at 5000 (not shared); exits 0;
 *   root:  F's offset is now 1160 (moved by the child's read and write),
 *          and pread() at 1150 finds the child's 10 bytes.
 */
#include "tree.h"

#define FILE_SIZE 65536
#define ROOT_POS 1000
#define CHILD_READ 100
#define H_POS 5000

static int F;

static char content(off_t off)
{
	return (char)('a' + (off * 7 + off / 251) % 26);
}

static void check_pos(int fd, const char *name, off_t want)
{
	off_t pos = lseek(fd, 0, SEEK_CUR);

	TCHECK(pos == want, "%s (fd %d) offset %lld, want %lld", name, fd, (long long)pos,
	       (long long)want);
}

static void __attribute__((noreturn)) child(pid_t root)
{
	int G, H;
	char buf[CHILD_READ];

	tr_set_who("child");
	G = dup(F);
	H = open("data.bin", O_RDWR);
	if (G < 0 || H < 0)
		wl_fail("child: dup/open: %s", strerror(errno));
	if (lseek(H, H_POS, SEEK_SET) != H_POS)
		wl_fail("child: lseek H: %s", strerror(errno));
	if (read(F, buf, CHILD_READ) != CHILD_READ)
		wl_fail("child: read F: %s", strerror(errno));
	tr_sync_send(0);
	tr_wait_term();

	TCHECK(getppid() == root, "getppid() %d, want the root %d", getppid(), root);
	check_pos(F, "F", ROOT_POS + CHILD_READ);
	check_pos(G, "G (dup of F)", ROOT_POS + CHILD_READ);
	check_pos(H, "H (own open)", H_POS);
	TCHECK(fcntl(G, F_GETFD) == 0, "G has fd flags %d", fcntl(G, F_GETFD));
	TCHECK(read(G, buf, 50) == 50, "read G: %s", strerror(errno));
	for (int i = 0; i < 50; i++)
		if (buf[i] != content(ROOT_POS + CHILD_READ + i)) {
			tr_bad("G read byte %d is %#x, want %#x (wrong offset?)", i, buf[i],
			       content(ROOT_POS + CHILD_READ + i));
			break;
		}
	TCHECK(write(F, "0123456789", 10) == 10, "write F: %s", strerror(errno));
	check_pos(F, "F after read+write", ROOT_POS + CHILD_READ + 60);
	check_pos(G, "G after read+write", ROOT_POS + CHILD_READ + 60);
	check_pos(H, "H after read+write through F", H_POS);
	tr_exit();
}

int main(void)
{
	pid_t root = getpid(), kid;
	char buf[FILE_SIZE];
	int fl;

	for (int i = 0; i < FILE_SIZE; i++)
		buf[i] = content(i);
	F = SYS(open("data.bin", O_RDWR | O_CREAT | O_TRUNC, 0644));
	if (write(F, buf, FILE_SIZE) != FILE_SIZE)
		wl_fail("write data.bin");
	SYS(lseek(F, ROOT_POS, SEEK_SET));
	fl = SYS(fcntl(F, F_GETFL));
	tr_block_term();
	tr_sync_open();
	if ((kid = tr_fork()) == 0)
		child(root);
	tr_sync_recv(1, NULL);
	CHECK(lseek(F, 0, SEEK_CUR) == ROOT_POS + CHILD_READ, "child's read did not move F");
	wl_ready_sigwait(NULL, NULL);

	check_pos(F, "F", ROOT_POS + CHILD_READ);
	TCHECK(fcntl(F, F_GETFL) == fl, "F_GETFL %#o, was %#o", fcntl(F, F_GETFL), fl);
	tr_stop(kid, "child", 0);
	check_pos(F, "F after the child's read and write", ROOT_POS + CHILD_READ + 60);
	TCHECK(pread(F, buf, 10, ROOT_POS + CHILD_READ + 50) == 10 &&
		       memcmp(buf, "0123456789", 10) == 0,
	       "the child's write is not at offset %d", ROOT_POS + CHILD_READ + 50);
	tr_check_no_children();
	wl_verdict();
}
