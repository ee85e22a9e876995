"""Helpers shared by the tests: bundles, runtime runners, residue checks.

The fixtures in conftest.py are thin wrappers around these, so a test that
needs, say, two bundles or a second runtime root can build them directly.
"""

import ctypes
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = REPO / "bundles" / "busybox"
BUILD_SCRIPT = REPO / "bundles" / "build-bundle.sh"

# What the default bundle's process prints before its mount count.
EXPECTED_HEAD = ["hello from pyrunc", "pyrunc", "uid=0(root) gid=0(root)"]

# Every cgroup a test creates is named with this prefix, so that a
# developer's own experiments are never mistaken for test residue.
CGROUP_PREFIX = f"pyrunc-test-{os.getpid()}-"

DEFAULT_TIMEOUT = 60

PR_SET_CHILD_SUBREAPER = 36
MNT_DETACH = 2


def is_strict():
    """Return whether residue anywhere on the host fails a test.

    On a developer machine other people's experiments create mounts and
    cgroups at the same time, so only what a test can own is checked.
    CI runs alone and checks everything.
    """
    flag = os.environ.get("PYRUNC_STRICT_RESIDUE")
    if flag is not None:
        return flag not in ("", "0")
    return os.environ.get("CI", "") not in ("", "0", "false")


def set_child_subreaper():
    """Adopt orphaned descendants, as a container shim would.

    A detached container's init is orphaned when the runtime exits; being
    its subreaper lets the residue check see it as our child, and lets us
    reap it instead of relying on PID 1.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        log.warning("prctl(PR_SET_CHILD_SUBREAPER): %s", os.strerror(err))


def unique_id(prefix="t"):
    """Return a container id unlikely to collide with anything."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def cgroup_name(testname):
    """Return a relative, unique cgroupsPath for one test."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", testname)[:60]
    return f"{CGROUP_PREFIX}{safe}-{uuid.uuid4().hex[:6]}"


# --- bundles


def build_default_bundle():
    """Build (or refresh) bundles/busybox and return its path."""
    subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        check=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PY": sys.executable},
    )
    return DEFAULT_BUNDLE


class Bundle:
    """An OCI bundle on disk whose config.json tests may edit.

    Edit ``bundle.config`` (the parsed config.json) and call
    ``bundle.save()``; ``os.fspath(bundle)`` is the bundle directory.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.rootfs = self.path / "rootfs"
        self.config_path = self.path / "config.json"
        with open(self.config_path) as f:
            self.config = json.load(f)

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)

    def __repr__(self):
        return f"Bundle({str(self.path)!r})"

    def save(self):
        """Write self.config back to config.json."""
        tmp = self.config_path.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.config, f, indent="\t")
        os.replace(tmp, self.config_path)

    def set_args(self, *args):
        """Set process.args and save."""
        self.config["process"]["args"] = list(args)
        self.save()


def make_bundle(dest, cgroups_path=None, source=DEFAULT_BUNDLE):
    """Copy the bundle at source to dest and return it as a Bundle.

    The rootfs is a full copy (`cp -a`, about 20 ms): tests may write to
    it, and hardlinks would let them change the shared busybox.
    """
    dest = Path(dest)
    source = Path(source)
    dest.mkdir(parents=True)
    subprocess.run(
        ["cp", "-a", str(source / "rootfs"), str(dest / "rootfs")],
        check=True,
    )
    shutil.copyfile(source / "config.json", dest / "config.json")
    bundle = Bundle(dest)
    if cgroups_path is not None:
        bundle.config.setdefault("linux", {})["cgroupsPath"] = cgroups_path
    bundle.save()
    return bundle


# --- runtimes


def pyrunc_argv():
    """Return the command line prefix of the installed pyrunc CLI."""
    candidates = [
        Path(sys.executable).parent / "pyrunc",
        REPO / ".venv" / "bin" / "pyrunc",
    ]
    for path in candidates:
        if os.access(path, os.X_OK):
            return [str(path)]
    found = shutil.which("pyrunc")
    if found:
        return [found]
    return None


