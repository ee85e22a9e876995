"""create: set up a container and leave its process blocked before exec."""

import errno
import os
import time

from pyrunc import jsonfast
from pyrunc import log as _log
from pyrunc.errors import ConfigError, PyruncError

log = _log.get_logger(__name__)

# The largest reply the sync socket takes in one message (the kernel's
# default socket buffer, less room for its own accounting).
_MAX_PAYLOAD = 200 * 1024


def create(store, cid, bundle, *, pid_file=None, console_socket=None,
           no_pivot=False, no_new_keyring=False, preserve_fds=0,
           detach=True, console_fd=None, stdio=None):
    """Create container cid from bundle; return its Record.

    The container's process is left blocked on the exec fifo; `start`
    lets it exec. On any error nothing is left behind: no process,
    cgroup or state directory. stdio, the Pipes of a foreground `run`,
    become the process's stdio unless it has a terminal.
    """
    from pyrunc.spec.load import load_bundle

    bundle = os.path.abspath(bundle)
    spec = load_bundle(bundle, require_process=True)
    check_terminal(spec, console_socket, detach, console_fd)
    store.new(cid)
    try:
        with store.lock(cid):
            return setup(store, cid, bundle, spec, pid_file=pid_file,
                         console_socket=console_socket, no_pivot=no_pivot,
                         no_new_keyring=no_new_keyring,
                         preserve_fds=preserve_fds, console_fd=console_fd,
                         stdio=stdio)
    except BaseException:
        store.destroy(cid)
        raise


def give_pipes(pipes, linux):
    """Hand the stdio pipes to the host ids of the container's root when
    it has its own user namespace (runc's HostRootUID)."""
    from pyrunc.process.stdio import host_root

    if linux is None or not linux.uid_mappings:
        return
    uid = host_root((m.container_id, m.host_id, m.size)
                    for m in linux.uid_mappings)
    gid = host_root((m.container_id, m.host_id, m.size)
                    for m in linux.gid_mappings)
    if uid is not None and gid is not None:
        pipes.give_to(uid, gid)


def check_terminal(spec, console_socket, detach, console_fd):
    """runc's rules for process.terminal and --console-socket."""
    terminal = spec.process.terminal
    if terminal and not console_socket and console_fd is None:
        raise ConfigError("cannot allocate tty if runc will detach without "
                          "setting console socket")
    if console_socket and (not terminal or not detach):
        raise ConfigError("cannot use console socket if runc will not "
                          "detach or allocate tty")


