/*
 * crunwrap: run a program in a private mount namespace where
 * /sys/fs/cgroup/unified is hidden under an empty tmpfs.
 *
 * usage: crunwrap PROGRAM [ARG...]
 *
 * crun 1.8 refuses a hybrid cgroup host (v1 controllers plus a cgroup2
 * mount at /sys/fs/cgroup/unified). Covering the cgroup2 mount makes the
 * host look like plain cgroup v1 to crun, and only to crun: the mount
 * lives in a namespace that dies with the process. This does in three
 * system calls what `unshare -m sh -c 'mount ...; exec crun'` does with
 * two extra execs, so the benchmark charges crun as little as possible.
 * The benchmark measures this wrapper's own cost (PROGRAM = /bin/true)
 * and reports it next to crun's figures.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "crunwrap: %s: %s\n", what, strerror(errno));
	return 127;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: crunwrap PROGRAM [ARG...]\n");
		return 2;
	}
	if (unshare(CLONE_NEWNS) < 0)
		return fail("unshare");
	/* Without this the tmpfs would propagate back to the host's
	 * namespace through a shared /sys mount. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail("make / private");
	if (mount("none", "/sys/fs/cgroup/unified", "tmpfs", 0, NULL) < 0)
		return fail("mount tmpfs on /sys/fs/cgroup/unified");
	execv(argv[1], argv + 1);
	return fail(argv[1]);
}
