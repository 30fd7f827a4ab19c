/*
 * N MiB (argv[1], default 64) of private anonymous memory, every page
 * written with its own pattern. On SIGTERM every page is checked.
 */
#include "wl.h"

#include <sys/mman.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64, n = mib << 20;
	unsigned long *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	for (size_t i = 0; i < n / 8; i += 512)
		p[i] = i * 2654435761u + 7;
	wl_ready();
	wl_wait();
	for (size_t i = 0; i < n / 8; i += 512)
		CHECK(p[i] == i * 2654435761u + 7, "page %zu changed", i / 512);
	wl_pass();
}
