/*
 * File locks of every kind, held by a parent and its child:
 *   root:  flock LOCK_EX on "flock.lk" (fd fl);
 *          POSIX write lock on bytes 0..99 and read lock from 200 to EOF
 *          of "posix.lk" (fd px);
 *          OFD write lock on bytes 10..19 of "ofd.lk" (fd od);
 *          flock LOCK_SH on "shared.lk" (fd sh), whose description the
 *          child inherits (fork) and so shares;
 *   child: its own POSIX write lock on bytes 100..199 of "posix.lk".
 *
 * Verified after SIGTERM by a checker process forked then (a different
 * owner, not restored): each lock is held, by the right process, with its
 * type and range, and nothing else is locked; then the root releases its
 * flock and the checker can take it (the lock is a real one).
 */
#include "tree.h"

#include <sys/file.h>
#include <sys/wait.h>

static int fl, px, od, sh;

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock l = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &l);
}

/* The lock a request of `type` on start/len would conflict with. */
static struct flock getlk(const char *path, short type, off_t start, off_t len)
{
	struct flock l = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	int fd = open(path, O_RDWR);

	if (fd < 0 || fcntl(fd, F_GETLK, &l))
		tr_bad("F_GETLK %s: %s", path, strerror(errno));
	close(fd);
	return l;
}

static void want_lock(const char *path, off_t start, off_t len, short type, pid_t pid,
		      const char *what)
{
	struct flock l = getlk(path, F_WRLCK, start, len);

	TCHECK(l.l_type == type && l.l_pid == pid, "%s: conflicting lock type %d pid %d, want type %d pid %d",
	       what, l.l_type, l.l_pid, type, pid);
}

static void want_flock(const char *path, int op, int ok, const char *what)
{
	int fd = open(path, O_RDONLY);
	int r = flock(fd, op | LOCK_NB);

	TCHECK((r == 0) == ok, "%s: flock %s %s", what, op == LOCK_EX ? "LOCK_EX" : "LOCK_SH",
	       r == 0 ? "succeeded" : strerror(errno));
	close(fd);
}

/* Runs in a fresh child after the restore. */
static void __attribute__((noreturn)) checker(pid_t root, pid_t kid)
{
	struct flock l;
	int fd;

	tr_set_who("checker");
	want_flock("flock.lk", LOCK_SH, 0, "flock.lk (root holds LOCK_EX)");
	want_flock("shared.lk", LOCK_SH, 1, "shared.lk (LOCK_SH shared)");
	want_flock("shared.lk", LOCK_EX, 0, "shared.lk (LOCK_SH held)");
	want_lock("posix.lk", 0, 100, F_WRLCK, root, "posix.lk 0..99");
	want_lock("posix.lk", 100, 100, F_WRLCK, kid, "posix.lk 100..199");
	want_lock("posix.lk", 200, 1 << 20, F_RDLCK, root, "posix.lk 200..EOF");
	l = getlk("posix.lk", F_RDLCK, 200, 1 << 20);
	TCHECK(l.l_type == F_UNLCK, "posix.lk 200..EOF is not a read lock (type %d)", l.l_type);
	l = getlk("ofd.lk", F_WRLCK, 10, 10);
	TCHECK(l.l_type == F_WRLCK && l.l_pid == -1, "ofd.lk 10..19: type %d pid %d, want an OFD write lock",
	       l.l_type, l.l_pid);
	l = getlk("ofd.lk", F_WRLCK, 20, 100);
	TCHECK(l.l_type == F_UNLCK, "ofd.lk 20..119 locked (type %d)", l.l_type);
	fd = open("ofd.lk", O_RDWR);
	TCHECK(setlk(fd, F_OFD_SETLK, F_WRLCK, 0, 10) == 0, "ofd.lk 0..9: %s", strerror(errno));
	close(fd);
	tr_exit();
}

static void run_checker(pid_t root, pid_t kid)
{
	pid_t c = tr_fork();

	if (c == 0)
		checker(root, kid);
	tr_reap(c, "checker", 0);
}

static void __attribute__((noreturn)) child(void)
{
	tr_set_who("child");
	close(fl);
	close(od);
	if (setlk(px, F_SETLK, F_WRLCK, 100, 100))
		wl_fail("child: F_SETLK: %s", strerror(errno));
	tr_sync_send(0);
	tr_wait_term();
	tr_exit();
}

int main(void)
{
	pid_t root = getpid(), kid;
	int fd;

	fl = SYS(open("flock.lk", O_RDWR | O_CREAT, 0600));
	px = SYS(open("posix.lk", O_RDWR | O_CREAT, 0600));
	od = SYS(open("ofd.lk", O_RDWR | O_CREAT, 0600));
	sh = SYS(open("shared.lk", O_RDONLY | O_CREAT, 0600));
	SYS(flock(fl, LOCK_EX));
	SYS(flock(sh, LOCK_SH));
	SYS(setlk(px, F_SETLK, F_WRLCK, 0, 100));
	SYS(setlk(px, F_SETLK, F_RDLCK, 200, 0));
	SYS(setlk(od, F_OFD_SETLK, F_WRLCK, 10, 10));
	tr_block_term();
	tr_sync_open();
	if ((kid = tr_fork()) == 0)
		child();
	tr_sync_recv(1, NULL);
	wl_ready_sigwait(NULL, NULL);

	run_checker(root, kid);
	SYS(flock(fl, LOCK_UN));
	fd = open("flock.lk", O_RDONLY);
	TCHECK(flock(fd, LOCK_EX | LOCK_NB) == 0, "flock.lk after LOCK_UN: %s", strerror(errno));
	close(fd);
	tr_stop(kid, "child", 0);
	tr_check_no_children();
	wl_verdict();
}
