/*
 * identity.c - per-process identity and attributes across checkpoint/restore.
 *
 * Usage: identity [nnp] [subdir]
 *   nnp     also set PR_SET_NO_NEW_PRIVS (checked either way)
 *   subdir  chdir into <start dir>/idsub/inner (created here).  Off by
 *           default: the test harness identifies a workload by
 *           /proc/PID/cwd == its start dir.
 *
 * State set up before READY:
 *   rlimits: RLIMIT_NOFILE soft 123, RLIMIT_CORE soft = hard = 0,
 *            RLIMIT_STACK soft 7 MiB + 12 KiB (all 16 rlimits are compared)
 *   umask 027; cwd = start dir, or <start dir>/idsub/inner with `subdir`
 *   personality |= ADDR_NO_RANDOMIZE | UNAME26
 *   prctl: PR_SET_NAME "idwork", PR_SET_PDEATHSIG SIGUSR2,
 *          PR_SET_NO_NEW_PRIVS 1 only with the `nnp` argument,
 *          PR_SET_DUMPABLE 0 (set last; non-dumpable makes the files in
 *          /proc/self root-owned, so it is flipped back to 1 before re-reading /proc
 *          after the check)
 *   saved: /proc/self/{cmdline,environ,auxv}, readlink + stat of
 *          /proc/self/exe, the AT_RANDOM pointer and its 16 bytes,
 *          res[ug]ids, fs[ug]id, groups, capget (v3), bounding and ambient
 *          sets, securebits, sid/pgid, mm layout fields of /proc/self/stat
 *          (start/end code, start stack, start/end data, start brk,
 *          arg/env start/end) and the current brk.
 *
 * After SIGTERM everything is compared with the saved copy; umask and
 * personality are also checked functionally (new file mode 0640, uname()
 * release "2.6.*").  Works unprivileged (e.g. uid 65534): the limits are
 * only lowered and capabilities are then empty.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "wlx.h"

struct blob {
	char *p;
	size_t n;
	int err;
};

static struct blob read_file(const char *path)
{
	struct blob b = { NULL, 0, 0 };
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		b.err = errno;
		return b;
	}
	size_t cap = 4096;
	b.p = malloc(cap);
	for (;;) {
		if (b.n == cap)
			b.p = realloc(b.p, cap *= 2);
		ssize_t r = read(fd, b.p + b.n, cap - b.n);
		if (r < 0) {
			b.err = errno;
			break;
		}
		if (r == 0)
			break;
		b.n += r;
	}
	close(fd);
	return b;
}

static void cmp_blob(const char *what, const struct blob *a, const struct blob *b)
{
	if (a->err || b->err) {
		wl_bad("%s: read error before=%s after=%s", what, a->err ? strerror(a->err) : "ok",
		       b->err ? strerror(b->err) : "ok");
		return;
	}
	if (a->n != b->n || memcmp(a->p, b->p, a->n)) {
		size_t i = 0;
		while (i < a->n && i < b->n && a->p[i] == b->p[i])
			i++;
		wl_bad("%s differs: %zu bytes before, %zu after, first difference at offset %zu", what, a->n, b->n, i);
		return;
	}
	wl_say("%s ok (%zu bytes)", what, a->n);
}

#define NSTATF 52
struct state {
	struct rlimit rl[RLIM_NLIMITS];
	unsigned umask_v;
	char cwd[4096];
	dev_t cwd_dev;
	ino_t cwd_ino;
	unsigned long pers;
	char comm[17];
	struct blob proc_comm;
	int pdeathsig;
	int nnp;
	int dumpable;
	struct blob cmdline, environ_, auxv;
	char exe[4096];
	dev_t exe_dev;
	ino_t exe_ino;
	unsigned long at_random;
	unsigned char random[16];
	uid_t ruid, euid, suid, fsuid;
	gid_t rgid, egid, sgid, fsgid;
	int ngroups;
	gid_t groups[256];
	struct __user_cap_data_struct cap[2];
	uint64_t capbnd, capamb;
	int securebits;
	pid_t sid, pgid;
	unsigned long long statf[NSTATF + 1];
	void *brk;
};

static int cap_last_cap(void)
{
	struct blob b = read_file("/proc/sys/kernel/cap_last_cap");
	int v = 40;
	if (!b.err && b.n) {
		b.p[b.n - 1] = 0;
		v = atoi(b.p);
	}
	free(b.p);
	return v;
}

static unsigned read_umask(void)
{
	struct blob b = read_file("/proc/self/status");
	unsigned v = 0xffff;
	if (!b.err) {
		b.p = realloc(b.p, b.n + 1);
		b.p[b.n] = 0;
		char *l = strstr(b.p, "\nUmask:");
		if (l)
			v = strtoul(l + 7, NULL, 8);
	}
	free(b.p);
	return v;
}

/* fields of /proc/self/stat, 1-based as in proc(5); field 2 (comm) skipped */
static void read_stat(unsigned long long *f)
{
	struct blob b = read_file("/proc/self/stat");
	memset(f, 0, sizeof(unsigned long long) * (NSTATF + 1));
	if (b.err)
		return;
	b.p = realloc(b.p, b.n + 1);
	b.p[b.n] = 0;
	char *s = strrchr(b.p, ')');
	if (!s)
		return;
	s += 2; /* field 3 */
	for (int i = 3; i <= NSTATF && *s; i++) {
		if (i == 3) {
			f[i] = (unsigned char)*s;
			s += 2;
			continue;
		}
		char *end;
		f[i] = strtoull(s, &end, 10);
		if (*end == ' ')
			end++;
		s = end;
	}
	free(b.p);
}

