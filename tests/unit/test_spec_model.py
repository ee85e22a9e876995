"""The model classes: defaults, equality, repr, replace, attribute names."""

import subprocess
import sys

import pytest

from pyrunc.spec import model


def test_defaults_are_fresh():
    one = model.Mount()
    two = model.Mount()
    one.options.append("ro")
    assert two.options == []
    assert model.Process().user is not model.Process().user


def test_slots_refuse_unknown_attributes():
    root = model.Root()
    with pytest.raises(AttributeError):
        root.paht = "x"


def test_eq_and_repr():
    assert model.Root("a", True) == model.Root(path="a", readonly=True)
    assert model.Root("a") != model.Root("b")
    assert model.Root("a") != model.Namespace("a")
    assert repr(model.Root("a")) == "Root(path='a', readonly=False)"


def test_spec_raw_not_compared_nor_shown():
    one = model.Spec(raw={"a": 1})
    two = model.Spec(raw={"b": 2})
    assert one == two
    assert "raw" not in repr(one)


def test_replace():
    user = model.User(uid=1, gid=2)
    other = user.replace(gid=3)
    assert (other.uid, other.gid) == (1, 3)
    assert user.gid == 2


def test_unhashable():
    with pytest.raises(TypeError):
        hash(model.Root())


@pytest.mark.parametrize(
    "cls, names",
    [
        (
            model.Spec,
            "oci_version root process hostname domainname mounts hooks "
            "annotations linux raw",
        ),
        (
            model.Process,
            "terminal console_size user args env cwd capabilities rlimits "
            "no_new_privileges apparmor_profile selinux_label oom_score_adj "
            "scheduler io_priority command_line",
        ),
        (
            model.Linux,
            "namespaces uid_mappings gid_mappings devices cgroups_path "
            "resources rootfs_propagation masked_paths readonly_paths sysctl "
            "seccomp mount_label time_offsets personality intel_rdt",
        ),
        (
            model.Resources,
            "devices memory cpu pids block_io hugepage_limits network rdma "
            "unified",
        ),
        (
            model.Memory,
            "limit reservation swap kernel kernel_tcp swappiness "
            "disable_oom_killer use_hierarchy check_before_update",
        ),
        (
            model.Cpu,
            "shares quota period realtime_runtime realtime_period cpus mems "
            "idle burst",
        ),
        (
            model.BlockIO,
            "weight leaf_weight weight_device throttle_read_bps_device "
            "throttle_write_bps_device throttle_read_iops_device "
            "throttle_write_iops_device",
        ),
        (model.Hook, "path args env timeout"),
        (
            model.Hooks,
            "prestart create_runtime create_container start_container "
            "poststart poststop",
        ),
        (model.User, "uid gid umask additional_gids username"),
        (model.Device, "type path major minor file_mode uid gid"),
        (model.DeviceRule, "allow type major minor access"),
        (
            model.Mount,
            "destination type source options uid_mappings gid_mappings",
        ),
    ],
)
def test_attribute_names(cls, names):
    assert cls.__slots__ == tuple(names.split())


def test_cheap_import():
    # The CLI start-up is measured: the model must not pull dataclasses
    # or anything heavier than json.
    code = (
        "import sys, pyrunc.spec.load, pyrunc.spec.mountopts;"
        "print(sorted(m for m in ('dataclasses', 'inspect', 'typing')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == "[]"
