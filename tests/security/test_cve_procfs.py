"""procfs under attack: where it is mounted, and where writes to it go.

CVE-2019-16884 and CVE-2023-27561: an image whose /proc is a symlink (or
a volume mounted over /proc) gets procfs mounted elsewhere, and the
runtime's later writes to /proc/self/attr/... land in files the image
controls, so its AppArmor profile is never applied. pyrunc refuses proc
and sysfs on anything but a directory, and any other mount on or inside
/proc, as runc does.

CVE-2025-52881: a mount over /proc/sys/... redirects the runtime's sysctl
writes to another procfs file, here /proc/sys/kernel/hostname standing in
for core_pattern. pyrunc refuses such mounts, and writes sysctls through
a private copy of the proc mount on which nothing is stacked.
"""

import subprocess

import pytest

import sectools as st

pytestmark = [pytest.mark.root, pytest.mark.no_residue]


@pytest.fixture
def bundle(tmp_path, request):
    b = st.new_bundle(tmp_path, "b", request)
    st.set_args(b, "sh", "-c", "hostname; cat /proc/sys/kernel/domainname")
    return b


def run(rt, bundle, cid="c"):
    bundle.save()
    return rt("run", "--bundle", bundle, cid)


def assert_refused(proc, *words):
    assert proc.returncode == 1, \
        f"not refused (exit {proc.returncode}):\n{proc.stdout}"
    line = st.error_line(proc)
    assert len(line.splitlines()) == 1, line
    for word in words:
        assert word in line, line


class TestProcMountTarget:
    @pytest.mark.parametrize("fs,target", [("proc", "/evilproc"),
                                           ("sys", "/evilsys")])
    def test_symlink_refused(self, rt, bundle, fs, target):
        (bundle.rootfs / target.lstrip("/")).mkdir()
        (bundle.rootfs / fs).rmdir()
        (bundle.rootfs / fs).symlink_to(target)
        proc = run(rt, bundle)
        kind = "proc" if fs == "proc" else "sysfs"
        assert_refused(proc, f"filesystem \\\"{kind}\\\" must be "
                       "mounted on ordinary directory")
        assert not (bundle.rootfs / target.lstrip("/") / "self").exists()

    def test_dangling_symlink_refused(self, rt, bundle):
        (bundle.rootfs / "proc").rmdir()
        (bundle.rootfs / "proc").symlink_to("/nowhere")
        proc = run(rt, bundle)
        assert_refused(proc, "ordinary directory")
        assert not (bundle.rootfs / "nowhere").exists()

    def test_regular_file_refused(self, rt, bundle):
        (bundle.rootfs / "proc").rmdir()
        (bundle.rootfs / "proc").write_text("not a directory\n")
        proc = run(rt, bundle)
        assert_refused(proc, "ordinary directory")

    def test_volume_over_proc_refused(self, rt, bundle, tmp_path):
        # The file the runtime writes an AppArmor profile to: were the
        # volume accepted as /proc, the write would land here instead.
        fake = tmp_path / "fakeproc"
        (fake / "self" / "attr").mkdir(parents=True)
        attr = fake / "self" / "attr" / "exec"
        attr.write_text("untouched\n")
        st.mount(bundle, "/proc", "bind", str(fake), "rbind")
        proc = run(rt, bundle)
        assert attr.read_text() == "untouched\n", "the runtime wrote " \
            "to the volume it took for /proc"
        assert_refused(proc, "not of type proc")

    @pytest.mark.parametrize("dest", ["/proc/self/attr", "/proc/sys",
                                      "/proc/./sys/kernel",
                                      "/proc/../proc/sysrq-trigger"])
    def test_bind_inside_proc_refused(self, rt, bundle, tmp_path, dest):
        source = tmp_path / "src"
        source.mkdir()
        st.mount(bundle, dest, "bind", str(source), "rbind")
        proc = run(rt, bundle)
        assert_refused(proc, "inside /proc")

    def test_lxcfs_files_allowed(self, rt, bundle, tmp_path):
        fake = tmp_path / "cpuinfo"
        fake.write_text("processor : 0 (lxcfs)\n")
        st.mount(bundle, "/proc/cpuinfo", "bind", str(fake), "bind", "ro")
        st.set_args(bundle, "cat", "/proc/cpuinfo")
        proc = run(rt, bundle)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "processor : 0 (lxcfs)\n"

    @pytest.mark.runc
    def test_runc_refuses_too(self, rt, runc_cmd, bundle):
        (bundle.rootfs / "evilproc").mkdir()
        (bundle.rootfs / "proc").rmdir()
        (bundle.rootfs / "proc").symlink_to("/evilproc")
        bundle.save()
        ours = rt("run", "--bundle", bundle, "c")
        theirs = runc_cmd("run", "--bundle", bundle, "c")
        assert ours.returncode == theirs.returncode == 1
        assert "must be mounted on ordinary directory" in theirs.stderr
        assert "must be mounted on ordinary directory" in ours.stderr


