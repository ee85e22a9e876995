"""A container joining another's pid namespace lands in its own cgroup.

Joining a pid namespace takes a fork in the executor: setns, then a
child that is the container's process. The parent must learn that
child's pid before the child asks to be put in its cgroup, or it moves
the short-lived intermediate instead and the container runs with no
limits at all. That race showed up in pods (shared pid namespace) about
once in twenty starts under load; here many members are created at
once, while the machine is kept busy, and every one is checked.
"""

import os
import subprocess

import pytest

pytestmark = pytest.mark.root

MEMBERS = 12


def reap_children():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cgroup_of(pid, controller="pids"):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return None


def test_members_are_in_their_cgroups(pyrunc_cmd, bundle, request,
                                      tmp_path):
    import helpers

    bundle.set_args("sleep", "30")
    bundle.save()
    pyrunc_cmd("run", "-d", "--bundle", bundle, "leader", check=True)
    leader = pyrunc_cmd.state("leader")["pid"]
    busy = [subprocess.Popen(["sh", "-c", "while :; do :; done"])
            for _ in range(2)]
    created = []
    try:
        for i in range(MEMBERS):
            member = helpers.make_bundle(
                tmp_path / f"m{i}",
                cgroups_path=helpers.cgroup_name(f"{request.node.name}-{i}"))
            for ns in member.config["linux"]["namespaces"]:
                if ns["type"] == "pid":
                    ns["path"] = f"/proc/{leader}/ns/pid"
            member.set_args("sleep", "30")
            member.save()
            cid = f"member{i}"
            proc = pyrunc_cmd("create", "--bundle", member, cid)
            assert proc.returncode == 0, proc.stderr
            created.append((cid, member))
        for cid, member in created:
            pid = pyrunc_cmd.state(cid)["pid"]
            want = member.config["linux"]["cgroupsPath"]
            got = cgroup_of(pid)
            assert got is not None and got.endswith(want.lstrip("/")), \
                (cid, pid, got, want)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
        for cid, _ in created:
            pyrunc_cmd("delete", "--force", cid)
        # The members' parents exited: the test process, a subreaper,
        # inherited them. The leader's init cannot finish dying while
        # zombies of its namespace wait to be reaped.
        reap_children()
        proc = pyrunc_cmd("delete", "--force", "leader")
        assert proc.returncode == 0, proc.stderr
