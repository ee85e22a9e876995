"""The CLI's cgroup-attach prewarm helper (pyrunc/process/prewarm.py)."""

import os

from pyrunc.process import prewarm


class TestCandidates:
    def test_hybrid_tries_cgroup2_first(self):
        text = (b"9:name=systemd:/\n"
                b"4:memory:/outer/inner\n"
                b"1:cpu,cpuacct:/x\n"
                b"0::/\n")
        assert list(prewarm._candidates(text)) == [
            b"/sys/fs/cgroup/unified/cgroup.procs",
            b"/sys/fs/cgroup/cgroup.procs",
            b"/sys/fs/cgroup/systemd/cgroup.procs",
            b"/sys/fs/cgroup/memory/outer/inner/cgroup.procs",
            b"/sys/fs/cgroup/cpu/x/cgroup.procs",
            b"/sys/fs/cgroup/cpuacct/x/cgroup.procs",
        ]

    def test_v2_own_cgroup(self):
        text = b"0::/user.slice/session-1.scope\n"
        assert list(prewarm._candidates(text)) == [
            b"/sys/fs/cgroup/unified/user.slice/session-1.scope/cgroup.procs",
            b"/sys/fs/cgroup/user.slice/session-1.scope/cgroup.procs",
        ]

    def test_odd_lines_are_skipped(self):
        assert list(prewarm._candidates(b"garbage\n\n")) == []


class TestHelper:
    def test_start_then_finish_reaps_the_helper(self):
        prewarm.start()
        pid = prewarm._helper
        assert pid > 0
        prewarm.finish()
        assert prewarm._helper == 0
        # Reaped: the pid is no child of ours any more.
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        else:
            raise AssertionError("helper was not reaped")

    def test_finish_without_start_does_nothing(self):
        prewarm.finish()
        assert prewarm._helper == 0
