"""/dev under attack: the null device of masked paths, and /dev/console.

CVE-2025-31133: a masked path (/proc/timer_list, /proc/kcore) is hidden
by bind-mounting /dev/null over it. If the container's /dev/null is a
symlink to /proc/sys/kernel/core_pattern (or any other file), a naive
runtime binds that file over the masked path instead: nothing is masked,
and the container gets a writable mount of a procfs file. pyrunc binds
only a verified character device 1:3, never through a symlink.

CVE-2025-52565: /dev/console is bind-mounted from the container's pty. A
/dev/console swapped for a symlink makes a naive runtime mount the pty
over the symlink's target. pyrunc opens the target without following
symlinks and mounts from the pty's fd, never from a path.

In both cases the container's /dev is a bind of a host directory, as
when an engine shares a /dev volume; the planted symlink stands in for
what a process racing the runtime through that volume would swap in.
"""

import os
import stat

import pytest

import sectools as st

pytestmark = [pytest.mark.root, pytest.mark.no_residue]


def dev_volume(tmp_path, name="dev"):
    """A host directory to serve as /dev, with a genuine null device."""
    path = tmp_path / name
    for sub in ("pts", "shm", "mqueue"):
        (path / sub).mkdir(parents=True)
    os.mknod(path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


def bind_dev(bundle, source):
    st.replace_mount(bundle, "/dev", {
        "destination": "/dev", "type": "bind", "source": str(source),
        "options": ["rbind"]})


# What the masked path shows: empty output and a char device 1:3 when
# masked with the null device.
SHOW_MASK = ("stat -c '%F %t:%T' /proc/timer_list; "
             "head -c 64 /proc/timer_list")


class TestMaskedPathNull:
    @pytest.fixture
    def bundle(self, tmp_path, request):
        b = st.new_bundle(tmp_path, "b", request)
        b.config["linux"]["maskedPaths"] = ["/proc/timer_list"]
        st.set_args(b, "sh", "-c", SHOW_MASK)
        return b

    def assert_masked(self, proc):
        if proc.returncode != 0:
            line = st.error_line(proc)
            assert "/dev/null" in line, line
            return
        assert proc.stdout == "character special file 1:3\n", \
            f"the masked path is not masked:\n{proc.stdout}"

    def test_null_symlinked_to_procfs(self, rt, bundle, tmp_path):
        dev = dev_volume(tmp_path)
        (dev / "null").unlink()
        (dev / "null").symlink_to("/proc/sys/kernel/hostname")
        bind_dev(bundle, dev)
        bundle.save()
        self.assert_masked(rt("run", "--bundle", bundle, "c"))

    def test_null_is_a_regular_file(self, rt, bundle, tmp_path):
        dev = dev_volume(tmp_path)
        (dev / "null").unlink()
        (dev / "null").write_text("attacker's content\n")
        bind_dev(bundle, dev)
        bundle.save()
        self.assert_masked(rt("run", "--bundle", bundle, "c"))

    def test_null_is_another_device(self, rt, bundle, tmp_path):
        dev = dev_volume(tmp_path)
        (dev / "null").unlink()
        os.mknod(dev / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
        bind_dev(bundle, dev)
        bundle.save()
        self.assert_masked(rt("run", "--bundle", bundle, "c"))

    def test_genuine_null_masks(self, rt, bundle, tmp_path):
        bind_dev(bundle, dev_volume(tmp_path))
        bundle.save()
        proc = rt("run", "--bundle", bundle, "c")
        assert proc.returncode == 0, proc.stderr
        self.assert_masked(proc)

    def test_raced_through_shared_dev(self, rt, bundle, tmp_path, request):
        dev = dev_volume(tmp_path)
        attacker = st.new_bundle(tmp_path, "attacker", request)
        st.writable_rootfs(attacker)
        st.mount(attacker, "/shared", "bind", str(dev), "rbind")
        st.script(attacker, "/swap.sh", """#!/bin/sh
while [ ! -e /shared/stop ]; do
  mv /shared/null /shared/null.real
  ln -s /proc/sys/kernel/hostname /shared/null
  rm /shared/null
  mv /shared/null.real /shared/null
done
""")
        st.set_args(attacker, "/swap.sh")
        st.start(rt, attacker, "attacker")
        bind_dev(bundle, dev)
        bundle.save()
        try:
            for i in range(10):
                self.assert_masked(rt("run", "--bundle", bundle, f"v{i}"))
        finally:
            (dev / "stop").touch()
            st.delete(rt, "attacker")


class TestConsole:
    @pytest.fixture
    def bundle(self, tmp_path, request):
        b = st.new_bundle(tmp_path, "b", request)
        b.config["process"]["terminal"] = True
        (b.rootfs / "canary").write_text("canary\n")
        st.set_args(b, "sh", "-c",
                    "stat -c '%F' /canary; stat -c '%t' /dev/console")
        return b

    def assert_console_safe(self, proc, bundle, raced=False):
        assert (bundle.rootfs / "canary").read_text() == "canary\n"
        if proc.returncode != 0:
            st.error_line(proc)
            return
        canary, console = proc.stdout.split("\n", 1)
        assert canary.strip() == "regular file", \
            f"the pty was mounted over the symlink's target:\n{proc.stdout}"
        # 0x88 == 136, the major of /dev/pts/N. A racer that unlinks the
        # mount point in its own namespace detaches our mount: no pty
        # then, but nothing mounted anywhere else either.
        if not raced:
            assert console.strip() == "88", proc.stdout

    def test_console_symlink(self, rt, bundle, tmp_path):
        dev = dev_volume(tmp_path)
        (dev / "console").symlink_to("/canary")
        bind_dev(bundle, dev)
        bundle.save()
        proc = rt("run", "--bundle", bundle, "c")
        self.assert_console_safe(proc, bundle)

    def test_console_dangling_symlink(self, rt, bundle, tmp_path):
        dev = dev_volume(tmp_path)
        (dev / "console").symlink_to("/new-file")
        bind_dev(bundle, dev)
        bundle.save()
        proc = rt("run", "--bundle", bundle, "c")
        assert not (bundle.rootfs / "new-file").exists(), \
            "the runtime created the symlink's target"
        self.assert_console_safe(proc, bundle)

    def test_console_raced(self, rt, bundle, tmp_path, request):
        dev = dev_volume(tmp_path)
        attacker = st.new_bundle(tmp_path, "attacker", request)
        st.writable_rootfs(attacker)
        st.mount(attacker, "/shared", "bind", str(dev), "rbind")
        st.script(attacker, "/swap.sh", """#!/bin/sh
while [ ! -e /shared/stop ]; do
  rm -f /shared/console; ln -s /canary /shared/console
  rm -f /shared/console; : > /shared/console
done
""")
        st.set_args(attacker, "/swap.sh")
        st.start(rt, attacker, "attacker")
        bind_dev(bundle, dev)
        bundle.save()
        try:
            for i in range(10):
                proc = rt("run", "--bundle", bundle, f"v{i}")
                self.assert_console_safe(proc, bundle, raced=True)
        finally:
            (dev / "stop").touch()
            st.delete(rt, "attacker")
