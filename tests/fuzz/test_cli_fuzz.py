"""Hostile command lines: bad ids, bad signals, bad flags.

Each generated argv runs the real CLI next to a live container (created
from the busybox bundle, its id among those generated), so that kill,
pause, ps and the rest meet both a container that exists and ones that
do not. Whatever the argv, pyrunc must exit with 0, 1 or (for an unknown
command, as runc does) 3, print at most one error line and no traceback,
and leave nothing behind once the container is deleted.
"""

import os

import pytest
from hypothesis import given

import fuzzgen
import helpers
from fuzzgen import Clock, cli_commands
from test_config_fuzz import fuzz_settings

SCALE = float(os.environ.get("PYRUNC_FUZZ_SCALE", "1"))
EXAMPLES = int(150 * SCALE)
VICTIM = "ok-id"
assert VICTIM in fuzzgen.BAD_IDS


@pytest.mark.root
def test_command_lines(tmp_path, default_bundle):
    bundle = helpers.make_bundle(tmp_path / "bundle", source=default_bundle,
                                 cgroups_path=helpers.cgroup_name("cli"))
    bundle.set_args("sleep", "600")
    rt = helpers.Runtime("pyrunc", helpers.pyrunc_argv(), tmp_path / "root")
    watch = helpers.ResidueWatch(prefixes=[tmp_path])
    watch.add_runtime(rt)
    # `spec` writes config.json to the working directory, and a command
    # without --bundle takes it as the bundle: keep both in a scratch dir.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    watch.snapshot()
    outcomes = {}

    @fuzz_settings(EXAMPLES)
    @given(argv=cli_commands())
    def check(argv):
        command, args = argv
        if rt.state(VICTIM) is None:
            rt("delete", "--force", VICTIM)
            rt("create", "--bundle", bundle, VICTIM, check=True)
        words = [command, *args]
        if command == "events":
            # events follows a live container until it stops.
            words.insert(1, "--stats")
        with Clock("cli"):
            proc = rt(*words, cwd=cwd, timeout=30)
        out = proc.stdout + proc.stderr
        assert "Traceback" not in out, (words, proc.stderr)
        assert "unexpected error" not in out, (words, proc.stderr)
        assert proc.returncode in (0, 1, 3), (words, proc.returncode,
                                              proc.stderr)
        errors = [line for line in proc.stderr.splitlines()
                  if "level=error" in line]
        assert len(errors) <= 1, (words, proc.stderr)
        outcomes[proc.returncode] = outcomes.get(proc.returncode, 0) + 1

    try:
        check()
    finally:
        rt("resume", VICTIM)
        rt("delete", "--force", VICTIM)
        for cid in rt.container_ids():
            rt("delete", "--force", cid)
        res = watch.check()
    assert not res, "residue:\n" + res.describe()
    print(f"cli: {outcomes}")
    assert outcomes.get(0, 0) >= 1 and outcomes.get(1, 0) >= EXAMPLES // 2
