"""The benchmark harness: runtimes, bundles, cgroups and sampling.

Four runtimes are driven through one interface (`CliRuntime`,
`LibRuntime`): pyrunc's command line, pyrunc's library called in this
process, Debian's runc and crun. crun runs under `crunwrap` (crunwrap.c,
compiled here with gcc), which hides the cgroup2 mount of this hybrid
host in a private mount namespace; its own cost is measured separately
and subtracted where the report says "net".

A CLI invocation is timed by a small C helper (spawntime.c) from just
before vfork() to just after wait4() returns; wait4's rusage gives the
peak RSS of the invocation (ru_maxrss). The library is timed around the
function call.

Every sample of every runtime is taken in the same loop, round-robin:
round r runs the operation once for each runtime, starting with a
different runtime each round, so that drift in the machine's load (other
jobs share these two CPUs) falls on all runtimes alike.

Containers live under per-runtime --root directories in a temporary
directory and in cgroups below `pyrunc-bench-<pid>` (a relative
cgroupsPath). After each container the harness checks that the runtime
removed its state directory and cgroups; anything left is recorded as a
leak and removed by the harness.
"""

import copy
import ctypes
import json
import logging
import os
import select
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

log = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

IDLE_S = 0.050
MODES = ("back-to-back", "idle-50ms")
MODE_IDLE = {"back-to-back": 0.0, "idle-50ms": IDLE_S}
COMMANDS = ("create", "start", "state", "kill", "delete", "run",
            "lifecycle")
RUNTIMES = ("pyrunc-cli", "pyrunc-lib", "runc", "crun")
LABELS = {
    "pyrunc-cli": "pyrunc CLI",
    "pyrunc-lib": "pyrunc library",
    "runc": "runc",
    "crun": "crun",
}
# How many runtime invocations each command makes: the crun wrapper is
# paid once per invocation.
INVOCATIONS = {"lifecycle": 3}

RUNC = "/usr/sbin/runc"
CRUN = "/usr/bin/crun"
BUSYBOX = "/bin/busybox"

PR_SET_CHILD_SUBREAPER = 36
KIB = 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def _flag(env, name):
    return env.get(name, "") not in ("", "0", "no", "false")


def _int(env, name, default):
    text = env.get(name, "")
    return int(text) if text else default


class Settings:
    """Sizes of the runs, from PYRUNC_BENCH_* environment variables."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.quick = _flag(env, "PYRUNC_BENCH_QUICK")
        quick = self.quick
        self.rounds = _int(env, "PYRUNC_BENCH_ROUNDS", 5 if quick else 30)
        self.warmup = _int(env, "PYRUNC_BENCH_WARMUP", 1 if quick else 2)
        self.sequential = _int(env, "PYRUNC_BENCH_SEQUENTIAL",
                               20 if quick else 100)
        self.concurrent = _int(env, "PYRUNC_BENCH_CONCURRENT",
                               10 if quick else 20)
        self.concurrent_rounds = 1 if quick else 3
        self.many = _int(env, "PYRUNC_BENCH_MANY", 100 if quick else 1000)
        self.many_rounds = 5 if quick else 20
        self.memory_samples = 2 if quick else 5
        self.wrapper_rounds = 30 if quick else 200
        self.timeout = float(env.get("PYRUNC_BENCH_TIMEOUT") or 60)
        # Failed samples tolerated per runtime and command before the
        # runtime's test fails.
        self.max_failures = _int(env, "PYRUNC_BENCH_MAX_FAILURES", 3)
        wanted = env.get("PYRUNC_BENCH_RUNTIMES", "")
        self.runtimes = tuple(
            name for name in RUNTIMES
            if not wanted or name in wanted.split(","))
        self.pyrunc = (env.get("PYRUNC_BENCH_PYRUNC")
                       or os.path.join(REPO, ".venv", "bin", "pyrunc"))
        self.results = (env.get("PYRUNC_BENCH_RESULTS")
                        or os.path.join(HERE, "results"))
        self.install = not _flag(env, "PYRUNC_BENCH_NO_INSTALL")

    def as_dict(self):
        return dict(vars(self))


class RuntimeFailure(Exception):
    """A runtime invocation failed (non-zero exit, timeout, exception)."""


class Call:
    """One timed invocation: wall time, peak RSS (CLI only), status."""

    __slots__ = ("maxrss_kib", "ns", "status")

    def __init__(self, ns, maxrss_kib=None, status=0):
        self.ns = ns
        self.maxrss_kib = maxrss_kib
        self.status = status


# Process plumbing ---------------------------------------------------------

def set_subreaper(on=True):
    """Make this process the reaper of its orphaned descendants.

    A created container's init outlives the `create` that forked it; as a
    subreaper this process inherits it and can reap it once it exits,
    instead of leaving zombies to a PID 1 that may not reap them. The
    library's own `run` does the same.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): "
                           f"{os.strerror(err)}")


def reap():
    """Reap every exited child; return how many there were."""
    count = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            return count
        count += 1


