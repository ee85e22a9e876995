/*
 * Just enough of a C library for pyrunc's freestanding programs
 * (pyrunc-dmz, pyrunc-prewarm and the entry program): raw system calls,
 * the process entry point and a few string functions.
 *
 * Those programs run on every container start; without libc and the
 * dynamic loader each is a few kilobytes that the kernel starts in
 * microseconds. x86_64 and aarch64 only.
 */
#ifndef PYRUNC_NOLIBC_H
#define PYRUNC_NOLIBC_H

#include <stddef.h>

#if defined(__x86_64__)
#define SYS_READ 0
#define SYS_WRITE 1
#define SYS_CLOSE 3
#define SYS_GETPID 39
#define SYS_CLONE 56
#define SYS_FCNTL 72
#define SYS_EXECVE 59
#define SYS_EXIT 60
#define SYS_EXIT_GROUP 231
#define SYS_OPENAT 257
#define SYS_PPOLL 271
#define SYS_PIPE2 293

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile ("syscall"
			  : "=a"(ret)
			  : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			    "r"(r9)
			  : "rcx", "r11", "memory");
	return ret;
}

/* The kernel starts a program with its stack pointer on argc. */
#define NOLIBC_START(fn)						\
	__asm__(".text\n"						\
		".global _start\n"					\
		"_start:\n"						\
		"	mov %rsp, %rdi\n"				\
		"	and $-16, %rsp\n"				\
		"	call " #fn "\n"					\
		"	hlt\n")
#elif defined(__aarch64__)
#define SYS_FCNTL 25
#define SYS_CLOSE 57
#define SYS_PIPE2 59
#define SYS_READ 63
#define SYS_WRITE 64
#define SYS_OPENAT 56
#define SYS_PPOLL 73
#define SYS_EXIT 93
#define SYS_EXIT_GROUP 94
#define SYS_GETPID 172
#define SYS_CLONE 220
#define SYS_EXECVE 221

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile ("svc 0"
			  : "+r"(x0)
			  : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4),
			    "r"(x5)
			  : "memory");
	return x0;
}

#define NOLIBC_START(fn)						\
	__asm__(".text\n"						\
		".global _start\n"					\
		"_start:\n"						\
		"	mov x0, sp\n"					\
		"	bl " #fn "\n")
#else
#error "pyrunc's freestanding programs support x86_64 and aarch64"
#endif

/* The same number on both architectures. */
#define SYS_CLOSE_RANGE 436

#define NL_AT_FDCWD (-100)
#define NL_O_RDONLY 0
#define NL_O_WRONLY 1
#define NL_O_RDWR 2
#define NL_O_CLOEXEC 02000000
#define NL_F_GETFD 1
#define NL_POLLIN 1
#define NL_SIGCHLD 17

static long sys3(long nr, long a, long b, long c)
{
	return sys6(nr, a, b, c, 0, 0, 0);
}

static __attribute__((noreturn)) void nl_exit(int status)
{
	for (;;)
		sys3(SYS_EXIT_GROUP, status, 0, 0);
}

/* fork(): a clone with no flags but the signal for the parent. */
static long nl_fork(void)
{
	return sys6(SYS_CLONE, NL_SIGCHLD, 0, 0, 0, 0, 0);
}

static size_t nl_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static int nl_strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

/* Does s start with prefix? */
static int nl_startswith(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

static char *nl_strchr(const char *s, int c)
{
	for (; *s; s++)
		if (*s == c)
			return (char *)s;
	return NULL;
}

/* Append s at *pos in out (size bytes, always terminated); returns 0,
 * or -1 if it does not fit. */
static int nl_append(char *out, size_t size, size_t *pos, const char *s)
{
	size_t n = nl_strlen(s);

	if (*pos + n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[*pos + i] = s[i];
	*pos += n;
	out[*pos] = '\0';
	return 0;
}

/* Append the decimal digits of value (>= 0). */
static int nl_append_uint(char *out, size_t size, size_t *pos, long value)
{
	char digits[24];
	int n = sizeof(digits) - 1;

	digits[n] = '\0';
	do {
		digits[--n] = (char)('0' + value % 10);
		value /= 10;
	} while (value > 0 && n > 0);
	return nl_append(out, size, pos, digits + n);
}

#endif
