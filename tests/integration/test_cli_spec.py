"""`spec` and `features` through the CLI, against runc 1.1.5."""

import json

import pytest

pytestmark = [pytest.mark.runc]


@pytest.mark.parametrize("extra", [(), ("--rootless",)])
def test_spec_same_bytes_as_runc(pyrunc_cmd, runc_cmd, tmp_path, extra):
    written = {}
    for rt in (pyrunc_cmd, runc_cmd):
        bundle = tmp_path / rt.name
        bundle.mkdir()
        proc = rt("spec", "--bundle", bundle, *extra)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
        written[rt.name] = (bundle / "config.json").read_bytes()
        mode = (bundle / "config.json").stat().st_mode & 0o777
        written[rt.name + "-mode"] = mode
    assert written["pyrunc"] == written["runc"]
    assert written["pyrunc-mode"] == written["runc-mode"]


def test_spec_refuses_to_overwrite(pyrunc_cmd, runc_cmd, tmp_path):
    for rt in (pyrunc_cmd, runc_cmd):
        bundle = tmp_path / rt.name
        bundle.mkdir()
        (bundle / "config.json").write_text("{}")
        proc = rt("spec", "-b", bundle)
        assert proc.returncode == 1
        assert "File config.json exists. Remove it first" in proc.stderr
        assert (bundle / "config.json").read_text() == "{}"


def test_spec_missing_bundle(pyrunc_cmd, runc_cmd, tmp_path):
    for rt in (pyrunc_cmd, runc_cmd):
        path = tmp_path / "nope"
        proc = rt("spec", "-b", path)
        assert proc.returncode == 1
        assert f"chdir {path}: no such file or directory" in proc.stderr


def test_features_is_indented_json(pyrunc_cmd, runc_cmd):
    ours = pyrunc_cmd("features")
    theirs = runc_cmd("features")
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout.endswith("}\n")
    assert ours.stdout.splitlines()[1].startswith('    "ociVersionMin"')
    assert set(json.loads(ours.stdout)) == set(json.loads(theirs.stdout))
