/*
 * /proc/self/{maps,smaps} lookups and fault probes for workloads.
 * Uses only static buffers and raw read(2): no malloc, so the heap and the
 * program break stay exactly as they were dumped.
 */
#ifndef STASIS_PROCMAPS_H
#define STASIS_PROCMAPS_H

#include "wl.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096UL

static char pm_buf[4 << 20];

/* Reads a whole /proc file into pm_buf (NUL-terminated); returns length. */
static inline size_t pm_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		wl_fail("open %s: %s", path, strerror(errno));
	while ((n = read(fd, pm_buf + len, sizeof(pm_buf) - 1 - len)) > 0)
		len += n;
	if (n < 0)
		wl_fail("read %s: %s", path, strerror(errno));
	close(fd);
	pm_buf[len] = 0;
	return len;
}

/*
 * Finds the VMA containing addr in /proc/self/maps. Returns 1 and fills
 * start/end/perms (5 bytes incl. NUL) when found, 0 otherwise.
 */
static inline int pm_vma(uintptr_t addr, uintptr_t *start, uintptr_t *end, char perms[5])
{
	char *line = pm_buf;

	pm_read("/proc/self/maps");
	while (*line) {
		unsigned long s, e;
		char p[5];
		char *nl = strchr(line, '\n');

		if (sscanf(line, "%lx-%lx %4s", &s, &e, p) == 3 && addr >= s && addr < e) {
			if (start)
				*start = s;
			if (end)
				*end = e;
			if (perms)
				memcpy(perms, p, 5);
			return 1;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return 0;
}

/*
 * Whether the VmFlags of the VMA starting exactly at `start` (per
 * /proc/self/smaps) contain the two-letter flag `flag`. Fails the workload
 * if there is no such VMA.
 */
static inline int pm_has_vmflag(uintptr_t start, const char *flag)
{
	char hdr[32];
	char *p, *vf, *nl;
	size_t hl;

	pm_read("/proc/self/smaps");
	hl = snprintf(hdr, sizeof(hdr), "%lx-", (unsigned long)start);
	p = pm_buf;
	for (;;) {
		if (strncmp(p, hdr, hl) == 0)
			break;
		p = strchr(p, '\n');
		if (!p)
			wl_fail("no VMA at %lx in smaps", (unsigned long)start);
		p++;
	}
	vf = strstr(p, "VmFlags:");
	if (!vf)
		wl_fail("no VmFlags for VMA %lx", (unsigned long)start);
	nl = strchr(vf, '\n');
	if (nl)
		*nl = 0;
	for (p = vf + 8; *p; p++) {
		if (p[0] == flag[0] && p[1] == flag[1] && p[-1] == ' ' &&
		    (p[2] == ' ' || p[2] == 0))
			return 1;
	}
	return 0;
}

/* Fault probes: pm_probe_read/write return 1 if the access faulted. */
static sigjmp_buf pm_jmp;
static volatile sig_atomic_t pm_probing;

static void pm_on_fault(int sig)
{
	(void)sig;
	if (pm_probing)
		siglongjmp(pm_jmp, 1);
	/* A real crash: restore the default action and re-raise. */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Installs the SIGSEGV/SIGBUS handler used by the probes. */
static inline void pm_install_fault_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pm_on_fault;
	sa.sa_flags = SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
		wl_fail("sigaction(SIGSEGV): %s", strerror(errno));
}

static inline int pm_probe_read(const volatile char *p)
{
	if (sigsetjmp(pm_jmp, 1)) {
		pm_probing = 0;
		return 1;
	}
	pm_probing = 1;
	(void)*p;
	pm_probing = 0;
	return 0;
}

static inline int pm_probe_write(volatile char *p, char v)
{
	if (sigsetjmp(pm_jmp, 1)) {
		pm_probing = 0;
		return 1;
	}
	pm_probing = 1;
	*p = v;
	pm_probing = 0;
	return 0;
}

#endif
