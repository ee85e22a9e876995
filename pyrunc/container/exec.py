"""exec: run another process inside a running container."""

from pyrunc import log as _log
import os

from pyrunc.errors import InvalidState, PyruncError

log = _log.get_logger(__name__)

# The runtime-spec's namespace types and their names under /proc/pid/ns,
# in the order runc joins them.
NS_FILES = (
    ("user", "user"), ("ipc", "ipc"), ("uts", "uts"), ("network", "net"),
    ("pid", "pid"), ("time", "time"), ("mount", "mnt"), ("cgroup", "cgroup"),
)


def exec_process(store, cid, process, *, detach=False, pid_file=None,
                 console_socket=None, preserve_fds=0, ignore_paused=False):
    """Run process (a spec Process) in container cid.

    Detached, return 0 once it runs; in the foreground, wait and return
    its exit status. Errors are raised; the CLI reports them with exit
    status 255, as runc does.
    """
    launch_args = {"detach": detach, "console_socket": console_socket,
                   "preserve_fds": preserve_fds}
    with store.lock(cid):
        record = store.load(cid)
        status = record.status(store)
        if status == "stopped":
            raise InvalidState("cannot exec in a stopped container")
        if status == "paused" and not ignore_paused:
            raise InvalidState("cannot exec in a paused container (use "
                               "--ignore-paused to override)")
        check_terminal(process, detach, console_socket)
        host = None
        if process.terminal and not detach:
            from pyrunc.container.tty import host_console

            # Before any process starts, as runc's exec.
            host = host_console()
        try:
            if status != "paused":
                pid, master, pipes = launch_exec(record, process,
                                                 **launch_args)
        except BaseException:
            close_console(host)
            raise
    if status == "paused":
        # Outside the lock: the process freezes as it joins the paused
        # cgroup and reports nothing until `resume`, which takes the
        # lock. runc's exec waits for the resume the same way.
        try:
            pid, master, pipes = launch_exec(record, process, **launch_args)
        except BaseException:
            close_console(host)
            raise
    if pid_file:
        from pyrunc.container.create import write_pid_file

        write_pid_file(pid_file, pid)
    if detach:
        return 0
    from pyrunc.container.run import poll_exit, wait_for

    if master is not None:
        from pyrunc.container.tty import relay

        return relay(master, pid, lambda: poll_exit(pid), console=host)
    try:
        return wait_for(pid, pipes)
    finally:
        if pipes is not None:
            # As runc: up to the end of the output, which a process the
            # exec'd one left behind may still hold open.
            pipes.drain()
            pipes.close()


def check_terminal(process, detach, console_socket):
    """runc's checkTerminal: the console socket is for a detached process
    with a terminal only; in the foreground exec relays the pty itself."""
    if process.terminal and detach and not console_socket:
        raise PyruncError("cannot allocate tty if runc will detach without "
                          "setting console socket")
    if console_socket and not (detach and process.terminal):
        raise PyruncError("cannot use console socket if runc will not "
                          "detach or allocate tty")


def close_console(host):
    """Close host_console()'s fd if it opened one."""
    if host is not None and host[1]:
        os.close(host[0])


def namespace_joins(record):
    """(type, /proc/<pid>/ns/<name>) for each namespace of the container."""
    linux = record.config.get("linux") or {}
    wanted = {ns.get("type") for ns in linux.get("namespaces") or ()}
    return [(kind, f"/proc/{record.pid}/ns/{name}")
            for kind, name in NS_FILES if kind in wanted]


def launch_exec(record, process, *, detach, console_socket, preserve_fds):
    """Clone the exec'd process; return (pid, pty master or None, stdio
    Pipes or None)."""
    from pyrunc._native.launcher import set_child_subreaper, socketpair
    from pyrunc.cgroups import manager_from_dict
    from pyrunc.container.create import connect_console
    from pyrunc.process import plan as planner
    from pyrunc.process import prewarm
    from pyrunc.process.dmz import sealed_fd
    from pyrunc.process.launch import launch
    from pyrunc.seccomp import SYNC_NOTIFY

    if not detach:
        # A joined pid namespace means the process is our grandchild.
        set_child_subreaper()
    console = None
    fds = []
    if process.terminal:
        if console_socket:
            fds.append(connect_console(console_socket))
        else:
            console = socketpair()
            fds.append(console[1])
    console_fd = fds[0] if fds else -1
    dmz_fd = sealed_fd()
    fds.append(dmz_fd)
    pipes = None
    if not detach and not process.terminal:
        pipes = foreground_pipes(record)
        fds.extend(pipes.child)
    opts = planner.Options(
        cid=record.id, bundle=record.bundle, console_fd=console_fd,
        preserve_fds=preserve_fds, dmz_fd=dmz_fd,
        stdio=None if pipes is None else pipes.child)
    seccomp = (record.config.get("linux") or {}).get("seccomp")
    plan = planner.build_exec(process, namespace_joins(record), opts,
                              f"/proc/{record.pid}/root", seccomp=seccomp)
    manager = manager_from_dict(record.cgroup) if record.cgroup else None

    def on_sync(tag, pid, fd=-1):
        if tag == planner.SYNC_CGROUP and manager is not None:
            manager.apply(pid)
        if tag == SYNC_NOTIFY:
            from pyrunc.container.create import oci_state
            from pyrunc.seccomp.notify import forward

            return forward(seccomp, fd, pid, oci_state(record, "running"))
        return b""

    # The CLI's helper (pyrunc.process.prewarm) is gone before the
    # exec'd process exists.
    prewarm.finish()
    try:
        pid = launch(plan, on_sync)
    except BaseException as err:
        if console is not None:
            os.close(console[0])
        if pipes is not None:
            pipes.child = ()
            pipes.close()
        if not isinstance(err, PyruncError):
            raise
        raise PyruncError(
            f"unable to start container process: {err}") from err
    finally:
        for fd in fds:
            os.close(fd)
    if pipes is not None:
        # Closed with fds: only the process holds its ends now.
        pipes.child = ()
    master = None
    if console is not None:
        from pyrunc.container.tty import receive_master

        master = receive_master(console[0])
    return pid, master, pipes


