/*
 * Helpers for process-tree workloads (tests/cr_tree.rs), on top of wlx.h.
 *
 * Only the root talks to the harness: it prints READY and PASS/FAIL. The
 * other processes of the tree never print READY; they report problems as
 * "BAD: <who>: <what>" lines and exit 1, and 0 when all is well. Each
 * parent collects its children's exit statuses, so the root's verdict
 * covers the whole tree.
 *
 *   tr_block_term();           // root, before forking: children inherit it
 *   tr_sync_open();            // readiness pipe, before forking
 *   pid = tr_fork();           // in a child: closes the read end of the pipe
 *   child: set up; tr_sync_send(...); tr_wait_term(); verify; tr_exit();
 *   root: tr_sync_recv(n) ... ; tr_sync_close();
 *         wl_ready_sigwait(NULL, NULL);  // READY, then wait for SIGTERM
 *         kill(child, SIGTERM); tr_reap(child, "who", 0);
 *         wl_verdict();
 *
 * SIGTERM stays blocked in every process and is taken with sigwaitinfo(),
 * so a SIGTERM sent to a child at any time after its fork is never lost and
 * never kills it. The readiness pipe lets the root print READY only once
 * every process is set up; it is closed everywhere before READY, so it is
 * not part of the checkpointed state.
 */
#ifndef STASIS_TREE_H
#define STASIS_TREE_H

#include "wlx.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

/* Role of the calling process, for BAD lines ("root", "child 3", ...). */
static char tr_who[64] = "root";
/* Set in every process forked with tr_fork(). */
static int tr_child;
/* Failures seen by a non-root process; its exit status when non-zero. */
static int tr_bad_count;
/* Readiness pipe (tr_sync_*). */
static int tr_sync_fd[2] = { -1, -1 };

/* Sets the role name used in BAD lines of the calling process. */
static inline void tr_set_who(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tr_set_who(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tr_who, sizeof(tr_who), fmt, ap);
	va_end(ap);
}

static inline int tr_is_root(void)
{
	return !tr_child;
}

/* Reports one failed check: in the root via wl_bad() (verdict FAIL), in
 * any other process as a BAD line and a non-zero exit status later. */
static inline void tr_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tr_bad(const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (tr_is_root()) {
		wl_bad("%s", buf);
	} else {
		wl_say("BAD: %s (pid %d): %s", tr_who, getpid(), buf);
		tr_bad_count++;
	}
}

/* Checks cond; on failure reports it with tr_bad() and goes on. */
#define TCHECK(cond, ...)                                                     \
	do {                                                                  \
		if (!(cond))                                                  \
			tr_bad(__VA_ARGS__);                                  \
	} while (0)

/* Ends a non-root process: exit status 0 when nothing was tr_bad(), else 1
 * (or `ok_code` on success, for workloads that give children distinct
 * codes). */
static inline void __attribute__((noreturn)) tr_exit_code(int ok_code)
{
	_exit(tr_bad_count ? 1 : ok_code);
}

static inline void __attribute__((noreturn)) tr_exit(void)
{
	tr_exit_code(0);
}

/* Blocks SIGTERM (inherited by children forked afterwards). */
static inline void tr_block_term(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &s, NULL))
		wl_fail("sigprocmask: %s", strerror(errno));
}

/* Waits for SIGTERM, blocked by tr_block_term(); EINTR (after a stop, e.g.
 * by a checkpoint) is retried. */
static inline void tr_wait_term(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	for (;;) {
		int r = sigwaitinfo(&s, NULL);

		if (r == SIGTERM)
			return;
		if (r < 0 && errno == EINTR)
			continue;
		tr_bad("sigwaitinfo returned %d (%s)", r, strerror(errno));
		tr_exit();
	}
}

static inline void tr_sync_open(void)
{
	if (pipe2(tr_sync_fd, O_CLOEXEC))
		wl_fail("pipe2: %s", strerror(errno));
}

/* fork() with stdout flushed first. In the child: marks it as not the
 * root, names it "child" until tr_set_who(), and closes the read end of the
 * readiness pipe (only the root reads it). Fails the workload when fork
 * fails. */
static inline pid_t tr_fork(void)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		tr_child = 1;
		tr_set_who("child");
		if (tr_sync_fd[0] >= 0) {
			close(tr_sync_fd[0]);
			tr_sync_fd[0] = -1;
		}
	}
	return pid;
}

/* One readiness message, written atomically (< PIPE_BUF). */
struct tr_msg {
	int32_t role; /* workload-defined */
	int32_t pid;
};

/* Child: tells the root it is set up (and who it is), then closes its
 * write end. Children it forks afterwards must not inherit the pipe, so
 * call this after forking them. */
static inline void tr_sync_send(int role)
{
	struct tr_msg m = { role, getpid() };

	if (write(tr_sync_fd[1], &m, sizeof(m)) != sizeof(m))
		tr_bad("readiness write: %s", strerror(errno));
	close(tr_sync_fd[1]);
	tr_sync_fd[1] = -1;
}

