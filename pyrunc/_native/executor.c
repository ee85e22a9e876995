/*
 * The compiled executor: runs a launch plan in the cloned child.
 *
 * Nothing here calls into Python. The child is a copy of the runtime's
 * address space, but it only reads the plan (plain C memory prepared by
 * launcher.pyx before clone) and makes system calls, so the container is
 * charged for almost nothing and no interpreter state reaches it.
 *
 * Every step either succeeds or reports the step index, the system call
 * and errno to the parent over the sync socket, then exits.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>

#include "executor.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif

struct mount_attr_arg {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

/* What the child carries from one step to the next. */
struct px_state {
	const struct px_plan *plan;
	int step;
	int sync_fd;
	int root_fd;            /* the container's root, as resolved so far */
	int console_fd;         /* the pty's slave side, once created */
	char exe[4096];         /* PX_LOOKUP's result, used by PX_EXEC */
	char *payload;          /* last bytes the parent sent at a sync */
	size_t payload_len;
	size_t payload_size;    /* of its mapping */
};

/*
 * Memory for the child comes from mmap, never malloc: cloned from a
 * threaded process (the library in a server or a benchmark), the child
 * may inherit malloc's lock as another thread held it, and would wait
 * for it forever. For the same reason the child forks with a raw clone
 * (glibc's fork takes that lock) and reads directories with getdents64
 * (opendir allocates).
 */
