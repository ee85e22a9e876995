/*
 * pyrunc: the command-line entry program. scripts/setup.sh compiles it
 * with the paths of the interpreter (PYRUNC_PYTHON) and of the launcher
 * script (PYRUNC_SCRIPT), and installs it as .venv/bin/pyrunc.
 *
 * It execs the interpreter on the launcher script. For the commands that
 * attach a process to a cgroup (create, run, exec) it first forks a
 * helper that warms the kernel's cgroup attach lock (prewarm.h): the
 * wait for an RCU grace period then overlaps with the interpreter's own
 * start-up, 6-8 ms, rather than following it. The helper's pid and the
 * write end of its stop pipe go to Python as PYRUNC_PREWARM=PID,FD;
 * pyrunc.process.prewarm closes that end and reaps the helper before the
 * container's process exists.
 *
 * Freestanding (nolibc.h), so that the extra exec costs every command
 * about 0.1 ms rather than the 0.5 ms of a static glibc program.
 */
#include "prewarm.h"

#ifndef PYRUNC_PYTHON
#error "PYRUNC_PYTHON: the interpreter's path"
#endif
#ifndef PYRUNC_SCRIPT
#error "PYRUNC_SCRIPT: the launcher script's path"
#endif

#define ENV_PREFIX "PYRUNC_PREWARM="

NOLIBC_START(entry_main);

/* runc's global options that take a value; the others are flags. */
static const char *const valued[] = {
	"root", "log", "log-format", "criu", "rootless", NULL,
};

static int takes_value(const char *arg)
{
	int i;

	while (*arg == '-')
		arg++;
	if (nl_strchr(arg, '='))
		return 0;
	for (i = 0; valued[i]; i++)
		if (nl_strcmp(arg, valued[i]) == 0)
			return 1;
	return 0;
}

/* Does the command attach a process to a cgroup? A wrong guess costs
 * only a helper that is not needed, or the wait the helper saves. */
static int attaches(long argc, char **argv)
{
	long i;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (arg[0] != '-')
			return nl_strcmp(arg, "create") == 0 ||
			       nl_strcmp(arg, "run") == 0 ||
			       nl_strcmp(arg, "exec") == 0;
		if (takes_value(arg))
			i++;
	}
	return 0;
}

/* Open /dev/null on whichever of fds 0, 1 and 2 the caller closed:
 * else the first files the runtime opens (its code image, a container's
 * lock) would take their places and be handed to the container's
 * process as its stdio. What is written there is lost, where runc 1.1
 * would fail to write it. */
static int open_stdio(void)
{
	int fd;

	for (fd = 0; fd < 3; fd++) {
		if (sys3(SYS_FCNTL, fd, NL_F_GETFD, 0) >= 0)
			continue;
		if (sys3(SYS_OPENAT, NL_AT_FDCWD, (long)"/dev/null",
			 NL_O_RDWR) != fd)
			return -1;
	}
	return 0;
}

/* Write "what: reason" to stderr, for the errors execve can give. */
static void report(const char *what, long errnum)
{
	static const struct {
		long errnum;
		const char *text;
	} reasons[] = {
		{ 2, "no such file or directory" },
		{ 7, "argument list too long" },
		{ 8, "exec format error" },
		{ 12, "cannot allocate memory" },
		{ 13, "permission denied" },
	};
	char line[512];
	size_t pos = 0, i;
	const char *reason = NULL;

	line[0] = '\0';
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].errnum == errnum)
			reason = reasons[i].text;
	nl_append(line, sizeof(line), &pos, what);
	nl_append(line, sizeof(line), &pos, ": ");
	if (reason) {
		nl_append(line, sizeof(line), &pos, reason);
	} else {
		nl_append(line, sizeof(line), &pos, "errno ");
		nl_append_uint(line, sizeof(line), &pos, errnum);
	}
	nl_append(line, sizeof(line), &pos, "\n");
	sys3(SYS_WRITE, 2, (long)line, (long)pos);
}

/* Fork the helper; return its "PYRUNC_PREWARM=PID,FD", or NULL. */
static char *start_helper(void)
{
	static char value[64];
	size_t pos = 0;
	int stop[2];
	long pid;

	if (sys3(SYS_PIPE2, (long)stop, 0, 0) < 0)
		return NULL;
	pid = nl_fork();
	if (pid == 0) {
		/* Hold nothing of the caller's, such as a pipe it waits on
		 * to close (fds 0-2 are taken: stop[0] > 2). */
		sys3(SYS_CLOSE_RANGE, 0, stop[0] - 1, 0);
		sys3(SYS_CLOSE_RANGE, stop[0] + 1, ~0U, 0);
		prewarm_run(stop[0]);
		nl_exit(0);
	}
	sys3(SYS_CLOSE, stop[0], 0, 0);
	if (pid < 0) {
		sys3(SYS_CLOSE, stop[1], 0, 0);
		return NULL;
	}
	value[0] = '\0';
	if (nl_append(value, sizeof(value), &pos, ENV_PREFIX) < 0 ||
	    nl_append_uint(value, sizeof(value), &pos, pid) < 0 ||
	    nl_append(value, sizeof(value), &pos, ",") < 0 ||
	    nl_append_uint(value, sizeof(value), &pos, stop[1]) < 0)
		return NULL;
	return value;
}

__attribute__((used, noreturn)) void entry_main(long *sp)
{
	static const char failed[] = "pyrunc: cannot execute " PYRUNC_PYTHON;
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	long envc = 0, i, n = 0, err;

	while (envp[envc])
		envc++;

	char *args[argc + 3];
	char *env[envc + 2];

	/* The caller's environment, without a PYRUNC_PREWARM of its own. */
	for (i = 0; i < envc; i++)
		if (!nl_startswith(envp[i], ENV_PREFIX))
			env[n++] = envp[i];
	/* Without all three, the helper's pipe could become one of them. */
	if (open_stdio() == 0 && attaches(argc, argv)) {
		char *helper = start_helper();

		if (helper)
			env[n++] = helper;
	}
	env[n] = NULL;
	n = 0;
	args[n++] = PYRUNC_PYTHON;
	args[n++] = "-IS";
	args[n++] = PYRUNC_SCRIPT;
	for (i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	err = sys3(SYS_EXECVE, (long)args[0], (long)args, (long)env);
	report(failed, -err);
	nl_exit(127);
}
