/*
 * pyrunc-prewarm: write "0" to the cgroup.procs of our own cgroup.
 *
 * A move to where we already are: it changes nothing but takes the
 * kernel's cgroup attach lock, whose first writer after some idle time
 * waits for an RCU grace period. pyrunc's create, run and exec spawn
 * this (see pyrunc/process/prewarm.py) so that the wait runs on the
 * other CPU while they import and plan; their own attach is then quick.
 *
 * The first cgroup.procs that opens is enough: the lock is global.
 * Every failure is silent, and the status is always 0.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int write_zero(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write(fd, "0", 1) < 0) {
		/* Even a refused write has taken the lock. */
	}
	close(fd);
	return 0;
}

int main(void)
{
	static char buf[8192];
	char path[4096];
	char *line, *save = NULL;
	ssize_t n;
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *ctrls = strchr(line, ':');
		char *cg, *comma;

		if (!ctrls)
			continue;
		*ctrls++ = '\0';
		cg = strchr(ctrls, ':');
		if (!cg)
			continue;
		*cg++ = '\0';
		if (strcmp(line, "0") == 0) {
			/* cgroup2: under unified on a hybrid host. */
			snprintf(path, sizeof(path),
				 "/sys/fs/cgroup/unified%s/cgroup.procs", cg);
			if (write_zero(path) == 0)
				return 0;
			snprintf(path, sizeof(path),
				 "/sys/fs/cgroup%s/cgroup.procs", cg);
			if (write_zero(path) == 0)
				return 0;
			continue;
		}
		comma = strchr(ctrls, ',');
		if (comma)
			*comma = '\0';
		if (strncmp(ctrls, "name=", 5) == 0)
			ctrls += 5;
		if (!*ctrls)
			continue;
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s/cgroup.procs",
			 ctrls, cg);
		if (write_zero(path) == 0)
			return 0;
	}
	return 0;
}
