/*
 * spawntime: run a command; report its wall time and peak RSS.
 *
 * usage: spawntime FD PROGRAM [ARG...]
 *
 * Writes "<wall ns> <ru_maxrss KiB> <wait status>\n" to file descriptor
 * FD once PROGRAM has exited, and exits 0 (127 if it could not report).
 *
 * Why a helper: at execve() the kernel folds the high-water RSS of the
 * process's previous memory image into ru_maxrss. A command spawned
 * straight from the benchmark (a Python process of some 36 MiB) would
 * report at least that much, whatever it used itself. Spawned from this
 * small C process, the previous image is tiny and ru_maxrss is the
 * runtime's own. The clock runs here too, around vfork + execv +
 * wait4, so the figure does not include this helper's own start-up.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct rusage usage;
	long long start, end;
	int fd, status;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: spawntime FD PROGRAM [ARG...]\n");
		return 127;
	}
	fd = atoi(argv[1]);
	/* The command must not inherit the report pipe. */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		perror("spawntime: report fd");
		return 127;
	}
	start = now_ns();
	pid = vfork();
	if (pid < 0) {
		perror("spawntime: vfork");
		return 127;
	}
	if (pid == 0) {
		execv(argv[2], argv + 2);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &usage) < 0) {
		perror("spawntime: wait4");
		return 127;
	}
	end = now_ns();
	if (dprintf(fd, "%lld %ld %d\n", end - start, usage.ru_maxrss,
		    status) < 0)
		return 127;
	return 0;
}
