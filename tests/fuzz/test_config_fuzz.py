"""Hostile config.json files: a clean error or a correct run, never a crash.

Most generated configs go through what `create` does before it clones
the child (load and validate the bundle, compute the cgroup paths and
limits, build the launch plan), in this process: that is where a config
is judged, and it takes about a millisecond. A smaller sample runs
through the real CLI as root, each checked for residue (mounts, cgroups,
processes, state directories) and for anything created outside the
rootfs through the symlinks planted in it.

The seed is fixed (derandomize), so a CI run is reproducible; set
PYRUNC_FUZZ_SCALE=10 for a ten times longer local run, and
PYRUNC_FUZZ_RANDOM=1 to explore with a random seed.
"""

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzgen
import helpers
from fuzzgen import Clock, configs

SCALE = float(os.environ.get("PYRUNC_FUZZ_SCALE", "1"))
IN_PROCESS_EXAMPLES = int(2100 * SCALE)
END_TO_END_EXAMPLES = int(250 * SCALE)
RANDOM = os.environ.get("PYRUNC_FUZZ_RANDOM", "") not in ("", "0")

# An error message starts with the JSON path of the field at fault.
FIELD = re.compile(r"(config\.json|ociVersion|root|process|hostname|"
                   r"domainname|mounts|hooks|annotations|linux)\b")
# runc's own wording, kept for compatibility, names no field.
RUNC_WORDING = ("cannot allocate tty if runc will detach",)

# The host path the hostile destinations aim at through `..`.
ESCAPE_TARGET = "/tmp/pyrunc-fuzz-x"


def fuzz_settings(examples):
    return settings(
        max_examples=examples, derandomize=not RANDOM, database=None,
        deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow,
                               HealthCheck.data_too_large,
                               HealthCheck.filter_too_much])


def prepare(bundle_dir):
    """Everything `create` decides before the clone; returns the Plan.

    Raises PyruncError for a config that cannot run; anything else
    escaping from here is a bug.
    """
    from pyrunc.cgroups import new_manager, resources
    from pyrunc.container.create import check_terminal
    from pyrunc.process import plan as planner
    from pyrunc.spec.load import load_bundle

    spec = load_bundle(bundle_dir, require_process=True)
    check_terminal(spec, None, True, None)
    linux = spec.linux
    manager = new_manager(linux.cgroups_path if linux else None, "fuzz")
    devices = linux.devices if linux else None
    for v1 in (True, False):
        resources.limits(linux.resources if linux else None, v1,
                         linux_devices=devices)
    opts = planner.Options(cid="fuzz", bundle=bundle_dir,
                           cgroup_paths=manager.paths())
    return planner.build(spec, opts)


def judge(bundle_dir):
    """Return None when prepare() accepts the config, else its error."""
    from pyrunc.errors import PyruncError

    try:
        plan = prepare(bundle_dir)
    except PyruncError as err:
        check_message(str(err))
        return err
    check_plan(plan)
    return None


def check_plan(plan):
    """Invariants of any plan, whatever the config."""
    from pyrunc._native import launcher as L

    for step in plan.steps:
        if step[0] == L.OP_WRITE_PROC:
            # A sysctl name must not carry the write out of /proc/sys.
            parts = step[1].split(b"/")
            assert step[1].startswith(b"/proc/"), step
            assert b".." not in parts, step


def check_message(msg):
    assert msg, "empty error message"
    assert "\n" not in msg, f"multi-line error: {msg!r}"
    assert FIELD.match(msg) or msg.startswith(RUNC_WORDING), \
        f"error names no config field: {msg!r}"


def plant_symlinks(rootfs, sentinel):
    """Symlinks that lead out of the rootfs if a path follows them."""
    sentinel.mkdir()
    links = {"escape": "../" * 12 + str(sentinel).lstrip("/"),
             "abs": str(sentinel), "loop": "loop", "dotdot": "..",
             "procsys": "/proc/sys"}
    assert sorted(links) == sorted(fuzzgen.ESCAPE_LINKS)
    for name, target in links.items():
        os.symlink(target, rootfs / name)