static void capture(struct state *st)
{
	for (int r = 0; r < RLIM_NLIMITS; r++)
		getrlimit(r, &st->rl[r]);
	st->umask_v = read_umask();
	if (!getcwd(st->cwd, sizeof st->cwd))
		snprintf(st->cwd, sizeof st->cwd, "(getcwd: %s)", strerror(errno));
	struct stat sb;
	stat(".", &sb);
	st->cwd_dev = sb.st_dev;
	st->cwd_ino = sb.st_ino;
	st->pers = personality(0xffffffff);
	memset(st->comm, 0, sizeof st->comm);
	prctl(PR_GET_NAME, st->comm);
	st->proc_comm = read_file("/proc/self/comm");
	prctl(PR_GET_PDEATHSIG, &st->pdeathsig);
	st->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	st->dumpable = prctl(PR_GET_DUMPABLE);
	st->cmdline = read_file("/proc/self/cmdline");
	st->environ_ = read_file("/proc/self/environ");
	st->auxv = read_file("/proc/self/auxv");
	ssize_t n = readlink("/proc/self/exe", st->exe, sizeof st->exe - 1);
	st->exe[n > 0 ? n : 0] = 0;
	if (stat("/proc/self/exe", &sb) == 0) {
		st->exe_dev = sb.st_dev;
		st->exe_ino = sb.st_ino;
	}
	st->at_random = getauxval(AT_RANDOM);
	if (st->at_random)
		memcpy(st->random, (void *)st->at_random, 16);
	getresuid(&st->ruid, &st->euid, &st->suid);
	getresgid(&st->rgid, &st->egid, &st->sgid);
	st->fsuid = setfsuid(-1);
	st->fsgid = setfsgid(-1);
	st->ngroups = getgroups(256, st->groups);
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	memset(st->cap, 0, sizeof st->cap);
	syscall(SYS_capget, &hdr, st->cap);
	st->capbnd = st->capamb = 0;
	int last = cap_last_cap();
	for (int c = 0; c <= last && c < 64; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			st->capbnd |= 1ULL << c;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
			st->capamb |= 1ULL << c;
	}
	st->securebits = prctl(PR_GET_SECUREBITS);
	st->sid = getsid(0);
	st->pgid = getpgid(0);
	read_stat(st->statf);
	st->brk = sbrk(0);
}

static void free_state(struct state *st)
{
	free(st->proc_comm.p);
	free(st->cmdline.p);
	free(st->environ_.p);
	free(st->auxv.p);
}

