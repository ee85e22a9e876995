"""A memory limit too small for setup names the field and leaves nothing.

The kernel's OOM killer takes the container's process before it can
exec; a bare "killed by signal 9" would not tell the user which setting
to change. runc, which sets the limit later, refuses the same config
with "unable to set memory limit to N".
"""

import pytest

pytestmark = pytest.mark.root


@pytest.mark.parametrize("command", ["create", "run"])
def test_limit_below_setup_needs(pyrunc_cmd, bundle, command):
    bundle.set_args("true")
    bundle.config["linux"]["resources"] = {"memory": {"limit": 65536}}
    bundle.save()
    proc = pyrunc_cmd(command, "--bundle", bundle, "tiny", timeout=20)
    assert proc.returncode == 1, proc.stderr
    assert "linux.resources.memory.limit: 65536 bytes is too low" in \
        proc.stderr
    assert "OOM killer during setup" in proc.stderr
    assert pyrunc_cmd.state("tiny") is None


def test_other_setup_deaths_keep_their_reason(pyrunc_cmd, bundle):
    # No memory limit: a failure in setup is reported as it was.
    bundle.set_args("/no/such/program")
    proc = pyrunc_cmd("run", "--bundle", bundle, "noexec", timeout=20)
    assert proc.returncode != 0
    assert "OOM" not in proc.stderr
