/*
 * Eight worker threads, each with
 *  - its own counter, incremented every ~1 ms (never goes backwards, keeps
 *    increasing after restore, not reset);
 *  - its own name (pthread_setname_np "wl-tN");
 *  - a __thread value and index (checked every round: FS base intact);
 *  - its own signal mask: SIGTERM plus one distinct real-time signal;
 *  - vector registers held live across the checkpoint: an assembly loop
 *    loads known values into xmm8..15 (ymm8..15 with AVX; plus zmm16..23
 *    and k1..k3 with AVX-512), then sleeps with raw nanosleep syscalls and
 *    re-checks the registers after every one, so a checkpoint almost always
 *    lands while they are live.
 * On SIGTERM the main thread checks the counters moved past their READY
 * values and still move, the names and masks (per task, in /proc), and any
 * failure a worker recorded, then stops and joins the workers.
 *
 * With --progress the main thread prints "counters c0 .. c7" every 200 ms
 * instead of sleeping in pause(), so a test can watch the counters from
 * outside (they must continue from their dump-time values after restore).
 */
#include "wl.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define NTHREADS 8
#define NQWORDS 99 /* 8 x 32-byte ymm slots + 8 x 64-byte zmm + 3 k regs */

struct vec_loop_args {
	const uint64_t *expected; /* 0 */
	uint64_t *scratch;	  /* 8 */
	volatile int *stop;	  /* 16 */
	volatile uint64_t *iters; /* 24 */
	struct timespec *ts;	  /* 32 */
	long level;		  /* 40: 0 SSE, 1 AVX, 2 AVX-512 */
	long max;		  /* 48: rounds before returning to C */
};

/* Returns 0 after `max` rounds or on stop, else 1 + index of the bad qword. */
long vec_loop(struct vec_loop_args *a);

__asm__(".text\n"
	".globl vec_loop\n"
	".type vec_loop,@function\n"
	"vec_loop:\n"
	"	push %rbx\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n	push %rbp\n"
	"	mov %rdi, %rbp\n"
	"	mov 0(%rbp), %r12\n"
	"	mov 8(%rbp), %r13\n"
	"	mov 40(%rbp), %rbx\n"
	"	mov 48(%rbp), %r14\n"
	"	cmp $1, %rbx\n"
	"	jae 20f\n"
	"	movdqu 0(%r12), %xmm8\n	movdqu 32(%r12), %xmm9\n"
	"	movdqu 64(%r12), %xmm10\n	movdqu 96(%r12), %xmm11\n"
	"	movdqu 128(%r12), %xmm12\n	movdqu 160(%r12), %xmm13\n"
	"	movdqu 192(%r12), %xmm14\n	movdqu 224(%r12), %xmm15\n"
	"	jmp 1f\n"
	"20:\n"
	"	vmovdqu 0(%r12), %ymm8\n	vmovdqu 32(%r12), %ymm9\n"
	"	vmovdqu 64(%r12), %ymm10\n	vmovdqu 96(%r12), %ymm11\n"
	"	vmovdqu 128(%r12), %ymm12\n	vmovdqu 160(%r12), %ymm13\n"
	"	vmovdqu 192(%r12), %ymm14\n	vmovdqu 224(%r12), %ymm15\n"
	"	cmp $2, %rbx\n"
	"	jb 1f\n"
	"	vmovdqu64 256(%r12), %zmm16\n	vmovdqu64 320(%r12), %zmm17\n"
	"	vmovdqu64 384(%r12), %zmm18\n	vmovdqu64 448(%r12), %zmm19\n"
	"	vmovdqu64 512(%r12), %zmm20\n	vmovdqu64 576(%r12), %zmm21\n"
	"	vmovdqu64 640(%r12), %zmm22\n	vmovdqu64 704(%r12), %zmm23\n"
	"	kmovw 768(%r12), %k1\n	kmovw 776(%r12), %k2\n	kmovw 784(%r12), %k3\n"
	"1:\n"
	"	cmp $1, %rbx\n"
	"	jae 21f\n"
	"	movdqu %xmm8, 0(%r13)\n	movdqu %xmm9, 32(%r13)\n"
	"	movdqu %xmm10, 64(%r13)\n	movdqu %xmm11, 96(%r13)\n"
	"	movdqu %xmm12, 128(%r13)\n	movdqu %xmm13, 160(%r13)\n"
	"	movdqu %xmm14, 192(%r13)\n	movdqu %xmm15, 224(%r13)\n"
	"	jmp 22f\n"
	"21:\n"
	"	vmovdqu %ymm8, 0(%r13)\n	vmovdqu %ymm9, 32(%r13)\n"
	"	vmovdqu %ymm10, 64(%r13)\n	vmovdqu %ymm11, 96(%r13)\n"
	"	vmovdqu %ymm12, 128(%r13)\n	vmovdqu %ymm13, 160(%r13)\n"
	"	vmovdqu %ymm14, 192(%r13)\n	vmovdqu %ymm15, 224(%r13)\n"
	"	cmp $2, %rbx\n"
	"	jb 22f\n"
	"	vmovdqu64 %zmm16, 256(%r13)\n	vmovdqu64 %zmm17, 320(%r13)\n"
	"	vmovdqu64 %zmm18, 384(%r13)\n	vmovdqu64 %zmm19, 448(%r13)\n"
	"	vmovdqu64 %zmm20, 512(%r13)\n	vmovdqu64 %zmm21, 576(%r13)\n"
	"	vmovdqu64 %zmm22, 640(%r13)\n	vmovdqu64 %zmm23, 704(%r13)\n"
	"	kmovw %k1, 768(%r13)\n	kmovw %k2, 776(%r13)\n	kmovw %k3, 784(%r13)\n"
	"22:\n"
	"	xor %ecx, %ecx\n"
	"2:\n"
	"	mov (%r12,%rcx,8), %rax\n"
	"	cmp (%r13,%rcx,8), %rax\n"
	"	jne 8f\n"
	"	inc %rcx\n"
	"	cmp $99, %rcx\n"
	"	jb 2b\n"
	"	mov $35, %eax\n" /* nanosleep(ts, NULL) */
	"	mov 32(%rbp), %rdi\n"
	"	xor %esi, %esi\n"
	"	syscall\n"
	"	mov 24(%rbp), %rax\n"
	"	incq (%rax)\n"
	"	mov 16(%rbp), %rax\n"
	"	cmpl $0, (%rax)\n"
	"	jne 7f\n"
	"	dec %r14\n"
	"	jnz 1b\n"
	"7:\n"
	"	xor %eax, %eax\n"
	"	jmp 9f\n"
	"8:\n"
	"	lea 1(%rcx), %rax\n"
	"9:\n"
	"	cmp $1, %rbx\n"
	"	jb 10f\n"
	"	vzeroupper\n"
	"10:\n"
	"	pop %rbp\n	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbx\n"
	"	ret\n"
	".size vec_loop, .-vec_loop\n");