def pyrunc_script(path):
    """The Python launcher script behind the CLI at path.

    setup.sh installs a small entry program (pyrunc/_native/entry.c) as
    .venv/bin/pyrunc, which execs the interpreter on
    .venv/lib/pyrunc-launcher.py; any other path is taken for a launcher
    script itself.
    """
    path = Path(path).resolve()
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return path
    return path.parent.parent / "lib" / "pyrunc-launcher.py"


class Runtime:
    """Runs one runtime binary with its own --root.

    ``rt("state", cid)`` returns a CompletedProcess with text stdout and
    stderr; ``rt.popen(...)`` starts one in the background.
    """

    def __init__(self, name, argv, root):
        self.name = name
        self.argv = list(argv)
        self.root = Path(root)

    def __repr__(self):
        return f"Runtime({self.name!r}, root={str(self.root)!r})"

    def cmdline(self, *args):
        """Return the full argv for the given subcommand arguments."""
        words = [os.fspath(a) for a in args]
        return [*self.argv, "--root", str(self.root), *words]

    def __call__(self, *args, check=False, timeout=DEFAULT_TIMEOUT,
                 input=None, **kwargs):
        # Output goes to files, not pipes: a detached container inherits
        # the runtime's stdout and would hold a pipe open long after the
        # runtime exited, so reading to EOF would hang.
        with tempfile.TemporaryFile() as out, \
                tempfile.TemporaryFile() as err:
            kwargs.setdefault("stdout", out)
            kwargs.setdefault("stderr", err)
            if input is None:
                kwargs.setdefault("stdin", subprocess.DEVNULL)
            else:
                kwargs["input"] = input.encode()
            argv = self.cmdline(*args)
            proc = subprocess.run(argv, timeout=timeout, **kwargs)
            result = subprocess.CompletedProcess(
                argv, proc.returncode, _read(out), _read(err))
        if check:
            result.check_returncode()
        return result

    def popen(self, *args, **kwargs):
        """Start the runtime in the background; the caller waits."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("text", True)
        return subprocess.Popen(self.cmdline(*args), **kwargs)

    def run(self, bundle, cid=None, *extra, **kwargs):
        """`<rt> run --bundle BUNDLE [extra...] ID` in the foreground."""
        cid = cid or unique_id()
        return self("run", "--bundle", bundle, *extra, cid, **kwargs)

    def state(self, cid):
        """Return the parsed `state` output, or None if it failed."""
        proc = self("state", cid)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)

    def container_ids(self):
        """Return the ids that have a state directory under our root."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir())


# --- residue: what a test leaves behind


def _unescape(path):
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    root: str
    point: str
    fstype: str
    source: str
    super_opts: str
    line: str


