"""A pid file that cannot be written fails create and leaves nothing.

The container's process already exists then; it must go with the
cgroup and the state directory (the residue check sees all three).
"""

import pytest

pytestmark = pytest.mark.root


def test_pid_file_in_missing_directory(pyrunc_cmd, bundle, tmp_path):
    bundle.set_args("sleep", "1000")
    proc = pyrunc_cmd("create", "--pid-file", tmp_path / "no" / "pid",
                      "--bundle", bundle, "pidfile", timeout=20)
    assert proc.returncode == 1, proc.stderr
    assert "write pid file" in proc.stderr
    assert "no such file or directory" in proc.stderr
    assert pyrunc_cmd.state("pidfile") is None