def wait_exit(pid, timeout):
    """Wait until pid has exited; reap it if it is our child.

    A pidfd works for any process, child or not, and reports a zombie as
    exited. Return False on timeout.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(int(timeout * 1000)):
            return False
    finally:
        os.close(fd)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True


def spawn_wait(argv, env, stdin, stdout, stderr, timeout, helper):
    """Run argv through spawntime; return Call(ns, ru_maxrss KiB, status).

    spawntime (spawntime.c) times vfork + exec + wait4 of argv itself and
    reports its rusage: spawned straight from this large process, argv's
    ru_maxrss would include this process's RSS (the kernel folds the
    pre-exec image's high-water mark into it). The helper runs in its own
    process group so that a runtime that hangs is killed with it after
    timeout seconds.
    """
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, stdin, 0),
            (os.POSIX_SPAWN_DUP2, stdout, 1),
            (os.POSIX_SPAWN_DUP2, stderr, 2),
            (os.POSIX_SPAWN_DUP2, write_fd, 3),
        ]
        pid = os.posix_spawn(helper, [helper, "3"] + list(argv), env,
                             file_actions=actions, setpgroup=0)
        os.close(write_fd)
        write_fd = -1
        pidfd = os.pidfd_open(pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(int(timeout * 1000)):
                os.killpg(pid, signal.SIGKILL)
                os.wait4(pid, 0)
                raise RuntimeFailure(f"{' '.join(argv)}: no exit after "
                                     f"{timeout:.0f} s, killed")
        finally:
            os.close(pidfd)
        _, status, _ = os.wait4(pid, 0)
        report = os.read(read_fd, 256).split()
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if status != 0 or len(report) != 3:
        raise RuntimeFailure(f"spawntime {' '.join(argv)}: helper failed "
                             f"(wait status {status})")
    ns, maxrss, wstatus = (int(x) for x in report)
    return Call(ns, maxrss, os.waitstatus_to_exitcode(wstatus))


class _Stderr(threading.local):
    """A per-thread file that catches the stderr of runtime invocations."""

    def __init__(self, directory):
        handle, self.path = tempfile.mkstemp(prefix="stderr-",
                                             dir=directory)
        self.fd = handle

    def reset(self):
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)

    def text(self):
        with open(self.path, errors="replace") as f:
            return f.read().strip()


# Runtimes -----------------------------------------------------------------

class CliRuntime:
    """A runtime driven through its command line (runc's syntax)."""

    kind = "cli"

    def __init__(self, name, argv, root, workdir, timeout, helper):
        self.name = name
        self.label = LABELS.get(name, name)
        self.helper = helper
        self.argv = list(argv)
        self.root = root
        self.timeout = timeout
        self.env = dict(os.environ)
        self._workdir = workdir
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._stderr = _Stderr(workdir)
        self.error = None
        self.version = ""

    def with_root(self, root):
        """Return the same runtime using another state root."""
        other = copy.copy(self)
        other.root = root
        return other

    def call(self, *args, stdout=None, check=True):
        argv = self.argv + ["--root", self.root] + list(args)
        self._stderr.reset()
        call = spawn_wait(argv, self.env, self._devnull,
                          self._devnull if stdout is None else stdout,
                          self._stderr.fd, self.timeout, self.helper)
        if check and call.status != 0:
            raise RuntimeFailure(
                f"{self.name} {args[0]}: exit status {call.status}: "
                f"{self._stderr.text()[-600:]}")
        return call

    def create(self, cid, bundle, pid_file, stdout=None):
        return self.call("create", "--bundle", bundle, "--pid-file",
                         pid_file, cid, stdout=stdout)

    def start(self, cid):
        return self.call("start", cid)

    def state(self, cid):
        return self.call("state", cid)

    def kill(self, cid, sig="KILL"):
        return self.call("kill", cid, sig)

    def delete(self, cid, force=False):
        if force:
            return self.call("delete", "--force", cid)
        return self.call("delete", cid)

    def run(self, cid, bundle, stdout=None, check=True):
        return self.call("run", "--bundle", bundle, cid, stdout=stdout,
                         check=check)

    def list(self):
        return self.call("list")

    def exists(self, cid):
        return os.path.lexists(os.path.join(self.root, cid))

    def ids(self):
        try:
            return sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []

    def probe_version(self):
        try:
            done = subprocess.run(self.argv + ["--version"],
                                  capture_output=True, text=True,
                                  timeout=30, check=False)
        except OSError as err:
            return f"unavailable: {err}"
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if lines else f"exit status {done.returncode}"


class _Fd1:
    """Point fd 1 at another file for the duration of a block.

    A container started by the library inherits this process's stdout;
    the CLI runtimes get /dev/null (or the probe's file) instead.
    """

    def __init__(self, fd):
        self.fd = fd
        self.saved = None

    def __enter__(self):
        if self.fd is not None:
            self.saved = os.dup(1)
            os.dup2(self.fd, 1)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 1)
            os.close(self.saved)


