/* System V IPC that stasis must refuse, while leaving the process alone
 * (argv[1]):
 *   host      a shared memory segment attached in the IPC namespace the
 *             process was started in (the test's, not one of its own);
 *             after SIGTERM the segment must still be attached with its
 *             contents. It is removed (IPC_RMID) at once, so it goes away
 *             with the process and never outlives the test.
 *   child-ns  a child that moved to an IPC namespace of its own (the
 *             tree's processes do not share one); after SIGTERM the child
 *             must still be there.
 *   partial   in an IPC namespace of its own, a segment whose last page
 *             was unmapped (shmat could not map it that way again).
 */
#include "wl.h"
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define SIZE (64 * 1024)

static void host(void)
{
	int id = SYS(shmget(IPC_PRIVATE, SIZE, 0600));
	uint32_t *p = shmat(id, NULL, 0);

	if (p == (void *)-1)
		wl_fail("shmat: %s", strerror(errno));
	SYS(shmctl(id, IPC_RMID, NULL));
	for (size_t i = 0; i < SIZE / 4; i++)
		p[i] = (uint32_t)(i * 2654435761u);
	wl_note("segment %d attached at %p", id, (void *)p);
	wl_ready();
	wl_wait();
	for (size_t i = 0; i < SIZE / 4; i++)
		CHECK(p[i] == (uint32_t)(i * 2654435761u), "word %zu changed", i);
}

static void partial(void)
{
	int id;
	char *p;

	if (unshare(CLONE_NEWIPC))
		wl_fail("unshare(CLONE_NEWIPC): %s (needs root)", strerror(errno));
	id = SYS(shmget(IPC_PRIVATE, 4 * 4096, 0600));
	p = shmat(id, NULL, 0);
	if (p == (void *)-1)
		wl_fail("shmat: %s", strerror(errno));
	SYS(munmap(p + 3 * 4096, 4096));
	memset(p, 7, 3 * 4096);
	wl_ready();
	wl_wait();
	for (int i = 0; i < 3 * 4096; i++)
		CHECK(p[i] == 7, "byte %d changed", i);
}

static void child_ns(void)
{
	int fds[2];
	char b;
	pid_t kid;
	int st;

	SYS(pipe(fds));
	kid = SYS(fork());
	if (kid == 0) {
		close(fds[0]);
		if (unshare(CLONE_NEWIPC))
			_exit(2);
		if (write(fds[1], "x", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(fds[1]);
	CHECK(read(fds[0], &b, 1) == 1, "the child did not unshare its IPC namespace");
	close(fds[0]);
	wl_ready();
	wl_wait();
	CHECK(waitpid(kid, &st, WNOHANG) == 0, "the child is gone");
	SYS(kill(kid, SIGKILL));
	SYS(waitpid(kid, &st, 0));
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "child-ns"))
		child_ns();
	else if (argc > 1 && !strcmp(argv[1], "partial"))
		partial();
	else
		host();
	wl_pass();
}
