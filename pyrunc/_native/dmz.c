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

#if defined(__x86_64__)
#define SYS_EXECVE 59
#define SYS_EXIT 60

static long sys3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile ("syscall"
			  : "=a"(ret)
			  : "a"(nr), "D"(a), "S"(b), "d"(c)
			  : "rcx", "r11", "memory");
	return ret;
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call dmz_main\n"
	"	hlt\n");
#elif defined(__aarch64__)
#define SYS_EXECVE 221
#define SYS_EXIT 93

static long sys3(long nr, long a, long b, long c)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;

	__asm__ volatile ("svc 0"
			  : "+r"(x0)
			  : "r"(x8), "r"(x1), "r"(x2)
			  : "memory");
	return x0;
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	mov x0, sp\n"
	"	bl dmz_main\n");
#else
#error "pyrunc-dmz supports x86_64 and aarch64"
#endif

__attribute__((used, noreturn)) void dmz_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;

	if (argc >= 3)
		sys3(SYS_EXECVE, (long)argv[1], (long)(argv + 2), (long)envp);
	/* 127 like a shell whose command could not be run. */
	for (;;)
		sys3(SYS_EXIT, 127, 0, 0);
}
