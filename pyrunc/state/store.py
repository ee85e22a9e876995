"""The state store: one directory per container under the state root.

    <root>/<id>/state.json    the Record, replaced atomically
    <root>/<id>/exec.fifo     exists from create until start
    <root>/<id>/create.json   partial record written by create (pid,
                              pid_start, cgroup) so that delete --force
                              can undo a create that crashed

Commands that change a container take an flock on its directory; reading
the state needs no lock because state.json is only ever replaced by
rename. The status is never stored: Record.status() derives it from
/proc, the exec fifo and the cgroup freezer each time.

Record is a plain class rather than a dataclass: importing dataclasses
(and inspect with it) costs about 8 ms, half of a `pyrunc state`.
"""

import fcntl
import os
import time

from pyrunc import SPEC_VERSION, jsonfast
from pyrunc.errors import ContainerExists, ContainerNotFound, InvalidId
from pyrunc.errors import PyruncError
from pyrunc.state import proc

DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state.json"
FIFO_FILE = "exec.fifo"
PARTIAL_FILE = "create.json"
NAME_MAX = 255

# Characters runc accepts in an id: its regexp ^[\w+-\.]+$ (where "+-\."
# is the range from "+" to ".", i.e. "+", ",", "-" and ".").
_ID_PUNCT = frozenset("_+,-.")


def validate_id(cid):
    """Raise InvalidId unless cid is an id runc would accept."""
    if not isinstance(cid, str) or not cid or cid in (".", ".."):
        raise InvalidId(cid)
    for ch in cid:
        # \w in Go's RE2 is ASCII-only: [0-9A-Za-z_].
        if not (ch.isascii() and ch.isalnum()) and ch not in _ID_PUNCT:
            raise InvalidId(cid)


def timestamp(when_ns=None):
    """Return a UTC time like runc's "created": RFC 3339 with nanoseconds.

    Go trims trailing zeros of the fraction (time.RFC3339Nano), and so
    does this, so that the strings compare equal to runc's.
    """
    if when_ns is None:
        when_ns = time.time_ns()
    seconds, nanos = divmod(when_ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}".rstrip("0")
    if fraction:
        stamp = f"{stamp}.{fraction}"
    return stamp + "Z"


