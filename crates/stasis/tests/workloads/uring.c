/*
 * Idle io_uring instances:
 *   a: 8 SQ / 16 CQ entries, SQ, CQ and SQE array mapped separately; a
 *      socketpair registered as fixed files (slots 0 and 2, slot 1 empty), a
 *      4 KiB buffer registered; 37 requests run and reaped before READY
 *      (NOPs and a fixed-buffer write/read through the socketpair), so its
 *      position is 37;
 *   b: SINGLE_ISSUER|DEFER_TASKRUN, 4 entries, position 5.
 * Verified after SIGTERM: the rings' heads and tails read 37 and 5 in the
 * mapped memory; a write with the registered buffer to fixed file 2 and a
 * read from fixed file 0 complete with the right results and user data
 * (so files, buffers and the SQE/CQE mappings work); b still refuses
 * io_uring_enter(GETEVENTS) from a forked child (EEXIST: DEFER_TASKRUN
 * kept) and completes a NOP for its owner; nothing else completes.
 */
#include "wl.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/io_uring.h>

struct ring {
	int fd;
	unsigned entries;
	struct io_uring_params p;
	uint8_t *sq, *cq;
	struct io_uring_sqe *sqes;
};

static struct ring a, b;
static int sv[2];
static char buf[4096] __attribute__((aligned(4096)));

static void setup(struct ring *r, unsigned entries, unsigned flags)
{
	memset(&r->p, 0, sizeof(r->p));
	r->p.flags = flags;
	r->fd = (int)syscall(__NR_io_uring_setup, entries, &r->p);
	if (r->fd < 0)
		wl_fail("io_uring_setup: %s", strerror(errno));
	r->entries = r->p.sq_entries;
	r->sq = mmap(NULL, r->p.sq_off.array + r->p.sq_entries * 4, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	r->cq = mmap(NULL, r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe),
		     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, r->p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED)
		wl_fail("mmap ring: %s", strerror(errno));
}

static volatile uint32_t *u32at(uint8_t *base, uint32_t off)
{
	return (volatile uint32_t *)(base + off);
}

/* Queues one SQE (filled by the caller through the returned pointer). */
static struct io_uring_sqe *next_sqe(struct ring *r)
{
	uint32_t tail = *u32at(r->sq, r->p.sq_off.tail);
	uint32_t idx = tail & *u32at(r->sq, r->p.sq_off.ring_mask);
	struct io_uring_sqe *sqe = &r->sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	u32at(r->sq, r->p.sq_off.array)[idx] = idx;
	__atomic_store_n(u32at(r->sq, r->p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	return sqe;
}

/* Submits what is queued and waits for `n` completions; returns the last
 * one's result, its user data in *ud. */
static int submit_wait(struct ring *r, unsigned n, uint64_t *ud)
{
	uint32_t head, mask = *u32at(r->cq, r->p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(r->cq + r->p.cq_off.cqes);
	int res = 0;
	long got = syscall(__NR_io_uring_enter, r->fd, n, n, IORING_ENTER_GETEVENTS, NULL, 0);

	CHECK(got == (long)n, "io_uring_enter: %ld (%s)", got, got < 0 ? strerror(errno) : "short");
	head = *u32at(r->cq, r->p.cq_off.head);
	CHECK(*u32at(r->cq, r->p.cq_off.tail) - head == n, "%u completions, want %u",
	      *u32at(r->cq, r->p.cq_off.tail) - head, n);
	for (unsigned i = 0; i < n; i++) {
		res = cqes[(head + i) & mask].res;
		if (ud)
			*ud = cqes[(head + i) & mask].user_data;
	}
	__atomic_store_n(u32at(r->cq, r->p.cq_off.head), head + n, __ATOMIC_RELEASE);
	return res;
}

static void nops(struct ring *r, unsigned n)
{
	while (n) {
		unsigned k = n < r->entries ? n : r->entries;

		for (unsigned i = 0; i < k; i++)
			next_sqe(r)->opcode = IORING_OP_NOP;
		submit_wait(r, k, NULL);
		n -= k;
	}
}

/* A write of `len` bytes from the registered buffer to fixed file 2 (one
 * end of the socketpair), then a read into buf + 2048 from fixed file 0. */
static void write_read(size_t len, uint64_t tag)
{
	struct io_uring_sqe *s = next_sqe(&a);
	uint64_t ud = 0;
	int res;

	s->opcode = IORING_OP_WRITE_FIXED;
	s->fd = 2;
	s->flags = IOSQE_FIXED_FILE;
	s->addr = (uint64_t)(uintptr_t)buf;
	s->len = len;
	s->buf_index = 0;
	s->user_data = tag;
	res = submit_wait(&a, 1, &ud);
	CHECK(res == (int)len && ud == tag, "write_fixed: res %d ud %llu", res, (unsigned long long)ud);
	s = next_sqe(&a);
	s->opcode = IORING_OP_READ;
	s->fd = 0;
	s->flags = IOSQE_FIXED_FILE;
	s->addr = (uint64_t)(uintptr_t)(buf + 2048);
	s->len = len;
	s->user_data = tag + 1;
	res = submit_wait(&a, 1, &ud);
	CHECK(res == (int)len && ud == tag + 1, "read: res %d ud %llu", res, (unsigned long long)ud);
	CHECK(!memcmp(buf, buf + 2048, len), "read back different bytes");
}

static void check_position(struct ring *r, uint32_t want, const char *name)
{
	uint32_t sh = *u32at(r->sq, r->p.sq_off.head), st = *u32at(r->sq, r->p.sq_off.tail);
	uint32_t ch = *u32at(r->cq, r->p.cq_off.head), ct = *u32at(r->cq, r->p.cq_off.tail);

	CHECK(sh == want && st == want && ch == want && ct == want,
	      "%s: sq %u/%u cq %u/%u, want all %u", name, sh, st, ch, ct, want);
}

int main(void)
{
	struct iovec iov = { buf, sizeof(buf) };
	int files[3];
	pid_t kid;
	int st;

	SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	setup(&a, 8, 0);
	files[0] = sv[0];
	files[1] = -1;
	files[2] = sv[1];
	SYS((int)syscall(__NR_io_uring_register, a.fd, IORING_REGISTER_FILES, files, 3));
	SYS((int)syscall(__NR_io_uring_register, a.fd, IORING_REGISTER_BUFFERS, &iov, 1));
	for (size_t i = 0; i < 2048; i++)
		buf[i] = (char)('a' + i % 26);
	nops(&a, 35);
	write_read(100, 1000);
	setup(&b, 4, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	nops(&b, 5);
	check_position(&a, 37, "a before");

	wl_ready();
	wl_wait();

	check_position(&a, 37, "a");
	check_position(&b, 5, "b");
	for (size_t i = 0; i < 2048; i++)
		buf[i] = (char)('A' + i % 26);
	write_read(1500, 2000);
	check_position(&a, 39, "a after a write and a read");
	kid = fork();
	if (kid == 0) {
		long r = syscall(__NR_io_uring_enter, b.fd, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0);

		_exit(r < 0 && errno == EEXIST ? 0 : 1);
	}
	CHECK(kid > 0 && waitpid(kid, &st, 0) == kid, "fork/wait: %s", strerror(errno));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "ring b accepted GETEVENTS from another task: DEFER_TASKRUN lost");
	nops(&b, 3);
	check_position(&b, 8, "b after 3 NOPs");
	wl_pass();
}
