"""The features document states what pyrunc implements."""

import json

import pyrunc
from pyrunc.spec.features import features
from pyrunc.spec.load import NAMESPACE_TYPES
from pyrunc.spec.mountopts import parse_mount_options


def test_json_serialisable():
    assert json.loads(json.dumps(features())) == features()


def test_versions():
    doc = features()
    assert doc["ociVersionMin"] == "1.0.0"
    assert doc["ociVersionMax"] == pyrunc.SPEC_VERSION


def test_hooks():
    assert features()["hooks"] == [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]


def test_namespaces():
    namespaces = features()["linux"]["namespaces"]
    assert namespaces == ["cgroup", "ipc", "mount", "network", "pid",
                          "time", "user", "uts"]
    assert set(namespaces) <= NAMESPACE_TYPES


def test_mount_options_from_design():
    options = features()["mountOptions"]
    design = (
        "ro rw nosuid suid nodev dev noexec exec sync async dirsync remount "
        "mand nomand atime noatime diratime nodiratime relatime norelatime "
        "strictatime nostrictatime bind rbind private rprivate shared "
        "rshared slave rslave unbindable runbindable tmpcopyup rro rrw "
        "rnosuid rsuid rnodev rdev rnoexec rexec rnoatime ratime rrelatime "
        "rnorelatime rstrictatime rnostrictatime rnodiratime rdiratime "
        "idmap ridmap"
    ).split()
    assert set(design) <= set(options)
    assert options == sorted(options)


def test_mount_options_are_all_parsed():
    # An option listed here must not fall through to the data string.
    for opt in features()["mountOptions"]:
        assert parse_mount_options([opt]).data == ""
    assert "defaults" not in features()["mountOptions"]


def test_linux_flags():
    linux = features()["linux"]
    assert linux["cgroup"] == {
        "v1": True,
        "v2": True,
        "systemd": False,
        "systemdUser": False,
    }
    assert linux["seccomp"]["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in linux["seccomp"]["actions"]
    assert linux["apparmor"]["enabled"] is False
    assert linux["selinux"]["enabled"] is False
    assert linux["intelRdt"]["enabled"] is False
    assert linux["mountExtensions"] == {"idmap": {"enabled": True}}
    caps = linux["capabilities"]
    assert caps[0] == "CAP_CHOWN"
    assert caps[-1] == "CAP_CHECKPOINT_RESTORE"
    assert len(caps) == 41


def test_annotations():
    annotations = features()["annotations"]
    assert annotations["io.github.pyrunc.version"] == pyrunc.__version__