static volatile uint64_t counters[NTHREADS];
static uint64_t counters_at_ready[NTHREADS];
static volatile int stop;
static volatile int started[NTHREADS];
static pthread_t tids[NTHREADS];
static uint64_t expected[NTHREADS][NQWORDS];
static uint64_t scratch[NTHREADS][NQWORDS];
static long level;

static __thread uint64_t tls_magic;
static __thread int tls_index = -1;

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[512];
static volatile int failed;

static void record_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void record_fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	if (!failed) {
		va_start(ap, fmt);
		vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
		va_end(ap);
		failed = 1;
	}
	pthread_mutex_unlock(&fail_lock);
}

static int own_sig(int i)
{
	return SIGRTMIN + 2 + i;
}

static uint64_t magic(int i)
{
	return 0x544c530000000000ULL ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL);
}

/* Values for the vector registers; zero where the level has no register bits. */
static void init_expected(int t)
{
	memset(expected[t], 0, sizeof(expected[t]));
	memset(scratch[t], 0, sizeof(scratch[t]));
	for (size_t q = 0; q < NQWORDS; q++) {
		uint64_t v = ((uint64_t)(t + 1) << 56) ^ (q * 0xC2B2AE3D27D4EB4FULL) ^ 0x5ee5;
		/* qwords 0..31: ymm8..15 (SSE: low 16 bytes only); 32..95: zmm16..23; 96..98: k1..3 */
		int used = q < 32 ? level >= 1 || q % 4 < 2 : level == 2;

		if (!used)
			continue;
		if (q >= 96)
			v &= 0xffff; /* kmovw moves 16 bits */
		expected[t][q] = v;
	}
}

static void *worker(void *arg)
{
	int i = (int)(long)arg;
	char name[16];
	sigset_t m, cur;
	struct timespec ts = { 0, 1000000 };
	uint64_t prev = 0;

	tls_magic = magic(i);
	tls_index = i;
	snprintf(name, sizeof(name), "wl-t%d", i);
	if (pthread_setname_np(pthread_self(), name))
		record_fail("pthread_setname_np %s", name);
	sigemptyset(&m);
	sigaddset(&m, SIGTERM);
	sigaddset(&m, own_sig(i));
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	started[i] = 1;

	while (!stop && !failed) {
		struct vec_loop_args a = { expected[i], scratch[i], &stop, &counters[i], &ts,
					   level, 50 };
		long bad = vec_loop(&a);

		if (bad)
			record_fail("thread %d: vector register qword %ld is %llx, want %llx "
				    "(level %ld)",
				    i, bad - 1, (unsigned long long)scratch[i][bad - 1],
				    (unsigned long long)expected[i][bad - 1], level);
		if (tls_magic != magic(i) || tls_index != i)
			record_fail("thread %d: TLS is %llx/%d", i,
				    (unsigned long long)tls_magic, tls_index);
		pthread_sigmask(SIG_SETMASK, NULL, &cur);
		if (!sigismember(&cur, SIGTERM) || !sigismember(&cur, own_sig(i)))
			record_fail("thread %d: lost a blocked signal", i);
		for (int j = 0; j < NTHREADS; j++)
			if (j != i && sigismember(&cur, own_sig(j)))
				record_fail("thread %d: signal %d blocked", i, own_sig(j));
		if (counters[i] < prev)
			record_fail("thread %d: counter went back %llu -> %llu", i,
				    (unsigned long long)prev, (unsigned long long)counters[i]);
		prev = counters[i];
	}
	return NULL;
}