class Record:
    """What pyrunc remembers about a container, saved as state.json.

    >>> Record(id="web", pid=42, pid_start=1234, bundle="/b").rootfs
    ''
    """

    __slots__ = ("id", "pid", "pid_start", "bundle", "rootfs", "created",
                 "owner", "annotations", "config", "cgroup", "terminal",
                 "use_systemd")

    def __init__(self, id, pid=0, pid_start=0, bundle="", rootfs="",
                 created="", owner="", annotations=None, config=None,
                 cgroup=None, terminal=False, use_systemd=False):
        self.id = id
        self.pid = pid
        self.pid_start = pid_start
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created or timestamp()
        self.owner = owner
        self.annotations = dict(annotations or {})
        self.config = config if config is not None else {}
        self.cgroup = cgroup if cgroup is not None else {}
        self.terminal = terminal
        self.use_systemd = use_systemd

    def __eq__(self, other):
        if not isinstance(other, Record):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self):
        return (f"Record(id={self.id!r}, pid={self.pid}, "
                f"bundle={self.bundle!r}, created={self.created!r})")

    def to_dict(self):
        """Return the record as the JSON object stored in state.json."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data):
        """Build a record from a state.json object; unknown keys are kept
        out, missing ones take their defaults."""
        known = {k: v for k, v in data.items() if k in cls.__slots__}
        return cls(**known)

    def is_alive(self):
        """Tell whether the init process still runs (not a zombie)."""
        return proc.is_alive(self.pid, self.pid_start)

    def status(self, store):
        """Return "created", "running", "paused" or "stopped".

        Checked in runc's order: a dead, zombie or recycled init means
        stopped; a frozen cgroup means paused; a remaining exec fifo
        means the init still waits for `start`.
        """
        if not self.is_alive():
            return "stopped"
        if self.cgroup and self._is_frozen():
            return "paused"
        if os.path.lexists(store.fifo_path(self.id)):
            return "created"
        return "running"

    def _is_frozen(self):
        if _surely_thawed(self.cgroup):
            return False
        # Imported here: the stopped and created answers need no cgroup
        # code at all.
        from pyrunc.cgroups import manager_from_dict

        return manager_from_dict(self.cgroup).is_frozen()

    def oci_state(self, store, status=None):
        """Return the OCI state object that hooks read on their stdin.

        status overrides the derived one (poststop hooks see "stopped").
        Keys follow the runtime-spec's order; pid is left out of a
        stopped container's state, as runc does.
        """
        if status is None:
            status = self.status(store)
        state = {
            "ociVersion": SPEC_VERSION,
            "id": self.id,
            "status": status,
        }
        if status != "stopped":
            state["pid"] = self.pid
        state["bundle"] = self.bundle
        if self.annotations:
            state["annotations"] = dict(sorted(self.annotations.items()))
        return state


def _surely_thawed(cgroup):
    """Tell whether the freezer file reads plain "not frozen".

    The common answer, read without importing the cgroup drivers (about
    1 ms of a `pyrunc state`). Anything else (FROZEN, FREEZING, a missing
    file, an odd record) is left to the driver's is_frozen().
    """
    try:
        mode = cgroup["mode"]
        if mode == "v2":
            path, want = cgroup["paths"][""] + "/cgroup.freeze", b"0\n"
        elif mode in ("v1", "hybrid"):
            path = cgroup["paths"]["freezer"] + "/freezer.state"
            want = b"THAWED\n"
        else:
            return False
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (KeyError, TypeError, OSError):
        return False
    try:
        return os.read(fd, 64) == want
    except OSError:
        return False
    finally:
        os.close(fd)


class _Lock:
    """An exclusive flock on a container directory, as a context manager."""

    def __init__(self, path, cid):
        self._path = path
        self._cid = cid
        self._fd = -1

    def __enter__(self):
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        try:
            fd = os.open(self._path, flags)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(self._cid) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A delete that held the lock before us may have removed the
            # directory; our fd then points at an unlinked inode.
            if os.fstat(fd).st_nlink == 0:
                raise ContainerNotFound(self._cid)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc):
        os.close(self._fd)
        self._fd = -1
        return False


class Store:
    """Container directories under a state root (default /run/pyrunc)."""

    def __init__(self, root=DEFAULT_ROOT):
        self.root = os.path.abspath(root)

    def dir(self, cid):
        """Return <root>/<cid>; raises InvalidId for an unsafe id."""
        validate_id(cid)
        path = os.path.join(self.root, cid)
        if len(cid) > NAME_MAX:
            # No directory can bear this name (ids are ASCII, so length
            # is bytes): fail as runc's lstat of it does.
            raise PyruncError(f"lstat {path}: file name too long")
        return path

    def fifo_path(self, cid):
        """Return the path of the container's exec fifo."""
        return os.path.join(self.dir(cid), FIFO_FILE)

    def partial_path(self, cid):
        """Return the path of create's partial record (create.json)."""
        return os.path.join(self.dir(cid), PARTIAL_FILE)

    def new(self, cid):
        """Create the container directory; ContainerExists if taken.

        mkdir is the atomic step that reserves an id between concurrent
        creates. Modes are set explicitly so that the umask of the caller
        does not matter: runc's 0711 here, 0700 for the root (the
        container's process reopens its fifo through an fd, not a path).
        """
        path = self.dir(cid)
        self._ensure_root()
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise ContainerExists(cid) from None
        os.chmod(path, 0o711)
        return path

    def _ensure_root(self):
        try:
            os.mkdir(self.root, 0o700)
        except FileExistsError:
            return
        except FileNotFoundError:
            os.makedirs(self.root, 0o700, exist_ok=True)
        os.chmod(self.root, 0o700)

    def lock(self, cid):
        """Return a context manager holding the container's flock."""
        return _Lock(self.dir(cid), cid)

    def save(self, record):
        """Write state.json atomically: temp file, then rename."""
        path = os.path.join(self.dir(record.id), STATE_FILE)
        data = jsonfast.dumps(record.to_dict(), compact=True)
        write_atomic(path, data.encode())

    def load(self, cid):
        """Return the container's Record; ContainerNotFound if none."""
        path = os.path.join(self.dir(cid), STATE_FILE)
        data = read_json(path)
        if data is None:
            raise ContainerNotFound(cid)
        return Record.from_dict(data)

    def load_partial(self, cid):
        """Return create.json as a dict, or None when there is none."""
        return read_json(self.partial_path(cid))

    def destroy(self, cid):
        """Remove the container directory and all it holds."""
        remove_tree(self.dir(cid))

    def ids(self):
        """Return the sorted ids of containers that have a state.json."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            state = os.path.join(self.root, name, STATE_FILE)
            if os.path.isfile(state):
                found.append(name)
        found.sort()
        return found


def write_atomic(path, data, mode=0o600):
    """Replace path with data so that readers see old or new, never half.

    There is no fsync: the rename alone makes the update atomic for
    readers, which is all a state file needs. Its contents describe
    processes and cgroups that do not survive a crash of the machine, and
    runc does not fsync its state.json either. An fsync on a disk-backed
    state root cost 1-5 ms per write, twice per create.
    """
    tmp = path + ".tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    fd = os.open(tmp, flags, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)
    os.rename(tmp, path)


def read_json(path):
    """Return the JSON object in path, or None if the file is missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        data = jsonfast.loads(b"".join(chunks))
    except ValueError as err:
        raise PyruncError(f"corrupt state file {path}: {err}") from None
    if not isinstance(data, dict):
        raise PyruncError(f"corrupt state file {path}: not an object")
    return data


def remove_tree(path):
    """Remove a directory tree; a missing path is not an error.

    Small and without shutil (whose import costs more than the few files
    of a state directory take to remove). Symlinks are removed, never
    followed.
    """
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
