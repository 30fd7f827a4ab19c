/*
 * Shared helpers for C/R workloads (see tests/common/mod.rs for the protocol).
 *
 *   setup state ...
 *   wl_ready();          // installs the SIGTERM handler, prints READY
 *   wl_wait();           // sleeps in pause() until SIGTERM
 *   verify state, using CHECK(cond, fmt, ...) / wl_fail(fmt, ...)
 *   wl_pass();           // prints PASS, exits 0
 *
 * Usage: #include "wl.h" (found next to the including .c file).
 * Workloads with signal handlers of their own, which report every check
 * before the verdict, use wlx.h on top of this (sigwaitinfo, BAD lines).
 */
#ifndef STASIS_WL_H
#define STASIS_WL_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t wl_term;

static void wl_on_term(int sig)
{
	(void)sig;
	wl_term = 1;
}

/* Prints "FAIL: <reason>" and exits 1. Safe to call from any thread. */
static inline void __attribute__((noreturn, format(printf, 1, 2)))
wl_fail(const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("FAIL: %s\n", buf);
	fflush(stdout);
	_exit(1);
}

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond))                                                  \
			wl_fail(__VA_ARGS__);                                 \
	} while (0)

/* Dies with FAIL when a setup syscall fails (before READY). */
#define SYS(expr)                                                             \
	({                                                                    \
		__typeof__(expr) _r = (expr);                                 \
		if (_r == (__typeof__(expr))-1)                               \
			wl_fail("%s:%d: %s: %s", __FILE__, __LINE__, #expr,   \
				strerror(errno));                             \
		_r;                                                           \
	})

static inline void wl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void wl_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("note: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

/* Prints one line (fmt + newline) and flushes; lines from threads do not mix. */
static inline void wl_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void wl_say(const char *fmt, ...)
{
	va_list ap;

	flockfile(stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	funlockfile(stdout);
}

/* CLOCK_MONOTONIC now, in seconds. */
static inline double wl_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline double wl_ts2d(const struct timespec *ts)
{
	return ts->tv_sec + ts->tv_nsec / 1e9;
}

/* Sleeps ms milliseconds in full, resuming after signal handlers. */
static inline void wl_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Installs the SIGTERM handler (no SA_RESTART) and prints READY. */
static inline void wl_ready(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wl_on_term;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		wl_fail("sigaction(SIGTERM): %s", strerror(errno));
	printf("READY\n");
	fflush(stdout);
}

/* Waits for SIGTERM. */
static inline void wl_wait(void)
{
	while (!wl_term)
		pause();
}

static inline void __attribute__((noreturn)) wl_pass(void)
{
	printf("PASS\n");
	fflush(stdout);
	exit(0);
}

#endif
