/*
 * System V IPC in an IPC namespace of the tree's own: the root unshares
 * one first (it runs as root), then, before READY:
 *
 *   segment A   3 MiB, key KEY_A, mode 0640: the first 2 MiB hold a
 *               pattern, then zeros, then a control page at the end.
 *               Attached by the root; the child inherits that attachment
 *               over fork, makes a read-only page in the middle of it
 *               (mprotect: three VMAs), and attaches A a second time
 *               read-only at the fixed address RO_ADDR.
 *   segment B   64 KiB + 100 bytes with a pattern, attached by the root
 *               before the fork (so by both), then removed (IPC_RMID):
 *               SHM_DEST, no key finds it, still attached in both.
 *   semaphores  a set of 4 (KEY_S) with values 3 0 7 42 (SETALL, so
 *               sem_otime is 0), and a private set of one with value 9
 *               (semop, so sem_otime is not 0).
 *   segment C   one page of code (returns 42), attached by the child with
 *               SHM_EXEC read-only, and by the root, which mprotects it to
 *               PROT_NONE. A is locked (SHM_LOCK).
 *   messages    a queue (KEY_Q, mode 0620, msg_qbytes lowered to QBYTES)
 *               holding five messages of different types and sizes, one
 *               of them empty; a private queue whose msg_qbytes (BIG_QBYTES)
 *               is above the default kernel.msgmnb, which the namespace
 *               raised; and one whose msg_qbytes was lowered below what it
 *               holds.
 *   limits      kernel.msgmnb raised to BIG_QBYTES, kernel.shmmni lowered
 *               to SHMMNI.
 *
 * Ids are made non-trivial (sequence numbers above 0) by creating and
 * removing objects first, and recorded before READY. After SIGTERM each
 * process checks: objects found by key have the same ids, IPC_STAT works,
 * owners/modes/sizes and attach counts are as before, contents, and its
 * mappings (address, protection, /SYSV name). The child also sees a word
 * the root wrote into A after the restore, and the root sees the child's
 * answer (one segment, not copies). The root checks semaphore values (and
 * that semop works), and receives the messages in order.
 */
#include "tree.h"

#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#define MIB (1024 * 1024)
#define A_SIZE (3 * MIB)
#define A_DATA (2 * MIB)
#define A_CTL (A_SIZE - 4096)
#define A_RO_OFF (1 * MIB) /* the child's read-only page */
#define B_SIZE (64 * 1024 + 100)
#define KEY_A 0x5157a001
#define KEY_B 0x5157a002
#define KEY_S 0x5157a003
#define KEY_Q 0x5157a004
#define RO_ADDR ((char *)0x6f0000000000UL)
#define QBYTES 12000
#define NMSG 5
#define BIG_QBYTES 40000
#define SHMMNI 100
#define EXEC_ADDR ((char *)0x6f0000800000UL)

struct ctl {
	uint64_t from_root;
	uint64_t from_child;
};

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static int id_a, id_b, id_c, id_s, id_p, id_q, id_big, id_low;
static char *pa, *pb, *pc;
/* mov eax, 42; ret */
static const unsigned char code[] = { 0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3 };
static unsigned long nattch_a, nattch_b;
static const unsigned short sem_vals[4] = { 3, 0, 7, 42 };
static const struct {
	long mtype;
	size_t len;
} msgs[NMSG] = { { 1, 5 }, { 5, 3000 }, { 2, 1 }, { 1, 0 }, { 7, 8000 } };

struct msgbuf_big {
	long mtype;
	char text[8192];
};

static void msg_text(int i, char *out)
{
	for (size_t j = 0; j < msgs[i].len; j++)
		out[j] = (char)('a' + (i * 7 + j) % 26);
}

/* Creates and removes one object of each kind, so that ids get a
 * sequence number above 0. */