/* Root: closes its write end and reads `n` readiness messages into `out`
 * (may be NULL). Fails the workload when a process died before it was set
 * up (EOF). */
static inline void tr_sync_recv(int n, struct tr_msg *out)
{
	if (tr_sync_fd[1] >= 0) {
		close(tr_sync_fd[1]);
		tr_sync_fd[1] = -1;
	}
	for (int i = 0; i < n; i++) {
		struct tr_msg m;
		ssize_t r;

		do
			r = read(tr_sync_fd[0], &m, sizeof(m));
		while (r < 0 && errno == EINTR);
		if (r != sizeof(m))
			wl_fail("readiness: got %d of %d processes (read %zd: %s)", i, n, r,
				r < 0 ? strerror(errno) : "EOF");
		if (out)
			out[i] = m;
	}
	close(tr_sync_fd[0]);
	tr_sync_fd[0] = -1;
}

/* Describes a wait status, for messages. */
static inline const char *tr_status_str(int st)
{
	static char buf[64];

	if (WIFEXITED(st))
		snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, sizeof(buf), "status %#x", st);
	return buf;
}

/* Waits for child `pid` (up to 15 s) and checks it exited with `code`;
 * returns 1 when it did. */
static inline int tr_reap(pid_t pid, const char *who, int code)
{
	int st = 0;

	for (int i = 0; i < 1500; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			if (WIFEXITED(st) && WEXITSTATUS(st) == code)
				return 1;
			tr_bad("%s (pid %d): %s, want exit %d", who, pid, tr_status_str(st), code);
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			tr_bad("waitpid(%s, pid %d): %s", who, pid, strerror(errno));
			return 0;
		}
		wl_sleep_ms(10);
	}
	tr_bad("%s (pid %d) did not exit within 15 s", who, pid);
	return 0;
}

/* Sends SIGTERM to `pid` (a child) and reaps it, expecting exit `code`. */
static inline int tr_stop(pid_t pid, const char *who, int code)
{
	if (kill(pid, SIGTERM)) {
		tr_bad("kill(%s, pid %d): %s", who, pid, strerror(errno));
		return 0;
	}
	return tr_reap(pid, who, code);
}

/* Checks that the caller has no children left to wait for. */
static inline void tr_check_no_children(void)
{
	int st;
	pid_t r = waitpid(-1, &st, WNOHANG);

	TCHECK(r < 0 && errno == ECHILD, "unexpected child left: waitpid(-1) returned %d (%s)", r,
	       r > 0 ? tr_status_str(st) : r == 0 ? "still running" : strerror(errno));
}

/* A deterministic 64-bit pattern (splitmix64 of the inputs). */
static inline uint64_t tr_pat(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t z = a * 0x9e3779b97f4a7c15ULL + b * 0xbf58476d1ce4e5b9ULL + c + 0x632be59bd9b4e019ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Fills `n` 64-bit words with tr_pat(seed, i, gen). */
static inline void tr_fill(uint64_t *p, size_t n, uint64_t seed, uint64_t gen)
{
	for (size_t i = 0; i < n; i++)
		p[i] = tr_pat(seed, i, gen);
}

/* Index of the first word that differs from tr_fill(seed, gen), or -1. */
static inline long tr_check_fill(const uint64_t *p, size_t n, uint64_t seed, uint64_t gen)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != tr_pat(seed, i, gen))
			return (long)i;
	return -1;
}

/* Byte i of the byte stream with seed `seed` (pipes, FIFOs). */
static inline unsigned char tr_byte(int seed, size_t i)
{
	return (unsigned char)(tr_pat(seed, i / 8, 0) >> (8 * (i % 8)));
}

/* Reads exactly n bytes of stream `seed` from fd into buf (FIONREAD must
 * say n are waiting), waiting at most 5 s for each chunk; reports what is
 * wrong with tr_bad. */
static inline void tr_read_stream(int fd, int seed, size_t n, unsigned char *buf, const char *name)
{
	int avail = -1;
	size_t got = 0;

	TCHECK(ioctl(fd, FIONREAD, &avail) == 0 && avail == (int)n, "%s: FIONREAD %d, want %zu",
	       name, avail, n);
	while (got < n) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&pfd, 1, 5000) != 1) {
			tr_bad("%s: no data after %zu of %zu bytes", name, got, n);
			return;
		}
		r = read(fd, buf + got, n - got);
		if (r <= 0) {
			tr_bad("%s: read after %zu of %zu bytes: %s", name, got, n,
			       r < 0 ? strerror(errno) : "EOF");
			return;
		}
		got += r;
	}
	for (size_t i = 0; i < n; i++)
		if (buf[i] != tr_byte(seed, i)) {
			tr_bad("%s: byte %zu is %#x, want %#x", name, i, buf[i], tr_byte(seed, i));
			return;
		}
}

#endif