def test_configs_in_process(tmp_path, default_bundle):
    bundle = helpers.make_bundle(tmp_path / "bundle", source=default_bundle)
    plant_symlinks(bundle.rootfs, tmp_path / "sentinel")
    prefix = helpers.cgroup_name("fuzz")
    outcomes = {"ok": 0, "error": 0}

    @fuzz_settings(IN_PROCESS_EXAMPLES)
    @given(case=configs(bundle.config, prefix))
    def check(case):
        with Clock("in-process"):
            bundle.config_path.write_bytes(case.data)
            err = judge(str(bundle.path))
            outcomes["error" if err else "ok"] += 1

    check()
    print(f"in-process: {outcomes}")
    # A generator that only ever produced broken configs tests little.
    assert outcomes["ok"] >= IN_PROCESS_EXAMPLES // 20, outcomes
    assert sum(outcomes.values()) >= IN_PROCESS_EXAMPLES * 0.95


def error_lines(stderr):
    return [line for line in stderr.splitlines() if "level=error" in line]


def check_run(case, proc, predicted, ran):
    """The run's outcome agrees with the config: see the module docstring."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, proc.stderr
    assert "unexpected error" not in out, proc.stderr
    errors = error_lines(proc.stderr)
    assert len(errors) <= 1, proc.stderr
    if predicted is not None:
        # Refused before the clone: exit 1 and the same message.
        assert proc.returncode == 1, (predicted, proc.stdout, proc.stderr)
        assert len(errors) == 1, proc.stderr
        if predicted.__class__.__name__ == "SpecError":
            # The log line quotes the message as Go's %q would.
            field = (predicted.path or "config.json").replace('"', '\\"')
            assert f"failed: {field}" in errors[0], (field, errors[0])
    elif proc.returncode == 0 and case.args_ok and ran:
        assert fuzzgen.OK_WORD in proc.stdout, proc.stderr
    if errors:
        assert proc.returncode == 1, proc.stderr


@pytest.mark.root
def test_configs_end_to_end(tmp_path, default_bundle):
    bundle = helpers.make_bundle(tmp_path / "bundle", source=default_bundle)
    sentinel = tmp_path / "sentinel"
    plant_symlinks(bundle.rootfs, sentinel)
    rt = helpers.Runtime("pyrunc", helpers.pyrunc_argv(), tmp_path / "root")
    watch = helpers.ResidueWatch(prefixes=[tmp_path])
    watch.add_runtime(rt)
    rt.root.mkdir()
    prefix = helpers.cgroup_name("fuzz")
    top_before = sorted(os.listdir(tmp_path))
    bundle_before = sorted(os.listdir(bundle.path))
    outcomes = {}

    @fuzz_settings(END_TO_END_EXAMPLES)
    @given(case=configs(bundle.config, prefix, live=True),
           create_only=st.integers(0, 4).map(lambda n: n == 0))
    def check(case, create_only):
        with Clock("end-to-end"):
            watch.snapshot()
            bundle.config_path.write_bytes(case.data)
            predicted = judge(str(bundle.path))
            cid = helpers.unique_id("fz")
            try:
                if create_only:
                    proc = rt("create", "--bundle", bundle, cid)
                    rt("delete", "--force", cid)
                else:
                    proc = rt("run", "--bundle", bundle, cid)
            finally:
                res = watch.check()
            assert not res, "residue:\n" + res.describe()
            assert os.listdir(sentinel) == [], "created outside the rootfs"
            assert not os.path.lexists(ESCAPE_TARGET)
            assert sorted(os.listdir(tmp_path)) == top_before
            assert sorted(os.listdir(bundle.path)) == bundle_before
            check_run(case, proc, predicted, ran=not create_only)
            key = "error" if predicted else f"exit {proc.returncode}"
            outcomes[key] = outcomes.get(key, 0) + 1

    check()
    print(f"end-to-end: {outcomes}")
    assert outcomes.get("exit 0", 0) >= END_TO_END_EXAMPLES // 10, outcomes