static const char *rlim_name(int r)
{
	static const char *n[] = { "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
				   "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME" };
	return r < (int)(sizeof n / sizeof n[0]) ? n[r] : "?";
}

#define CMPI(what, a, b)                                                                                        \
	do {                                                                                                    \
		if ((unsigned long long)(a) != (unsigned long long)(b))                                         \
			wl_bad("%s: %llu (0x%llx) now, expected %llu (0x%llx)", what, (unsigned long long)(b),  \
			       (unsigned long long)(b), (unsigned long long)(a), (unsigned long long)(a));      \
		else                                                                                            \
			wl_say("%s ok: %llu (0x%llx)", what, (unsigned long long)(a), (unsigned long long)(a)); \
	} while (0)

static void compare(const struct state *a, const struct state *b)
{
	char what[64];
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		if (a->rl[r].rlim_cur != b->rl[r].rlim_cur || a->rl[r].rlim_max != b->rl[r].rlim_max)
			wl_bad("RLIMIT_%s: %llu/%llu now, expected %llu/%llu", rlim_name(r),
			       (unsigned long long)b->rl[r].rlim_cur, (unsigned long long)b->rl[r].rlim_max,
			       (unsigned long long)a->rl[r].rlim_cur, (unsigned long long)a->rl[r].rlim_max);
	}
	wl_say("rlimits compared (%d)", RLIM_NLIMITS);
	if (a->umask_v != b->umask_v)
		wl_bad("umask: %04o now, expected %04o", b->umask_v, a->umask_v);
	else
		wl_say("umask ok: %04o", a->umask_v);
	if (strcmp(a->cwd, b->cwd) || a->cwd_dev != b->cwd_dev || a->cwd_ino != b->cwd_ino)
		wl_bad("cwd: '%s' (ino %lu) now, expected '%s' (ino %lu)", b->cwd, (unsigned long)b->cwd_ino, a->cwd,
		       (unsigned long)a->cwd_ino);
	else
		wl_say("cwd ok: %s", a->cwd);
	CMPI("personality", a->pers, b->pers);
	if (strcmp(a->comm, b->comm))
		wl_bad("PR_GET_NAME: '%s', expected '%s'", b->comm, a->comm);
	cmp_blob("/proc/self/comm", &a->proc_comm, &b->proc_comm);
	CMPI("pdeathsig", a->pdeathsig, b->pdeathsig);
	CMPI("no_new_privs", a->nnp, b->nnp);
	cmp_blob("/proc/self/cmdline", &a->cmdline, &b->cmdline);
	cmp_blob("/proc/self/environ", &a->environ_, &b->environ_);
	cmp_blob("/proc/self/auxv", &a->auxv, &b->auxv);
	if (strcmp(a->exe, b->exe) || a->exe_dev != b->exe_dev || a->exe_ino != b->exe_ino)
		wl_bad("/proc/self/exe: '%s' (ino %lu) now, expected '%s' (ino %lu)", b->exe, (unsigned long)b->exe_ino,
		       a->exe, (unsigned long)a->exe_ino);
	else
		wl_say("/proc/self/exe ok: %s", a->exe);
	CMPI("AT_RANDOM pointer", a->at_random, b->at_random);
	if (memcmp(a->random, b->random, 16))
		wl_bad("AT_RANDOM bytes differ");
	CMPI("ruid", a->ruid, b->ruid);
	CMPI("euid", a->euid, b->euid);
	CMPI("suid", a->suid, b->suid);
	CMPI("fsuid", a->fsuid, b->fsuid);
	CMPI("rgid", a->rgid, b->rgid);
	CMPI("egid", a->egid, b->egid);
	CMPI("sgid", a->sgid, b->sgid);
	CMPI("fsgid", a->fsgid, b->fsgid);
	if (a->ngroups != b->ngroups || (a->ngroups > 0 && memcmp(a->groups, b->groups, a->ngroups * sizeof(gid_t))))
		wl_bad("groups differ: %d now, expected %d", b->ngroups, a->ngroups);
	else
		wl_say("groups ok: %d", a->ngroups);
	for (int i = 0; i < 2; i++) {
		snprintf(what, sizeof what, "cap effective[%d]", i);
		CMPI(what, a->cap[i].effective, b->cap[i].effective);
		snprintf(what, sizeof what, "cap permitted[%d]", i);
		CMPI(what, a->cap[i].permitted, b->cap[i].permitted);
		snprintf(what, sizeof what, "cap inheritable[%d]", i);
		CMPI(what, a->cap[i].inheritable, b->cap[i].inheritable);
	}
	CMPI("cap bounding", a->capbnd, b->capbnd);
	CMPI("cap ambient", a->capamb, b->capamb);
	CMPI("securebits", a->securebits, b->securebits);
	CMPI("sid", a->sid, b->sid);
	CMPI("pgid", a->pgid, b->pgid);
	static const struct {
		int f;
		const char *n;
	} sf[] = { { 26, "start_code" }, { 27, "end_code" },  { 28, "start_stack" }, { 45, "start_data" },
		   { 46, "end_data" },   { 47, "start_brk" }, { 48, "arg_start" },   { 49, "arg_end" },
		   { 50, "env_start" },  { 51, "env_end" } };
	for (size_t i = 0; i < sizeof sf / sizeof sf[0]; i++) {
		snprintf(what, sizeof what, "stat %s", sf[i].n);
		CMPI(what, a->statf[sf[i].f], b->statf[sf[i].f]);
	}
	CMPI("brk", (uintptr_t)a->brk, (uintptr_t)b->brk);
}