# $1 is the rootfs, as seen from the container's mount namespace before
# pivot_root; $2 a file to create once the bind is made. No PATH is set.
BIND_HOOK = """#!/bin/sh
/bin/mount --bind /proc/sys/kernel/hostname \\
    "$1/proc/sys/kernel/domainname" && /usr/bin/touch "$2"
"""


def uts_read(pid, name):
    """kernel.<name> of pid's UTS namespace, read from the host.

    The container's own /proc/sys/kernel/domainname is covered by the
    hook's bind; the host's procfs answers for the reader's namespace.
    """
    proc = subprocess.run(
        ["nsenter", "--uts", f"--target={pid}", "cat",
         f"/proc/sys/kernel/{name}"],
        capture_output=True, text=True, timeout=10, check=True)
    return proc.stdout.strip()


class TestSysctlRedirect:
    """kernel.domainname=evil must not change the hostname."""

    @pytest.fixture
    def redirect(self, bundle):
        bundle.config.pop("hostname", None)
        bundle.config["linux"]["sysctl"] = {"kernel.domainname": "evil"}
        return bundle

    def assert_not_redirected(self, proc):
        if proc.returncode != 0:
            assert_refused(proc, "inside /proc")
            return
        hostname, domainname = proc.stdout.split()
        assert hostname != "evil", "the sysctl write went to the hostname"

    # runc refuses both binds, the second once it resolved the symlink.

    def test_bind_over_sysctl(self, rt, redirect):
        st.mount(redirect, "/proc/sys/kernel/domainname", "bind",
                 "/proc/sys/kernel/hostname", "bind")
        assert_refused(run(rt, redirect), "inside /proc")

    def test_bind_through_symlink(self, rt, redirect):
        (redirect.rootfs / "redir").symlink_to("/proc/sys/kernel")
        st.mount(redirect, "/redir/domainname", "bind",
                 "/proc/sys/kernel/hostname", "bind")
        assert_refused(run(rt, redirect), "inside /proc")

    def test_bind_into_tmpfs_over_proc_sys(self, rt, redirect):
        # tmpfs over /proc/sys is allowed (runc allows it); a procfs file
        # bound into it, through a symlink, would take the write.
        redirect.config["linux"]["readonlyPaths"] = []
        st.mount(redirect, "/proc/sys", "tmpfs", "tmpfs")
        st.mount(redirect, "/proc/sys/kernel", "tmpfs", "tmpfs")
        (redirect.rootfs / "redir").symlink_to("/proc/sys/kernel")
        st.mount(redirect, "/redir/domainname", "bind",
                 "/proc/sys/kernel/hostname", "bind")
        self.assert_not_redirected(run(rt, redirect))

    def test_bind_by_hook(self, rt, redirect, tmp_path):
        # No mount of the config to refuse: a createContainer hook, which
        # runs in the container's mount namespace before pivot_root,
        # stacks the hostname file on the domainname of the container's
        # fresh procfs. Only the write through a clone of the bare proc
        # mount keeps the sysctl off the hostname.
        hook = tmp_path / "hook.sh"
        hook.write_text(BIND_HOOK)
        hook.chmod(0o755)
        ran = tmp_path / "hook.ran"
        redirect.config["hooks"] = {"createContainer": [
            {"path": str(hook),
             "args": ["hook", str(redirect.rootfs), str(ran)]}]}
        st.set_args(redirect, "sleep", "30")
        proc = st.start(rt, redirect, "c", check=False)
        if proc.returncode != 0:
            # Refusing the write is fine, if it says why.
            line = st.error_line(proc)
            assert "domainname" in line, line
            return
        try:
            pid = st.init_pid(rt, "c")
            hostname = uts_read(pid, "hostname")
            domainname = uts_read(pid, "domainname")
            # Inside, the domainname file is the hostname: the bind held.
            inside = rt("exec", "c", "cat", "/proc/sys/kernel/domainname")
        finally:
            st.delete(rt, "c")
        assert ran.exists(), "the hook did not bind over the domainname"
        assert inside.stdout.strip() == hostname, inside
        assert hostname != "evil", "the sysctl write went to the hostname"
        assert domainname == "evil"

    def test_plain_sysctl_still_works(self, rt, redirect):
        proc = run(rt, redirect)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[1] == "evil"


def test_oom_score_adj_applied(rt, bundle):
    bundle.config["process"]["oomScoreAdj"] = 321
    st.mount(bundle, "/tmp/x", "tmpfs", "tmpfs")
    st.set_args(bundle, "cat", "/proc/self/oom_score_adj")
    proc = run(rt, bundle)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "321"
