"""What the engine tests share: images, a private containerd, podman.

Everything an engine touches lives under one directory a test module owns:
containerd runs with its own config, socket, root and state there, in a
network namespace of its own (its CRI stream server and the CNI bridge
never reach the host's network); podman gets its own storage, run
directory, lock files and event log through flags and CONTAINERS_CONF.

Engines call pyrunc through a small recording script (``Recorder``), so a
test can show which commands and flags they used; a fake ``runc`` first
on their PATH proves that runc itself was never called.
"""

import json
import logging
import os
import resource
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

import helpers

log = logging.getLogger(__name__)

REPO = helpers.REPO
MAKE_IMAGE = REPO / "scripts" / "make-image.sh"
SETUP_HINT = "run scripts/engines-setup.sh"

BUSYBOX_REF = "localhost/pyrunc-busybox:latest"
PAUSE_REF = "localhost/pyrunc-pause:latest"
# The CRI sandbox ("pause") image: busybox's sleep, killed by containerd
# with SIGKILL when the pod stops.
PAUSE_CMD = ("/bin/sleep", "2147483647")

# Directories engines create outside their configured ones, whatever the
# configuration says; removed afterwards when a test run made them and
# left them empty. containerd 1.6 puts shim sockets in /run/containerd/s
# (a constant there) and go-cni its result cache in /var/lib/cni.
GLOBAL_DIRS = (
    "/run/containerd/s",
    "/run/containerd/fifo",
    "/run/containerd",
    "/var/lib/cni/results",
    "/var/lib/cni",
)


def missing(*programs):
    """Return the programs of the list that are not on PATH."""
    return [p for p in programs if shutil.which(p) is None]


def pyrunc_path():
    """Return the absolute path of the installed pyrunc CLI, or None."""
    argv = helpers.pyrunc_argv()
    if argv is None:
        return None
    return str(Path(argv[0]).absolute())


def run(argv, *, timeout=60, env=None, input=None, cwd=None):
    """Run argv and return a CompletedProcess with text output.

    Output goes to files: a container started by the command may keep
    its stdout open long after the command returned.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(
            [os.fspath(a) for a in argv], stdout=out, stderr=err,
            stdin=subprocess.DEVNULL if input is None else None,
            input=None if input is None else input.encode(),
            timeout=timeout, env=env, cwd=cwd)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            proc.args, proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"))


def wait_for(predicate, timeout=15, interval=0.05, what="condition"):
    """Poll predicate until it is true; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def build_image(dest, ref=BUSYBOX_REF, cmd=None):
    """Build the busybox OCI archive at dest with make-image.sh."""
    argv = ["bash", MAKE_IMAGE, dest, ref]
    if cmd:
        argv += ["--", *cmd]
    proc = run(argv, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"make-image.sh failed: {proc.stderr}")
    return Path(dest)


# --- how engines call pyrunc


