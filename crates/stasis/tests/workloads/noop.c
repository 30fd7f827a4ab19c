/* Minimal workload: checks that a stack and a global value survive. */
#include "wl.h"

static long global_value = 0x5151;

int main(void)
{
	volatile long on_stack = 0x7a7a;

	global_value += 1;
	wl_ready();
	wl_wait();
	CHECK(on_stack == 0x7a7a, "stack value %lx", (long)on_stack);
	CHECK(global_value == 0x5152, "global value %lx", global_value);
	wl_pass();
}
