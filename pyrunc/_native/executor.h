/*
 * The launch plan as the compiled executor sees it.
 *
 * The parent (Python) builds the plan as a list of tuples; launcher.pyx
 * copies it into these structures before clone(), so that the child only
 * ever reads plain C memory and never calls into the interpreter.
 */
#ifndef PYRUNC_EXECUTOR_H
#define PYRUNC_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#define PX_MAX_ARGS 10

/* Operations; the numbers are shared with launcher.pyx. */
enum px_op {
	PX_SET_ROOT = 1,
	PX_SETNS,
	PX_UNSHARE,
	PX_SYNC,
	PX_FORK,
	PX_MOUNT,
	PX_MKDIR,
	PX_MKNOD,
	PX_SYMLINK,
	PX_MAKE_PARENT_PRIVATE,
	PX_PIVOT_ROOT,
	PX_MOVE_ROOT,
	PX_MASK,
	PX_READONLY,
	PX_REMOUNT_ROOT_RO,
	PX_SETHOSTNAME,
	PX_SETDOMAINNAME,
	PX_WRITE_PROC,
	PX_CHDIR,
	PX_SETRLIMIT,
	PX_UMASK,
	PX_CAPS_BOUNDING,
	PX_SET_USER,
	PX_CAPS_APPLY,
	PX_NO_NEW_PRIVS,
	PX_CONSOLE,
	PX_CONSOLE_STDIO,
	PX_SETSID,
	PX_CLOSE_FDS,
	PX_HOOK,
	PX_READY,
	PX_WAIT_FIFO,
	PX_SECCOMP,
	PX_LOOKUP,
	PX_EXEC,
	PX_BIND_DEV,
	PX_KEYRING,
	PX_CHROOT,
	PX_STDIO,
	PX_OP_MAX
};

/* Extra mount behaviour for PX_MOUNT (argument 5). */
#define PX_MNT_HOSTPATH  0x01  /* target is a host path, not in the root */
#define PX_MNT_MKDIR     0x02  /* create the target as a directory */
#define PX_MNT_MKFILE    0x04  /* create the target as an empty file */
#define PX_MNT_BIND      0x08  /* bind mount, then remount for flags */
#define PX_MNT_COPYUP    0x10  /* tmpcopyup: copy the old contents in */
#define PX_MNT_ATTR_REC  0x20  /* mount_setattr with AT_RECURSIVE */
#define PX_MNT_SRC_ROOT  0x40  /* source is a path inside the root */
#define PX_MNT_TREE      0x80  /* argument 9 is a detached mount (open_tree)
				  to move onto the target: an idmapped bind */
#define PX_MNT_KEEP_MODE 0x100 /* tmpfs: keep the covered dir's mode */

/* Messages from the child to the parent. */
enum px_msg_kind {
	PX_MSG_SYNC = 1,
	PX_MSG_PID,
	PX_MSG_READY,
	PX_MSG_ERROR,
};

struct px_msg {
	int32_t kind;
	int32_t arg;
	int32_t err;
	int32_t step;
	char op[32];
	char text[480];
};

struct px_arg {
	int64_t i;          /* integer argument */
	const char *s;      /* bytes argument (NUL-terminated), or NULL */
	size_t len;         /* its length */
	char *const *v;     /* NULL-terminated vector argument, or NULL */
};

struct px_step {
	int op;
	int nargs;
	struct px_arg a[PX_MAX_ARGS];
};

struct px_plan {
	int nsteps;
	struct px_step *steps;
	int sync_fd;        /* the child's end of the socketpair */
	int close_fd;       /* the parent's end: closed in the child */
};

/*
 * Clone a child with clone_flags (CLONE_NEW* | the exit signal is added)
 * that runs the plan and never returns. Returns the child's pid, or -1
 * with errno set.
 */
int px_spawn(const struct px_plan *plan, unsigned long clone_flags);

#endif
