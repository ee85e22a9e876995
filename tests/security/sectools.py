"""Helpers of the hardening tests: containers under attack and attackers.

Every test here mounts a real attack on a real container. The helpers
build bundles (a busybox rootfs, optionally with the host's /usr so that
a Python interpreter runs inside), start detached containers, and wait
for what the attacker left behind.
"""

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import helpers
from pyrunc.process import caps

def available_caps():
    """Every capability this kernel has."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    return list(caps.NAMES[:last + 1])


def new_bundle(tmp_path, name, request, source=None):
    """A fresh copy of the default bundle at tmp_path/name."""
    return helpers.make_bundle(
        tmp_path / name,
        cgroups_path=helpers.cgroup_name(f"{request.node.name}-{name}"),
        source=source or helpers.DEFAULT_BUNDLE)


def set_args(bundle, *args):
    bundle.config["process"]["args"] = list(args)


def mount(bundle, destination, type_, source, *options):
    """Append a mount to the bundle's config."""
    entry = {"destination": destination, "type": type_, "source": source}
    if options:
        entry["options"] = list(options)
    bundle.config["mounts"].append(entry)


def replace_mount(bundle, destination, entry):
    """Put entry in place of the mount at destination."""
    mounts = bundle.config["mounts"]
    for index, m in enumerate(mounts):
        if m["destination"] == destination:
            mounts[index] = entry
            return
    mounts.append(entry)


def writable_rootfs(bundle):
    bundle.config["root"]["readonly"] = False


def privileged(bundle):
    """Give the container every capability, as --privileged does."""
    caps = available_caps()
    capset = bundle.config["process"]["capabilities"]
    for name in ("bounding", "effective", "permitted"):
        capset[name] = list(caps)
    capset["ambient"] = []


def host_usr(bundle):
    """Let the host's Python run in the container: bind /usr, read-only.

    An attacker's image would ship its own interpreter and libraries; the
    host's are a stand-in that costs nothing to set up.
    """
    rootfs = bundle.rootfs
    (rootfs / "usr").mkdir(exist_ok=True)
    for name in ("lib", "lib64"):
        link = rootfs / name
        if not link.exists():
            link.symlink_to(f"usr/{name}")
    mount(bundle, "/usr", "bind", "/usr", "rbind", "ro")


def user_namespace(bundle, host_id=100000, size=65536):
    """Run the container in a user namespace mapping root to host_id.

    The rootfs is chowned to the mapped root, as an engine does.
    """
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    mapping = [{"containerID": 0, "hostID": host_id, "size": size}]
    linux["uidMappings"] = mapping
    linux["gidMappings"] = mapping
    chown_tree(bundle.rootfs, host_id)


def chown_tree(path, ident):
    subprocess.run(["chown", "-R", "-h", f"{ident}:{ident}", str(path)],
                   check=True)


def script(bundle, path, text, mode=0o755):
    """Write an executable file into the rootfs."""
    target = bundle.rootfs / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    os.chmod(target, mode)
    return target


def start(rt, bundle, cid, *extra, check=True):
    """`run -d` the bundle; return the CompletedProcess."""
    bundle.save()
    proc = rt("run", "-d", "--bundle", bundle, *extra, cid)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def init_pid(rt, cid):
    state = rt.state(cid)
    assert state is not None, f"no state for {cid}"
    return state["pid"]


def wait_stopped(rt, cid, timeout=10.0):
    """Wait until cid's init exited; return whether it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = rt.state(cid)
        if state is None or state["status"] == "stopped":
            return True
        time.sleep(0.05)
    return False


def wait_for(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def delete(rt, *cids):
    """Kill and delete containers, reaping what we adopted meanwhile.

    We are a subreaper: a process `exec -d` started is our child once the
    runtime exits, and a pid namespace's init does not finish dying until
    every process of its namespace is reaped.
    """
    for cid in cids:
        rt("kill", cid, "KILL")
        wait_for(lambda: reap_zombies() or stopped(rt, cid), timeout=5)
        proc = rt("delete", "--force", cid)
        assert proc.returncode == 0, proc.stderr


def stopped(rt, cid):
    state = rt.state(cid)
    return state is None or state["status"] == "stopped"


def reap_zombies():
    """Reap our exited children; return False so wait_for goes on."""
    import psutil

    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue
    return False


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def host_marker_dir(tmp_path, name="outside"):
    """An empty host directory anyone may write: what escapes land in."""
    path = tmp_path / name
    path.mkdir()
    os.chmod(path, 0o777)
    return path


def tree(path):
    """Every path below path, relative, for assertion messages."""
    path = Path(path)
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def error_line(proc):
    """The runtime's error: one line, no traceback."""
    text = proc.stderr.strip()
    assert "Traceback" not in text, text
    return text


def read_json(path):
    with open(path) as f:
        return json.load(f)


def copy_interpreter(dest):
    """A private copy of the interpreter pyrunc runs on.

    The tests that attack the runtime's own binary attack this copy, never
    the host's /usr/bin/python3.
    """
    real = os.path.realpath("/proc/self/exe")
    shutil.copy2(real, dest)
    return dest
