/*
 * A process that cannot be stopped: it waits in clone(CLONE_VFORK) (a
 * killable sleep that ptrace cannot interrupt) for a child that pauses
 * instead of calling exec. Without CLONE_VM the child has memory of its
 * own, so the dump's vfork check does not see it coming: the freeze itself
 * must give up within its wait bound with a clear error instead of
 * hanging, and leave the process as it was.
 *
 * After READY it vforks; the test kills the child, which lets vfork return.
 * On SIGTERM: vfork returned the child's pid, and the child died of SIGKILL.
 */
#include "wl.h"

#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

int main(void)
{
	pid_t child;
	int st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_ready();
	child = (pid_t)syscall(SYS_clone, CLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
	if (child == 0) {
		for (;;)
			syscall(SYS_pause);
	}
	CHECK(child > 0, "vfork: %s", strerror(errno));
	CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %x", st);
	wl_say("vfork returned");
	wl_wait();
	wl_pass();
}