class LibRuntime:
    """pyrunc's library, called in this process."""

    kind = "lib"

    def __init__(self, name, root, workdir, timeout):
        from pyrunc.container import create, delete, kill, run, start
        from pyrunc.container import list as list_, state
        from pyrunc.state.store import Store

        self.name = name
        self.label = LABELS.get(name, name)
        self.root = root
        self.timeout = timeout
        self.store = Store(root)
        self._fn = {
            "create": create.create,
            "start": start.start,
            "state": state.state,
            "kill": kill.kill,
            "delete": delete.delete,
            "run": run.run,
            "list": list_.list_containers,
        }
        self.error = None
        self.version = ""

    def with_root(self, root):
        from pyrunc.state.store import Store

        other = copy.copy(self)
        other.root = root
        other.store = Store(root)
        return other

    def _timed(self, command, *args, stdout=None, **kwargs):
        fn = self._fn[command]
        # fd 1 is redirected only when asked (the memory floor probe):
        # swapping it is not thread-safe, and /bin/true prints nothing.
        with _Fd1(stdout):
            start = time.perf_counter_ns()
            try:
                result = fn(self.store, *args, **kwargs)
            except Exception as err:
                raise RuntimeFailure(
                    f"{self.name} {command}: {type(err).__name__}: "
                    f"{err}") from err
            end = time.perf_counter_ns()
        return Call(end - start), result

    def create(self, cid, bundle, pid_file, stdout=None):
        return self._timed("create", cid, bundle, pid_file=pid_file,
                           stdout=stdout)[0]

    def start(self, cid):
        return self._timed("start", cid)[0]

    def state(self, cid):
        return self._timed("state", cid)[0]

    def kill(self, cid, sig="KILL"):
        return self._timed("kill", cid, sig)[0]

    def delete(self, cid, force=False):
        return self._timed("delete", cid, force=force)[0]

    def run(self, cid, bundle, stdout=None, check=True):
        call, status = self._timed("run", cid, bundle, stdout=stdout)
        call.status = status
        if check and status != 0:
            raise RuntimeFailure(f"{self.name} run: exit status {status}")
        return call

    def list(self):
        return self._timed("list")[0]

    def exists(self, cid):
        return os.path.lexists(os.path.join(self.root, cid))

    def ids(self):
        try:
            return sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []

    def probe_version(self):
        import pyrunc

        return f"pyrunc {getattr(pyrunc, '__version__', '?')} (in-process)"


# Cgroups ------------------------------------------------------------------

class CgroupLayout:
    """Where this host's cgroup hierarchies are and where we sit in them.

    A relative cgroupsPath is resolved by runc and pyrunc against the
    runtime's own cgroup in each hierarchy, and by crun against its
    cgroup2 entry ("0::/"), which puts crun's cgroups under the roots of
    the v1 hierarchies. Both places are searched.
    """

    def __init__(self):
        own = {}
        names = set()
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                key = frozenset(controllers.split(",")) if controllers \
                    else frozenset()
                own[key] = path
                names.update(key)
        self.hierarchies = []
        seen = set()
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, right = line.rstrip("\n").split(" - ", 1)
                fstype, _source, options = right.split()[:3]
                mountpoint = _unescape(left.split()[4])
                if fstype == "cgroup2":
                    key = frozenset()
                elif fstype == "cgroup":
                    key = frozenset(o for o in options.split(",")
                                    if o in names)
                else:
                    continue
                if key in seen or key not in own:
                    continue
                seen.add(key)
                self.hierarchies.append((key, mountpoint, own[key]))
        self.memory = next((m + own_path for key, m, own_path
                            in self.hierarchies if "memory" in key), None)

    def candidates(self, relative):
        """Every directory where a relative cgroupsPath may have landed."""
        result = []
        for _key, mountpoint, own in self.hierarchies:
            for base in (mountpoint + own.rstrip("/"), mountpoint):
                path = os.path.join(base, relative)
                if path not in result:
                    result.append(path)
        return result

    def existing(self, relative):
        return [p for p in self.candidates(relative) if os.path.isdir(p)]

    @staticmethod
    def memory_dir_of(pid):
        """The memory cgroup directory of a live process."""
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if "memory" in controllers.split(","):
                    return "/sys/fs/cgroup/memory" + path
        raise RuntimeFailure(f"pid {pid} has no memory cgroup")


def _unescape(text):
    return (text.replace("\\040", " ").replace("\\011", "\t")
            .replace("\\012", "\n").replace("\\134", "\\"))


def remove_cgroup_tree(path, timeout=5.0):
    """rmdir a cgroup tree bottom-up, killing what still runs in it.

    Only ever called on the benchmark's own `pyrunc-bench-<pid>` tree:
    any process there is a container this run created and failed to
    remove.
    """
    killed = []
    for directory, _dirs, _files in os.walk(path, topdown=False):
        deadline = time.monotonic() + timeout
        while True:
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError:
                pids = _cgroup_pids(directory)
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    except ProcessLookupError:
                        pass
                reap()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    return killed


def _cgroup_pids(directory):
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# Bundles ------------------------------------------------------------------

class Bundles:
    """One small bundle per container, all sharing one busybox rootfs.

    Only config.json differs between them: each container needs its own
    cgroupsPath, and some tests set args or a memory limit. root.path is
    absolute, so the bundle directory holds nothing else.
    """

    def __init__(self, directory, rootfs, template, cgroup_parent):
        self.directory = directory
        self.rootfs = rootfs
        self.template = template
        self.cgroup_parent = cgroup_parent

    def cgroup_path(self, rt_name, cid):
        return f"{self.cgroup_parent}/{rt_name}/{cid}"

    def make(self, rt_name, cid, args=("/bin/true",), memory_limit=None):
        path = os.path.join(self.directory, rt_name, cid)
        os.makedirs(path)
        config = copy.deepcopy(self.template)
        config["root"] = {"path": self.rootfs, "readonly": True}
        config["process"]["terminal"] = False
        config["process"]["args"] = list(args)
        linux = config.setdefault("linux", {})
        linux["cgroupsPath"] = self.cgroup_path(rt_name, cid)
        if memory_limit is not None:
            resources = linux.setdefault("resources", {})
            resources["memory"] = {"limit": int(memory_limit)}
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f)
        return path

    def remove(self, rt_name, cid):
        shutil.rmtree(os.path.join(self.directory, rt_name, cid),
                      ignore_errors=True)


