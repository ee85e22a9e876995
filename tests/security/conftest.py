"""Fixtures of the hardening tests: the runtime under attack.

``rt`` runs the installed pyrunc CLI, or the launcher named by the
environment variable PYRUNC_SECURITY_CLI: docs/security.md builds a copy
of the tree with one protection patched out and points this variable at
it, to watch the test of that protection fail.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

import helpers


@pytest.fixture
def rt(tmp_path, residue_watch):
    """The pyrunc CLI under attack, with --root tmp_path/root."""
    other = os.environ.get("PYRUNC_SECURITY_CLI")
    argv = [other] if other else helpers.pyrunc_argv()
    if argv is None:
        pytest.fail("pyrunc is not installed: run scripts/setup.sh")
    runtime = helpers.Runtime("pyrunc", argv, tmp_path / "root")
    residue_watch.add_runtime(runtime)
    return runtime


@pytest.fixture
def open_tmp(residue_watch):
    """A temporary directory others may traverse (0755, under /tmp).

    pytest's own tmp_path sits below a 0700 directory, which the mapped
    root of a user namespace cannot walk through.
    """
    path = Path(tempfile.mkdtemp(prefix="pyrunc-sec-", dir="/tmp"))
    os.chmod(path, 0o755)
    residue_watch.prefixes.append(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)