def foreground_pipes(record):
    """The stdio Pipes of a foreground exec, owned by the container's
    root as the container's own were (runc's HostRootUID)."""
    from pyrunc.process.stdio import Pipes, host_root

    pipes = Pipes()
    linux = record.config.get("linux") or {}
    ids = []
    for key in ("uidMappings", "gidMappings"):
        ids.append(host_root(
            (m.get("containerID", 0), m.get("hostID", 0), m.get("size", 0))
            for m in linux.get(key) or ()))
    try:
        if None not in ids:
            pipes.give_to(*ids)
    except BaseException:
        pipes.close()
        raise
    return pipes


def process_from_file(path):
    """Read a runtime-spec Process JSON (`exec --process`)."""
    from pyrunc import jsonfast
    from pyrunc.errors import SpecError
    from pyrunc.spec.load import parse_process

    try:
        if path == "-":
            import sys

            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        obj = jsonfast.loads(data)
    except OSError as err:
        raise PyruncError(f"--process {path}: {err.strerror}") from None
    except ValueError as err:
        raise SpecError("process", f"invalid JSON: {err}") from None
    return parse_process(obj)


def process_from_args(record, args, *, tty=False, cwd=None, env=(),
                      user=None, additional_gids=(), caps=(),
                      no_new_privs=False, apparmor=None, label=None):
    """The container's own process, changed as runc's exec flags say."""
    from pyrunc.spec.load import parse_process

    base = dict(record.config.get("process") or {})
    if not args:
        raise PyruncError("exec args cannot be empty")
    base["args"] = list(args)
    base["terminal"] = bool(tty)
    base.pop("consoleSize", None)
    if cwd:
        base["cwd"] = cwd
    base["env"] = list(base.get("env") or []) + list(env)
    if user:
        base["user"] = parse_user(user, base.get("user") or {},
                                  f"/proc/{record.pid}/root")
    if additional_gids:
        u = dict(base.get("user") or {})
        u["additionalGids"] = list(u.get("additionalGids") or []) + \
            [int(g) for g in additional_gids]
        base["user"] = u
    if caps:
        c = dict(base.get("capabilities") or {})
        for name in ("bounding", "effective", "permitted"):
            c[name] = list(c.get(name) or []) + list(caps)
        base["capabilities"] = c
    if no_new_privs:
        base["noNewPrivileges"] = True
    if apparmor:
        base["apparmorProfile"] = apparmor
    if label:
        base["selinuxLabel"] = label
    return parse_process(base)


def parse_user(text, current, root):
    """`-u uid[:gid]` or `name[:group]`, names from the container.

    A numeric uid alone keeps config.json's gid, as runc (which takes
    numbers only) does; a name alone takes its group from /etc/passwd.
    """
    name, _, group = text.partition(":")
    user = dict(current)
    user.pop("additionalGids", None)
    uid, gid = lookup_user(name, root)
    user["uid"] = uid
    if group:
        user["gid"] = lookup_group(group, root)
    elif not name.isdigit():
        user["gid"] = gid if gid is not None else 0
    else:
        user.setdefault("gid", 0)
    return user


def lookup_user(name, root):
    if name.isdigit():
        uid = int(name)
        for fields in read_db(root, "etc/passwd"):
            if len(fields) >= 4 and fields[2] == name:
                return uid, int(fields[3])
        return uid, None
    for fields in read_db(root, "etc/passwd"):
        if len(fields) >= 4 and fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise PyruncError(f"unable to find user {name}: no matching entries "
                      "in passwd file")


def lookup_group(name, root):
    if name.isdigit():
        return int(name)
    for fields in read_db(root, "etc/group"):
        if len(fields) >= 3 and fields[0] == name:
            return int(fields[2])
    raise PyruncError(f"unable to find group {name}: no matching entries "
                      "in group file")


def read_db(root, relpath):
    from pyrunc.process.plan import read_in_rootfs

    try:
        data = read_in_rootfs(root, relpath)
    except OSError:
        return []
    return [line.split(":") for line in data.decode(errors="replace")
            .splitlines() if line and not line.startswith("#")]