class Recorder:
    """A pyrunc wrapper that logs every call, and a runc that must not run.

    ``path`` is the wrapper to give an engine as its runtime binary;
    ``bin_dir`` holds a fake ``runc`` to put first on the engine's PATH.
    """

    def __init__(self, base, pyrunc, root=None):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.calls_file = self.base / "calls.log"
        self.runc_marker = self.base / "runc-was-called"
        self.bin_dir = self.base / "bin"
        self.bin_dir.mkdir(exist_ok=True)
        self.path = self.base / "pyrunc-recorded"
        self._write_wrapper(pyrunc, root)
        self._write_fake_runc()

    def _write_wrapper(self, pyrunc, root):
        # Not exec: the exit status is recorded after pyrunc returns. The
        # engine's stdio passes through untouched, a container's too.
        lines = [
            "#!/bin/bash",
            "# Written by tests/engines: record the call, run pyrunc.",
            "args=(\"$@\")",
        ]
        if root is not None:
            # A default --root for calls that name none (see Podman).
            lines += [
                "given=0 skip=0",
                "for a in \"$@\"; do",
                "    if ((skip)); then skip=0; continue; fi",
                "    case $a in",
                "    --root|--root=*) given=1; break;;",
                "    --log|--log-format|--criu|--rootless) skip=1;;",
                "    -*) ;;",
                "    *) break;;",
                "    esac",
                "done",
                f"((given)) || args=(--root {shlex.quote(str(root))}"
                " \"$@\")",
            ]
        lines += [
            f"{shlex.quote(pyrunc)} \"${{args[@]}}\"",
            "rc=$?",
            "{ printf '%s' \"$rc\"; printf ' %q' \"$@\"; printf '\\n'; }"
            f" >>{shlex.quote(str(self.calls_file))}",
            "exit \"$rc\"",
        ]
        self.path.write_text("\n".join(lines) + "\n")
        self.path.chmod(0o755)

    def _write_fake_runc(self):
        text = (
            "#!/bin/sh\n"
            "# Written by tests/engines: runc must never be called.\n"
            f"echo \"$*\" >>{shlex.quote(str(self.runc_marker))}\n"
            "echo 'fake runc: engines must call pyrunc' >&2\n"
            "exit 1\n")
        for name in ("runc", "crun"):
            fake = self.bin_dir / name
            fake.write_text(text)
            fake.chmod(0o755)

    def env(self, base=None):
        """Return an environment whose PATH finds the fake runc first."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def calls(self):
        """Return [(exit status, argv)] in call order."""
        if not self.calls_file.exists():
            return []
        found = []
        for line in self.calls_file.read_text().splitlines():
            rc, _, rest = line.partition(" ")
            found.append((int(rc), shlex.split(rest)))
        return found

    def commands(self, cid=None):
        """Return the subcommands called (for cid only, if given)."""
        names = []
        for _, argv in self.calls():
            sub, args = split_global(argv)
            if cid is None or cid in args:
                names.append(sub)
        return names

    def failures(self):
        """Return the calls that exited non-zero, for messages."""
        return [(rc, argv) for rc, argv in self.calls() if rc != 0]

    def runc_calls(self):
        if not self.runc_marker.exists():
            return []
        return self.runc_marker.read_text().splitlines()


# runc's global flags that take a value, as engines pass them.
_VALUE_FLAGS = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def split_global(argv):
    """Split a runtime argv into (subcommand, its arguments)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag = argv[i]
        i += 1
        if flag in _VALUE_FLAGS:
            i += 1
    if i >= len(argv):
        return None, []
    return argv[i], argv[i + 1:]


def global_flag(argv, name):
    """Return the value of a global flag (--root or --root=x) or None."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        word = argv[i]
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
        i += 2 if word in _VALUE_FLAGS else 1
    return None


# --- leftovers


def shim_processes(marker):
    """Return engine helper processes (shims, conmon) naming marker."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        text = " ".join(cmd)
        if marker in text and cmd and (
                "containerd-shim" in cmd[0] or "conmon" in cmd[0]
                or "podman" in cmd[0]):
            found.append((proc.info["pid"], text))
    return found


def mounts_under(prefix):
    """Return our mount points at or below prefix."""
    prefix = str(prefix).rstrip("/")
    return [m.point for m in helpers.read_mounts()
            if m.point == prefix or m.point.startswith(prefix + "/")]


def kill_and_reap(pids):
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.kill()
            procs.append(proc)
        except psutil.Error:
            continue
    psutil.wait_procs(procs, timeout=5)


def umount_all_under(prefix):
    for point in sorted(mounts_under(prefix), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False,
                       stderr=subprocess.DEVNULL)


def existing_global_dirs():
    return {d for d in GLOBAL_DIRS if os.path.isdir(d)}


def containerd_running():
    """Whether any containerd daemon runs (a system one, another run's)."""
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "containerd":
            return True
    return False


def remove_new_global_dirs(before):
    """rmdir the empty GLOBAL_DIRS that no other containerd may use.

    Those that did not exist before are ours. Those that did may be left
    over from a test run that overlapped this one; they are ours too
    unless a containerd daemon is running now.
    """
    others = containerd_running()
    for d in GLOBAL_DIRS:
        if not os.path.isdir(d) or (d in before and others):
            continue
        try:
            os.rmdir(d)
        except OSError as err:
            log.warning("leaving %s: %s", d, err)


def hard_limit(kind):
    """Return the hard rlimit, or None when unlimited."""
    _, hard = resource.getrlimit(kind)
    return None if hard == resource.RLIM_INFINITY else hard


# --- containerd