def setup(store, cid, bundle, spec, *, pid_file, console_socket, no_pivot,
          no_new_keyring, preserve_fds, console_fd, stdio=None):
    from pyrunc.cgroups import new_manager
    from pyrunc.process import plan as planner
    from pyrunc.process import prewarm
    from pyrunc.process.dmz import sealed_fd
    from pyrunc.process.launch import launch

    linux = spec.linux
    manager = new_manager(linux.cgroups_path if linux else None, cid)
    from pyrunc.cgroups.rootless import RootlessManager, is_rootless

    if is_rootless():
        manager = RootlessManager(
            manager, explicit=bool(linux and linux.cgroups_path))
    fds = []
    try:
        # First: should this process die while making the cgroups,
        # `delete --force` finds them here.
        write_partial(store, cid, 0, 0, manager.planned_dict())
        manager.create()
        manager.set(linux.resources if linux else None,
                    linux_devices=linux.devices if linux else None)
        fifo = store.fifo_path(cid)
        os.mkfifo(fifo, 0o622)
        # The umask must not narrow it: a non-root container process
        # opens the fifo for writing after it switched user.
        os.chmod(fifo, 0o622)
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        fds.append(fifo_fd)
        dmz_fd = sealed_fd()
        fds.append(dmz_fd)
        if console_socket:
            console_fd = connect_console(console_socket)
            fds.append(console_fd)
        extra_env, preserve_fds = listen_fds(preserve_fds)
        if stdio is not None and not spec.process.terminal:
            give_pipes(stdio, linux)
        opts = planner.Options(
            cid=cid, bundle=bundle, fifo_fd=fifo_fd,
            console_fd=-1 if console_fd is None else console_fd,
            preserve_fds=preserve_fds, no_pivot=no_pivot,
            no_new_keyring=no_new_keyring, cgroup_paths=manager.paths(),
            extra_env=extra_env, dmz_fd=dmz_fd,
            stdio=None if stdio is None else stdio.child)
        plan = planner.build(spec, opts)
        record = new_record(store, cid, bundle, spec, plan, manager)

        def on_sync(tag, pid, fd=-1):
            if tag == planner.SYNC_CGROUP:
                manager.apply(pid)
                write_id_maps(pid, plan)
                record.pid = pid
                record.pid_start = start_time(pid)
                write_partial(store, cid, pid, record.pid_start,
                              record.cgroup)
                return b""
            if tag == planner.SYNC_HOOKS:
                return run_create_hooks(spec, record, store)
            # Only a config with linux.seccomp gets here: spare the
            # others the import.
            from pyrunc.seccomp import SYNC_NOTIFY

            if tag == SYNC_NOTIFY:
                from pyrunc.seccomp.notify import forward

                return forward(linux.seccomp, fd, pid,
                               oci_state(record, "creating"))
            raise PyruncError(f"unknown sync point {tag}")

        # The CLI's helper (pyrunc.process.prewarm) is gone before the
        # container's process exists.
        prewarm.finish()
        try:
            pid = launch(plan, on_sync)
        except PyruncError as err:
            reason = setup_oom(manager, linux) or err
            raise PyruncError(
                f"unable to start container process: {reason}") from err
        if pid_file:
            try:
                write_pid_file(pid_file, pid)
            except OSError as err:
                # The container's process exists: it goes with the rest.
                from pyrunc.process.launch import kill_and_reap

                kill_and_reap(pid)
                raise PyruncError(f"write pid file {pid_file}: "
                                  f"{err.strerror.lower()}") from None
        record.pid = pid
        record.pid_start = start_time(pid)
        store.save(record)
        drop_partial(store, cid)
        return record
    except BaseException:
        manager_cleanup(manager)
        raise
    finally:
        for fd in fds:
            os.close(fd)


def setup_oom(manager, linux):
    """Why the kernel's OOM killer took the process during setup, or None
    (runc's equivalent error names the limit too)."""
    memory = linux.resources.memory if linux and linux.resources else None
    if memory is None:
        return None
    from pyrunc.cgroups.oom import limit_too_low

    return limit_too_low(manager, memory.limit, "during setup")


def write_id_maps(pid, plan):
    """Map the new user namespace's ids; the child waits for this."""
    if plan.gid_map and os.geteuid() != 0:
        # Without CAP_SETGID the kernel takes a gid_map only once
        # setgroups(2) is denied in the namespace; runc denies it too.
        deny_setgroups(pid)
    for name, text in (("uid_map", plan.uid_map), ("gid_map", plan.gid_map)):
        if not text:
            continue
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as err:
            field = "linux.uidMappings" if name == "uid_map" else \
                "linux.gidMappings"
            raise ConfigError(f"{field}: write /proc/{pid}/{name}: "
                              f"{err.strerror}") from None


def deny_setgroups(pid):
    try:
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
    except FileNotFoundError:
        return
    except OSError as err:
        raise ConfigError(f"linux.gidMappings: write /proc/{pid}/setgroups: "
                          f"{err.strerror}") from None


def new_record(store, cid, bundle, spec, plan, manager):
    from pyrunc.state.store import Record

    return Record(
        id=cid, pid=0, pid_start=0, bundle=bundle, rootfs=plan.rootfs,
        created=rfc3339_now(), owner="", annotations=dict(spec.annotations),
        config=spec.raw, cgroup=manager.to_dict(),
        terminal=bool(spec.process.terminal))