static volatile sig_atomic_t got_usr2;

static void on_usr2(int sig)
{
	(void)sig;
	got_usr2++;
}

int main(int argc, char **argv)
{
	int want_nnp = 0, want_subdir = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "nnp"))
			want_nnp = 1;
		else if (!strcmp(argv[i], "subdir"))
			want_subdir = 1;
		else
			wl_fail("unknown argument '%s'", argv[i]);
	}
	wl_say("identity: pid %d uid %d euid %d gid %d nnp-arg %d", getpid(), getuid(), geteuid(), getgid(), want_nnp);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);

	/* rlimits: only lowered, so this works unprivileged */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 123)
		wl_fail("setup: RLIMIT_NOFILE hard limit %llu < 123", (unsigned long long)rl.rlim_max);
	rl.rlim_cur = 123;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		wl_fail("setup: RLIMIT_NOFILE: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl))
		wl_fail("setup: RLIMIT_CORE: %s", strerror(errno));
	getrlimit(RLIMIT_STACK, &rl);
	rlim_t stack_soft = 7 * 1024 * 1024 + 12 * 1024;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < stack_soft)
		stack_soft = rl.rlim_max - 4096;
	rl.rlim_cur = stack_soft;
	if (setrlimit(RLIMIT_STACK, &rl))
		wl_fail("setup: RLIMIT_STACK: %s", strerror(errno));

	/* umask, cwd */
	umask(027);
	char fallback[64] = "";
	if (want_subdir && mkdir("idsub", 0755) && errno != EEXIST) {
		wl_note("cannot create idsub in the start directory (%s), using /tmp", strerror(errno));
		snprintf(fallback, sizeof fallback, "/tmp/stasis-idwork-XXXXXX");
		if (!mkdtemp(fallback) || chdir(fallback) || mkdir("idsub", 0755))
			wl_fail("setup: cannot create a work directory: %s", strerror(errno));
	}
	if (want_subdir && mkdir("idsub/inner", 0750) && errno != EEXIST)
		wl_fail("setup: mkdir idsub/inner: %s", strerror(errno));
	if (want_subdir && chdir("idsub/inner"))
		wl_fail("setup: chdir: %s", strerror(errno));

	/* personality */
	int pers = personality(0xffffffff);
	if (personality(pers | ADDR_NO_RANDOMIZE | UNAME26) == -1)
		wl_fail("setup: personality: %s", strerror(errno));

	/* prctl */
	prctl(PR_SET_NAME, "idwork");
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2))
		wl_fail("setup: PR_SET_PDEATHSIG: %s", strerror(errno));
	if (want_nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		wl_fail("setup: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));

	static struct state before, after;
	capture(&before);

	/* sanity: the setup is what we think it is */
	{
		struct utsname u;
		uname(&u);
		int ok = before.rl[RLIMIT_NOFILE].rlim_cur == 123 && before.rl[RLIMIT_CORE].rlim_cur == 0 &&
			 before.rl[RLIMIT_CORE].rlim_max == 0 && before.rl[RLIMIT_STACK].rlim_cur == stack_soft &&
			 before.umask_v == 027 && (before.pers & (ADDR_NO_RANDOMIZE | UNAME26)) ==
							  (ADDR_NO_RANDOMIZE | UNAME26) &&
			 !strcmp(before.comm, "idwork") && before.pdeathsig == SIGUSR2 && before.nnp == want_nnp &&
			 !strncmp(u.release, "2.6.", 4) && before.cmdline.n > 0 && !before.environ_.err &&
			 before.auxv.n > 0 && before.at_random;
		if (!ok)
			wl_fail("setup: readback mismatch (nofile %llu core %llu/%llu stack %llu umask %o pers 0x%lx comm %s pdeathsig %d nnp %d release %s environ %s)",
				(unsigned long long)before.rl[RLIMIT_NOFILE].rlim_cur,
				(unsigned long long)before.rl[RLIMIT_CORE].rlim_cur,
				(unsigned long long)before.rl[RLIMIT_CORE].rlim_max,
				(unsigned long long)before.rl[RLIMIT_STACK].rlim_cur, before.umask_v, before.pers, before.comm,
				before.pdeathsig, before.nnp, u.release,
				before.environ_.err ? strerror(before.environ_.err) : "ok");
	}
	wl_say("cwd %s, exe %s, uname release %s, caps eff 0x%08x%08x, bnd 0x%llx, groups %d, dumpable %d",
	       before.cwd, before.exe, "2.6.* (UNAME26)", before.cap[1].effective, before.cap[0].effective,
	       (unsigned long long)before.capbnd, before.ngroups, before.dumpable);

	/* last: not dumpable (makes the /proc/self files root-owned) */
	if (prctl(PR_SET_DUMPABLE, 0))
		wl_fail("setup: PR_SET_DUMPABLE: %s", strerror(errno));

	wl_ready_sigwait(NULL, NULL);
	wl_say("got SIGTERM");
	if (got_usr2)
		wl_note("SIGUSR2 (pdeathsig) received %d time(s): the parent thread exited", (int)got_usr2);

	int d = prctl(PR_GET_DUMPABLE);
	if (d != 0)
		wl_bad("dumpable: %d now, expected 0", d);
	else
		wl_say("dumpable ok: 0");
	prctl(PR_SET_DUMPABLE, 1);

	capture(&after);
	compare(&before, &after);

	/* functional checks */
	{
		struct utsname u;
		uname(&u);
		if (strncmp(u.release, "2.6.", 4))
			wl_bad("UNAME26 personality not in effect: release %s", u.release);
		else
			wl_say("UNAME26 ok: release %s", u.release);
	}
	{
		unlink("umask-probe");
		int fd = open("umask-probe", O_CREAT | O_WRONLY | O_EXCL, 0666);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb))
			wl_bad("cannot create a file in cwd: %s", strerror(errno));
		else if ((sb.st_mode & 0777) != 0640)
			wl_bad("file created with 0666 got mode %o, expected 640 (umask 027)", sb.st_mode & 0777);
		else
			wl_say("umask functional ok: 0666 -> %o", sb.st_mode & 0777);
		if (fd >= 0)
			close(fd);
		unlink("umask-probe");
	}
	if (fallback[0]) {
		if (chdir(fallback) == 0) {
			rmdir("idsub/inner");
			rmdir("idsub");
			rmdir(fallback);
		}
	}
	free_state(&before);
	free_state(&after);
	wl_verdict();
}
