"""Annotations larger than the launch socket's messages.

The container's state (annotations included) goes to the child only
for hooks that run in the container; without such hooks any size runs,
as with runc. With them, a state too large is refused by name.
"""

import pytest

pytestmark = pytest.mark.root


def test_large_annotations_without_container_hooks(pyrunc_cmd, bundle):
    bundle.set_args("true")
    bundle.config["annotations"] = {"big": "x" * 400_000}
    bundle.save()
    proc = pyrunc_cmd("run", "--bundle", bundle, "large", timeout=20)
    assert proc.returncode == 0, proc.stderr


def test_large_annotations_with_a_container_hook(pyrunc_cmd, bundle):
    bundle.set_args("true")
    bundle.config["annotations"] = {"big": "x" * 400_000}
    bundle.config["hooks"] = {"createContainer": [{"path": "/bin/true"}]}
    bundle.save()
    proc = pyrunc_cmd("run", "--bundle", bundle, "hooked", timeout=20)
    assert proc.returncode == 1
    assert "annotations: the state handed to the createContainer" in \
        proc.stderr
    assert pyrunc_cmd.state("hooked") is None