def run_create_hooks(spec, record, store):
    """prestart and createRuntime hooks, in the runtime's namespaces."""
    # The runtime-tools suite and crun hand these hooks "created";
    # runc 1.1.5 says "creating". The spec's own example agrees with the
    # former, and no engine reads it.
    state = oci_state(record, "created")
    if spec.hooks.prestart or spec.hooks.create_runtime:
        # Most containers have none: spare them the import.
        from pyrunc.process.hooks import run_hooks

        run_hooks(spec.hooks.prestart, state, "prestart")
        run_hooks(spec.hooks.create_runtime, state, "createRuntime")
    if not (spec.hooks.create_container or spec.hooks.start_container):
        # Nothing in the container reads it: the socket carries a few
        # hundred KiB at most, and annotations can be larger.
        return b""
    # The child hands this to its createContainer/startContainer hooks.
    data = jsonfast.dumps(oci_state(record, "created"),
                          compact=True).encode()
    if len(data) > _MAX_PAYLOAD:
        raise ConfigError(
            f"annotations: the state handed to the createContainer and "
            f"startContainer hooks would be {len(data)} bytes; at most "
            f"{_MAX_PAYLOAD} fit")
    return data


def oci_state(record, status):
    state = {"ociVersion": record.config.get("ociVersion", ""),
             "id": record.id, "status": status, "pid": record.pid,
             "bundle": record.bundle}
    if record.annotations:
        state["annotations"] = record.annotations
    return state


def write_partial(store, cid, pid, pid_start, cgroup):
    """What `delete --force` needs if we die before state.json exists.

    Written in place rather than renamed into place: on ext4 a rename
    over the previous version forces the new file's data to disk first
    (auto_da_alloc), 0.2 ms of every create. Nothing reads the file while
    we can still write it (delete takes the container's lock), and one
    small pwrite() is never half done when a process is killed. A
    shorter version is padded with spaces, which JSON allows, so that no
    truncate can leave the old one's tail behind.
    """
    path = os.path.join(store.dir(cid), "create.json")
    data = jsonfast.dumps({"pid": pid, "pid_start": pid_start,
                           "cgroup": cgroup}).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        data = data.ljust(os.fstat(fd).st_size)
        if os.pwrite(fd, data, 0) != len(data):
            raise OSError(errno.ENOSPC, f"short write to {path}")
    finally:
        os.close(fd)


def drop_partial(store, cid):
    try:
        os.unlink(os.path.join(store.dir(cid), "create.json"))
    except FileNotFoundError:
        pass


def atomic_write(path, data, mode=0o600):
    from pyrunc.state.store import write_atomic

    # Rename without fsync, like state.json (see write_atomic).
    write_atomic(path, data, mode)


def write_pid_file(path, pid):
    """Write the pid file atomically, as engines poll for it."""
    path = os.path.abspath(path)
    atomic_write(path, str(pid).encode(), 0o644)


def manager_cleanup(manager):
    try:
        manager.destroy()
    except Exception as err:  # noqa: BLE001 - the first error wins
        log.warning("cleaning up cgroup: %s", err)


def connect_console(path):
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise ConfigError(f"--console-socket {path}: {err.strerror}") \
            from None
    return sock.detach()


def listen_fds(preserve_fds):
    """Pass systemd socket activation through, as runc does.

    Return (environment entries for the process, preserve_fds counting
    the listening fds too). Like runc (go-systemd's activation.Files),
    only fds meant for this process count: LISTEN_PID must be our pid,
    LISTEN_FDS a positive number.
    """
    try:
        pid = int(os.environ.get("LISTEN_PID", ""))
        n = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return [], preserve_fds
    if pid != os.getpid() or n <= 0:
        return [], preserve_fds
    return [f"LISTEN_FDS={n}", "LISTEN_PID=1"], preserve_fds + n


def start_time(pid):
    """Field 22 of /proc/pid/stat: tells a reused pid from ours."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    return int(data.rsplit(b")", 1)[1].split()[19])


def rfc3339_now():
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{stamp}.{frac:09d}Z"
