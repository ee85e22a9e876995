"""bpf(2) device filters on a real cgroup2 directory.

A hybrid host mounts cgroup2 at /sys/fs/cgroup/unified and a v2 host at
/sys/fs/cgroup: either takes BPF_CGROUP_DEVICE programs, so the loader
and the generated program are tested on this host, not only in the VM.
"""

import os
import secrets
import subprocess
from types import SimpleNamespace as NS

import pytest

import helpers
from pyrunc.cgroups import bpf, devicefilter
from pyrunc.cgroups.devices import effective_rules


def cgroup2_root():
    for path in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(path, "cgroup.controllers")):
            return path
    return None


ROOT = cgroup2_root()

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(ROOT is None, reason="no cgroup2 hierarchy"),
]

DENY_ALL = NS(allow=False, type=None, major=None, minor=None, access="rwm")


@pytest.fixture
def cgroup():
    path = os.path.join(ROOT, f"{helpers.CGROUP_PREFIX}bpf-"
                        f"{secrets.token_hex(4)}")
    os.mkdir(path)
    fd = os.open(path, os.O_DIRECTORY | os.O_RDONLY)
    yield path, fd
    os.close(fd)
    os.rmdir(path)


def run_in(path, script):
    wrapped = f"echo $$ > {path}/cgroup.procs; {script}"
    return subprocess.run(["sh", "-c", wrapped], capture_output=True,
                          text=True, timeout=30)


def test_filter_enforced(cgroup):
    path, fd = cgroup
    rules = effective_rules([DENY_ALL], [NS(path="/dev/null")])
    bpf.attach_device_filter(fd, devicefilter.program(rules),
                             devicefilter.LICENSE)
    assert len(bpf.prog_query(fd)) == 1
    proc = run_in(path, "cat /dev/null && echo null-ok; "
                        "head -c 3 /dev/zero | wc -c")
    assert "null-ok" not in proc.stdout
    assert "Operation not permitted" in proc.stderr
    assert proc.stdout.strip() == "3"


def test_replaced_not_stacked(cgroup):
    path, fd = cgroup
    deny = devicefilter.program(effective_rules([DENY_ALL],
                                                [NS(path="/dev/null")]))
    allow = devicefilter.program(effective_rules([DENY_ALL]))
    bpf.attach_device_filter(fd, deny, devicefilter.LICENSE)
    first = bpf.prog_query(fd)
    bpf.attach_device_filter(fd, allow, devicefilter.LICENSE)
    second = bpf.prog_query(fd)
    assert len(second) == 1 and second != first
    proc = run_in(path, "cat /dev/null && echo null-ok")
    assert "null-ok" in proc.stdout


def test_partial_deny_blocks_read_write_open(cgroup):
    """A deny of "w" also refuses an O_RDWR open (unlike runc's filter)."""
    path, fd = cgroup
    from pyrunc.cgroups.devices import Rule

    rules = [Rule(True, "a", -1, -1, "rwm"), Rule(False, "c", 1, 3, "w")]
    bpf.attach_device_filter(fd, devicefilter.program(rules),
                             devicefilter.LICENSE)
    proc = run_in(path, "cat /dev/null && echo read-ok; "
                        "echo x 1<>/dev/null && echo rdwr-ok; "
                        "echo x >/dev/null && echo write-ok")
    assert "read-ok" in proc.stdout
    assert "rdwr-ok" not in proc.stdout
    assert "write-ok" not in proc.stdout


def test_load_error_explained():
    # A program that falls off its end is refused by the verifier, whose
    # log becomes part of the error.
    with pytest.raises(OSError) as exc:
        bpf.prog_load(b"\xb4\x00\x00\x00\x00\x00\x00\x00", "MIT")
    assert "last insn is not an exit" in str(exc.value)
