/*
 * Idmapped mounts, parent side: a user namespace carrying a mount's
 * maps, and the detached, idmapped copy of the mount's source.
 *
 * Only the host's root may put MOUNT_ATTR_IDMAP on a mount of a host
 * filesystem (the kernel asks for CAP_SYS_ADMIN in the filesystem's user
 * namespace), so this runs in the runtime before the clone; the child
 * inherits the tree's fd and moves it into place (executor.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "idmap.h"

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

struct idmap_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

/*
 * The raw clone, as px_spawn does: the child runs no Python, only this
 * loop, and dies with the runtime if the runtime dies first. The parent
 * writes its maps, opens /proc/<pid>/ns/user and kills it; the open fd
 * keeps the namespace alive.
 */
int px_userns_child(void)
{
	pid_t parent = getpid();
	pid_t pid;

	pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL,
			     NULL, 0);
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(0);
	for (;;)
		pause();
}

int px_idmapped_tree(const char *source, int userns_fd, int recursive_tree,
		     int recursive_idmap, unsigned long propagation,
		     const char **failed)
{
	struct idmap_attr attr;
	unsigned int rec = recursive_tree ? AT_RECURSIVE : 0;
	int tree;
	int err;

	*failed = "open_tree";
	tree = (int)syscall(SYS_open_tree, AT_FDCWD, source,
			    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
	if (tree < 0)
		return -1;

	/*
	 * The copy of a shared mount joins its peer group, so mounts the
	 * container makes below it would show up on the host. A bind made
	 * in the container's mount namespace takes that namespace's
	 * propagation (rslave by default): give the copy the same.
	 */
	if (propagation) {
		memset(&attr, 0, sizeof(attr));
		attr.propagation = propagation;
		*failed = "mount_setattr";
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | rec,
			    &attr, sizeof(attr)) < 0)
			goto fail;
	}

	/* ridmap maps every mount of the tree; idmap only its top, as runc. */
	memset(&attr, 0, sizeof(attr));
	*failed = "mount_setattr";
	attr.attr_set = MOUNT_ATTR_IDMAP;
	attr.userns_fd = (uint64_t)userns_fd;
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH |
		    (recursive_idmap ? AT_RECURSIVE : 0), &attr,
		    sizeof(attr)) < 0)
		goto fail;
	return tree;

fail:
	err = errno;
	close(tree);
	errno = err;
	return -1;
}