/* Checks comm and SigBlk of every task in /proc/self/task. */
static void check_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int seen[NTHREADS] = { 0 }, ntasks = 0;
	char path[300], buf[4096];

	CHECK(d, "opendir /proc/self/task: %s", strerror(errno));
	while ((e = readdir(d))) {
		int fd, idx;
		ssize_t n;
		char *p;
		unsigned long long blk, want;

		if (e->d_name[0] == '.')
			continue;
		ntasks++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		fd = SYS(open(path, O_RDONLY));
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		CHECK(n > 0, "read %s", path);
		buf[n] = 0;
		if (sscanf(buf, "wl-t%d", &idx) != 1) {
			CHECK(atoi(e->d_name) == getpid(), "task %s has comm %s", e->d_name, buf);
			continue;
		}
		CHECK(idx >= 0 && idx < NTHREADS && !seen[idx], "task %s comm %s", e->d_name, buf);
		seen[idx] = 1;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		fd = SYS(open(path, O_RDONLY));
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		CHECK(n > 0, "read %s", path);
		buf[n] = 0;
		p = strstr(buf, "SigBlk:");
		CHECK(p && sscanf(p + 7, "%llx", &blk) == 1, "no SigBlk in %s", path);
		want = (1ULL << (SIGTERM - 1)) | (1ULL << (own_sig(idx) - 1));
		CHECK(blk == want, "thread %d SigBlk %llx, want %llx", idx, blk, want);
	}
	closedir(d);
	CHECK(ntasks == NTHREADS + 1, "%d tasks, want %d", ntasks, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++)
		CHECK(seen[i], "no task named wl-t%d", i);
}

/* With --progress: print all counters every 200 ms until SIGTERM. */
static void progress_loop(void)
{
	while (!wl_term) {
		printf("counters");
		for (int i = 0; i < NTHREADS; i++)
			printf(" %llu", (unsigned long long)counters[i]);
		printf("\n");
		fflush(stdout);
		wl_sleep_ms(200);
	}
}

int main(int argc, char **argv)
{
	sigset_t all, none;
	int progress = argc > 1 && strcmp(argv[1], "--progress") == 0;

	__builtin_cpu_init();
	level = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx") ? 1 : 0;
	sigemptyset(&all);
	sigaddset(&all, SIGTERM);
	sigemptyset(&none);
	/* Workers start with SIGTERM blocked: only main may take it. */
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (int i = 0; i < NTHREADS; i++) {
		init_expected(i);
		if (pthread_create(&tids[i], NULL, worker, (void *)(long)i))
			wl_fail("pthread_create");
	}
	for (int i = 0; i < NTHREADS; i++)
		while (!started[i] || counters[i] < 2)
			wl_sleep_ms(1);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	CHECK(!failed, "%s", fail_msg);
	check_tasks();

	wl_ready();
	for (int i = 0; i < NTHREADS; i++)
		counters_at_ready[i] = counters[i];
	if (progress)
		progress_loop();
	else
		wl_wait();

	CHECK(!failed, "%s", fail_msg);
	{
		uint64_t a[NTHREADS];

		for (int i = 0; i < NTHREADS; i++) {
			a[i] = counters[i];
			CHECK(a[i] >= counters_at_ready[i], "thread %d counter %llu < %llu at READY",
			      i, (unsigned long long)a[i],
			      (unsigned long long)counters_at_ready[i]);
		}
		wl_sleep_ms(300);
		CHECK(!failed, "%s", fail_msg);
		for (int i = 0; i < NTHREADS; i++)
			CHECK(counters[i] > a[i], "thread %d counter stuck at %llu", i,
			      (unsigned long long)a[i]);
	}
	check_tasks();
	CHECK(!failed, "%s", fail_msg);
	stop = 1;
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_join(tids[i], NULL) == 0, "pthread_join %d", i);
	CHECK(!failed, "%s", fail_msg);
	printf("note: vector level %ld\n", level);
	wl_pass();
}