def read_mounts():
    """Return the mounts of our mount namespace, in mountinfo order."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            line = line.rstrip("\n")
            left, _, right = line.partition(" - ")
            fields = left.split()
            fstype, source, super_opts = (right.split(" ") + ["", ""])[:3]
            mounts.append(Mount(
                mount_id=int(fields[0]),
                root=_unescape(fields[3]),
                point=_unescape(fields[4]),
                fstype=fstype,
                source=source,
                super_opts=super_opts,
                line=line,
            ))
    return mounts


def own_cgroup_dirs():
    """Return the directory of our own cgroup in every hierarchy.

    Covers each v1 controller (and named hierarchies such as
    name=systemd) and the unified hierarchy, as listed in
    /proc/self/cgroup and located through mountinfo.
    """
    mounts = [m for m in read_mounts() if m.fstype in ("cgroup", "cgroup2")]
    dirs = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            hier, ctrls, path = line.rstrip("\n").split(":", 2)
            wanted = set(filter(None, ctrls.split(",")))
            for m in mounts:
                if hier == "0":
                    match = m.fstype == "cgroup2"
                else:
                    opts = set(m.super_opts.split(","))
                    match = m.fstype == "cgroup" and wanted <= opts
                if not match:
                    continue
                # With a cgroup namespace or a bind mount, the mount shows
                # only the subtree below its root.
                rel = path
                if m.root != "/" and (rel + "/").startswith(m.root + "/"):
                    rel = rel[len(m.root):]
                full = Path(m.point + "/" + rel.lstrip("/"))
                if full.is_dir():
                    dirs.append(full)
                break
    return dirs


def list_cgroups(bases):
    """Return every cgroup directory below the given ones (not included)."""
    found = set()
    for base in bases:
        for top, subdirs, _ in os.walk(base):
            for name in subdirs:
                found.add(Path(top) / name)
    return found


def _inside(path, prefixes):
    text = str(path)
    for prefix in prefixes:
        prefix = str(prefix).rstrip("/")
        if text == prefix or text.startswith(prefix + "/"):
            return True
    return False


def _dir_identities(top, depth=4):
    """Return (st_dev, st_ino) of top and the directories below it.

    A pivoted container's /proc/PID/root reads as "/", but stat() follows
    it to the real directory, whose identity we can then recognise.
    Mount points are not entered, so a leaked /proc is never walked.
    """
    ids = set()
    top = Path(top)
    if not top.is_dir():
        return ids
    st = os.stat(top)
    ids.add((st.st_dev, st.st_ino))
    start = len(top.parts)
    for cur, subdirs, _ in os.walk(top):
        keep = []
        for name in subdirs:
            path = Path(cur) / name
            if path.is_symlink() or os.path.ismount(path):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            ids.add((st.st_dev, st.st_ino))
            if len(path.parts) - start < depth:
                keep.append(name)
        subdirs[:] = keep
    return ids


def processes_inside(prefixes):
    """Return pids whose cwd or root is inside one of the directories."""
    ids = set()
    for prefix in prefixes:
        ids |= _dir_identities(prefix)
    me = os.getpid()
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        for link in ("cwd", "root"):
            proc_path = f"/proc/{entry}/{link}"
            try:
                target = os.readlink(proc_path)
                st = os.stat(proc_path)
            except OSError:
                continue
            if _inside(target, prefixes) or (st.st_dev, st.st_ino) in ids:
                pids.add(int(entry))
    return pids


def _children():
    try:
        return {p.pid: p for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return {}


def _proc_key(proc):
    try:
        return (proc.pid, proc.create_time())
    except psutil.Error:
        return (proc.pid, None)


@dataclass
class Snapshot:
    """What existed before a test, to compare against afterwards."""

    mounts: set
    cgroups: set
    children: set


@dataclass
class Residue:
    """What a test left behind; empty means clean."""

    mounts: list = field(default_factory=list)
    cgroups: list = field(default_factory=list)
    processes: list = field(default_factory=list)
    states: list = field(default_factory=list)

    def __bool__(self):
        return bool(self.mounts or self.cgroups or self.processes
                    or self.states)

    def describe(self):
        """Return a multi-line report for the test failure."""
        lines = []
        for m in self.mounts:
            lines.append(f"mount: {m.point} ({m.fstype} {m.source})")
        for path in self.cgroups:
            lines.append(f"cgroup: {path}")
        for pid, cmd in self.processes:
            lines.append(f"process: {pid} {cmd}")
        for path in self.states:
            lines.append(f"state dir: {path}")
        return "\n".join(lines)


class ResidueWatch:
    """Snapshots the host around one test and cleans up what it left.

    ``prefixes`` are directories the test owns (its tmp_path, the shared
    bundle); ``runtimes`` are the Runtime objects whose roots must be empty
    afterwards. Fixtures register more of both while the test runs.
    """

    def __init__(self, prefixes=(), strict=None):
        self.prefixes = [Path(p) for p in prefixes]
        self.runtimes = []
        self.strict = is_strict() if strict is None else strict
        self.cgroup_bases = own_cgroup_dirs()
        self.before = None

    def add_runtime(self, runtime):
        self.runtimes.append(runtime)

    def snapshot(self):
        """Record the current mounts, cgroups and child processes."""
        self.before = Snapshot(
            mounts={m.line for m in read_mounts()},
            cgroups=list_cgroups(self.cgroup_bases),
            children={_proc_key(p) for p in _children().values()},
        )
        return self.before

    def _mount_is_ours(self, mount):
        # Bind-mounted namespace files (nsfs) count like any other mount:
        # anywhere when strict, inside the test's directories otherwise.
        if self.strict:
            return True
        return _inside(mount.point, self.prefixes)

    def _cgroup_is_ours(self, path):
        if self.strict:
            return True
        return any(part.startswith(CGROUP_PREFIX) for part in path.parts)

    def check(self):
        """Find what the test left, clean it up and return it.

        Exited children are reaped first and not reported: they are
        container inits adopted because we are a subreaper, and reaping
        them is our job, not the test's.
        """
        self.reap_new_zombies()
        res = self.find()
        if res:
            self.cleanup(res)
        return res

    def reap_new_zombies(self):
        """Reap children that exited during the test."""
        for pid, proc in _children().items():
            if _proc_key(proc) in self.before.children:
                continue
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    continue
                os.waitpid(pid, os.WNOHANG)
            except (psutil.Error, ChildProcessError):
                continue

    def find(self):
        """Return the Residue relative to the last snapshot."""
        before = self.before
        res = Residue()
        for m in read_mounts():
            if m.line not in before.mounts and self._mount_is_ours(m):
                res.mounts.append(m)
        new_cgroups = list_cgroups(self.cgroup_bases) - before.cgroups
        res.cgroups = sorted(p for p in new_cgroups if self._cgroup_is_ours(p))
        pids = {}
        for pid, proc in _children().items():
            if _proc_key(proc) not in before.children:
                pids[pid] = proc
        for pid in processes_inside(self.prefixes):
            pids.setdefault(pid, None)
        for path in res.cgroups:
            for pid in _cgroup_pids(path):
                pids.setdefault(pid, None)
        for pid in sorted(pids):
            res.processes.append((pid, _cmdline(pid)))
        for rt in self.runtimes:
            for cid in rt.container_ids():
                res.states.append(rt.root / cid)
        return res

    def cleanup(self, res):
        """Remove everything in res, best effort, in a safe order."""
        for rt in self.runtimes:
            for cid in rt.container_ids():
                _quiet(rt, "delete", "--force", cid)
        for path in res.cgroups:
            _thaw(path)
        _kill_and_reap([pid for pid, _ in res.processes])
        self.reap_new_zombies()
        for m in sorted(res.mounts, key=lambda m: -len(m.point)):
            _umount_lazy(m.point)
        for path in sorted(res.cgroups, key=lambda p: -len(p.parts)):
            _rmdir_cgroup(path)
        for rt in self.runtimes:
            for cid in rt.container_ids():
                shutil.rmtree(rt.root / cid, ignore_errors=True)


def _read(f):
    f.seek(0)
    return f.read().decode(errors="replace")


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _cgroup_pids(path):
    try:
        with open(Path(path) / "cgroup.procs") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _quiet(rt, *args):
    try:
        rt(*args, timeout=10)
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("%s %s: %s", rt.name, " ".join(args), err)


def _thaw(path):
    # SIGKILL is not delivered to a frozen task (v1 freezer), so thaw
    # before killing.
    state = Path(path) / "freezer.state"
    if state.exists():
        try:
            state.write_text("THAWED")
        except OSError:
            pass
    freeze = Path(path) / "cgroup.freeze"
    if freeze.exists():
        try:
            freeze.write_text("0")
        except OSError:
            pass


def _kill_and_reap(pids):
    me = os.getpid()
    procs = []
    for pid in pids:
        if pid == me:
            continue
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGKILL)
            procs.append(proc)
        except psutil.Error:
            continue
    # wait_procs reaps our own children and polls the others.
    psutil.wait_procs(procs, timeout=5)


def _umount_lazy(point):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(point), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        log.warning("umount2 %s: %s", point, os.strerror(err))


def _rmdir_cgroup(path):
    # A cgroup stays busy for a moment after its last task died.
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    log.warning("cannot remove cgroup %s", path)


def read_all(fd):
    """Read fd (a pty master, a pipe) to its end."""
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO once the slave side is closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)