def build_rootfs(workdir):
    """Return (rootfs, config template) for the busybox bundle.

    bundles/build-bundle.sh builds the project's bundle when it exists;
    otherwise a minimal one is made here from /bin/busybox and
    `runc spec`.
    """
    script = os.path.join(REPO, "bundles", "build-bundle.sh")
    if os.path.exists(script):
        dest = os.path.join(REPO, "bundles", "busybox")
        done = subprocess.run(["bash", script, dest], capture_output=True,
                              text=True, check=False)
        if done.returncode == 0:
            with open(os.path.join(dest, "config.json")) as f:
                return os.path.join(dest, "rootfs"), json.load(f)
        log.warning("build-bundle.sh failed: %s", done.stderr.strip())
    dest = os.path.join(workdir, "busybox")
    bindir = os.path.join(dest, "rootfs", "bin")
    os.makedirs(bindir)
    for name in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(dest, "rootfs", name))
    shutil.copy2(BUSYBOX, os.path.join(bindir, "busybox"))
    for applet in ("sh", "echo", "true", "cat", "sleep"):
        os.symlink("busybox", os.path.join(bindir, applet))
    subprocess.run([RUNC, "spec", "--bundle", dest], check=True)
    with open(os.path.join(dest, "config.json")) as f:
        return os.path.join(dest, "rootfs"), json.load(f)


def compile_helper(workdir, name):
    """Compile benchmarks/<name>.c into workdir; return the binary."""
    source = os.path.join(HERE, f"{name}.c")
    binary = os.path.join(workdir, name)
    subprocess.run(["gcc", "-O2", "-Wall", "-o", binary, source],
                   check=True, capture_output=True)
    return binary


# Samples and statistics ---------------------------------------------------

class Sample:
    __slots__ = ("maxrss_kib", "ns")

    def __init__(self, ns, maxrss_kib=None):
        self.ns = ns
        self.maxrss_kib = maxrss_kib


def describe(values_ms):
    """Summary statistics of a list of milliseconds."""
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    n = len(ordered)
    if n >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "n": n,
        "median_ms": statistics.median(ordered),
        "mean_ms": statistics.fmean(ordered),
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "q1_ms": q1,
        "q3_ms": q3,
        "stdev_ms": statistics.stdev(ordered) if n >= 2 else 0.0,
    }


def describe_samples(samples):
    """Statistics of Samples, with their RSS when they have one."""
    result = describe([s.ns / 1e6 for s in samples]) or {"n": 0}
    rss = [s.maxrss_kib for s in samples if s.maxrss_kib is not None]
    if rss:
        result["rss_max_kib"] = max(rss)
        result["rss_median_kib"] = statistics.median(rss)
    result["samples_ms"] = [round(s.ns / 1e6, 4) for s in samples]
    return result


def linear_slope(values):
    """Least-squares slope of values against their index."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = statistics.fmean(values)
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def record_benchmark(benchmark, seconds, group, extra=None):
    """Hand samples measured by the interleaved loop to pytest-benchmark.

    pytest-benchmark times one function per test, so it cannot alternate
    runtimes within a round; the samples are measured by `Bench.sample`
    and stored into this test's fixture through its stats object, which
    is what benchmark.pedantic() would fill. The JSON, the terminal
    table and --benchmark-compare then work as usual.
    """
    if benchmark.disabled or not seconds:
        return
    benchmark.group = group
    if extra:
        benchmark.extra_info.update(extra)
    stats = benchmark._make_stats(1)
    for value in seconds:
        stats.update(value)
    benchmark._mode = "interleaved samples (benchlib.Bench.sample)"


# Operations ---------------------------------------------------------------

class Container:
    """One container of one runtime, as an operation sees it."""

    __slots__ = ("bundle", "cid", "pid", "pid_file", "rt")

    def __init__(self, rt, cid, bundle, pid_file):
        self.rt = rt
        self.cid = cid
        self.bundle = bundle
        self.pid_file = pid_file
        self.pid = None

    def read_pid(self):
        if self.pid is None:
            with open(self.pid_file) as f:
                self.pid = int(f.read().strip())
        return self.pid


class Op:
    """One measured operation: per-round setup, measure, teardown.

    prepare/finish bracket all the rounds of one runtime for operations
    that measure repeatedly against the same container (state, list).
    """

    name = ""

    def prepare(self, bench, rt):
        return None

    def setup(self, bench, rt, shared):
        return bench.new_container(rt)

    def measure(self, bench, ctx):
        raise NotImplementedError

    def teardown(self, bench, ctx):
        bench.discard(ctx)

    def finish(self, bench, rt, shared):
        pass


class CreateOp(Op):
    name = "create"

    def measure(self, bench, ctx):
        call = ctx.rt.create(ctx.cid, ctx.bundle, ctx.pid_file)
        return Sample(call.ns, call.maxrss_kib)


class StartOp(Op):
    name = "start"

    def setup(self, bench, rt, shared):
        ctx = bench.new_container(rt)
        rt.create(ctx.cid, ctx.bundle, ctx.pid_file)
        return ctx

    def measure(self, bench, ctx):
        call = ctx.rt.start(ctx.cid)
        return Sample(call.ns, call.maxrss_kib)


class StateOp(Op):
    """`state` of one created container, measured again every round."""

    name = "state"

    def prepare(self, bench, rt):
        ctx = bench.new_container(rt)
        rt.create(ctx.cid, ctx.bundle, ctx.pid_file)
        return ctx

    def setup(self, bench, rt, shared):
        return shared

    def measure(self, bench, ctx):
        call = ctx.rt.state(ctx.cid)
        return Sample(call.ns, call.maxrss_kib)

    def teardown(self, bench, ctx):
        pass

    def finish(self, bench, rt, shared):
        if shared is not None:
            bench.discard(shared)


class KillOp(Op):
    """`kill ID KILL` of a created container (its init is pid 1 of a pid
    namespace: only SIGKILL reaches it without a handler)."""

    name = "kill"

    def setup(self, bench, rt, shared):
        ctx = bench.new_container(rt)
        rt.create(ctx.cid, ctx.bundle, ctx.pid_file)
        return ctx

    def measure(self, bench, ctx):
        call = ctx.rt.kill(ctx.cid, "KILL")
        return Sample(call.ns, call.maxrss_kib)


class DeleteOp(Op):
    """`delete` (without force) of a container whose process exited."""

    name = "delete"

    def setup(self, bench, rt, shared):
        ctx = bench.new_container(rt)
        rt.create(ctx.cid, ctx.bundle, ctx.pid_file)
        rt.start(ctx.cid)
        bench.wait_exit(ctx)
        return ctx

    def measure(self, bench, ctx):
        call = ctx.rt.delete(ctx.cid)
        return Sample(call.ns, call.maxrss_kib)


class RunOp(Op):
    """Foreground `run` of /bin/true; the runtime deletes the container."""

    name = "run"

    def measure(self, bench, ctx):
        call = ctx.rt.run(ctx.cid, ctx.bundle)
        return Sample(call.ns, call.maxrss_kib)


class LifecycleOp(Op):
    """create + start + wait for /bin/true to exit + delete, end to end."""

    name = "lifecycle"

    def measure(self, bench, ctx):
        return bench.lifecycle(ctx)


class ListOp(Op):
    """`list` of whatever the runtime's root holds."""

    name = "list"

    def setup(self, bench, rt, shared):
        return rt

    def measure(self, bench, rt):
        call = rt.list()
        return Sample(call.ns, call.maxrss_kib)

    def teardown(self, bench, ctx):
        pass


