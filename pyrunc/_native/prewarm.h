/*
 * Warming the kernel's cgroup attach lock: shared by pyrunc-prewarm
 * (prewarm.c) and pyrunc's entry program (entry.c).
 *
 * Every write to a cgroup.procs file, v1 or v2, takes the kernel's global
 * cgroup threadgroup lock for writing. Once nobody has taken it for one
 * or two RCU grace periods (10-20 ms on this kind of host), the next
 * writer first waits for a whole grace period: 5-25 ms on 2 CPUs. The
 * runtime's attach of the container's first process is such a write.
 *
 * So a helper writes "0" (itself) to the cgroup.procs of the cgroup it
 * is already in: a move that changes nothing but pays that wait while
 * the runtime is still starting. It writes again every few milliseconds,
 * so that the lock is still warm when the runtime's own attach comes,
 * and stops as soon as stop_fd reports anything (the runtime closed the
 * other end of the pipe, or exited), after a second at most. Every
 * failure is silent: without the helper the attach pays the wait itself.
 */
#ifndef PYRUNC_PREWARM_H
#define PYRUNC_PREWARM_H

#include "nolibc.h"

/* Under the 10-20 ms after which the lock goes cold again. */
#define PREWARM_INTERVAL_NS 4000000L
#define PREWARM_ROUNDS 250

struct nl_pollfd {
	int fd;
	short events;
	short revents;
};

struct nl_timespec {
	long sec;
	long nsec;
};

/* Does the cgroup.procs file open at fd list this process? */
static int prewarm_lists_me(int fd)
{
	static char buf[16384];
	long me = sys3(SYS_GETPID, 0, 0, 0);
	long pid = 0, n, i;

	while ((n = sys3(SYS_READ, fd, (long)buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid * 10 + (buf[i] - '0');
				continue;
			}
			if (pid == me)
				return 1;
			pid = 0;
		}
	}
	return pid == me;
}

/* Open a + b + c + "/cgroup.procs" for writing if this process is in
 * that cgroup. Under a cgroup namespace /proc/self/cgroup names paths
 * from the namespace's root, which need not be the root of the mount
 * under /sys/fs/cgroup: "0" written there would move the helper. */
static int prewarm_open_procs(const char *a, const char *b, const char *c)
{
	char path[4096];
	size_t pos = 0;
	int fd, listed;

	path[0] = '\0';
	if (nl_append(path, sizeof(path), &pos, a) < 0 ||
	    nl_append(path, sizeof(path), &pos, b) < 0 ||
	    nl_append(path, sizeof(path), &pos, c) < 0 ||
	    nl_append(path, sizeof(path), &pos, "/cgroup.procs") < 0)
		return -1;
	fd = (int)sys3(SYS_OPENAT, NL_AT_FDCWD, (long)path,
		       NL_O_RDONLY | NL_O_CLOEXEC);
	if (fd < 0)
		return -1;
	listed = prewarm_lists_me(fd);
	sys3(SYS_CLOSE, fd, 0, 0);
	if (!listed)
		return -1;
	return (int)sys3(SYS_OPENAT, NL_AT_FDCWD, (long)path,
			 NL_O_WRONLY | NL_O_CLOEXEC);
}

/* The cgroup.procs of the first hierarchy listed in /proc/self/cgroup
 * that can be opened: the lock is global, any one will do. */
static int prewarm_open(void)
{
	static char buf[8192];
	char *line, *next;
	long n;
	int fd = (int)sys3(SYS_OPENAT, NL_AT_FDCWD, (long)"/proc/self/cgroup",
			   NL_O_RDONLY | NL_O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = sys3(SYS_READ, fd, (long)buf, sizeof(buf) - 1);
	sys3(SYS_CLOSE, fd, 0, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* Lines of "ID:CONTROLLERS:PATH". */
	for (line = buf; *line; line = next) {
		char *ctrls, *cg, *end, *comma;

		end = nl_strchr(line, '\n');
		next = end ? end + 1 : line + nl_strlen(line);
		if (end)
			*end = '\0';
		ctrls = nl_strchr(line, ':');
		if (!ctrls)
			continue;
		*ctrls++ = '\0';
		cg = nl_strchr(ctrls, ':');
		if (!cg)
			continue;
		*cg++ = '\0';
		if (nl_strcmp(line, "0") == 0) {
			/* cgroup2: under unified on a hybrid host. */
			fd = prewarm_open_procs("/sys/fs/cgroup/unified", cg,
						"");
			if (fd < 0)
				fd = prewarm_open_procs("/sys/fs/cgroup", cg, "");
		} else {
			comma = nl_strchr(ctrls, ',');
			if (comma)
				*comma = '\0';
			if (nl_startswith(ctrls, "name="))
				ctrls += 5;
			if (!*ctrls)
				continue;
			fd = prewarm_open_procs("/sys/fs/cgroup/", ctrls, cg);
		}
		if (fd >= 0)
			return fd;
	}
	return -1;
}

static void prewarm_run(int stop_fd)
{
	struct nl_pollfd stop = { .fd = stop_fd, .events = NL_POLLIN };
	struct nl_timespec interval;
	int fd = prewarm_open();
	int i;

	if (fd < 0)
		return;
	for (i = 0; i < PREWARM_ROUNDS; i++) {
		/* Even a refused write has taken the lock. */
		sys3(SYS_WRITE, fd, (long)"0", 1);
		/* ppoll leaves the time not slept in it. */
		interval.sec = 0;
		interval.nsec = PREWARM_INTERVAL_NS;
		if (sys6(SYS_PPOLL, (long)&stop, 1, (long)&interval, 0, 0,
			 0) != 0)
			break;
	}
	sys3(SYS_CLOSE, fd, 0, 0);
}

#endif
