/*
 * pyrunc-prewarm: keep the kernel's cgroup attach lock warm until stdin
 * reports hang-up (see prewarm.h and pyrunc/process/prewarm.py).
 *
 * The status is always 0.
 */
#include "prewarm.h"

NOLIBC_START(prewarm_main);

__attribute__((used, noreturn)) void prewarm_main(long *sp)
{
	(void)sp;
	prewarm_run(0);
	nl_exit(0);
}
