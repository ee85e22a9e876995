/*
 * pyrunc-dmz: the last program the runtime executes in a container.
 *
 * The container's process execs the user's program from this tiny
 * trampoline, itself executed from a sealed memfd, so that while the
 * kernel starts the user's program /proc/self/exe names that sealed,
 * unwritable copy and never the host's Python interpreter
 * (CVE-2019-5736). Called as: pyrunc-dmz PATH ARGV0 ARGV1 ...
 *
 * No libc: a freestanding x86_64 or aarch64 program of a few hundred
 * bytes, so that copying it into the memfd costs nothing.
 */

#include "nolibc.h"

NOLIBC_START(dmz_main);

__attribute__((used, noreturn)) void dmz_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;

	if (argc >= 3)
		sys3(SYS_EXECVE, (long)argv[1], (long)(argv + 2), (long)envp);
	/* 127 like a shell whose command could not be run. */
	nl_exit(127);
}
