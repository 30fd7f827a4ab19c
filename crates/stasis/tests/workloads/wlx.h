/*
 * Helpers for workloads that check many things after restore and report
 * each of them, instead of stopping at the first failure (wl.h's CHECK):
 *
 *   setup state ...              // wl_fail() on setup errors
 *   wl_ready_sigwait(&si, who);  // blocks SIGTERM, prints READY, sigwaitinfo()
 *   compare, with wl_say("... ok") / wl_bad(fmt, ...) per item
 *   wl_verdict();                // "FAIL: <first BAD>" + exit 1, or PASS
 *
 * For workloads that install signal handlers of their own: SIGTERM is taken
 * with sigwaitinfo(), so no handler of wl.h is involved.
 *
 * Usage: #include "wlx.h" (includes wl.h).
 */
#ifndef STASIS_WLX_H
#define STASIS_WLX_H

#include "wl.h"

#include <pthread.h>

static int wl_fails;
static char wl_first_fail[512];

/* Prints "BAD: <what>" and counts a failure; the first one is kept for the
 * final FAIL line. Main thread only. */
static inline void wl_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void wl_bad(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	wl_say("BAD: %s", buf);
	if (!wl_fails++)
		snprintf(wl_first_fail, sizeof(wl_first_fail), "%s", buf);
}

/* Ends the workload: PASS when nothing was wl_bad(), else FAIL with the first
 * complaint. */
static inline void __attribute__((noreturn)) wl_verdict(void)
{
	if (wl_fails) {
		wl_say("FAIL: %s%s", wl_first_fail, wl_fails > 1 ? " (and more, see above)" : "");
		exit(1);
	}
	wl_pass();
}

/*
 * Blocks SIGTERM in the calling thread (other threads must have it blocked
 * already, e.g. by inheriting the mask), prints READY and waits for SIGTERM
 * with sigwaitinfo().  EINTR (Linux returns it after a stop) is retried; with
 * `who` each one is reported as "<who>: sigwaitinfo EINTR #n".  Stores
 * SIGTERM's siginfo in *si when si is not NULL and returns the number of
 * EINTRs.
 */
static inline int wl_ready_sigwait(siginfo_t *si, const char *who)
{
	sigset_t want;
	siginfo_t info;
	int eintr = 0;

	sigemptyset(&want);
	sigaddset(&want, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &want, NULL);
	wl_say("READY");
	for (;;) {
		int s = sigwaitinfo(&want, &info);

		if (s == SIGTERM)
			break;
		if (s < 0 && errno == EINTR) {
			eintr++;
			if (who)
				wl_say("%s: sigwaitinfo EINTR #%d", who, eintr);
			continue;
		}
		wl_fail("sigwaitinfo returned %d (%s)", s, strerror(errno));
	}
	if (si)
		*si = info;
	return eintr;
}

#endif
