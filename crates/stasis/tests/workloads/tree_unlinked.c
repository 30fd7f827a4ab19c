/*
 * Memory objects without a name on disk, shared by a parent and its child:
 *  - a memfd ("stasis-wl", 1 MiB) mapped MAP_SHARED, its fd closed;
 *  - an unlinked file in the workload's directory (64 KiB + 100 bytes, so
 *    its last page is partial) mapped MAP_SHARED, its fd closed;
 *  - a second unlinked file mapped MAP_PRIVATE, which the child modifies
 *    (copy-on-write: the parent must not see the change).
 * All contents are written before READY. Verified after SIGTERM, in turns
 * through the memfd's control word: each side sees the contents; the child
 * writes new values into both shared objects and the parent must see them
 * (one object, not two copies); the private mapping keeps each side's own
 * view; /proc/self/maps still names "/memfd:stasis-wl (deleted)" and the
 * unlinked file; the bytes past the file's end in its last page are zero.
 */
#include "tree.h"

#include <sys/mman.h>
#include <sys/stat.h>

#define MFD_SIZE (1024 * 1024)
#define FILE_SIZE (64 * 1024 + 100)
#define PRIV_SIZE (16 * 1024)

static volatile uint32_t *mfd, *shf;
static volatile uint8_t *priv;

static void *map_unlinked(const char *name, size_t size, int flags, uint8_t seed)
{
	int fd = SYS(open(name, O_RDWR | O_CREAT | O_TRUNC, 0640));
	uint8_t *buf = malloc(size);
	void *p;

	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(seed + i * 7);
	if (write(fd, buf, size) != (ssize_t)size)
		wl_fail("write %s: %s", name, strerror(errno));
	free(buf);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		wl_fail("mmap %s: %s", name, strerror(errno));
	SYS(unlink(name));
	close(fd);
	return p;
}

static int wait_word(volatile uint32_t *w, uint32_t v)
{
	for (int i = 0; i < 10000; i++) {
		if (__atomic_load_n(w, __ATOMIC_SEQ_CST) == v)
			return 1;
		wl_sleep_ms(1);
	}
	tr_bad("timed out waiting for control word %u", v);
	return 0;
}

static void check_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int memfd = 0, file = 0;

	while (f && fgets(line, sizeof(line), f)) {
		memfd += strstr(line, "/memfd:stasis-wl (deleted)") != NULL;
		file += strstr(line, "/shared.bin (deleted)") != NULL;
	}
	if (f)
		fclose(f);
	TCHECK(memfd == 1, "memfd mapping named in maps %d times", memfd);
	TCHECK(file == 1, "unlinked file mapping named in maps %d times", file);
}

static void check_private(uint8_t seed, uint8_t first)
{
	TCHECK(priv[0] == first, "private mapping byte 0 is %u, want %u", priv[0], first);
	for (size_t i = 1; i < PRIV_SIZE; i++)
		if (priv[i] != (uint8_t)(seed + i * 7)) {
			tr_bad("private mapping byte %zu is %u", i, priv[i]);
			return;
		}
}

int main(void)
{
	int mfd_fd;
	pid_t child;

	tr_block_term();
	tr_sync_open();
	mfd_fd = SYS(memfd_create("stasis-wl", MFD_CLOEXEC));
	SYS(ftruncate(mfd_fd, MFD_SIZE));
	mfd = mmap(NULL, MFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd_fd, 0);
	if (mfd == MAP_FAILED)
		wl_fail("mmap memfd: %s", strerror(errno));
	close(mfd_fd);
	for (size_t i = 1; i < MFD_SIZE / 4; i++)
		mfd[i] = (uint32_t)(i * 2654435761u);
	shf = map_unlinked("shared.bin", FILE_SIZE, MAP_SHARED, 3);
	priv = map_unlinked("private.bin", PRIV_SIZE, MAP_PRIVATE, 9);

	if ((child = tr_fork()) == 0) {
		tr_set_who("child");
		priv[0] = 200; /* copy-on-write: the parent keeps its byte */
		tr_sync_send(1);
		tr_wait_term();
		check_maps();
		check_private(9, 200);
		wait_word(&mfd[0], 1);
		for (size_t i = 1; i < MFD_SIZE / 4; i++)
			mfd[i] = ~(uint32_t)(i * 2654435761u);
		shf[5] = 0xabcdef01;
		__atomic_store_n(&mfd[0], 2, __ATOMIC_SEQ_CST);
		tr_exit();
	}
	tr_sync_recv(1, NULL);
	wl_ready_sigwait(NULL, NULL);

	kill(child, SIGTERM);
	check_maps();
	check_private(9, 9);
	for (size_t i = 1; i < MFD_SIZE / 4; i++)
		if (mfd[i] != (uint32_t)(i * 2654435761u)) {
			wl_bad("memfd word %zu is %#x before the child's turn", i, mfd[i]);
			break;
		}
	for (size_t i = 0; i < FILE_SIZE; i++)
		if (((volatile uint8_t *)shf)[i] != (uint8_t)(3 + i * 7)) {
			wl_bad("unlinked file byte %zu is %u", i, ((volatile uint8_t *)shf)[i]);
			break;
		}
	for (size_t i = FILE_SIZE; i < 69632; i++)
		if (((volatile uint8_t *)shf)[i]) {
			wl_bad("byte %zu past the file's end is not zero", i);
			break;
		}
	__atomic_store_n(&mfd[0], 1, __ATOMIC_SEQ_CST);
	if (wait_word(&mfd[0], 2)) {
		for (size_t i = 1; i < MFD_SIZE / 4; i++)
			if (mfd[i] != ~(uint32_t)(i * 2654435761u)) {
				wl_bad("memfd word %zu: the child's write is not seen (%#x)", i, mfd[i]);
				break;
			}
		TCHECK(shf[5] == 0xabcdef01, "unlinked file: the child's write is not seen (%#x)", shf[5]);
	}
	tr_reap(child, "child", 0);
	tr_check_no_children();
	wl_verdict();
}