static void burn_ids(void)
{
	for (int i = 0; i < 2; i++) {
		int s = SYS(shmget(IPC_PRIVATE, 4096, 0600));
		int m = SYS(semget(IPC_PRIVATE, 1, 0600));
		int q = SYS(msgget(IPC_PRIVATE, 0600));

		SYS(shmctl(s, IPC_RMID, NULL));
		SYS(semctl(m, 0, IPC_RMID));
		SYS(msgctl(q, IPC_RMID, NULL));
	}
}

static void write_sysctl(const char *name, long v)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%ld\n", v) < 0 || fclose(f))
		wl_fail("write %s: %s", path, strerror(errno));
}

static long read_sysctl(const char *name)
{
	char path[64];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

/* A private queue holding `n` messages of `len` bytes, with msg_qbytes
 * `qbytes` (set before sending if that is more than it has, after if
 * less). */
static int make_queue(unsigned long qbytes, int n, size_t len)
{
	static struct msgbuf_big mb;
	struct msqid_ds mq;
	int q = SYS(msgget(IPC_PRIVATE, 0600));

	mb.mtype = 3;
	memset(mb.text, 'q', len);
	for (int step = 0; step < 2; step++) {
		SYS(msgctl(q, IPC_STAT, &mq));
		if (step == 0 && mq.msg_qbytes < qbytes) {
			mq.msg_qbytes = qbytes;
			SYS(msgctl(q, IPC_SET, &mq));
		}
		if (step == 0)
			for (int i = 0; i < n; i++)
				SYS(msgsnd(q, &mb, len, IPC_NOWAIT));
		if (step == 1 && mq.msg_qbytes > qbytes) {
			mq.msg_qbytes = qbytes;
			SYS(msgctl(q, IPC_SET, &mq));
		}
	}
	return q;
}

static void setup(void)
{
	union semun u;
	struct msqid_ds mq;
	struct msgbuf_big mb;

	burn_ids();
	id_a = SYS(shmget(KEY_A, A_SIZE, IPC_CREAT | IPC_EXCL | 0640));
	pa = shmat(id_a, NULL, 0);
	if (pa == (void *)-1)
		wl_fail("shmat A: %s", strerror(errno));
	tr_fill((uint64_t *)pa, A_DATA / 8, 20, 0);
	id_b = SYS(shmget(KEY_B, B_SIZE, IPC_CREAT | IPC_EXCL | 0600));
	pb = shmat(id_b, NULL, 0);
	if (pb == (void *)-1)
		wl_fail("shmat B: %s", strerror(errno));
	tr_fill((uint64_t *)pb, B_SIZE / 8, 30, 0);

	id_s = SYS(semget(KEY_S, 4, IPC_CREAT | IPC_EXCL | 0600));
	u.array = (unsigned short *)sem_vals;
	SYS(semctl(id_s, 0, SETALL, u));
	id_p = SYS(semget(IPC_PRIVATE, 1, 0640));
	SYS(semop(id_p, &(struct sembuf){ .sem_num = 0, .sem_op = 9 }, 1));

	id_c = SYS(shmget(IPC_PRIVATE, 4096, 0700));
	pc = shmat(id_c, NULL, 0);
	if (pc == (void *)-1)
		wl_fail("shmat C: %s", strerror(errno));
	memcpy(pc, code, sizeof(code));
	SYS(mprotect(pc, 4096, PROT_NONE));
	SYS(shmctl(id_a, SHM_LOCK, NULL));

	write_sysctl("msgmnb", BIG_QBYTES);
	write_sysctl("shmmni", SHMMNI);
	id_big = make_queue(BIG_QBYTES, 4, 8000);
	id_low = make_queue(100, 3, 1000);

	id_q = SYS(msgget(KEY_Q, IPC_CREAT | IPC_EXCL | 0620));
	SYS(msgctl(id_q, IPC_STAT, &mq));
	mq.msg_qbytes = QBYTES;
	SYS(msgctl(id_q, IPC_SET, &mq));
	for (int i = 0; i < NMSG; i++) {
		mb.mtype = msgs[i].mtype;
		msg_text(i, mb.text);
		SYS(msgsnd(id_q, &mb, msgs[i].len, IPC_NOWAIT));
	}
}

/* The /proc/self/maps line of the VMA containing addr, in `line`. */
static int maps_line(const void *addr, char *line, size_t len)
{
	static char buf[1 << 16];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;
	char *l = buf;

	if (fd < 0)
		return 0;
	while ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n] = 0;
	while (*l) {
		unsigned long s, e;
		char *nl = strchr(l, '\n');

		if (nl)
			*nl = 0;
		if (sscanf(l, "%lx-%lx", &s, &e) == 2 && (uintptr_t)addr >= s &&
		    (uintptr_t)addr < e) {
			snprintf(line, len, "%.400s", l);
			return 1;
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	return 0;
}

/* The VMA at addr has permissions `perms` and names segment `key`. */
static void check_map(const void *addr, const char *perms, int key)
{
	char line[512], name[32];

	snprintf(name, sizeof(name), "/SYSV%08x (deleted)", key);
	if (!maps_line(addr, line, sizeof(line))) {
		tr_bad("nothing mapped at %p", addr);
		return;
	}
	TCHECK(strstr(line, name) && strncmp(strchr(line, ' ') + 1, perms, 4) == 0,
	       "mapping at %p is \"%s\", want %s %s", addr, line, perms, name);
}

/* Ids by key and IPC_STAT of every object, as every process sees them. */
static void check_ids(void)
{
	struct shmid_ds ds;
	struct semid_ds sd;
	struct msqid_ds mq;
	union semun u;
	int r;

	TCHECK((r = shmget(KEY_A, 0, 0)) == id_a, "shmget(A) = %d (%s), want %d", r,
	       strerror(errno), id_a);
	TCHECK(shmctl(id_a, IPC_STAT, &ds) == 0, "IPC_STAT A: %s", strerror(errno));
	TCHECK(ds.shm_segsz == A_SIZE && (ds.shm_perm.mode & 0777) == 0640 &&
		       !(ds.shm_perm.mode & SHM_DEST) && (ds.shm_perm.mode & SHM_LOCKED),
	       "A: size %zu mode %o, want locked", ds.shm_segsz, ds.shm_perm.mode);
	TCHECK(shmctl(id_c, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & 0777) == 0700,
	       "IPC_STAT C: %s", strerror(errno));
	TCHECK(shmget(KEY_B, 0, 0) < 0 && errno == ENOENT, "removed segment B found by key");
	TCHECK(shmctl(id_b, IPC_STAT, &ds) == 0, "IPC_STAT B: %s", strerror(errno));
	TCHECK(ds.shm_segsz == B_SIZE && (ds.shm_perm.mode & SHM_DEST),
	       "B: size %zu mode %o, want %d and SHM_DEST", ds.shm_segsz, ds.shm_perm.mode,
	       B_SIZE);
	TCHECK((r = semget(KEY_S, 0, 0)) == id_s, "semget(S) = %d (%s), want %d", r,
	       strerror(errno), id_s);
	u.buf = &sd;
	TCHECK(semctl(id_s, 0, IPC_STAT, u) == 0 && sd.sem_nsems == 4 &&
		       (sd.sem_perm.mode & 0777) == 0600,
	       "IPC_STAT S: %s, %lu semaphores", strerror(errno), sd.sem_nsems);
	TCHECK(semctl(id_p, 0, IPC_STAT, u) == 0 && sd.sem_perm.__key == IPC_PRIVATE &&
		       (sd.sem_perm.mode & 0777) == 0640,
	       "IPC_STAT of the private set: %s", strerror(errno));
	TCHECK((r = msgget(KEY_Q, 0)) == id_q, "msgget(Q) = %d (%s), want %d", r,
	       strerror(errno), id_q);
	TCHECK(msgctl(id_q, IPC_STAT, &mq) == 0, "IPC_STAT Q: %s", strerror(errno));
	TCHECK(mq.msg_qbytes == QBYTES && (mq.msg_perm.mode & 0777) == 0620,
	       "Q: qbytes %lu mode %o", mq.msg_qbytes, mq.msg_perm.mode);
	TCHECK(msgctl(id_big, IPC_STAT, &mq) == 0 && mq.msg_qbytes == BIG_QBYTES &&
		       mq.msg_qnum == 4,
	       "big queue: %s, qbytes %lu, %lu messages", strerror(errno), mq.msg_qbytes,
	       mq.msg_qnum);
	TCHECK(msgctl(id_low, IPC_STAT, &mq) == 0 && mq.msg_qbytes == 100 && mq.msg_qnum == 3 &&
		       mq.__msg_cbytes == 3000,
	       "lowered queue: %s, qbytes %lu, %lu messages, %lu bytes", strerror(errno),
	       mq.msg_qbytes, mq.msg_qnum, mq.__msg_cbytes);
	TCHECK(read_sysctl("msgmnb") == BIG_QBYTES && read_sysctl("shmmni") == SHMMNI,
	       "kernel.msgmnb %ld, kernel.shmmni %ld, want %d and %d", read_sysctl("msgmnb"),
	       read_sysctl("shmmni"), BIG_QBYTES, SHMMNI);
}

static void check_contents(const char *a)
{
	long bad = tr_check_fill((const uint64_t *)a, A_DATA / 8, 20, 0);

	TCHECK(bad < 0, "A word %ld differs", bad);
	for (size_t off = A_DATA; off < A_CTL; off += 8)
		if (*(const uint64_t *)(a + off)) {
			tr_bad("A at %#zx is not zero", off);
			break;
		}
	bad = tr_check_fill((const uint64_t *)pb, B_SIZE / 8, 30, 0);
	TCHECK(bad < 0, "B word %ld differs", bad);
}

static void child(void)
{
	struct ctl *c = (struct ctl *)(pa + A_CTL);
	char *ro = shmat(id_a, RO_ADDR, SHM_RDONLY);
	char *x = shmat(id_c, EXEC_ADDR, SHM_RDONLY | SHM_EXEC);

	tr_set_who("child");
	if (ro != RO_ADDR || x != EXEC_ADDR) {
		tr_bad("shmat A read-only at %p: got %p, C exec at %p: got %p (%s)", RO_ADDR, ro,
		       EXEC_ADDR, x, strerror(errno));
		tr_exit();
	}
	if (mprotect(pa + A_RO_OFF, 4096, PROT_READ))
		tr_bad("mprotect: %s", strerror(errno));
	tr_sync_send(1);
	tr_wait_term();
	check_ids();
	check_contents(pa);
	check_contents(ro);
	check_map(pa, "rw-s", KEY_A);
	check_map(pa + A_RO_OFF, "r--s", KEY_A);
	check_map(pa + A_RO_OFF + 4096, "rw-s", KEY_A);
	check_map(RO_ADDR, "r--s", KEY_A);
	check_map(pb, "rw-s", KEY_B);
	check_map(x, "r-xs", 0);
	TCHECK(((int (*)(void))x)() == 42, "the code in segment C does not return 42");
	/* The root wrote this after the restore, before it woke us. */
	TCHECK(__atomic_load_n(&c->from_root, __ATOMIC_SEQ_CST) == 0xfeed,
	       "the root's word in A is %#lx: not one shared segment",
	       (unsigned long)c->from_root);
	TCHECK(((struct ctl *)(ro + A_CTL))->from_root == 0xfeed,
	       "the read-only attachment does not see the root's word");
	__atomic_store_n(&c->from_child, 0xbeef, __ATOMIC_SEQ_CST);
	tr_exit();
}

static void check_sems(void)
{
	unsigned short v[4] = { 0 };
	union semun u = { .array = v };
	struct sembuf op = { .sem_num = 2, .sem_op = -7, .sem_flg = IPC_NOWAIT };
	struct semid_ds sd;
	union semun st = { .buf = &sd };

	TCHECK(semctl(id_s, 0, IPC_STAT, st) == 0 && sd.sem_otime == 0,
	       "set S was never operated on, but its sem_otime is %ld", (long)sd.sem_otime);
	TCHECK(semctl(id_p, 0, IPC_STAT, st) == 0 && sd.sem_otime != 0,
	       "the private set was operated on, but its sem_otime is 0");

	TCHECK(semctl(id_s, 0, GETALL, u) == 0, "GETALL: %s", strerror(errno));
	TCHECK(memcmp(v, sem_vals, sizeof(v)) == 0, "semaphores %u %u %u %u, want 3 0 7 42",
	       v[0], v[1], v[2], v[3]);
	TCHECK(semctl(id_p, 0, GETVAL) == 9, "private semaphore %d, want 9",
	       semctl(id_p, 0, GETVAL));
	TCHECK(semop(id_s, &op, 1) == 0, "semop -7 on semaphore 2: %s", strerror(errno));
	TCHECK(semctl(id_s, 2, GETVAL) == 0, "semaphore 2 after semop: %d",
	       semctl(id_s, 2, GETVAL));
}

static void check_msgs(void)
{
	static struct msgbuf_big mb;
	static char want[8192];
	struct msqid_ds mq;

	TCHECK(msgctl(id_q, IPC_STAT, &mq) == 0 && mq.msg_qnum == NMSG,
	       "queue holds %lu messages, want %d", mq.msg_qnum, NMSG);
	for (int i = 0; i < NMSG; i++) {
		ssize_t n = msgrcv(id_q, &mb, sizeof(mb.text), 0, IPC_NOWAIT);

		msg_text(i, want);
		if (n < 0) {
			tr_bad("message %d: %s", i, strerror(errno));
			return;
		}
		TCHECK(mb.mtype == msgs[i].mtype && (size_t)n == msgs[i].len &&
			       memcmp(mb.text, want, n) == 0,
		       "message %d: type %ld, %zd bytes; want type %ld, %zu bytes", i, mb.mtype,
		       n, msgs[i].mtype, msgs[i].len);
	}
	TCHECK(msgrcv(id_q, &mb, sizeof(mb.text), 0, IPC_NOWAIT) < 0 && errno == ENOMSG,
	       "more messages than were sent");
}

int main(void)
{
	struct ctl *c;
	struct shmid_ds ds;
	pid_t kid;

	if (unshare(CLONE_NEWIPC))
		wl_fail("unshare(CLONE_NEWIPC): %s (needs root)", strerror(errno));
	tr_block_term();
	tr_sync_open();
	setup();
	c = (struct ctl *)(pa + A_CTL);
	if ((kid = tr_fork()) == 0)
		child();
	tr_sync_recv(1, NULL);
	/* Removed while both have it attached. */
	SYS(shmctl(id_b, IPC_RMID, NULL));
	SYS(shmctl(id_a, IPC_STAT, &ds));
	nattch_a = ds.shm_nattch;
	SYS(shmctl(id_b, IPC_STAT, &ds));
	nattch_b = ds.shm_nattch;
	wl_note("ids: A %d B %d S %d P %d Q %d; A attached %lu times, B %lu", id_a, id_b, id_s,
		id_p, id_q, nattch_a, nattch_b);
	wl_ready_sigwait(NULL, NULL);

	check_ids();
	TCHECK(shmctl(id_a, IPC_STAT, &ds) == 0 && ds.shm_nattch == nattch_a,
	       "A attached %lu times, want %lu", ds.shm_nattch, nattch_a);
	TCHECK(shmctl(id_b, IPC_STAT, &ds) == 0 && ds.shm_nattch == nattch_b,
	       "B attached %lu times, want %lu", ds.shm_nattch, nattch_b);
	check_contents(pa);
	check_map(pa, "rw-s", KEY_A);
	check_map(pb, "rw-s", KEY_B);
	check_map(pc, "---s", 0);
	check_sems();
	check_msgs();
	__atomic_store_n(&c->from_root, 0xfeed, __ATOMIC_SEQ_CST);
	tr_stop(kid, "child", 0);
	TCHECK(__atomic_load_n(&c->from_child, __ATOMIC_SEQ_CST) == 0xbeef,
	       "the child's word in A is %#lx: not one shared segment",
	       (unsigned long)c->from_child);
	tr_check_no_children();
	wl_verdict();
}