class Containerd:
    """Debian's containerd on a private socket, root, state and config.

    It runs in a network namespace of its own, made by unshare(1): the
    CRI stream server listens on 127.0.0.1 there, and the CNI bridge and
    pod interfaces live and die there. Its shims inherit the namespace.
    """

    NAMESPACE_CRI = "k8s.io"

    def __init__(self, base, runtime, pyrunc, pyrunc_root, env):
        self.base = Path(base)
        self.runtime = str(runtime)
        self.pyrunc = str(pyrunc)
        self.pyrunc_root = Path(pyrunc_root)
        self.env = env
        self.socket = self.base / "containerd.sock"
        self.config = self.base / "config.toml"
        self.logfile = self.base / "containerd.log"
        self.cri_logs = self.base / "pod-logs"
        self.fifo_dir = self.base / "fifo"
        self.proc = None

    # config

    def write_config(self):
        for sub in ("root", "state", "opt", "cni/conf", "cni/ipam",
                    "pod-logs", "fifo"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.pyrunc_root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(containerd_config(
            base=self.base, socket=self.socket, runtime=self.runtime,
            pyrunc_root=self.pyrunc_root))
        conflist = self.base / "cni" / "conf" / "10-pyrunc-test.conflist"
        conflist.write_text(json.dumps(cni_conflist(
            self.base / "cni" / "ipam"), indent=2))

    # process

    def start(self, timeout=30):
        self.write_config()
        out = open(self.logfile, "ab")
        inner = (f"ip link set lo up && exec containerd --config "
                 f"{shlex.quote(str(self.config))}")
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", inner],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd="/", env=self.env)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "containerd exited at start:\n" + self.log_tail())
            if self.socket.exists():
                if self.ctr("version", timeout=10).returncode == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("containerd did not start:\n" + self.log_tail())

    def log_tail(self, lines=40):
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def ctr(self, *args, namespace="default", timeout=60, input=None):
        argv = ["ctr", "--address", self.socket, "--namespace", namespace,
                *args]
        return run(argv, timeout=timeout, env=self.env, input=input)

    def ctr_argv(self, *args, namespace="default"):
        return ["ctr", "--address", str(self.socket), "--namespace",
                namespace, *[os.fspath(a) for a in args]]

    def pyrunc_ids(self, namespace="default"):
        """Ids with a state directory in pyrunc's root for namespace."""
        root = self.pyrunc_root / namespace
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir())

    def stop(self):
        """Stop containerd; clean what a failed test may have left."""
        marker = str(self.socket)
        for ns in ("default", self.NAMESPACE_CRI):
            root = self.pyrunc_root / ns
            if root.is_dir():
                for cid in list(root.iterdir()):
                    run([self.pyrunc, "--root", root, "delete", "--force",
                         cid.name], timeout=30)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        kill_and_reap([pid for pid, _ in shim_processes(marker)])
        umount_all_under(self.base)


def containerd_config(base, socket, runtime, pyrunc_root):
    """Return containerd's config.toml for the private instance."""
    base = Path(base)
    runtime_table = 'plugins."io.containerd.grpc.v1.cri".containerd'
    return f"""\
# Written by tests/engines: a private containerd driving pyrunc.
version = 2
root = "{base / 'root'}"
state = "{base / 'state'}"
# Snapshotters this host cannot use would only log errors.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{socket}"
  tcp_address = ""

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{base / 'opt'}"

  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_tls_streaming = false
    sandbox_image = "{PAUSE_REF}"
    disable_apparmor = true
    netns_mounts_under_state_dir = true
    # This host withholds CAP_SYS_RESOURCE, so the sandbox's oomScoreAdj
    # of -998 cannot be set by any runtime; keep it at containerd's own.
    restrict_oom_score_adj = true

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{base / 'cni' / 'conf'}"
      max_conf_num = 1

    [{runtime_table}]
      default_runtime_name = "pyrunc"
      [{runtime_table}.runtimes.pyrunc]
        runtime_type = "io.containerd.runc.v2"
        [{runtime_table}.runtimes.pyrunc.options]
          BinaryName = "{runtime}"
          Root = "{pyrunc_root}"
"""


def cni_conflist(ipam_dir):
    """A bridge network with no uplink: no gateway, no masquerading."""
    return {
        "cniVersion": "1.0.0",
        "name": "pyrunc-test",
        "plugins": [{
            "type": "bridge",
            "bridge": "pyrunc-cni0",
            "isGateway": False,
            "ipMasq": False,
            "hairpinMode": False,
            "ipam": {
                "type": "host-local",
                "dataDir": str(ipam_dir),
                "ranges": [[{"subnet": "10.213.0.0/24"}]],
            },
        }],
    }


# --- podman