static void *child_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void send_msg(struct px_state *st, int kind, int arg, int err,
		     const char *op, const char *text)
{
	struct px_msg m;
	ssize_t n;

	if (st->sync_fd < 0)
		return;
	memset(&m, 0, sizeof(m));
	m.kind = kind;
	m.arg = arg;
	m.err = err;
	m.step = st->step;
	if (op)
		snprintf(m.op, sizeof(m.op), "%s", op);
	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	do {
		n = send(st->sync_fd, &m, sizeof(m), MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
}

/*
 * Report a failed step and exit. Before READY the parent turns this into
 * one error; after READY nobody listens, so it also goes to stderr.
 */
static void __attribute__((noreturn, format(printf, 3, 4)))
fail(struct px_state *st, const char *op, const char *fmt, ...)
{
	char text[480];
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (st->sync_fd >= 0) {
		send_msg(st, PX_MSG_ERROR, 0, err, op, text);
	} else if (err) {
		dprintf(2, "pyrunc: %s: %s\n", text, strerror(err));
	} else {
		dprintf(2, "pyrunc: %s\n", text);
	}
	_exit(err == ENOENT ? 127 : 1);
}

/* Open a path inside the container's root without leaving it. */
static int open_in_root(struct px_state *st, const char *path, int flags,
			mode_t mode)
{
	struct open_how how;
	int tries;
	int fd;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.mode = (flags & O_CREAT) ? mode : 0;
	/*
	 * RESOLVE_IN_ROOT makes ".." and absolute symlinks stop at the root,
	 * so a symlink planted in the rootfs cannot point a mount outside it
	 * (CVE-2021-30465, CVE-2024-45310).
	 */
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	/*
	 * The kernel answers EAGAIN when a rename anywhere on the system
	 * may have raced a ".." in the lookup; a retry is then safe.
	 */
	for (tries = 0; tries < 64; tries++) {
		fd = (int)syscall(SYS_openat2, st->root_fd, path, &how,
				  sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return fd;
}

/* Split "a/b/c" into the parent "a/b" and the name "c". */
static const char *split_path(const char *path, char *parent, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash) {
		snprintf(parent, size, ".");
		return path;
	}
	n = (size_t)(slash - path);
	if (n == 0)
		n = 1;
	if (n >= size)
		n = size - 1;
	memcpy(parent, path, n);
	parent[n] = '\0';
	return slash + 1;
}

#define PX_MAX_LINKS 40

/*
 * Whether dir/name is one of procfs's magic links (/proc/self/fd/N,
 * /proc/self/cwd, ...), whose text names a path in some other mount
 * namespace: the kernel refuses to follow it under
 * RESOLVE_NO_MAGICLINKS, and so must a walk that reads link text.
 */
static int magic_link(struct px_state *st, const char *dir,
		      const char *name)
{
	char path[8192];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open_in_root(st, path, O_PATH, 0);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	/* ENOENT: it leads nowhere yet, and the walk will make it. */
	return errno == ELOOP;
}

/*
 * Resolve path in the root the way runc's securejoin does, into out: a
 * symlink is followed (an absolute one from the root, a relative one
 * from the directory it is in), ".." goes up from where the walk has
 * got to and stops at the root, and a name that does not exist is kept
 * as it is. With mkdirs, a missing directory is made instead (mkdir -p
 * in the root), and what a dangling symlink names is made too.
 *
 * Each component is looked up in a directory opened by open_in_root(),
 * so a component swapped for a symlink during the walk still cannot
 * take it out of the root: at worst the walk fails.
 */
static int join_in_root(struct px_state *st, const char *path, int mkdirs,
			mode_t mode, char *out, size_t size)
{
	char rest[8192];
	char next[8192];
	char target[4096];
	char name[NAME_MAX + 1];
	size_t len = 0;
	int links = 0;
	char *p;

	if (snprintf(rest, sizeof(rest), "%s", path) >= (int)sizeof(rest)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	out[0] = '\0';
	p = rest;
	while (*p) {
		struct stat sb;
		const char *start;
		size_t n;
		ssize_t got;
		int dirfd;
		int r;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != '/')
			p++;
		n = (size_t)(p - start);
		if (n == 1 && start[0] == '.')
			continue;
		if (n == 2 && start[0] == '.' && start[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			out[len] = '\0';
			continue;
		}
		if (n > NAME_MAX || len + 1 + n + 1 > size) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, start, n);
		name[n] = '\0';
		dirfd = open_in_root(st, len ? out : "/", O_PATH | O_DIRECTORY,
				     0);
		if (dirfd < 0) {
			/* Below a missing name: keep the rest as it is. */
			if (errno != ENOENT || mkdirs)
				return -1;
			r = -1;
		} else {
			r = fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW);
			if (r < 0 && errno == ENOENT && mkdirs) {
				if (mkdirat(dirfd, name, mode) < 0 &&
				    errno != EEXIST) {
					close(dirfd);
					return -1;
				}
				/* Look again: a racer may have made it. */
				r = fstatat(dirfd, name, &sb,
					    AT_SYMLINK_NOFOLLOW);
			}
			if (r < 0 && errno != ENOENT) {
				close(dirfd);
				return -1;
			}
		}
		if (r == 0 && S_ISLNK(sb.st_mode)) {
			if (++links > PX_MAX_LINKS ||
			    magic_link(st, out, name)) {
				close(dirfd);
				errno = ELOOP;
				return -1;
			}
			got = readlinkat(dirfd, name, target,
					 sizeof(target) - 1);
			close(dirfd);
			if (got < 0)
				return -1;
			target[got] = '\0';
			if (snprintf(next, sizeof(next), "%s/%s", target, p) >=
			    (int)sizeof(next)) {
				errno = ENAMETOOLONG;
				return -1;
			}
			memcpy(rest, next, strlen(next) + 1);
			p = rest;
			if (target[0] == '/') {
				len = 0;
				out[0] = '\0';
			}
			continue;
		}
		if (dirfd >= 0)
			close(dirfd);
		out[len++] = '/';
		memcpy(out + len, name, n + 1);
		len += n;
	}
	if (len == 0)
		snprintf(out, size, "/");
	return 0;
}

/* mkdir -p inside the root, through symlinks as join_in_root() says. */
static int mkdir_in_root(struct px_state *st, const char *path, mode_t mode)
{
	char resolved[4096];
	int fd;

	if (join_in_root(st, path, 1, mode, resolved, sizeof(resolved)) < 0)
		return -1;
	fd = open_in_root(st, resolved, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/*
 * Create an empty file (a bind mount target) inside the root. With
 * follow, where the path leads: through a dangling symlink, the file is
 * made at the link's target, as runc does for a bind mount. Without,
 * at the path itself, and a symlink there is left for the caller to
 * refuse.
 */
static int mkfile_in_root(struct px_state *st, const char *path,
			  int follow)
{
	char resolved[4096];
	char parent[4096];
	const char *name;
	int dirfd;
	int ret;

	if (!follow)
		snprintf(resolved, sizeof(resolved), "%s", path);
	else if (join_in_root(st, path, 0, 0, resolved,
			      sizeof(resolved)) < 0)
		return -1;
	name = split_path(resolved, parent, sizeof(parent));
	if (mkdir_in_root(st, parent, 0755) < 0)
		return -1;
	dirfd = open_in_root(st, parent, O_PATH | O_DIRECTORY, 0);
	if (dirfd < 0)
		return -1;
	ret = mknodat(dirfd, name, S_IFREG | 0644, 0);
	if (ret < 0 && errno == EEXIST)
		ret = 0;
	close(dirfd);
	return ret;
}

static void fd_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Open a mount target: a host path, or a path resolved in the root. */
static int open_target(struct px_state *st, const char *path, int host)
{
	if (host)
		return open(path, O_PATH | O_CLOEXEC);
	return open_in_root(st, path, O_PATH, 0);
}

static int copy_tree(int from, int to);

/* Copy the entry n of directory from into to (tmpcopyup). */
static int copy_entry(int from, int to, const char *n)
{
	struct stat sb;

	if (fstatat(from, n, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (S_ISDIR(sb.st_mode)) {
		int a, b;

		if (mkdirat(to, n, sb.st_mode & 07777) < 0 &&
		    errno != EEXIST)
			return -1;
		a = openat(from, n, O_RDONLY | O_DIRECTORY |
			   O_NOFOLLOW | O_CLOEXEC);
		b = openat(to, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			   O_CLOEXEC);
		if (a < 0 || b < 0 || copy_tree(a, b) < 0) {
			if (a >= 0)
				close(a);
			if (b >= 0)
				close(b);
			return -1;
		}
		close(a);
		close(b);
	} else if (S_ISLNK(sb.st_mode)) {
		char target[4096];
		ssize_t len = readlinkat(from, n, target,
					 sizeof(target) - 1);

		if (len < 0)
			return -1;
		target[len] = '\0';
		if (symlinkat(target, to, n) < 0)
			return -1;
	} else if (S_ISREG(sb.st_mode)) {
		char buf[65536];
		ssize_t r;
		int a = openat(from, n, O_RDONLY | O_NOFOLLOW |
			       O_CLOEXEC);
		int b = openat(to, n, O_WRONLY | O_CREAT | O_EXCL |
			       O_NOFOLLOW | O_CLOEXEC,
			       sb.st_mode & 07777);

		if (a < 0 || b < 0) {
			if (a >= 0)
				close(a);
			if (b >= 0)
				close(b);
			return -1;
		}
		while ((r = read(a, buf, sizeof(buf))) > 0) {
			if (write(b, buf, (size_t)r) != r) {
				r = -1;
				break;
			}
		}
		close(a);
		close(b);
		if (r < 0)
			return -1;
	} else {
		if (mknodat(to, n, sb.st_mode, sb.st_rdev) < 0)
			return -1;
	}
	if (fchownat(to, n, sb.st_uid, sb.st_gid,
		     AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	return 0;
}

/* getdents64's record. */
struct px_dirent {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* Copy a directory tree from one fd to another (tmpcopyup). */
static int copy_tree(int from, int to)
{
	char entries[4096] __attribute__((aligned(8)));
	int dir = openat(from, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long got;

	if (dir < 0)
		return -1;
	while ((got = syscall(SYS_getdents64, dir, entries,
			      sizeof(entries))) > 0) {
		long pos = 0;

		while (pos < got) {
			struct px_dirent *de = (void *)(entries + pos);

			pos += de->reclen;
			if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
				continue;
			if (copy_entry(from, to, de->name) < 0) {
				close(dir);
				return -1;
			}
		}
	}
	close(dir);
	return got < 0 ? -1 : 0;
}

/* proc and sysfs: mounts whose targets runc never follows a symlink to. */
static int is_proc_or_sys(const char *fstype, int host)
{
	if (!fstype || host)
		return 0;
	return !strcmp(fstype, "proc") || !strcmp(fstype, "sysfs");
}

/*
 * A /proc (or /sys) the rootfs made a symlink, or any other non-directory,
 * is refused as runc refuses it: following it would put procfs where the
 * image wants it, and the runtime's later writes to /proc/self/attr or
 * /proc/sys could then be pointed elsewhere (CVE-2019-16884,
 * CVE-2023-27561).
 */
static void check_ordinary_dir(struct px_state *st, const char *dst,
			       const char *fstype)
{
	struct stat sb;
	int fd = open_in_root(st, dst, O_PATH | O_NOFOLLOW, 0);

	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail(st, "openat2", "open mount target `%s`", dst);
	}
	if (fstat(fd, &sb) < 0)
		fail(st, "fstat", "stat mount target `%s`", dst);
	close(fd);
	if (!S_ISDIR(sb.st_mode)) {
		errno = 0;
		fail(st, "mount", "error mounting \"%s\" to rootfs at \"%s\": "
		     "filesystem \"%s\" must be mounted on ordinary directory",
		     fstype, dst, fstype);
	}
}

/*
 * The planner refused bind mounts named below /proc but the few lxcfs
 * needs; one whose destination only reaches /proc through a symlink in
 * the rootfs is refused here, as runc refuses it after resolving.
 */
static void check_not_in_proc(struct px_state *st, int fd, const char *dst)
{
	char link[64];
	char root[4096];
	char path[4096];
	struct statfs sfs;
	ssize_t n;
	ssize_t m;

	if (!strncmp(dst, "/proc/", 6))
		return;
	if (fstatfs(fd, &sfs) < 0)
		fail(st, "fstatfs", "statfs mount target `%s`", dst);
	fd_path(link, sizeof(link), st->root_fd);
	n = readlink(link, root, sizeof(root) - 1);
	fd_path(link, sizeof(link), fd);
	m = readlink(link, path, sizeof(path) - 1);
	if (n < 0 || m < 0)
		fail(st, "readlink", "resolve mount target `%s`", dst);
	root[n] = '\0';
	path[m] = '\0';
	if (!strcmp(root, "/"))
		n = 0;
	if (sfs.f_type == PROC_SUPER_MAGIC ||
	    (!strncmp(path, root, (size_t)n) &&
	     (!strcmp(path + n, "/proc") || !strncmp(path + n, "/proc/", 6)))) {
		errno = 0;
		fail(st, "mount", "`%s` cannot be mounted because it is inside "
		     "/proc", dst);
	}
}

/*
 * sysfs belongs to a network namespace: a user namespace that does not
 * own one may not mount it (EPERM), which is the rootless case without a
 * network namespace. Bind the host's /sys instead, recursively and with
 * the flags asked for, as runc does since 1.2. Returns 0, errno kept,
 * when the failed mount was something else.
 */
static int sysfs_as_bind(struct px_state *st, const char *fstype, int host,
			 const char *dst, unsigned long flags)
{
	struct mount_attr_arg attr;
	char target[64];
	int fd;

	if (!is_proc_or_sys(fstype, host) || strcmp(fstype, "sysfs") ||
	    (errno != EPERM && errno != EBUSY))
		return 0;
	fd = open_in_root(st, dst, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0);
	if (fd < 0)
		fail(st, "openat2", "open mount target `%s`", dst);
	fd_path(target, sizeof(target), fd);
	if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail(st, "mount", "bind /sys to `%s` in place of sysfs", dst);
	close(fd);
	fd = open_in_root(st, dst, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0);
	if (fd < 0)
		fail(st, "openat2", "reopen mount target `%s`", dst);
	memset(&attr, 0, sizeof(attr));
	if (flags & MS_RDONLY)
		attr.attr_set |= MOUNT_ATTR_RDONLY;
	if (flags & MS_NOSUID)
		attr.attr_set |= 0x00000002;    /* MOUNT_ATTR_NOSUID */
	if (flags & MS_NODEV)
		attr.attr_set |= 0x00000004;    /* MOUNT_ATTR_NODEV */
	if (flags & MS_NOEXEC)
		attr.attr_set |= 0x00000008;    /* MOUNT_ATTR_NOEXEC */
	if (attr.attr_set &&
	    syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE,
		    &attr, sizeof(attr)) < 0)
		fail(st, "mount_setattr", "set flags on the bind of /sys at "
		     "`%s`", dst);
	close(fd);
	return 1;
}

/*
 * An idmapped bind: the parent cloned the source with open_tree and set
 * MOUNT_ATTR_IDMAP on the copy while it still had the host's privileges
 * (the kernel wants CAP_SYS_ADMIN over the filesystem's user namespace,
 * which the child in the container's lacks). Moving the detached tree
 * only needs the rights over our own mount namespace. The target was
 * resolved in the root like any bind's; the tree fd is closed once it
 * is attached, so none reaches the container.
 */
static void attach_tree(struct px_state *st, int tree, int target_fd,
			const char *src, const char *dst)
{
	if (syscall(SYS_move_mount, tree, "", target_fd, "",
		    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		fail(st, "move_mount", "attach the idmapped mount of `%s` to "
		     "`%s`", src, dst);
	close(tree);
}

/*
 * The mode bits of the directory at dst in the root, before a mount
 * covers it; -1 if there is none (it is about to be made).
 */
static int covered_dir_mode(struct px_state *st, const char *dst)
{
	struct stat sb;
	int fd = open_in_root(st, dst, O_PATH | O_DIRECTORY, 0);
	int mode = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) == 0)
		mode = (int)(sb.st_mode & 07777);
	close(fd);
	return mode;
}

static void op_mount(struct px_state *st, const struct px_step *s)
{
	const char *src = s->a[0].s;
	const char *dst = s->a[1].s;
	const char *fstype = s->a[2].s;
	unsigned long flags = (unsigned long)s->a[3].i;
	const char *data = s->a[4].s;
	int x = (int)s->a[5].i;
	const uint64_t *props = (const uint64_t *)s->a[6].s;
	size_t nprops = s->a[6].s ? s->a[6].len / sizeof(uint64_t) : 0;
	int host = x & PX_MNT_HOSTPATH;
	char target[64];
	char source[64];
	int old_fd = -1;
	int src_fd = -1;
	int keep_mode = -1;
	int fd;
	size_t i;

	if (is_proc_or_sys(fstype, host))
		check_ordinary_dir(st, dst, fstype);
	if (x & PX_MNT_KEEP_MODE)
		keep_mode = covered_dir_mode(st, dst);
	if (x & PX_MNT_MKDIR && mkdir_in_root(st, dst, 0755) < 0)
		fail(st, "mkdir", "mkdir `%s` in rootfs", dst);
	if (x & PX_MNT_MKFILE && mkfile_in_root(st, dst, 1) < 0)
		fail(st, "mknod", "create mount target `%s` in rootfs", dst);
	if (is_proc_or_sys(fstype, host)) {
		/* No symlink swapped in since the check: refuse, not follow. */
		fd = open_in_root(st, dst, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0);
		if (fd < 0)
			fail(st, "openat2", "filesystem \"%s\" must be mounted "
			     "on ordinary directory", fstype);
	} else {
		fd = open_target(st, dst, host);
	}
	if (fd < 0)
		fail(st, "openat2", "open mount target `%s`", dst);
	fd_path(target, sizeof(target), fd);
	if (x & PX_MNT_COPYUP) {
		old_fd = open_in_root(st, dst, O_RDONLY | O_DIRECTORY, 0);
		if (old_fd < 0)
			fail(st, "openat2", "open `%s` for tmpcopyup", dst);
	}
	if (x & PX_MNT_SRC_ROOT && src) {
		/* A source inside the container (rare): resolve it there. */
		src_fd = open_in_root(st, src, O_PATH, 0);
		if (src_fd < 0)
			fail(st, "openat2", "open mount source `%s`", src);
		fd_path(source, sizeof(source), src_fd);
		src = source;
	}

	if (x & PX_MNT_BIND) {
		unsigned long bind = MS_BIND | (flags & MS_REC);
		unsigned long rest;

		if (!host)
			check_not_in_proc(st, fd, dst);
		if (x & PX_MNT_TREE) {
			attach_tree(st, (int)s->a[9].i, fd, src, dst);
		} else if (mount(src, target, NULL, bind, NULL) < 0) {
			fail(st, "mount", "bind mount `%s` to `%s`", src, dst);
		}
		/* The fd still names the covered directory: reopen. */
		close(fd);
		fd = open_target(st, dst, host);
		if (fd < 0)
			fail(st, "openat2", "reopen mount target `%s`", dst);
		fd_path(target, sizeof(target), fd);
		rest = flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
		if (rest) {
			rest |= MS_BIND | MS_REMOUNT;
			if (mount(NULL, target, NULL, rest, NULL) < 0)
				fail(st, "mount", "remount bind `%s` with "
				     "flags %#lx", dst, rest);
		}
	} else if (flags & MS_REMOUNT) {
		if (mount(src, target, fstype, flags, data) < 0)
			fail(st, "mount", "remount `%s`", dst);
	} else {
		if (mount(src, target, fstype, flags, data) < 0 &&
		    !sysfs_as_bind(st, fstype, host, dst, flags))
			fail(st, "mount", "mount `%s` to `%s` (type %s)",
			     src ? src : "none", dst, fstype ? fstype : "none");
		close(fd);
		fd = open_target(st, dst, host);
		if (fd < 0)
			fail(st, "openat2", "reopen mount target `%s`", dst);
		fd_path(target, sizeof(target), fd);
		if (keep_mode >= 0 && chmod(target, (mode_t)keep_mode) < 0)
			fail(st, "chmod", "chmod `%s` to %#o", dst, keep_mode);
	}

	if (old_fd >= 0) {
		int new_fd = open_in_root(st, dst, O_RDONLY | O_DIRECTORY, 0);

		if (new_fd < 0 || copy_tree(old_fd, new_fd) < 0)
			fail(st, "copy", "tmpcopyup into `%s`", dst);
		close(new_fd);
		close(old_fd);
	}

	for (i = 0; i < nprops; i++) {
		if (mount(NULL, target, NULL, (unsigned long)props[i], NULL) < 0)
			fail(st, "mount", "set propagation %#lx on `%s`",
			     (unsigned long)props[i], dst);
	}

	if (s->a[7].i || s->a[8].i) {
		struct mount_attr_arg attr;
		unsigned int at = AT_EMPTY_PATH;

		memset(&attr, 0, sizeof(attr));
		attr.attr_set = (uint64_t)s->a[7].i;
		attr.attr_clr = (uint64_t)s->a[8].i;
		if (x & PX_MNT_ATTR_REC)
			at |= AT_RECURSIVE;
		if (syscall(SYS_mount_setattr, fd, "", at, &attr,
			    sizeof(attr)) < 0)
			fail(st, "mount_setattr", "set attributes on `%s`",
			     dst);
	}
	if (src_fd >= 0)
		close(src_fd);
	close(fd);
}

/*
 * runc's trick: with the new root as cwd, pivot_root(".", ".") stacks the
 * old root on top of the new one; unmounting "." then drops the old root
 * without needing a directory for it inside the container.
 */
static void op_pivot_root(struct px_state *st)
{
	int old_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (old_root < 0)
		fail(st, "open", "open old root");
	if (fchdir(st->root_fd) < 0)
		fail(st, "fchdir", "enter rootfs");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail(st, "pivot_root", "pivot_root into rootfs");
	/* "." is the new root after pivot_root: step onto the old one. */
	if (fchdir(old_root) < 0)
		fail(st, "fchdir", "enter old root");
	close(old_root);
	/* Keep the unmount from propagating back to the host. */
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		fail(st, "mount", "make old root rslave");
	if (umount2(".", MNT_DETACH) < 0)
		fail(st, "umount2", "detach old root");
	if (chdir("/") < 0)
		fail(st, "chdir", "chdir to new root");
	close(st->root_fd);
	st->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (st->root_fd < 0)
		fail(st, "open", "open new root");
}

static void op_move_root(struct px_state *st, const struct px_step *s)
{
	if (fchdir(st->root_fd) < 0)
		fail(st, "fchdir", "enter rootfs");
	if (mount(s->a[0].s, "/", NULL, MS_MOVE, NULL) < 0)
		fail(st, "mount", "move rootfs onto /");
	if (chroot(".") < 0)
		fail(st, "chroot", "chroot into rootfs");
	if (chdir("/") < 0)
		fail(st, "chdir", "chdir to new root");
	close(st->root_fd);
	st->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (st->root_fd < 0)
		fail(st, "open", "open new root");
}

/*
 * Make the mount holding the rootfs private, as pivot_root refuses a
 * shared parent. Walk up from the rootfs until a directory is a mount.
 */
static void op_make_parent_private(struct px_state *st,
				   const struct px_step *s)
{
	char path[4096];
	char *slash;

	snprintf(path, sizeof(path), "%s", s->a[0].s);
	/* The rootfs itself, when it is a mount (runc's getParentMount). */
	if (mount(NULL, path, NULL, MS_PRIVATE, NULL) == 0)
		return;
	if (errno != EINVAL)
		fail(st, "mount", "make `%s` private", path);
	for (;;) {
		slash = strrchr(path, '/');
		if (!slash)
			break;
		if (slash == path) {
			path[1] = '\0';
		} else {
			*slash = '\0';
		}
		if (mount(NULL, path, NULL, MS_PRIVATE, NULL) == 0)
			return;
		if (errno != EINVAL)
			fail(st, "mount", "make `%s` private", path);
		if (!strcmp(path, "/"))
			break;
	}
}

/* Mount flags that a remount must keep, read back from statfs. */
static unsigned long kept_flags(const char *path)
{
	struct statfs sfs;
	unsigned long keep = 0;

	if (statfs(path, &sfs) < 0)
		return 0;
	if (sfs.f_flags & ST_NOSUID)
		keep |= MS_NOSUID;
	if (sfs.f_flags & ST_NODEV)
		keep |= MS_NODEV;
	if (sfs.f_flags & ST_NOEXEC)
		keep |= MS_NOEXEC;
	if (sfs.f_flags & ST_NOATIME)
		keep |= MS_NOATIME;
	if (sfs.f_flags & ST_NODIRATIME)
		keep |= MS_NODIRATIME;
	if (sfs.f_flags & ST_RELATIME)
		keep |= MS_RELATIME;
	return keep;
}

static void op_mask(struct px_state *st, const struct px_step *s)
{
	const char *path = s->a[0].s;
	char target[64];
	char source[64];
	struct stat sb;
	/*
	 * A symlink is followed (in the root), as runc's mount(2) on the
	 * path does: what it leads to is what must be hidden. One that
	 * leads nowhere masks nothing.
	 */
	int fd = open_in_root(st, path, O_PATH, 0);
	int null_fd;

	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail(st, "openat2", "open masked path `%s`", path);
	}
	if (fstat(fd, &sb) < 0)
		fail(st, "fstat", "stat masked path `%s`", path);
	fd_path(target, sizeof(target), fd);
	if (S_ISDIR(sb.st_mode)) {
		if (mount("tmpfs", target, "tmpfs", MS_RDONLY, NULL) < 0)
			fail(st, "mount", "mask directory `%s`", path);
		close(fd);
		return;
	}
	/*
	 * Bind a verified /dev/null: a container that replaced its /dev/null
	 * with something else must not get that mounted over a masked path
	 * (CVE-2025-31133).
	 */
	null_fd = open_in_root(st, "/dev/null", O_PATH | O_NOFOLLOW, 0);
	if (null_fd < 0)
		fail(st, "openat2", "open /dev/null to mask `%s`", path);
	if (fstat(null_fd, &sb) < 0 || !S_ISCHR(sb.st_mode) ||
	    major(sb.st_rdev) != 1 || minor(sb.st_rdev) != 3) {
		errno = EPERM;
		fail(st, "fstat", "/dev/null is not the null device; refusing "
		     "to mask `%s`", path);
	}
	fd_path(source, sizeof(source), null_fd);
	if (mount(source, target, NULL, MS_BIND, NULL) < 0)
		fail(st, "mount", "mask file `%s`", path);
	close(null_fd);
	close(fd);
}

/*
 * Make path read-only: a linux.readonlyPaths entry is first bound onto
 * itself; a read-only tmpfs (argument 1 set), mounted writable until
 * now, is already a mount and is remounted in place.
 */
static void op_readonly(struct px_state *st, const struct px_step *s)
{
	const char *path = s->a[0].s;
	int in_place = (int)s->a[1].i;
	char target[64];
	unsigned long flags;
	/*
	 * A symlink is followed in the root, as for a masked path; so is
	 * one to a read-only tmpfs, which was mounted where it led.
	 */
	int fd = open_in_root(st, path, O_PATH, 0);

	if (fd < 0) {
		if (errno == ENOENT && !in_place)
			return;
		fail(st, "openat2", "open readonly path `%s`", path);
	}
	fd_path(target, sizeof(target), fd);
	if (!in_place) {
		if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
			fail(st, "mount", "bind readonly path `%s`", path);
		close(fd);
		fd = open_in_root(st, path, O_PATH, 0);
		if (fd < 0)
			fail(st, "openat2", "reopen readonly path `%s`", path);
		fd_path(target, sizeof(target), fd);
	}
	flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | kept_flags(target);
	if (mount(NULL, target, NULL, flags, NULL) < 0)
		fail(st, "mount", "remount `%s` read-only", path);
	close(fd);
}

static void op_remount_root_ro(struct px_state *st)
{
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;

	flags |= kept_flags("/");
	if (mount(NULL, "/", NULL, flags, NULL) < 0)
		fail(st, "mount", "remount rootfs read-only");
}

static void op_mknod(struct px_state *st, const struct px_step *s)
{
	const char *path = s->a[0].s;
	mode_t mode = (mode_t)s->a[1].i;
	dev_t dev = (dev_t)s->a[2].i;
	char parent[4096];
	const char *name = split_path(path, parent, sizeof(parent));
	int dirfd;

	if (mkdir_in_root(st, parent, 0755) < 0)
		fail(st, "mkdir", "create parent of device `%s`", path);
	dirfd = open_in_root(st, parent, O_PATH | O_DIRECTORY, 0);
	if (dirfd < 0)
		fail(st, "openat2", "open parent of device `%s`", path);
	if (mknodat(dirfd, name, mode, dev) < 0) {
		if (errno != EEXIST)
			fail(st, "mknod", "create device `%s`", path);
		/* A node the rootfs ships is replaced by the one asked for. */
		if (unlinkat(dirfd, name, 0) < 0 ||
		    mknodat(dirfd, name, mode, dev) < 0)
			fail(st, "mknod", "replace device `%s`", path);
	}
	/* mknod is subject to the umask: set the exact mode. */
	if (fchmodat(dirfd, name, mode & 07777, 0) < 0)
		fail(st, "chmod", "chmod device `%s`", path);
	if (fchownat(dirfd, name, (uid_t)s->a[3].i, (gid_t)s->a[4].i,
		     AT_SYMLINK_NOFOLLOW) < 0)
		fail(st, "chown", "chown device `%s`", path);
	close(dirfd);
}

static void op_symlink(struct px_state *st, const struct px_step *s)
{
	const char *target = s->a[0].s;
	const char *path = s->a[1].s;
	char parent[4096];
	const char *name = split_path(path, parent, sizeof(parent));
	int dirfd = open_in_root(st, parent, O_PATH | O_DIRECTORY, 0);

	if (dirfd < 0)
		fail(st, "openat2", "open parent of symlink `%s`", path);
	if (symlinkat(target, dirfd, name) < 0 && errno != EEXIST)
		fail(st, "symlink", "symlink `%s` -> `%s`", path, target);
	close(dirfd);
}

/*
 * Open /proc/<rel> for writing through a private copy of the proc mount.
 * open_tree(OPEN_TREE_CLONE) without AT_RECURSIVE copies that one mount
 * and none stacked on it, and RESOLVE_NO_XDEV keeps the lookup on it: a
 * bind or tmpfs that the config (or a symlink in the rootfs) put over
 * /proc/sys/... cannot take the write elsewhere, not even to another
 * procfs file (CVE-2025-52881). Without the privilege to clone mounts
 * there were no mounts of ours to fear: open the path as it is.
 */
static int open_proc_file(struct px_state *st, const char *path, int host)
{
	struct open_how how;
	int tree;
	int fd;
	int err;

	if (strncmp(path, "/proc/", 6) != 0) {
		errno = EINVAL;
		return -1;
	}
	tree = (int)syscall(SYS_open_tree, host ? AT_FDCWD : st->root_fd,
			    host ? "/proc" : "proc", OPEN_TREE_CLONE |
			    OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
	if (tree < 0 && (errno == EPERM || errno == ENOSYS)) {
		if (host)
			return open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		return open_in_root(st, path, O_WRONLY | O_NOFOLLOW, 0);
	}
	if (tree < 0)
		return -1;
	memset(&how, 0, sizeof(how));
	how.flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV |
		      RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, tree, path + 6, &how, sizeof(how));
	err = errno;
	close(tree);
	errno = err;
	return fd;
}

/*
 * Write a procfs file (sysctl, oom_score_adj). The file must really be on
 * procfs, and the very file named: see open_proc_file.
 */
static void op_write_proc(struct px_state *st, const struct px_step *s)
{
	const char *path = s->a[0].s;
	struct statfs sfs;
	ssize_t n;
	int fd;

	fd = open_proc_file(st, path, (int)s->a[2].i);
	if (fd < 0)
		fail(st, "open", "open `%s`", path);
	if (fstatfs(fd, &sfs) < 0)
		fail(st, "fstatfs", "statfs `%s`", path);
	if (sfs.f_type != PROC_SUPER_MAGIC) {
		errno = EPERM;
		fail(st, "fstatfs", "`%s` is not on procfs", path);
	}
	n = write(fd, s->a[1].s, s->a[1].len);
	if (n != (ssize_t)s->a[1].len)
		fail(st, "write", "write `%s` to `%s`", s->a[1].s, path);
	close(fd);
}

/*
 * Does walking ".." up from the cwd meet the process's root? The walk
 * stops at the root when the cwd is inside it; from outside it climbs to
 * the top of the host's tree, whose ".." is itself, without meeting it.
 */
static int cwd_reaches_root(void)
{
	struct stat root, here, up;
	int fd, parent, depth;

	if (stat("/", &root) < 0)
		return 0;
	fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	for (depth = 0; depth < 4096; depth++) {
		if (fstat(fd, &here) < 0)
			break;
		if (here.st_dev == root.st_dev && here.st_ino == root.st_ino) {
			close(fd);
			return 1;
		}
		parent = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0 || fstat(parent, &up) < 0) {
			if (parent >= 0)
				close(parent);
			break;
		}
		close(fd);
		fd = parent;
		if (up.st_dev == here.st_dev && up.st_ino == here.st_ino)
			break;
	}
	close(fd);
	return 0;
}

static void op_chdir(struct px_state *st, const struct px_step *s)
{
	const char *path = s->a[0].s;
	char cwd[4096];
	int inside;

	if (s->a[1].i) {
		if (mkdir_in_root(st, path, 0755) < 0)
			fail(st, "mkdir", "create cwd `%s`", path);
		return;
	}
	if (chdir(path) < 0)
		fail(st, "chdir", "chdir to cwd (\"%s\") set in config.json",
		     path);
	/*
	 * A cwd reached through a leaked fd would lie outside the root and
	 * getcwd() says "(unreachable)" (CVE-2024-21626). A seccomp profile
	 * may deny getcwd itself (the filter is loaded by now unless
	 * noNewPrivileges is set): then walk up instead.
	 */
	if (getcwd(cwd, sizeof(cwd)))
		inside = cwd[0] == '/';
	else if (errno == ENOENT)
		inside = 0;
	else
		inside = cwd_reaches_root();
	if (!inside) {
		errno = EPERM;
		fail(st, "getcwd", "cwd `%s` is outside the container", path);
	}
}

static void op_caps_bounding(struct px_state *st, const struct px_step *s)
{
	uint64_t keep = (uint64_t)s->a[0].i;
	int last = (int)s->a[1].i;
	int cap;

	for (cap = 0; cap <= last; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			fail(st, "prctl", "drop capability %d from bounding set",
			     cap);
	}
	/* Keep the permitted set across the setuid of PX_SET_USER. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail(st, "prctl", "set keepcaps");
}

static void op_set_user(struct px_state *st, const struct px_step *s)
{
	uid_t uid = (uid_t)s->a[0].i;
	gid_t gid = (gid_t)s->a[1].i;
	const gid_t *groups = (const gid_t *)s->a[2].s;
	size_t ngroups = s->a[2].s ? s->a[2].len / sizeof(gid_t) : 0;

	if (s->a[3].i && setgroups(ngroups, groups) < 0)
		fail(st, "setgroups", "set additional gids");
	if (setresgid(gid, gid, gid) < 0)
		fail(st, "setresgid", "set gid %u", gid);
	if (setresuid(uid, uid, uid) < 0)
		fail(st, "setresuid", "set uid %u", uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail(st, "prctl", "clear keepcaps");
}

static void op_caps_apply(struct px_state *st, const struct px_step *s)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];
	uint64_t eff = (uint64_t)s->a[0].i;
	uint64_t perm = (uint64_t)s->a[1].i;
	uint64_t inh = (uint64_t)s->a[2].i;
	uint64_t amb = (uint64_t)s->a[3].i;
	int last = (int)s->a[4].i;
	int cap;

	memset(&hdr, 0, sizeof(hdr));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	data[0].effective = (uint32_t)eff;
	data[1].effective = (uint32_t)(eff >> 32);
	data[0].permitted = (uint32_t)perm;
	data[1].permitted = (uint32_t)(perm >> 32);
	data[0].inheritable = (uint32_t)inh;
	data[1].inheritable = (uint32_t)(inh >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail(st, "capset", "set capabilities");
	for (cap = 0; cap <= last; cap++) {
		if (!(amb & (1ULL << cap)))
			continue;
		/*
		 * The kernel refuses an ambient capability that is not also
		 * inheritable; runc goes on without it, and so do we.
		 */
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 &&
		    errno != EPERM && errno != EINVAL)
			fail(st, "prctl", "raise ambient capability %d", cap);
	}
}

/*
 * sendmsg len bytes of data with fd attached (SCM_RIGHTS), retrying on
 * EINTR; returns what sendmsg returned.
 */
static ssize_t send_with_fd(int sock, void *data, size_t len, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { data, len };
	struct msghdr msg;
	struct cmsghdr *cm;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	memset(ctl, 0, sizeof(ctl));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl;
	msg.msg_controllen = sizeof(ctl);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n;
}

/*
 * Create the container's pty in its own devpts, hand the master to the
 * console socket and bind the slave over /dev/console.
 */
static void op_console(struct px_state *st, const struct px_step *s)
{
	int sock = (int)s->a[0].i;
	struct winsize ws;
	char name[] = "/dev/ptmx";
	char target[64];
	char source[64];
	int unlock = 0;
	int master;
	int fd;

	master = open_in_root(st, "/dev/pts/ptmx", O_RDWR | O_NOCTTY, 0);
	if (master < 0)
		fail(st, "openat2", "open /dev/pts/ptmx in rootfs");
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		fail(st, "ioctl", "unlock pty");
	st->console_fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY |
			       O_CLOEXEC);
	if (st->console_fd < 0)
		fail(st, "ioctl", "open pty peer");
	if (s->a[1].i || s->a[2].i) {
		memset(&ws, 0, sizeof(ws));
		ws.ws_row = (unsigned short)s->a[1].i;
		ws.ws_col = (unsigned short)s->a[2].i;
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			fail(st, "ioctl", "set console size");
	}

	/* exec joins a container whose /dev/console is already set. */
	if (s->a[3].i)
		goto send;
	if (mkfile_in_root(st, "/dev/console", 0) < 0)
		fail(st, "mknod", "create /dev/console");
	/*
	 * Open the target with O_NOFOLLOW so a /dev/console swapped for a
	 * symlink while we work is refused, not followed (CVE-2025-52565).
	 */
	fd = open_in_root(st, "/dev/console", O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		fail(st, "openat2", "open /dev/console");
	fd_path(target, sizeof(target), fd);
	fd_path(source, sizeof(source), st->console_fd);
	if (mount(source, target, NULL, MS_BIND, NULL) < 0)
		fail(st, "mount", "bind pty to /dev/console");
	close(fd);

send:
	if (send_with_fd(sock, name, sizeof(name), master) < 0)
		fail(st, "sendmsg", "send pty master to console socket");
	close(master);
	close(sock);
}

static void op_console_stdio(struct px_state *st)
{
	int i;

	if (setsid() < 0)
		fail(st, "setsid", "create session");
	if (ioctl(st->console_fd, TIOCSCTTY, 0) < 0)
		fail(st, "ioctl", "set controlling terminal");
	for (i = 0; i < 3; i++) {
		if (dup3(st->console_fd, i, 0) < 0)
			fail(st, "dup3", "set stdio to the pty");
	}
}

/*
 * Make the runtime's pipes (arguments 0-2) the process's stdin, stdout
 * and stderr: a foreground `run` or `exec` relays them, so that the
 * container never holds the caller's own files or terminal, as runc.
 */
static void op_stdio(struct px_state *st, const struct px_step *s)
{
	int i;

	for (i = 0; i < 3; i++) {
		if (dup3((int)s->a[i].i, i, 0) < 0)
			fail(st, "dup3", "set up stdio from the runtime's pipes");
	}
}

/* Wait for pid with a timeout in seconds (0: none), via a pidfd. */
static int wait_timeout(pid_t pid, int timeout, int *status)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p;
	int r;

	if (pfd >= 0) {
		p.fd = pfd;
		p.events = POLLIN;
		do {
			r = poll(&p, 1, timeout > 0 ? timeout * 1000 : -1);
		} while (r < 0 && errno == EINTR);
		close(pfd);
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			errno = ETIMEDOUT;
			return -1;
		}
	}
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* Run a hook with the container state on its stdin. */
static void op_hook(struct px_state *st, const struct px_step *s)
{
	const char *path = s->a[0].s;
	const char *json = s->a[4].s ? s->a[4].s : st->payload;
	size_t len = s->a[4].s ? s->a[4].len : st->payload_len;
	int pipefd[2];
	int status;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		fail(st, "pipe2", "pipe for hook `%s`", path);
	pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0)
		fail(st, "clone", "fork hook `%s`", path);
	if (pid == 0) {
		dup2(pipefd[0], 0);
		execve(path, s->a[1].v, s->a[2].v);
		dprintf(2, "pyrunc: exec hook %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(pipefd[0]);
	if (json && len) {
		/* A hook that does not read its stdin gets EPIPE: fine. */
		signal(SIGPIPE, SIG_IGN);
		if (write(pipefd[1], json, len) < 0 && errno != EPIPE)
			fail(st, "write", "state to hook `%s`", path);
	}
	close(pipefd[1]);
	if (wait_timeout(pid, (int)s->a[3].i, &status) < 0)
		fail(st, "waitpid", "hook `%s`", path);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		errno = 0;
		fail(st, "hook", "%s hook `%s` failed with status %d",
		     s->a[5].s ? s->a[5].s : "", path,
		     WIFEXITED(status) ? WEXITSTATUS(status) :
		     128 + WTERMSIG(status));
	}
}

static void op_sync(struct px_state *st, const struct px_step *s)
{
	char buf[65536];
	ssize_t n;

	/*
	 * An unprivileged parent writes our id maps and setgroups at this
	 * point: it can open those files only while we are dumpable.
	 */
	if (s->a[1].i && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		fail(st, "prctl", "make the child dumpable for its id maps");
	send_msg(st, PX_MSG_SYNC, (int)s->a[0].i, 0, NULL, NULL);
	do {
		n = recv(st->sync_fd, buf, sizeof(buf) - 1, 0);
	} while (n < 0 && errno == EINTR);
	/* No answer, or a refusal: the parent reports why; just go. */
	if (n <= 0 || buf[0] != 0)
		_exit(1);
	if (s->a[1].i && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail(st, "prctl", "make the child non-dumpable again");
	if (n > 1) {
		if (st->payload)
			munmap(st->payload, st->payload_size);
		st->payload = child_alloc((size_t)n);
		if (!st->payload)
			fail(st, "mmap", "sync payload");
		st->payload_size = (size_t)n;
		memcpy(st->payload, buf + 1, (size_t)n - 1);
		st->payload[n - 1] = '\0';
		st->payload_len = (size_t)n - 1;
	}
}

static void op_fork(struct px_state *st, const struct px_step *s)
{
	unsigned long flags = (unsigned long)s->a[0].i | SIGCHLD;
	int gate[2];
	pid_t pid;
	char c;

	if (pipe2(gate, O_CLOEXEC) < 0)
		fail(st, "pipe2", "clone the container process");
	pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
	if (pid < 0)
		fail(st, "clone", "clone the container process");
	if (pid > 0) {
		close(gate[0]);
		send_msg(st, PX_MSG_PID, pid, 0, NULL, NULL);
		_exit(0);
	}
	/*
	 * Nothing of ours may reach the parent before our pid does: it
	 * joins "the last pid reported" to the cgroup and writes its id
	 * maps. The pipe reads EOF once the intermediate, having sent the
	 * pid, exits.
	 */
	close(gate[1]);
	while (read(gate[0], &c, 1) < 0 && errno == EINTR)
		;
	close(gate[0]);
}

/*
 * Go's findExecutable, which runc's lookup uses: stat(2), then any
 * execute bit on anything but a directory (the mode, not access(2)).
 * Returns 0, or -1 with errno set and *stat_failed telling which check
 * refused.
 */
static int find_executable(const char *path, int *stat_failed)
{
	struct stat sb;

	*stat_failed = stat(path, &sb) < 0;
	if (*stat_failed)
		return -1;
	if (S_ISDIR(sb.st_mode) || !(sb.st_mode & 0111)) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

/*
 * Find the executable as runc 1.1 does with Go's exec.LookPath. A name
 * with a slash is used as it is. Otherwise each entry of the process's
 * own PATH is tried: there is no default PATH, an empty entry means ".",
 * and a match in a relative directory is refused (Go 1.19's ErrDot).
 * The plan runs this after the chdir to the cwd and the switch to the
 * user, where runc looks the program up too.
 */
static void op_lookup(struct px_state *st, const struct px_step *s)
{
	const char *name = s->a[0].s;
	char *const *env = s->a[1].v;
	const char *path = "";
	const char *p, *end;
	int stat_failed;
	int i, n;

	if (strchr(name, '/')) {
		if (find_executable(name, &stat_failed) < 0) {
			if (stat_failed)
				fail(st, "exec", "exec: \"%s\": stat %s",
				     name, name);
			fail(st, "exec", "exec: \"%s\"", name);
		}
		snprintf(st->exe, sizeof(st->exe), "%s", name);
		return;
	}
	/* The last PATH counts, as the process's environment keeps it. */
	for (i = 0; env && env[i]; i++) {
		if (!strncmp(env[i], "PATH=", 5))
			path = env[i] + 5;
	}
	for (p = path; *path; p = end + 1) {
		end = strchrnul(p, ':');
		if (end == p)
			n = snprintf(st->exe, sizeof(st->exe), "./%s", name);
		else
			n = snprintf(st->exe, sizeof(st->exe), "%.*s/%s",
				     (int)(end - p), p, name);
		if (n > 0 && (size_t)n < sizeof(st->exe) &&
		    find_executable(st->exe, &stat_failed) == 0) {
			if (st->exe[0] != '/') {
				errno = 0;
				fail(st, "exec", "exec: \"%s\": cannot run "
				     "executable found relative to current "
				     "directory", name);
			}
			return;
		}
		if (!*end)
			break;
	}
	errno = 0;
	fail(st, "exec", "exec: \"%s\": executable file not found in $PATH",
	     name);
}

static void op_wait_fifo(struct px_state *st, const struct px_step *s)
{
	char path[64];
	int fd;

	/* Blocks until `start` opens the fifo for reading. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", (int)s->a[0].i);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail(st, "open", "open exec fifo");
	if (write(fd, "0", 1) != 1)
		fail(st, "write", "write exec fifo");
	close(fd);
	close((int)s->a[0].i);
}

#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif

/*
 * Hand the seccomp listener fd to the parent: a SYNC message tagged
 * `tag` with the fd attached (SCM_RIGHTS). The parent passes it on to the
 * agent, then answers as at any sync point. The message goes out with the
 * sendmsg syscall, which a profile may therefore not send to the agent.
 */
static void send_listener(struct px_state *st, int tag, int fd)
{
	struct px_msg m;
	char answer[64];
	ssize_t n;

	memset(&m, 0, sizeof(m));
	m.kind = PX_MSG_SYNC;
	m.arg = tag;
	m.step = st->step;
	if (send_with_fd(st->sync_fd, &m, sizeof(m), fd) < 0)
		fail(st, "sendmsg", "send the seccomp listener fd");
	do {
		n = recv(st->sync_fd, answer, sizeof(answer), 0);
	} while (n < 0 && errno == EINTR);
	/* No answer, or a refusal: the parent reports why; just go. */
	if (n <= 0 || answer[0] != 0)
		_exit(1);
}

/*
 * With the filter loaded before READY, the READY message itself must
 * still get through: a profile whose default denies sendto with an errno
 * would lose it silently and leave the parent waiting. Probe with a
 * harmless sendto on a bad fd: the kernel says EBADF unless the filter
 * answered first.
 */
static void check_can_report(struct px_state *st)
{
	static const char text[] = "the seccomp profile denies sendto, "
		"which the runtime needs after loading it; allow sendto or "
		"set process.noNewPrivileges";
	long r = syscall(SYS_sendto, -1, NULL, 0, 0, NULL, 0);
	struct px_msg m;

	if (r < 0 && errno == EBADF)
		return;
	/* send_msg uses sendto: try write, then stderr. */
	memset(&m, 0, sizeof(m));
	m.kind = PX_MSG_ERROR;
	m.step = st->step;
	snprintf(m.op, sizeof(m.op), "seccomp");
	snprintf(m.text, sizeof(m.text), "%s", text);
	if (write(st->sync_fd, &m, sizeof(m)) == (ssize_t)sizeof(m))
		_exit(1);
	close(st->sync_fd);
	st->sync_fd = -1;
	errno = 0;
	fail(st, "seccomp", "%s", text);
}

/*
 * Load the filter the parent built with libseccomp: (bpf, flags, tag).
 * With SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the listener
 * fd, handed to the parent at sync point `tag`, then closed here.
 */
static void op_seccomp(struct px_state *st, const struct px_step *s)
{
	struct sock_fprog prog;
	unsigned int flags = (unsigned int)s->a[1].i;
	long fd;

	prog.len = (unsigned short)(s->a[0].len / sizeof(struct sock_filter));
	prog.filter = (struct sock_filter *)s->a[0].s;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (fd < 0)
		fail(st, "seccomp", "load seccomp filter");
	if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
		if (st->sync_fd < 0) {
			errno = EINVAL;
			fail(st, "seccomp", "no parent to take the seccomp "
			     "listener fd");
		}
		send_listener(st, (int)s->a[2].i, (int)fd);
		close((int)fd);
		return;
	}
	if (st->sync_fd >= 0)
		check_can_report(st);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/*
 * Close every fd past the preserved ones but those the remaining steps
 * need (and those close-on-exec), so no runtime fd reaches the container
 * (CVE-2024-21626). Closing now, not at execve, also drops fds such as
 * the state lock while the process waits on the exec fifo.
 */
static void op_close_fds(struct px_state *st, const struct px_step *s)
{
	unsigned int first = (unsigned int)s->a[0].i;
	int keep[5] = { st->sync_fd, (int)s->a[1].i, st->root_fd,
			 st->console_fd, (int)s->a[2].i };
	unsigned int from = first;
	int i;

	qsort(keep, 5, sizeof(int), cmp_int);
	for (i = 0; i < 5; i++) {
		if (keep[i] < 0 || (unsigned int)keep[i] < from)
			continue;
		if ((unsigned int)keep[i] > from &&
		    syscall(SYS_close_range, from, keep[i] - 1, 0) < 0)
			fail(st, "close_range", "close runtime fds");
		from = (unsigned int)keep[i] + 1;
	}
	if (syscall(SYS_close_range, from, ~0U, 0) < 0)
		fail(st, "close_range", "close runtime fds");
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		fail(st, "close_range", "mark fds close-on-exec");
	/*
	 * The exec fifo (argument 1) is reopened through /proc/self/fd once
	 * `start` reads it. In a container without /proc that open would
	 * fail after READY, where the error no longer reaches the runtime
	 * and `start` only sees a dead process: fail here instead, as runc
	 * does when it lists /proc/self/fd to close the runtime's fds.
	 */
	if ((int)s->a[1].i >= 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d",
			 (int)s->a[1].i);
		if (access(path, F_OK) < 0)
			fail(st, "open", "error closing exec fds: open %s",
			     path);
	}
}

/*
 * Exec the program through the sealed pyrunc-dmz memfd (argument 2), so
 * that /proc/self/exe never names the runtime's interpreter while the
 * kernel loads it (CVE-2019-5736): pyrunc-dmz PATH ARGV... Argument 3,
 * when not empty, is the memfd's /proc/self/fd path, for a seccomp
 * profile that denies execveat.
 */
static void __attribute__((noreturn))
op_exec(struct px_state *st, const struct px_step *s)
{
	char *const *argv = s->a[0].v;
	int dmz = (int)s->a[2].i;
	char **dmz_argv;
	size_t n = 0;

	if (st->console_fd > 2)
		close(st->console_fd);
	if (dmz < 0) {
		execve(st->exe, argv, s->a[1].v);
		fail(st, "execve", "exec `%s`", st->exe);
	}
	while (argv[n])
		n++;
	dmz_argv = child_alloc((n + 3) * sizeof(char *));
	if (!dmz_argv)
		fail(st, "mmap", "exec `%s`", st->exe);
	dmz_argv[0] = "pyrunc-dmz";
	dmz_argv[1] = st->exe;
	memcpy(dmz_argv + 2, argv, n * sizeof(char *));
	if (!s->a[3].s[0]) {
		syscall(SYS_execveat, dmz, "", dmz_argv, s->a[1].v,
			AT_EMPTY_PATH);
		fail(st, "execveat", "exec `%s` through pyrunc-dmz", st->exe);
	}
	/* The seccomp profile denies execveat: the same memfd by path. */
	execve(s->a[3].s, dmz_argv, s->a[1].v);
	if (errno != ENOENT)
		fail(st, "execve", "exec `%s` through pyrunc-dmz", st->exe);
	/* No /proc in the container, so no /proc/self/exe to reach. */
	execve(st->exe, argv, s->a[1].v);
	fail(st, "execve", "exec `%s`", st->exe);
}

static void run_step(struct px_state *st, const struct px_step *s)
{
	switch (s->op) {
	case PX_SET_ROOT:
		if (st->root_fd >= 0)
			close(st->root_fd);
		st->root_fd = open(s->a[0].s, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (st->root_fd < 0)
			fail(st, "open", "open rootfs `%s`", s->a[0].s);
		break;
	case PX_SETNS: {
		int fd = open(s->a[0].s, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			fail(st, "open", "open namespace `%s`", s->a[0].s);
		if (setns(fd, (int)s->a[1].i) < 0)
			fail(st, "setns", "join namespace `%s`", s->a[0].s);
		close(fd);
		break;
	}
	case PX_UNSHARE:
		if (unshare((int)s->a[0].i) < 0)
			fail(st, "unshare", "unshare namespaces %#llx",
			     (long long)s->a[0].i);
		break;
	case PX_SYNC:
		op_sync(st, s);
		break;
	case PX_FORK:
		op_fork(st, s);
		break;
	case PX_MOUNT:
		op_mount(st, s);
		break;
	case PX_MKDIR:
		if (mkdir_in_root(st, s->a[0].s, (mode_t)s->a[1].i) < 0)
			fail(st, "mkdir", "mkdir `%s` in rootfs", s->a[0].s);
		break;
	case PX_MKNOD:
		op_mknod(st, s);
		break;
	case PX_SYMLINK:
		op_symlink(st, s);
		break;
	case PX_MAKE_PARENT_PRIVATE:
		op_make_parent_private(st, s);
		break;
	case PX_PIVOT_ROOT:
		op_pivot_root(st);
		break;
	case PX_MOVE_ROOT:
		op_move_root(st, s);
		break;
	case PX_MASK:
		op_mask(st, s);
		break;
	case PX_READONLY:
		op_readonly(st, s);
		break;
	case PX_REMOUNT_ROOT_RO:
		op_remount_root_ro(st);
		break;
	case PX_SETHOSTNAME:
		if (sethostname(s->a[0].s, s->a[0].len) < 0)
			fail(st, "sethostname", "set hostname `%s`", s->a[0].s);
		break;
	case PX_SETDOMAINNAME:
		if (setdomainname(s->a[0].s, s->a[0].len) < 0)
			fail(st, "setdomainname", "set domainname `%s`",
			     s->a[0].s);
		break;
	case PX_WRITE_PROC:
		op_write_proc(st, s);
		break;
	case PX_CHDIR:
		op_chdir(st, s);
		break;
	case PX_SETRLIMIT: {
		struct rlimit rl;

		rl.rlim_cur = (rlim_t)s->a[1].i;
		rl.rlim_max = (rlim_t)s->a[2].i;
		if (setrlimit((int)s->a[0].i, &rl) < 0)
			fail(st, "setrlimit", "set rlimit %lld",
			     (long long)s->a[0].i);
		break;
	}
	case PX_UMASK:
		umask((mode_t)s->a[0].i);
		break;
	case PX_CAPS_BOUNDING:
		op_caps_bounding(st, s);
		break;
	case PX_SET_USER:
		op_set_user(st, s);
		break;
	case PX_CAPS_APPLY:
		op_caps_apply(st, s);
		break;
	case PX_NO_NEW_PRIVS:
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			fail(st, "prctl", "set no_new_privs");
		break;
	case PX_CONSOLE:
		op_console(st, s);
		break;
	case PX_CONSOLE_STDIO:
		op_console_stdio(st);
		break;
	case PX_SETSID:
		if (setsid() < 0)
			fail(st, "setsid", "create session");
		break;
	case PX_CLOSE_FDS:
		op_close_fds(st, s);
		break;
	case PX_HOOK:
		op_hook(st, s);
		break;
	case PX_READY:
		send_msg(st, PX_MSG_READY, 0, 0, NULL, NULL);
		close(st->sync_fd);
		st->sync_fd = -1;
		break;
	case PX_WAIT_FIFO:
		op_wait_fifo(st, s);
		break;
	case PX_SECCOMP:
		op_seccomp(st, s);
		break;
	case PX_LOOKUP:
		op_lookup(st, s);
		break;
	case PX_EXEC:
		op_exec(st, s);
	case PX_BIND_DEV: {
		struct px_step m;

		memset(&m, 0, sizeof(m));
		m.op = PX_MOUNT;
		m.a[0].s = s->a[0].s;
		m.a[1].s = s->a[1].s;
		m.a[3].i = MS_BIND;
		m.a[5].i = PX_MNT_MKFILE | PX_MNT_BIND;
		op_mount(st, &m);
		break;
	}
	case PX_KEYRING:
		/* A fresh session keyring, so keys do not leak in. */
		if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */,
			    s->a[0].s) < 0 && errno != ENOSYS)
			fail(st, "keyctl", "join session keyring");
		break;
	case PX_STDIO:
		op_stdio(st, s);
		break;
	case PX_CHROOT:
		/* No mount namespace: the best we can do is chroot. */
		if (fchdir(st->root_fd) < 0)
			fail(st, "fchdir", "enter rootfs");
		if (chroot(".") < 0)
			fail(st, "chroot", "chroot into rootfs");
		if (chdir("/") < 0)
			fail(st, "chdir", "chdir to new root");
		break;
	default:
		errno = EINVAL;
		fail(st, "plan", "unknown step %d", s->op);
	}
}

/*
 * Until execve, /proc/<pid>/cmdline of the child is the runtime's own
 * command line, host paths included (--root, the bundle), and anyone in
 * the container's pid namespace may read it: dumpable or not. Overwrite
 * it in the child's copy of the memory, and the name too, as runc's
 * child shows "runc init". Best effort: the kernel says where the
 * arguments lie in /proc/self/stat (fields 48 and 49, Linux 3.5).
 */
static void hide_cmdline(void)
{
	static const char title[] = "pyrunc init";
	char stat[2048];
	unsigned long start = 0, end = 0;
	const char *p;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	int field;

	prctl(PR_SET_NAME, "pyrunc:init", 0, 0, 0);
	if (fd < 0)
		return;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return;
	stat[n] = '\0';
	/* The name, field 2, may hold spaces and parentheses. */
	p = strrchr(stat, ')');
	for (field = 2; p && field < 49; field++) {
		p = strchr(p + 1, ' ');
		if (p && field + 1 == 48)
			start = strtoul(p + 1, NULL, 10);
		if (p && field + 1 == 49)
			end = strtoul(p + 1, NULL, 10);
	}
	if (!start || end <= start)
		return;
	memset((void *)start, 0, end - start);
	memcpy((void *)start, title,
	       end - start < sizeof(title) ? end - start - 1 : sizeof(title));
}

static void __attribute__((noreturn)) run_plan(const struct px_plan *plan)
{
	struct px_state st;
	int i;

	memset(&st, 0, sizeof(st));
	st.plan = plan;
	st.sync_fd = plan->sync_fd;
	st.root_fd = -1;
	st.console_fd = -1;
	if (plan->close_fd >= 0)
		close(plan->close_fd);
	/* Die with the runtime while it still waits for us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/*
	 * Until execve the child is a copy of the runtime: /proc/<pid>/exe is
	 * the host's interpreter, cwd and fds are the host's. Non-dumpable, it
	 * is out of reach of the container's processes, which see it as soon
	 * as it joins their pid namespace (CVE-2016-9962, CVE-2019-5736).
	 * execve makes the container's process dumpable again.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail(&st, "prctl", "make the runtime's child non-dumpable");
	hide_cmdline();
	for (i = 0; i < plan->nsteps; i++) {
		st.step = i;
		if (plan->steps[i].op == PX_READY)
			prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
		run_step(&st, &plan->steps[i]);
	}
	errno = EINVAL;
	fail(&st, "plan", "plan ended without exec");
}

int px_spawn(const struct px_plan *plan, unsigned long clone_flags)
{
	pid_t pid;

	/*
	 * The raw clone syscall with no stack behaves like fork: the child
	 * continues here on a copy of our stack, and runs only C code.
	 */
	pid = (pid_t)syscall(SYS_clone, clone_flags | SIGCHLD, NULL, NULL,
			     NULL, 0);
	if (pid != 0)
		return pid;
	run_plan(plan);
}
