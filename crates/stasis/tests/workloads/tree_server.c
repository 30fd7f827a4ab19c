/*
 * A small "server": the root forks 4 workers that share a counter in a
 * MAP_SHARED | MAP_ANONYMOUS page. Each worker loops: atomically adds 1 to
 * the shared counter (__atomic_fetch_add) and to its own slot in the page,
 * then sleeps 1 ms. A worker remembers (privately) the last counter value
 * it got and reports a BAD line if the counter ever goes back.
 *
 * Verified after SIGTERM, by the root: the counter is at least its value
 * at READY; over 300 ms the counter and every worker's slot advance (all 4
 * workers alive and incrementing); then it sets the stop flag, every
 * worker exits 0 (it never saw the counter go back), and the counter
 * equals the sum of the slots.
 *
 * With --progress the root prints "counter C S0 S1 S2 S3" every 100 ms
 * while it waits for SIGTERM, so a test can check from outside that the
 * counter continues from its dump-time value after a restore.
 */
#include "tree.h"

#include <sys/mman.h>

#define NWORKERS 4

struct shared {
	uint64_t counter;
	uint64_t slot[NWORKERS];
	int stop;
};

static struct shared *sh;

static uint64_t load(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void __attribute__((noreturn)) worker(int i)
{
	uint64_t last = 0;
	int regressions = 0;

	tr_set_who("worker %d", i);
	last = __atomic_fetch_add(&sh->counter, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&sh->slot[i], 1, __ATOMIC_SEQ_CST);
	tr_sync_send(i);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
		uint64_t v = __atomic_fetch_add(&sh->counter, 1, __ATOMIC_SEQ_CST);

		__atomic_fetch_add(&sh->slot[i], 1, __ATOMIC_SEQ_CST);
		if (v <= last && !regressions++)
			tr_bad("shared counter went back from %llu to %llu", (unsigned long long)last,
			       (unsigned long long)v);
		last = v;
		wl_sleep_ms(1);
	}
	tr_exit();
}

/* Waits for SIGTERM; with `progress`, prints the counters every 100 ms. */
static void wait_term(int progress)
{
	sigset_t s;
	struct timespec ts = { 0, 100 * 1000000L };

	if (!progress) {
		wl_ready_sigwait(NULL, NULL);
		return;
	}
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	wl_say("READY");
	for (;;) {
		wl_say("counter %llu %llu %llu %llu %llu", (unsigned long long)load(&sh->counter),
		       (unsigned long long)load(&sh->slot[0]), (unsigned long long)load(&sh->slot[1]),
		       (unsigned long long)load(&sh->slot[2]), (unsigned long long)load(&sh->slot[3]));
		if (sigtimedwait(&s, NULL, &ts) == SIGTERM)
			return;
	}
}

int main(int argc, char **argv)
{
	pid_t kids[NWORKERS];
	uint64_t at_ready, c0, c1, s0[NWORKERS], sum = 0;
	int progress = argc > 1 && strcmp(argv[1], "--progress") == 0;

	tr_block_term();
	tr_sync_open();
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	for (int i = 0; i < NWORKERS; i++)
		if ((kids[i] = tr_fork()) == 0)
			worker(i);
	tr_sync_recv(NWORKERS, NULL);
	at_ready = load(&sh->counter);
	wait_term(progress);

	c0 = load(&sh->counter);
	for (int i = 0; i < NWORKERS; i++)
		s0[i] = load(&sh->slot[i]);
	TCHECK(c0 >= at_ready, "counter %llu, less than %llu at READY", (unsigned long long)c0,
	       (unsigned long long)at_ready);
	wl_sleep_ms(300);
	c1 = load(&sh->counter);
	TCHECK(c1 > c0, "counter stuck at %llu", (unsigned long long)c1);
	for (int i = 0; i < NWORKERS; i++) {
		uint64_t s1 = load(&sh->slot[i]);

		TCHECK(s1 > s0[i], "worker %d (pid %d) is not incrementing (slot stuck at %llu)", i,
		       kids[i], (unsigned long long)s1);
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < NWORKERS; i++) {
		char who[16];

		snprintf(who, sizeof(who), "worker %d", i);
		tr_reap(kids[i], who, 0);
		sum += load(&sh->slot[i]);
	}
	TCHECK(load(&sh->counter) == sum, "counter %llu, but the workers added %llu",
	       (unsigned long long)load(&sh->counter), (unsigned long long)sum);
	tr_check_no_children();
	wl_verdict();
}