class Podman:
    """Debian's podman 4.3 with private storage, run dir, locks, events."""

    def __init__(self, base, runtime, pyrunc, pyrunc_root, env):
        self.base = Path(base)
        self.runtime = str(runtime)
        self.pyrunc = str(pyrunc)
        self.pyrunc_root = Path(pyrunc_root)
        self.conf = self.base / "containers.conf"
        self.storage_conf = self.base / "storage.conf"
        self.events = self.base / "events.log"
        self.env = dict(env)
        self.env["CONTAINERS_CONF"] = str(self.conf)
        self.env["CONTAINERS_STORAGE_CONF"] = str(self.storage_conf)

    def write_config(self):
        for sub in ("root", "runroot", "tmp", "volumes", "net"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.pyrunc_root.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(podman_containers_conf(self.base, self.events))
        self.storage_conf.write_text(
            "# Written by tests/engines.\n"
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.base / "root"}"\n'
            f'runroot = "{self.base / "runroot"}"\n'
            "[storage.options.overlay]\n"
            "# No private bind mount of the storage home: a podman that\n"
            "# fails a start does not always unmount it again.\n"
            'skip_mount_home = "true"\n')

    def global_flags(self, runtime=None):
        return [
            "--root", str(self.base / "root"),
            "--runroot", str(self.base / "runroot"),
            "--tmpdir", str(self.base / "tmp"),
            # With --root, podman 4.3 ignores storage.conf's options.
            "--storage-opt", "overlay.skip_mount_home=true",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            "--runtime", runtime or self.runtime,
        ]

    def argv(self, *args, runtime=None):
        return ["podman", *self.global_flags(runtime),
                *[os.fspath(a) for a in args]]

    def __call__(self, *args, timeout=60, input=None, runtime=None):
        return run(self.argv(*args, runtime=runtime), timeout=timeout,
                   env=self.env, input=input)

    def pyrunc_ids(self):
        if not self.pyrunc_root.is_dir():
            return []
        return sorted(p.name for p in self.pyrunc_root.iterdir())

    def helpers_alive(self):
        """conmon and `podman container cleanup` still running for us."""
        return shim_processes(str(self.base / "root"))


def podman_containers_conf(base, events):
    base = Path(base)
    limits = []
    # podman asks for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576 for root,
    # which needs CAP_SYS_RESOURCE when above the hard limit; this host
    # withholds it. Ask for what podman itself has: the hard NOFILE limit
    # (podman tries 1048576 and falls back to it) and podman's own NPROC
    # of 32768 (it lowers its limit to that at start).
    nofile = hard_limit(resource.RLIMIT_NOFILE)
    if nofile is not None and nofile < 1048576:
        limits.append(f"nofile={nofile}:{nofile}")
        nproc = hard_limit(resource.RLIMIT_NPROC)
        nproc = 32768 if nproc is None else min(nproc, 32768)
        limits.append(f"nproc={nproc}:{nproc}")
    ulimits = ", ".join(f'"{x}"' for x in limits)
    return f"""\
# Written by tests/engines: a private podman driving pyrunc.
[containers]
netns = "none"
# conmon stays in podman's cgroup: its own would be made at the root of
# every hierarchy, outside the cgroup this test runs in.
cgroups = "no-conmon"
default_ulimits = [{ulimits}]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
lock_type = "file"
tmp_dir = "{base / 'tmp'}"
volume_path = "{base / 'volumes'}"

[network]
network_config_dir = "{base / 'net'}"
"""


# --- terminals


def run_in_pty(argv, *, env=None, timeout=60, rows=24, cols=80):
    """Run argv with a new pty as its controlling terminal and stdio.

    Returns (exit status, everything written to the terminal). Engines
    put their terminal in raw mode, so output keeps its \\r\\n.
    """
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ,
                struct.pack("HHHH", rows, cols, 0, 0))

    def make_controlling():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [os.fspath(a) for a in argv], stdin=slave, stdout=slave,
        stderr=slave, env=env, start_new_session=True,
        preexec_fn=make_controlling)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise AssertionError(
                    f"{argv[0]} under a pty timed out; output so far: "
                    f"{b''.join(chunks)!r}")
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                # Exited, and nothing more to read.
                break
        status = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        os.close(master)
    return status, b"".join(chunks).decode(errors="replace")


# --- CRI


class Cri:
    """A CRI client (k8s.io/cri-api v1) over containerd's unix socket."""

    def __init__(self, socket):
        import grpc
        from cri_api.v1 import api_pb2, api_pb2_grpc

        self.pb = api_pb2
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.images = api_pb2_grpc.ImageServiceStub(self.channel)

    def close(self):
        self.channel.close()

    def call(self, method, request, timeout=60):
        """Call a RuntimeService method, e.g. call("Version", req)."""
        return getattr(self.runtime, method)(request, timeout=timeout)