class StateOfOp(StateOp):
    """`state` of a given existing container (many containers present)."""

    def __init__(self, cids):
        self.cids = cids

    def prepare(self, bench, rt):
        return Container(rt, self.cids[rt.name], None, None)

    def finish(self, bench, rt, shared):
        pass


OPS = {op.name: op for op in (CreateOp(), StartOp(), StateOp(), KillOp(),
                              DeleteOp(), RunOp(), LifecycleOp())}


# The bench ----------------------------------------------------------------

class Bench:
    """Everything a benchmark session shares: runtimes, bundles, results."""

    def __init__(self, settings=None):
        self.settings = settings or Settings()
        self.results = {}
        self.leaks = []
        self.errors = []
        self.runtimes = []
        self.meta = {}
        self._counter = 0
        self._lock = threading.Lock()
        self._cache = {}
        self.workdir = None

    # set-up and tear-down ---------------------------------------------

    def setup(self):
        s = self.settings
        self.meta["started"] = time.time()
        self.meta["loadavg_start"] = os.getloadavg()
        self._mounts_before = _mount_points()
        self.workdir = tempfile.mkdtemp(prefix="pyrunc-bench-")
        set_subreaper(True)
        self.cgroup_parent = f"pyrunc-bench-{os.getpid()}"
        self.layout = CgroupLayout()
        rootfs, template = build_rootfs(self.workdir)
        self.bundles = Bundles(os.path.join(self.workdir, "bundles"),
                               rootfs, template, self.cgroup_parent)
        self.meta["rootfs"] = rootfs
        # Without gcc nothing can be measured: let it raise.
        self.spawntime = compile_helper(self.workdir, "spawntime")
        for name in s.runtimes:
            rt = self._make_runtime(name)
            if rt is not None:
                self.runtimes.append(rt)
        for rt in self.runtimes:
            self._smoke(rt)

    def _make_runtime(self, name):
        s = self.settings
        root = os.path.join(self.workdir, "roots", name)
        if name == "pyrunc-lib":
            try:
                rt = LibRuntime(name, root, self.workdir, s.timeout)
            except Exception as err:  # noqa: BLE001 - reported per test
                rt = _Unavailable(name, f"import failed: {err}")
            rt.version = rt.probe_version() if not rt.error else ""
            return rt
        if name == "pyrunc-cli":
            argv = [s.pyrunc]
        elif name == "runc":
            argv = [RUNC]
        elif name == "crun":
            try:
                self.crunwrap = compile_helper(self.workdir, "crunwrap")
            except (OSError, subprocess.CalledProcessError) as err:
                return _Unavailable(name, f"cannot build crunwrap: {err}")
            argv = [self.crunwrap, CRUN]
        else:
            raise ValueError(name)
        if not os.access(argv[-1], os.X_OK):
            return _Unavailable(name, f"{argv[-1]} not found")
        rt = CliRuntime(name, argv, root, self.workdir, s.timeout,
                        self.spawntime)
        rt.version = rt.probe_version()
        return rt

    def _smoke(self, rt):
        """Run /bin/true once: a runtime that cannot is marked broken."""
        if rt.error:
            return
        ctx = self.new_container(rt)
        try:
            rt.run(ctx.cid, ctx.bundle)
        except RuntimeFailure as err:
            rt.error = f"smoke test (run /bin/true) failed: {err}"
        finally:
            self.discard(ctx)

    def close(self):
        """Remove everything; record what the runtimes left behind."""
        reap()
        for rt in self.runtimes:
            for cid in rt.ids():
                self.leak(rt.name, "session-end", cid, "state directory",
                          os.path.join(rt.root, cid))
                try:
                    rt.delete(cid, force=True)
                except RuntimeFailure as err:
                    self.errors.append(f"cleanup of {rt.name} {cid}: {err}")
        reap()
        for path in self.layout.existing(self.cgroup_parent):
            for directory, dirs, _ in os.walk(path):
                depth = os.path.relpath(directory, path).count(os.sep)
                if depth == 1 and not dirs and directory != path:
                    rt_name = os.path.basename(os.path.dirname(directory))
                    self.leak(rt_name, "session-end",
                              os.path.basename(directory), "cgroup",
                              directory)
            try:
                killed = remove_cgroup_tree(path)
            except OSError as err:
                self.errors.append(f"cannot remove {path}: {err}")
                continue
            if killed:
                self.errors.append(
                    f"killed {len(killed)} leftover processes in {path}")
        reap()
        set_subreaper(False)
        # Others work on this host too: only mounts where ours could be
        # (the rootfs, our directory, the cgroup tree crunwrap covers)
        # count.
        watched = (self.workdir, self.bundles.rootfs, "/sys/fs/cgroup")
        for point in sorted(_mount_points() - self._mounts_before):
            if any(point == w or point.startswith(w + "/")
                   for w in watched):
                self.leak("?", "session-end", "-", "mount", point)
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.meta["loadavg_end"] = os.getloadavg()
        self.meta["finished"] = time.time()

    # containers ---------------------------------------------------------

    def next_id(self, prefix="b"):
        with self._lock:
            self._counter += 1
            return f"{prefix}{self._counter}"

    def new_container(self, rt, args=("/bin/true",), memory_limit=None):
        cid = self.next_id()
        bundle = self.bundles.make(rt.name, cid, args=args,
                                   memory_limit=memory_limit)
        pid_file = os.path.join(self.bundles.directory, rt.name, cid,
                                "pid")
        return Container(rt, cid, bundle, pid_file)

    def wait_exit(self, ctx):
        pid = ctx.read_pid()
        if not wait_exit(pid, self.settings.timeout):
            raise RuntimeFailure(
                f"{ctx.rt.name}: container {ctx.cid} (pid {pid}) did not "
                "exit")

    def lifecycle(self, ctx):
        """create, start, wait for exit, delete; one Sample end to end."""
        rt = ctx.rt
        start = time.perf_counter_ns()
        created = rt.create(ctx.cid, ctx.bundle, ctx.pid_file)
        started = rt.start(ctx.cid)
        self.wait_exit(ctx)
        deleted = rt.delete(ctx.cid)
        end = time.perf_counter_ns()
        rss = [c.maxrss_kib for c in (created, started, deleted)
               if c.maxrss_kib is not None]
        return Sample(end - start, max(rss) if rss else None)

    def discard(self, ctx, phase="teardown"):
        """Delete ctx's container if it is still there; check for leaks.

        A leak is what the runtime left after its own delete (or run)
        succeeded: the state directory or a cgroup of the container.
        """
        rt = ctx.rt
        if rt.exists(ctx.cid):
            try:
                rt.delete(ctx.cid, force=True)
            except RuntimeFailure as err:
                self.errors.append(f"{phase}: {err}")
            if rt.exists(ctx.cid):
                self.leak(rt.name, phase, ctx.cid, "state directory",
                          os.path.join(rt.root, ctx.cid))
                shutil.rmtree(os.path.join(rt.root, ctx.cid),
                              ignore_errors=True)
        relative = self.bundles.cgroup_path(rt.name, ctx.cid)
        for path in self.layout.existing(relative):
            self.leak(rt.name, phase, ctx.cid, "cgroup", path)
            try:
                remove_cgroup_tree(path)
            except OSError as err:
                self.errors.append(f"cannot remove {path}: {err}")
        self.bundles.remove(rt.name, ctx.cid)

    def leak(self, runtime, phase, cid, kind, path):
        with self._lock:
            self.leaks.append({"runtime": runtime, "phase": phase,
                               "container": cid, "kind": kind,
                               "path": path})

    # sampling -----------------------------------------------------------

    def usable(self, names=None):
        return [rt for rt in self.runtimes
                if not rt.error and (names is None or rt.name in names)]

    def runtime(self, name):
        for rt in self.runtimes:
            if rt.name == name:
                return rt
        return None

    def sample(self, op, runtimes, rounds, warmup=0, modes=None):
        """Measure op for each runtime and mode, round-robin.

        modes is a sequence of (name, idle seconds before the measured
        command); default back-to-back only. Each round measures every
        runtime in every mode, starting with a different runtime (and
        alternating the mode order) each round. Return
        {mode: {runtime: {"samples": [Sample], "error": str|None}}}.
        A runtime that fails is dropped from the remaining rounds; its
        error is kept for its tests to report.
        """
        modes = list(modes or (("back-to-back", 0.0),))
        out = {mode: {rt.name: {"samples": [], "error": None,
                                "failures": []}
                      for rt in runtimes} for mode, _ in modes}

        def fail(rt, err):
            for mode, _ in modes:
                out[mode][rt.name]["error"] = _failure_text(err)

        def failed(rt, mode, err):
            """Count a failed sample; give up on rt after too many.

            A sample can fail for reasons outside the runtime (another
            job on the host killing processes in cgroups it did not
            create): a few failures are tolerated and reported.
            """
            text = _failure_text(err)
            failures = out[mode][rt.name]["failures"]
            failures.append(text)
            self.errors.append(f"{op.name} [{mode}] {rt.name}: {text}")
            total = sum(len(out[m][rt.name]["failures"]) for m, _ in modes)
            return total > self.settings.max_failures

        shared = {}
        active = []
        for rt in runtimes:
            try:
                shared[rt.name] = op.prepare(self, rt)
                active.append(rt)
            except Exception as err:  # noqa: BLE001 - reported by test
                fail(rt, err)
        for index in range(warmup + rounds):
            if not active:
                break
            shift = index % len(active)
            order = active[shift:] + active[:shift]
            mode_order = modes if index % 2 == 0 else modes[::-1]
            for rt in order:
                for mode, idle in mode_order:
                    try:
                        sample = self._one(op, rt, shared[rt.name], idle)
                    except Exception as err:  # noqa: BLE001 - reported
                        if failed(rt, mode, err):
                            fail(rt, err)
                            active.remove(rt)
                            break
                        continue
                    if index >= warmup:
                        out[mode][rt.name]["samples"].append(sample)
        for rt in runtimes:
            if rt.name in shared:
                try:
                    op.finish(self, rt, shared[rt.name])
                except Exception as err:  # noqa: BLE001 - reported
                    self.errors.append(
                        f"{op.name} finish: {_failure_text(err)}")
        reap()
        return out

    def _one(self, op, rt, shared, idle):
        ctx = op.setup(self, rt, shared)
        try:
            if idle:
                time.sleep(idle)
            return op.measure(self, ctx)
        finally:
            try:
                op.teardown(self, ctx)
            finally:
                reap()

    def cached(self, key, compute):
        """Compute a result once per session (shared by parametrized
        tests that each report one runtime of it)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


    # crun's wrapper ----------------------------------------------------

    def wrapper_overhead(self, rounds, warmup=3):
        """Time /bin/true run directly, under crunwrap and under the
        `unshare -m sh -c 'mount ...; exec'` one-liner, interleaved.

        The difference is what every crun invocation pays for the
        private mount namespace and the tmpfs over the cgroup2 mount.
        """
        script = ('mount -t tmpfs none /sys/fs/cgroup/unified && '
                  'exec "$0" "$@"')
        variants = {
            "direct": ["/bin/true"],
            "crunwrap": [self.crunwrap, "/bin/true"],
            "unshare-sh": ["/usr/bin/unshare", "-m", "/bin/sh", "-c",
                           script, "/bin/true"],
        }
        names = list(variants)
        out = {name: [] for name in names}
        env = dict(os.environ)
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            for index in range(warmup + rounds):
                shift = index % len(names)
                for name in names[shift:] + names[:shift]:
                    call = spawn_wait(variants[name], env, devnull,
                                      devnull, devnull,
                                      self.settings.timeout,
                                      self.spawntime)
                    if call.status != 0:
                        raise RuntimeFailure(
                            f"{' '.join(variants[name])}: exit status "
                            f"{call.status}")
                    if index >= warmup:
                        out[name].append(Sample(call.ns, call.maxrss_kib))
        finally:
            os.close(devnull)
        return out

    # memory -----------------------------------------------------------

    def charged_memory(self, rt, limit=256 << 20):
        """Peak memory charged to one container's memory cgroup.

        The container (echo it works, under a generous limit) is created,
        its memory cgroup found through /proc/<pid>/cgroup, started, and
        memory.max_usage_in_bytes read after it exited, before delete
        removes the cgroup. The peak includes what the runtime's own init
        code charged before the exec (runc init is a Go process).
        """
        ctx = self.new_container(rt, args=("/bin/echo", "it", "works"),
                                 memory_limit=limit)
        try:
            rt.create(ctx.cid, ctx.bundle, ctx.pid_file)
            memdir = CgroupLayout.memory_dir_of(ctx.read_pid())
            rt.start(ctx.cid)
            self.wait_exit(ctx)
            usage = _read_int(os.path.join(memdir,
                                           "memory.max_usage_in_bytes"))
            kmem = _read_int(os.path.join(
                memdir, "memory.kmem.max_usage_in_bytes"))
            rt.delete(ctx.cid)
        finally:
            self.discard(ctx, "memory")
        return {
            "max_usage_kib": usage / KIB,
            "kmem_max_usage_kib": None if kmem is None else kmem / KIB,
            "cgroup": memdir,
        }

    def probe_memory(self, rt, limit):
        """Does `echo it works` succeed under linux.resources.memory.limit
        = limit bytes? Return (ok, detail)."""
        ctx = self.new_container(rt, args=("/bin/echo", "it", "works"),
                                 memory_limit=limit)
        out = os.path.join(os.path.dirname(ctx.pid_file), "out")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                     | os.O_CLOEXEC, 0o644)
        detail = ""
        status = None
        try:
            try:
                status = rt.run(ctx.cid, ctx.bundle, stdout=fd,
                                check=False).status
            except RuntimeFailure as err:
                detail = str(err)
            with open(out) as f:
                text = f.read()
        finally:
            os.close(fd)
            self.discard(ctx, "memory-floor")
            reap()
        ok = status == 0 and text == "it works\n"
        if not ok and not detail:
            detail = f"exit status {status}, output {text[:40]!r}"
        return ok, detail

    def memory_floor(self, rt, low=64 * KIB, high=64 << 20):
        """Bisect, in pages, the smallest limit at which echo works,
        then step up to one where it works three times in a row."""
        probes = []

        def probe(pages):
            ok, detail = self.probe_memory(rt, pages * PAGE)
            probes.append({"limit_kib": pages * PAGE // KIB, "ok": ok,
                           "detail": detail[-200:]})
            return ok

        lo = low // PAGE
        hi = high // PAGE
        result = {"low_kib": low // KIB, "high_kib": high // KIB,
                  "probes": probes}
        if not probe(hi):
            result.update(floor_kib=None,
                          note=f"fails even at {high >> 20} MiB")
            return result
        if probe(lo):
            result.update(floor_kib=lo * PAGE // KIB, verified=True,
                          note="works at the lowest limit tried")
            return result
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if probe(mid):
                hi = mid
            else:
                lo = mid
        # Near the floor a run may fit or not, depending on how the
        # kernel charged it (per-CPU batches, reclaim). The floor is the
        # smallest limit from the bisection's up that passes three times
        # in a row; the step doubles at each miss.
        first = hi
        step = 1
        while not (probe(hi) and probe(hi) and probe(hi)):
            if hi >= high // PAGE:
                break
            hi = min(hi + step, high // PAGE)
            step *= 2
        result.update(floor_kib=hi * PAGE // KIB,
                      fails_at_kib=lo * PAGE // KIB,
                      verified=hi == first)
        if hi != first:
            result["note"] = (f"passed once at {first * PAGE // KIB} KiB; "
                              f"three times in a row from "
                              f"{hi * PAGE // KIB} KiB")
        return result

    # scale --------------------------------------------------------------

    def concurrent(self, rt, n):
        """n lifecycles at once, one thread each; wall time of the batch."""
        ctxs = [self.new_container(rt) for _ in range(n)]
        barrier = threading.Barrier(n + 1)
        latencies = [None] * n
        errors = []

        def worker(i):
            barrier.wait()
            try:
                latencies[i] = self.lifecycle(ctxs[i]).ns
            except Exception as err:  # noqa: BLE001 - counted, reported
                errors.append(_failure_text(err))

        threads = [threading.Thread(target=worker, args=(i,))
                   for i in range(n)]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter_ns()
        for thread in threads:
            thread.join()
        wall = time.perf_counter_ns() - start
        for ctx in ctxs:
            self.discard(ctx, "concurrent")
        reap()
        return {"wall_ns": wall,
                "latencies_ns": [x for x in latencies if x is not None],
                "errors": errors}

    def populate(self, rt, n, root):
        """Create n containers (left in the created state) under root.

        Return (runtime bound to root, ids made, create times in ns,
        error or None); a failure stops the filling, and what was made
        is still returned so that depopulate() can remove it.
        """
        bound = rt.with_root(root)
        cids = []
        times = []
        for index in range(n):
            cid = f"m{index:05d}"
            bundle = self.bundles.make(rt.name, cid)
            pid_file = os.path.join(bundle, "pid")
            cids.append(cid)
            try:
                times.append(bound.create(cid, bundle, pid_file).ns)
            except RuntimeFailure as err:
                return bound, cids, times, str(err)
        return bound, cids, times, None

    def depopulate(self, bound, owner, cids):
        """Remove every container populate() made; return the times of
        their `delete` in ns.

        The inits are killed first, all at once (`delete --force` of a
        created container costs runc some 140 ms of polling each), so
        each delete finds a stopped container. owner is the runtime whose
        name the cgroupsPaths and bundles carry.
        """
        pids = []
        for cid in cids:
            try:
                with open(os.path.join(self.bundles.directory, owner, cid,
                                       "pid")) as f:
                    pids.append(int(f.read().strip()))
            except (OSError, ValueError):
                continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:
            wait_exit(pid, self.settings.timeout)
        reap()
        times = []
        for cid in cids:
            try:
                times.append(bound.delete(cid).ns)
            except RuntimeFailure as err:
                self.errors.append(f"many: {err}")
                try:
                    bound.delete(cid, force=True)
                except RuntimeFailure:
                    pass
            if bound.exists(cid):
                self.leak(bound.name, "many", cid, "state directory",
                          os.path.join(bound.root, cid))
                shutil.rmtree(os.path.join(bound.root, cid),
                              ignore_errors=True)
            for path in self.layout.existing(
                    self.bundles.cgroup_path(owner, cid)):
                self.leak(bound.name, "many", cid, "cgroup", path)
                try:
                    remove_cgroup_tree(path)
                except OSError as err:
                    self.errors.append(f"cannot remove {path}: {err}")
            self.bundles.remove(owner, cid)
        reap()
        return times


class ExecBaseline:
    """Spawns /bin/true through spawntime in place of a runtime command.

    Sampled next to the runtimes when many containers are present: it
    shows what the machine's state costs any new process, apart from the
    runtimes' own work.
    """

    kind = "baseline"
    error = None

    def __init__(self, name, helper, timeout):
        self.name = name
        self.label = name
        self.helper = helper
        self.timeout = timeout
        self.env = dict(os.environ)
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)

    def _true(self, *_args):
        return spawn_wait(["/bin/true"], self.env, self._devnull,
                          self._devnull, self._devnull, self.timeout,
                          self.helper)

    list = _true
    state = _true


def _failure_text(err):
    """A runtime's failure as one line; other errors name their type."""
    if isinstance(err, RuntimeFailure):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class _Unavailable:
    """A runtime that could not be set up; its tests fail with error."""

    kind = "none"

    def __init__(self, name, error):
        self.name = name
        self.label = LABELS.get(name, name)
        self.error = error
        self.version = ""
        self.root = ""

    def ids(self):
        return []


def _mount_points():
    with open("/proc/self/mountinfo") as f:
        return {_unescape(line.split()[4]) for line in f}
