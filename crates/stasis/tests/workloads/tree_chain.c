/*
 * A fork chain 5 deep: root -> L1 -> L2 -> L3 -> L4 -> L5, each process
 * forking the next.
 *
 * Memory: the root fills a 64-page private anonymous region before the
 * first fork. Every process (the root too) then overwrites the even pages
 * with a pattern of its own level, while the odd pages stay as the root
 * wrote them: shared copy-on-write by all six processes.
 *
 * Verified after SIGTERM, top down: each process checks getpid() (same pid
 * as before), getppid() (its parent in the chain), the even pages (its own
 * pattern) and the odd pages (the root's); then it writes new values over
 * the odd pages and only then stops its child, which must still see the
 * root's values (copy-on-write kept private after restore). Each waits for
 * its child's exit status (0 = the rest of the chain is fine).
 */
#include "tree.h"

#include <sys/mman.h>

#define DEPTH 5
#define PAGES 64
#define PAGE 4096
#define WORDS (PAGE / 8)

static uint64_t *mem;
static int level;
static pid_t my_pid, parent_pid, child_pid;

static uint64_t *page(int i)
{
	return mem + (size_t)i * WORDS;
}

/* Pattern seeds: odd pages were written by the root at setup (seed 1000),
 * even pages by each level after its fork (seed = level). */
static void write_own_pages(void)
{
	for (int i = 0; i < PAGES; i += 2)
		tr_fill(page(i), WORDS, level, i);
}

static void verify(void)
{
	TCHECK(getpid() == my_pid, "getpid() %d, was %d", getpid(), my_pid);
	if (level > 0)
		TCHECK(getppid() == parent_pid, "getppid() %d, want %d (level %d)", getppid(),
		       parent_pid, level - 1);
	for (int i = 0; i < PAGES; i++) {
		uint64_t seed = i % 2 ? 1000 : (uint64_t)level;
		long bad = tr_check_fill(page(i), WORDS, seed, i);

		TCHECK(bad < 0, "page %d word %ld: %#lx, want %s pattern", i, bad,
		       bad < 0 ? 0 : (unsigned long)page(i)[bad], i % 2 ? "the root's" : "own");
	}
	/* Dirty the shared copy-on-write pages before the child checks them. */
	for (int i = 1; i < PAGES; i += 2)
		tr_fill(page(i), WORDS, 2000 + level, i);
}

int main(void)
{
	tr_block_term();
	tr_sync_open();
	mem = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	for (int i = 1; i < PAGES; i += 2)
		tr_fill(page(i), WORDS, 1000, i);
	my_pid = getpid();
	write_own_pages();

	/* Each process forks the next one; the child continues the loop. */
	while (level < DEPTH) {
		pid_t me = getpid();
		pid_t pid = tr_fork();

		if (pid > 0) {
			child_pid = pid;
			break;
		}
		level++;
		tr_set_who("level %d", level);
		parent_pid = me;
		my_pid = getpid();
		write_own_pages();
	}

	if (level > 0) {
		tr_sync_send(level);
		tr_wait_term();
	} else {
		tr_sync_recv(DEPTH, NULL);
		wl_ready_sigwait(NULL, NULL);
	}
	verify();
	if (child_pid) {
		char who[32];

		snprintf(who, sizeof(who), "level %d", level + 1);
		tr_stop(child_pid, who, 0);
	}
	if (level > 0)
		tr_exit();
	tr_check_no_children();
	wl_verdict();
}
