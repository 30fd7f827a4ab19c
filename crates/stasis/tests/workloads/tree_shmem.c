/*
 * Shared anonymous memory inherited over fork: an 8 MiB MAP_SHARED |
 * MAP_ANONYMOUS region created by the root before it forks two children.
 * Part 0 (2 MiB) is written by the root, part 1 by child 1, part 2 by
 * child 2, all before READY; the last 2 MiB are never touched (holes) but
 * for a control page at the very end.
 *
 * Verified after SIGTERM, in turns passed through the control page:
 *   root:    all parts hold their setup contents, the holes read zero;
 *            writes a new generation over part 0; turn -> 1
 *   child 1: sees the root's new part 0 (real sharing, not a copy) and the
 *            old parts 1 and 2; writes a new part 1; turn -> 2
 *   child 2: sees new parts 0 and 1, old part 2; writes a new part 2;
 *            turn -> 3
 *   all:     once turn is 3, everybody sees the new generation of all
 *            three parts. Children exit 0 when all was well; the root
 *            reaps them.
 * The children also check getppid() and that the region is still at the
 * same address.
 */
#include "tree.h"

#include <sys/mman.h>

#define MIB (1024 * 1024)
#define SIZE (8 * MIB)
#define PART (2 * MIB)
#define PART_WORDS (PART / 8)
#define NPARTS 3
#define HOLE_OFF (NPARTS * PART)
#define CTL_OFF (SIZE - 4096)

struct ctl {
	int turn;
};

static char *shm;
static struct ctl *ctl;

static uint64_t *part(int p)
{
	return (uint64_t *)(shm + (size_t)p * PART);
}

/* Part p holds generation `gen`; seeds differ per part. */
static void check_part(int p, int gen)
{
	long bad = tr_check_fill(part(p), PART_WORDS, 10 + p, gen);

	TCHECK(bad < 0, "part %d word %ld: %#lx, want generation %d", p, bad,
	       bad < 0 ? 0 : (unsigned long)part(p)[bad], gen);
}

static void check_holes(void)
{
	for (size_t off = HOLE_OFF; off < CTL_OFF; off += 8)
		if (*(uint64_t *)(shm + off)) {
			tr_bad("hole at offset %#zx is not zero", off);
			return;
		}
}

/* Waits (up to 10 s) until the turn is at least `t`. */
static int wait_turn(int t)
{
	for (int i = 0; i < 10000; i++) {
		if (__atomic_load_n(&ctl->turn, __ATOMIC_SEQ_CST) >= t)
			return 1;
		wl_sleep_ms(1);
	}
	tr_bad("timed out waiting for turn %d (turn is %d)", t,
	       __atomic_load_n(&ctl->turn, __ATOMIC_SEQ_CST));
	return 0;
}

/* Process p (0 = root): checks what the earlier turns wrote, writes its own
 * new generation, passes the turn on, then checks the final state. */
static void take_turn(int p)
{
	if (!wait_turn(p))
		return;
	for (int q = 0; q < NPARTS; q++)
		check_part(q, q < p ? 1 : 0);
	check_holes();
	tr_fill(part(p), PART_WORDS, 10 + p, 1);
	__atomic_store_n(&ctl->turn, p + 1, __ATOMIC_SEQ_CST);
	if (!wait_turn(NPARTS))
		return;
	for (int q = 0; q < NPARTS; q++)
		check_part(q, 1);
}

int main(void)
{
	pid_t root = getpid(), kids[NPARTS] = { 0 };
	char *where;

	tr_block_term();
	tr_sync_open();
	shm = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	where = shm;
	ctl = (struct ctl *)(shm + CTL_OFF);
	tr_fill(part(0), PART_WORDS, 10, 0);
	for (int p = 1; p < NPARTS; p++) {
		if ((kids[p] = tr_fork()) == 0) {
			tr_set_who("child %d", p);
			tr_fill(part(p), PART_WORDS, 10 + p, 0);
			tr_sync_send(p);
			tr_wait_term();
			TCHECK(getppid() == root, "getppid() %d, want the root %d", getppid(), root);
			TCHECK(shm == where, "region moved");
			take_turn(p);
			tr_exit();
		}
	}
	tr_sync_recv(NPARTS - 1, NULL);
	wl_ready_sigwait(NULL, NULL);

	for (int p = 1; p < NPARTS; p++)
		if (kill(kids[p], SIGTERM))
			wl_bad("kill(child %d): %s", p, strerror(errno));
	take_turn(0);
	for (int p = 1; p < NPARTS; p++) {
		char who[16];

		snprintf(who, sizeof(who), "child %d", p);
		tr_reap(kids[p], who, 0);
	}
	tr_check_no_children();
	wl_verdict();
}
