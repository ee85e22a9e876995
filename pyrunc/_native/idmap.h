/*
 * The parent's half of idmapped mounts: system calls the runtime makes
 * before it clones the container's child (see idmap.c).
 */
#ifndef PYRUNC_IDMAP_H
#define PYRUNC_IDMAP_H

/*
 * Fork a child in a new user namespace that only waits to be killed.
 * Returns its pid, or -1 with errno set.
 */
int px_userns_child(void);

/*
 * Clone the mount at source (every mount below it too when
 * recursive_tree) into a detached tree, set its propagation (MS_SLAVE,
 * MS_PRIVATE; 0 keeps the source's) and idmap it with the user
 * namespace userns_fd (the whole tree when recursive_idmap). Returns the
 * tree's fd (close-on-exec), or -1 with errno set and *failed naming the
 * system call.
 */
int px_idmapped_tree(const char *source, int userns_fd, int recursive_tree,
		     int recursive_idmap, unsigned long propagation,
		     const char **failed);

#endif
