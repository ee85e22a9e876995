"""Unit tests for pyrunc.spec.load: parsing, error paths, validation."""

import copy
import json
import os

import pytest

from pyrunc.errors import SpecError
from pyrunc.spec import model
from pyrunc.spec.default import default_spec
from pyrunc.spec.load import load_bundle, parse_resources, parse_spec


def base():
    """A valid config: runc's default with a non-terminal process."""
    cfg = default_spec(cgroup2=False)
    cfg["process"]["terminal"] = False
    return cfg


def error_of(cfg):
    with pytest.raises(SpecError) as info:
        parse_spec(cfg)
    return str(info.value)


def ns_without(cfg, *types):
    linux = cfg["linux"]
    linux["namespaces"] = [
        ns for ns in linux["namespaces"] if ns["type"] not in types
    ]
    return cfg


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()

    def write(cfg):
        (tmp_path / "config.json").write_text(json.dumps(cfg))
        return str(tmp_path)

    return write


class TestParseShape:
    def test_default_parses(self):
        spec = parse_spec(base())
        assert spec.oci_version == "1.0.2-dev"
        assert spec.root == model.Root(path="rootfs", readonly=True)
        assert spec.process.args == ["sh"]
        assert spec.process.user == model.User(uid=0, gid=0)
        assert spec.process.cwd == "/"
        assert spec.process.no_new_privileges is True
        assert spec.process.rlimits == [
            model.Rlimit(type="RLIMIT_NOFILE", soft=1024, hard=1024)
        ]
        assert spec.hostname == "runc"
        assert spec.domainname is None
        assert spec.mounts[0] == model.Mount(
            destination="/proc", type="proc", source="proc"
        )
        assert spec.mounts[1].options[1] == "strictatime"
        assert [ns.type for ns in spec.linux.namespaces] == [
            "pid",
            "network",
            "ipc",
            "uts",
            "mount",
        ]
        assert spec.linux.resources.devices == [
            model.DeviceRule(allow=False, access="rwm")
        ]
        assert spec.linux.masked_paths[0] == "/proc/acpi"
        assert spec.hooks == model.Hooks()

    def test_raw_is_the_input(self):
        cfg = base()
        assert parse_spec(cfg).raw is cfg

    def test_capabilities_missing_set_is_empty(self):
        spec = parse_spec(base())
        caps = spec.process.capabilities
        assert caps.inheritable == []
        assert caps.bounding == [
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
        ]

    def test_capability_names_not_validated(self):
        cfg = base()
        cfg["process"]["capabilities"]["bounding"].append("CAP_BOGUS")
        spec = parse_spec(cfg)
        assert "CAP_BOGUS" in spec.process.capabilities.bounding

    def test_full_process(self):
        cfg = base()
        cfg["process"].update(
            {
                "consoleSize": {"height": 24, "width": 80},
                "user": {
                    "uid": 1000,
                    "gid": 100,
                    "umask": 0o22,
                    "additionalGids": [5, 6],
                    "username": "u",
                },
                "apparmorProfile": "p",
                "oomScoreAdj": -500,
                "scheduler": {"policy": "SCHED_OTHER"},
                "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
                "commandLine": "x",
            }
        )
        proc = parse_spec(cfg).process
        assert proc.console_size == model.ConsoleSize(height=24, width=80)
        assert proc.user == model.User(
            uid=1000, gid=100, umask=18, additional_gids=[5, 6], username="u"
        )
        assert proc.apparmor_profile == "p"
        assert proc.selinux_label is None
        assert proc.oom_score_adj == -500
        assert proc.scheduler == {"policy": "SCHED_OTHER"}
        assert proc.io_priority["priority"] == 4
        assert proc.command_line == "x"

    def test_hooks(self):
        cfg = base()
        cfg["hooks"] = {
            "prestart": [{"path": "/bin/a"}],
            "createRuntime": [
                {"path": "/bin/b", "args": ["b", "1"], "env": ["A=1"]}
            ],
            "createContainer": [{"path": "/bin/c", "timeout": 5}],
            "startContainer": [{"path": "/bin/d"}],
            "poststart": [{"path": "/bin/e"}],
            "poststop": [{"path": "/bin/f"}, {"path": "/bin/g"}],
        }
        hooks = parse_spec(cfg).hooks
        assert hooks.prestart == [model.Hook(path="/bin/a")]
        assert hooks.create_runtime[0].args == ["b", "1"]
        assert hooks.create_runtime[0].env == ["A=1"]
        assert hooks.create_container[0].timeout == 5
        assert hooks.start_container[0].path == "/bin/d"
        assert hooks.poststart[0].path == "/bin/e"
        assert [h.path for h in hooks.poststop] == ["/bin/f", "/bin/g"]

    def test_linux_fields(self):
        cfg = base()
        cfg["linux"].update(
            {
                "devices": [
                    {
                        "path": "/dev/fuse",
                        "type": "c",
                        "major": 10,
                        "minor": 229,
                        "fileMode": 0o666,
                        "uid": 0,
                        "gid": 0,
                    },
                    {"path": "/dev/fifo", "type": "p"},
                ],
                "cgroupsPath": "/a/b",
                "rootfsPropagation": "rslave",
                "sysctl": {"net.ipv4.ip_forward": "1"},
                "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"},
                "mountLabel": "",
                "personality": {"domain": "LINUX"},
                "intelRdt": {"closID": "c1"},
            }
        )
        linux = parse_spec(cfg).linux
        assert linux.devices[0] == model.Device(
            type="c",
            path="/dev/fuse",
            major=10,
            minor=229,
            file_mode=0o666,
            uid=0,
            gid=0,
        )
        assert linux.devices[1].major is None
        assert linux.cgroups_path == "/a/b"
        assert linux.rootfs_propagation == "rslave"
        assert linux.sysctl == {"net.ipv4.ip_forward": "1"}
        assert linux.seccomp["defaultAction"] == "SCMP_ACT_ALLOW"
        assert linux.mount_label is None
        assert linux.personality == {"domain": "LINUX"}
        assert linux.intel_rdt == {"closID": "c1"}
        assert linux.has_namespace("pid")
        assert not linux.has_namespace("user")
        assert linux.namespace("uts").path is None

    def test_mount_id_mappings(self):
        cfg = base()
        cfg["mounts"].append(
            {
                "destination": "/mnt",
                "type": "bind",
                "source": "/tmp",
                "options": ["rbind"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            }
        )
        mount = parse_spec(cfg).mounts[-1]
        assert mount.uid_mappings == [
            model.IdMapping(container_id=0, host_id=1000, size=1)
        ]
        assert mount.gid_mappings == []

    def test_empty_object(self):
        spec = parse_spec({})
        assert spec.oci_version == ""
        assert spec.root is None
        assert spec.process is None
        assert spec.linux is None
        assert spec.mounts == []
        assert spec.annotations == {}

    def test_annotations(self):
        cfg = base()
        cfg["annotations"] = {"a": "1", "b.c": ""}
        assert parse_spec(cfg).annotations == {"a": "1", "b.c": ""}


class TestVersion:
    # runc 1.1.5 never looks at ociVersion; nor does pyrunc.
    @pytest.mark.parametrize(
        "version", ["1.0.0", "1.2.1", "1.3.0", "2.0.0", "abc", ""]
    )
    def test_any_string_accepted(self, version):
        cfg = base()
        cfg["ociVersion"] = version
        assert parse_spec(cfg).oci_version == version

    def test_missing_accepted(self):
        cfg = base()
        del cfg["ociVersion"]
        assert parse_spec(cfg).oci_version == ""

    def test_not_a_string(self):
        cfg = base()
        cfg["ociVersion"] = 1
        assert error_of(cfg) == "ociVersion: expected a string, got 1"


class TestNullAndUnknown:
    def test_unknown_fields_ignored(self):
        cfg = base()
        cfg["foo"] = {"bar": 1}
        cfg["process"]["bar"] = [1]
        cfg["linux"]["netDevices"] = {"eth0": {}}
        cfg["linux"]["resources"]["whatever"] = 1
        spec = parse_spec(cfg)
        assert spec.process.args == ["sh"]

    def test_null_means_absent(self):
        cfg = base()
        cfg["mounts"] = None
        cfg["hooks"] = None
        cfg["annotations"] = None
        cfg["hostname"] = None
        cfg["process"]["user"] = None
        cfg["process"]["capabilities"] = None
        cfg["process"]["env"] = None
        cfg["process"]["rlimits"] = None
        cfg["process"]["terminal"] = None
        cfg["root"]["readonly"] = None
        cfg["linux"]["resources"] = None
        cfg["linux"]["sysctl"] = None
        cfg["linux"]["seccomp"] = None
        spec = parse_spec(cfg)
        assert spec.mounts == []
        assert spec.hooks == model.Hooks()
        assert spec.annotations == {}
        assert spec.hostname is None
        assert spec.process.user == model.User()
        assert spec.process.capabilities is None
        assert spec.process.env == []
        assert spec.process.terminal is False
        assert spec.root.readonly is False
        assert spec.linux.resources is None
        assert spec.linux.sysctl == {}
        assert spec.linux.seccomp is None

    def test_null_ints(self):
        cfg = base()
        cfg["process"]["user"]["uid"] = None
        cfg["linux"]["resources"]["memory"] = {"limit": None, "swap": 5}
        spec = parse_spec(cfg)
        assert spec.process.user.uid == 0
        assert spec.linux.resources.memory.limit is None
        assert spec.linux.resources.memory.swap == 5

    def test_null_namespace_path_and_options(self):
        cfg = base()
        cfg["linux"]["namespaces"][0]["path"] = None
        cfg["mounts"][0]["options"] = None
        cfg["mounts"][0]["type"] = None
        spec = parse_spec(cfg)
        assert spec.linux.namespaces[0].path is None
        assert spec.mounts[0].options == []
        assert spec.mounts[0].type is None

    def test_null_linux(self):
        cfg = base()
        cfg["linux"] = None
        del cfg["hostname"]
        assert parse_spec(cfg).linux is None

    def test_null_process_and_root(self):
        cfg = base()
        cfg["process"] = None
        cfg["root"] = None
        spec = parse_spec(cfg)
        assert spec.process is None
        assert spec.root is None

    def test_empty_string_optional_is_none(self):
        cfg = base()
        cfg["linux"]["cgroupsPath"] = ""
        cfg["process"]["apparmorProfile"] = ""
        spec = parse_spec(cfg)
        assert spec.linux.cgroups_path is None
        assert spec.process.apparmor_profile is None


class TestTypeErrors:
    @pytest.mark.parametrize(
        "value, shown",
        [
            ("abc", '"abc"'),
            (True, "true"),
            (1.5, "1.5"),
            (1.0, "1.0"),
            ([1], "an array"),
            ({}, "an object"),
        ],
    )
    def test_memory_limit(self, value, shown):
        cfg = base()
        cfg["linux"]["resources"]["memory"] = {"limit": value}
        assert error_of(cfg) == (
            f"linux.resources.memory.limit: expected an integer, got {shown}"
        )

    def test_unsigned_refuses_negative(self):
        cfg = base()
        cfg["process"]["user"]["uid"] = -1
        assert error_of(cfg) == (
            "process.user.uid: expected an integer from 0 to 4294967295, "
            "got -1"
        )

    def test_u16_range(self):
        cfg = base()
        cfg["linux"]["resources"]["blockIO"] = {"weight": 70000}
        assert error_of(cfg).startswith(
            "linux.resources.blockIO.weight: expected an integer from 0 to "
            "65535"
        )

    def test_int64_range(self):
        cfg = base()
        cfg["linux"]["resources"]["memory"] = {"swap": 1 << 63}
        assert "linux.resources.memory.swap" in error_of(cfg)

    def test_u64_accepts_large(self):
        cfg = base()
        cfg["process"]["rlimits"][0]["hard"] = (1 << 64) - 1
        cfg["process"]["rlimits"][0]["soft"] = (1 << 64) - 1
        spec = parse_spec(cfg)
        assert spec.process.rlimits[0].hard == (1 << 64) - 1

    def test_list_index_in_path(self):
        cfg = base()
        cfg["mounts"][2]["destination"] = 7
        assert error_of(cfg) == (
            "mounts[2].destination: expected a string, got 7"
        )

    def test_string_list_item(self):
        cfg = base()
        cfg["process"]["args"] = ["sh", 1]
        assert error_of(cfg) == "process.args[1]: expected a string, got 1"

    def test_bool_field(self):
        cfg = base()
        cfg["process"]["terminal"] = "yes"
        assert error_of(cfg) == (
            'process.terminal: expected a boolean, got "yes"'
        )

    def test_object_field(self):
        cfg = base()
        cfg["linux"] = []
        assert error_of(cfg) == "linux: expected an object, got an array"

    def test_array_field(self):
        cfg = base()
        cfg["mounts"] = {}
        assert error_of(cfg) == "mounts: expected an array, got an object"

    def test_top_level(self):
        with pytest.raises(SpecError) as info:
            parse_spec([])
        assert str(info.value) == (
            "config.json: expected an object, got an array"
        )

    def test_annotation_value(self):
        cfg = base()
        cfg["annotations"] = {"a.b": 1}
        assert error_of(cfg) == 'annotations["a.b"]: expected a string, got 1'

    def test_nested_resources_paths(self):
        cfg = base()
        res = cfg["linux"]["resources"]
        res["blockIO"] = {
            "throttleReadBpsDevice": [
                {"major": 8, "minor": 0, "rate": 1},
                {"major": 8, "minor": 0, "rate": "x"},
            ]
        }
        assert error_of(cfg) == (
            "linux.resources.blockIO.throttleReadBpsDevice[1].rate: "
            'expected an integer, got "x"'
        )

    def test_hook_path(self):
        cfg = base()
        cfg["hooks"] = {"poststop": [{"path": "/x", "timeout": "1"}]}
        assert error_of(cfg) == (
            'hooks.poststop[0].timeout: expected an integer, got "1"'
        )

    def test_error_attributes(self):
        cfg = base()
        cfg["process"]["cwd"] = 3
        with pytest.raises(SpecError) as info:
            parse_spec(cfg)
        assert info.value.path == "process.cwd"
        assert info.value.problem == "expected a string, got 3"


class TestResources:
    def test_full(self):
        obj = {
            "devices": [
                {"allow": True, "type": "c", "major": 1, "access": "rw"}
            ],
            "memory": {
                "limit": 1 << 30,
                "reservation": 1 << 29,
                "swap": -1,
                "kernel": 0,
                "kernelTCP": 0,
                "swappiness": 10,
                "disableOOMKiller": True,
                "useHierarchy": False,
                "checkBeforeUpdate": True,
            },
            "cpu": {
                "shares": 512,
                "quota": 50000,
                "period": 100000,
                "realtimeRuntime": 0,
                "realtimePeriod": 0,
                "cpus": "0-1",
                "mems": "0",
                "idle": 0,
                "burst": 10,
            },
            "pids": {"limit": 100},
            "blockIO": {
                "weight": 500,
                "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                "throttleWriteIOPSDevice": [
                    {"major": 8, "minor": 0, "rate": 100}
                ],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
            "network": {
                "classID": 0x100001,
                "priorities": [{"name": "eth0", "priority": 5}],
            },
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.high": "max"},
        }
        res = model.Resources.from_json(obj)
        assert res.devices == [
            model.DeviceRule(allow=True, type="c", major=1, access="rw")
        ]
        assert res.memory.limit == 1 << 30
        assert res.memory.swap == -1
        assert res.memory.disable_oom_killer is True
        assert res.memory.use_hierarchy is False
        assert res.cpu.cpus == "0-1"
        assert res.cpu.burst == 10
        assert res.pids == model.Pids(limit=100)
        assert res.block_io.weight_device == [
            model.WeightDevice(major=8, minor=0, weight=10)
        ]
        assert res.block_io.throttle_write_iops_device == [
            model.ThrottleDevice(major=8, minor=0, rate=100)
        ]
        assert res.block_io.throttle_read_bps_device == []
        assert res.hugepage_limits == [
            model.HugepageLimit(page_size="2MB", limit=1 << 21)
        ]
        assert res.network.class_id == 0x100001
        assert res.network.priorities == [("eth0", 5)]
        assert res.rdma == {"mlx5_1": {"hcaHandles": 3}}
        assert res.unified == {"memory.high": "max"}

    def test_bare_path(self):
        with pytest.raises(SpecError) as info:
            parse_resources({"pids": {"limit": "x"}}, "")
        assert str(info.value) == 'pids.limit: expected an integer, got "x"'

    def test_default_path(self):
        with pytest.raises(SpecError) as info:
            model.Resources.from_json({"cpu": {"shares": -2}})
        assert str(info.value).startswith("linux.resources.cpu.shares:")

    def test_not_an_object(self):
        with pytest.raises(SpecError) as info:
            model.Resources.from_json([])
        assert str(info.value) == (
            "linux.resources: expected an object, got an array"
        )

    def test_device_rule_access_required(self):
        with pytest.raises(SpecError) as info:
            model.Resources.from_json({"devices": [{"allow": False}]})
        assert str(info.value) == (
            "linux.resources.devices[0].access: must not be empty"
        )

    def test_device_rule_access_letters(self):
        with pytest.raises(SpecError) as info:
            model.Resources.from_json(
                {"devices": [{"allow": False, "access": "rwx"}]}
            )
        assert "devices[0].access" in str(info.value)

    def test_device_rule_type(self):
        with pytest.raises(SpecError) as info:
            model.Resources.from_json(
                {"devices": [{"allow": False, "access": "r", "type": "x"}]}
            )
        assert str(info.value) == (
            "linux.resources.devices[0].type: invalid cgroup device type 'x'"
        )

    def test_pids_without_limit(self):
        assert model.Resources.from_json({"pids": {}}).pids.limit == 0

    def test_rdma_type(self):
        with pytest.raises(SpecError) as info:
            model.Resources.from_json({"rdma": {"m": {"hcaHandles": -1}}})
        assert str(info.value).startswith('linux.resources.rdma["m"]')


class TestProcessRules:
    def test_args_empty(self):
        cfg = base()
        cfg["process"]["args"] = []
        assert error_of(cfg) == "process.args: must not be empty"

    def test_args_null(self):
        cfg = base()
        cfg["process"]["args"] = None
        assert error_of(cfg) == "process.args: must not be empty"

    def test_cwd_empty(self):
        cfg = base()
        cfg["process"]["cwd"] = ""
        assert error_of(cfg) == "process.cwd: must not be empty"

    def test_cwd_relative(self):
        cfg = base()
        cfg["process"]["cwd"] = "x"
        assert error_of(cfg) == "process.cwd: must be an absolute path"

    @pytest.mark.parametrize(
        "pair, problem",
        [
            ("FOO", "invalid environment variable 'FOO'"),
            ("=x", "environment variable name can't be empty"),
            ("A=b\0c", "environment variable contains a null byte"),
        ],
    )
    def test_env(self, pair, problem):
        cfg = base()
        cfg["process"]["env"].append(pair)
        assert error_of(cfg) == f"process.env[2]: {problem}"

    def test_env_value_may_have_equals(self):
        cfg = base()
        cfg["process"]["env"].append("A=b=c")
        assert parse_spec(cfg).process.env[-1] == "A=b=c"

    def test_unknown_rlimit(self):
        cfg = base()
        cfg["process"]["rlimits"].append(
            {"type": "RLIMIT_FOO", "soft": 1, "hard": 1}
        )
        assert error_of(cfg) == (
            "process.rlimits[1].type: unknown rlimit 'RLIMIT_FOO'"
        )

    def test_rlimit_soft_above_hard(self):
        cfg = base()
        cfg["process"]["rlimits"][0]["soft"] = 2048
        assert error_of(cfg) == (
            "process.rlimits[0]: soft limit 2048 exceeds hard limit 1024"
        )

    def test_hook_needs_path(self):
        cfg = base()
        cfg["hooks"] = {"createRuntime": [{"args": ["x"]}]}
        assert error_of(cfg) == (
            "hooks.createRuntime[0].path: must not be empty"
        )

    def test_hook_timeout_positive(self):
        cfg = base()
        cfg["hooks"] = {"prestart": [{"path": "/x", "timeout": 0}]}
        assert error_of(cfg) == (
            "hooks.prestart[0].timeout: must be greater than zero"
        )


class TestMountRules:
    def test_relative_destination_made_absolute(self, pyrunc_logs):
        # runc 1.1.5 warns and mounts relative to the rootfs.
        cfg = base()
        cfg["mounts"][1]["destination"] = "dev"
        spec = parse_spec(cfg)
        assert spec.mounts[1].destination == "/dev"
        assert "not absolute" in pyrunc_logs.text
        assert cfg["mounts"][1]["destination"] == "dev"

    def test_empty_destination(self):
        cfg = base()
        cfg["mounts"][2]["destination"] = ""
        assert error_of(cfg) == "mounts[2].destination: must not be empty"

    def test_missing_destination(self):
        cfg = base()
        del cfg["mounts"][0]["destination"]
        assert error_of(cfg) == "mounts[0].destination: must not be empty"

    def test_null_byte(self):
        cfg = base()
        cfg["mounts"][0]["source"] = "pr\0oc"
        assert error_of(cfg) == "mounts[0].source: contains a null byte"

    def test_option_must_be_string(self):
        cfg = base()
        cfg["mounts"][1]["options"] = ["ro", 3]
        assert error_of(cfg) == (
            "mounts[1].options[1]: expected a string, got 3"
        )


class TestNamespaceRules:
    def test_unknown(self):
        cfg = base()
        cfg["linux"]["namespaces"].append({"type": "bogus"})
        assert error_of(cfg) == (
            "linux.namespaces[5].type: unknown namespace type 'bogus'"
        )

    def test_missing_type(self):
        cfg = base()
        cfg["linux"]["namespaces"].append({})
        assert error_of(cfg) == (
            "linux.namespaces[5].type: unknown namespace type ''"
        )

    def test_duplicate(self):
        cfg = base()
        cfg["linux"]["namespaces"].append({"type": "pid", "path": "/x"})
        assert error_of(cfg) == (
            "linux.namespaces[5]: duplicated namespace 'pid'"
        )

    @pytest.mark.parametrize("ns_type", ["cgroup", "time"])
    def test_other_known_types(self, ns_type):
        cfg = base()
        cfg["linux"]["namespaces"].append({"type": ns_type})
        spec = parse_spec(cfg)
        assert spec.linux.has_namespace(ns_type)

    def test_hostname_needs_uts(self):
        cfg = ns_without(base(), "uts")
        assert error_of(cfg) == (
            "hostname: unable to set hostname without a private uts namespace"
        )

    def test_empty_hostname_without_uts(self):
        cfg = ns_without(base(), "uts")
        cfg["hostname"] = ""
        assert parse_spec(cfg).hostname is None

    def test_domainname_needs_uts(self):
        cfg = ns_without(base(), "uts")
        del cfg["hostname"]
        cfg["domainname"] = "example.org"
        assert error_of(cfg) == (
            "domainname: unable to set domainname without a private uts "
            "namespace"
        )

    def test_domainname_with_uts(self):
        cfg = base()
        cfg["domainname"] = "example.org"
        assert parse_spec(cfg).domainname == "example.org"

    def test_masked_paths_need_mount_ns(self):
        cfg = ns_without(base(), "mount")
        assert error_of(cfg).startswith(
            "linux.maskedPaths: unable to restrict sys entries"
        )

    def test_readonly_paths_need_mount_ns(self):
        cfg = ns_without(base(), "mount")
        cfg["linux"]["maskedPaths"] = []
        assert error_of(cfg).startswith("linux.readonlyPaths:")

    def test_user_ns_needs_mappings(self):
        cfg = base()
        cfg["linux"]["namespaces"].append({"type": "user"})
        assert error_of(cfg).startswith("linux.uidMappings: user namespace")

    def test_user_ns_needs_gid_mappings(self):
        cfg = base()
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [
            {"containerID": 0, "hostID": 1000, "size": 1}
        ]
        assert error_of(cfg).startswith("linux.gidMappings:")

    def test_user_ns_joined_needs_no_mappings(self):
        cfg = base()
        cfg["linux"]["namespaces"].append(
            {"type": "user", "path": "/proc/1/ns/user"}
        )
        parse_spec(cfg)

    def test_rootless_default_parses(self):
        spec = parse_spec(default_spec(rootless=True, cgroup2=False))
        assert spec.linux.uid_mappings[0].size == 1
        assert spec.linux.has_namespace("user")

    def test_mappings_without_user_ns_ignored(self):
        # runc 1.1.5 accepts and ignores them.
        cfg = base()
        cfg["linux"]["uidMappings"] = [
            {"containerID": 0, "hostID": 0, "size": 1}
        ]
        parse_spec(cfg)

    def test_time_offsets_need_time_ns(self):
        cfg = base()
        cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 10}}
        assert error_of(cfg).startswith(
            "linux.timeOffsets: time namespace offsets specified"
        )

    def test_time_offsets(self):
        cfg = base()
        cfg["linux"]["namespaces"].append({"type": "time"})
        cfg["linux"]["timeOffsets"] = {
            "monotonic": {"secs": 10},
            "boottime": {"secs": -1, "nanosecs": 5},
        }
        spec = parse_spec(cfg)
        assert spec.linux.time_offsets["boottime"]["nanosecs"] == 5

    def test_time_offsets_unknown_clock(self):
        cfg = base()
        cfg["linux"]["namespaces"].append({"type": "time"})
        cfg["linux"]["timeOffsets"] = {"realtime": {"secs": 1}}
        assert error_of(cfg) == (
            'linux.timeOffsets["realtime"]: unknown clock'
        )


class TestLinuxRules:
    @pytest.mark.parametrize(
        "prop",
        [
            "private",
            "rprivate",
            "slave",
            "rslave",
            "shared",
            "rshared",
            "unbindable",
            "runbindable",
            "",
        ],
    )
    def test_propagation_ok(self, prop):
        cfg = base()
        cfg["linux"]["rootfsPropagation"] = prop
        parse_spec(cfg)

    def test_propagation_bad(self):
        cfg = base()
        cfg["linux"]["rootfsPropagation"] = "bogus"
        assert error_of(cfg) == (
            "linux.rootfsPropagation: 'bogus' is not supported"
        )

    def test_device_type(self):
        cfg = base()
        cfg["linux"]["devices"] = [
            {"path": "/dev/x", "type": "x", "major": 1, "minor": 3}
        ]
        assert error_of(cfg).startswith(
            "linux.devices[0].type: invalid device type 'x'"
        )

    def test_device_path(self):
        cfg = base()
        cfg["linux"]["devices"] = [{"type": "c", "major": 1, "minor": 3}]
        assert error_of(cfg) == "linux.devices[0].path: must not be empty"

    @pytest.mark.parametrize("clos", [".", "..", "a/b"])
    def test_intel_rdt_clos(self, clos):
        cfg = base()
        cfg["linux"]["intelRdt"] = {"closID": clos}
        assert error_of(cfg).startswith("linux.intelRdt.closID: invalid")


class TestSysctl:
    @pytest.mark.parametrize(
        "key",
        [
            "kernel.shmmax",
            "kernel.msgmax",
            "kernel.sem",
            "kernel.shm_rmid_forced",
            "fs.mqueue.msg_max",
            "fs/mqueue/msg_max",
            "net.ipv4.ip_forward",
            "net/ipv4/conf/all/rp_filter",
            "net/ipv4/conf/eth0.100/rp_filter",
            "kernel.domainname",
        ],
    )
    def test_allowed(self, key):
        cfg = base()
        cfg["linux"]["sysctl"] = {key: "1"}
        parse_spec(cfg)

    def test_ipc_needs_ipc_ns(self):
        cfg = ns_without(base(), "ipc")
        cfg["linux"]["sysctl"] = {"kernel.shmmax": "1"}
        assert error_of(cfg) == (
            'linux.sysctl["kernel.shmmax"]: not allowed in the host\'s ipc '
            "namespace"
        )

    def test_mqueue_needs_ipc_ns(self):
        cfg = ns_without(base(), "ipc")
        cfg["linux"]["sysctl"] = {"fs.mqueue.queues_max": "1"}
        assert "host's ipc namespace" in error_of(cfg)

    def test_net_needs_net_ns(self):
        cfg = ns_without(base(), "network")
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        assert error_of(cfg) == (
            'linux.sysctl["net.ipv4.ip_forward"]: not allowed in the '
            "host's network namespace"
        )

    def test_hostname_sysctl_conflicts(self):
        cfg = base()
        cfg["linux"]["sysctl"] = {"kernel.hostname": "a"}
        assert error_of(cfg) == (
            'linux.sysctl["kernel.hostname"]: conflicts with the OCI '
            '"hostname" field'
        )

    def test_domainname_sysctl_needs_uts(self):
        cfg = ns_without(base(), "uts")
        del cfg["hostname"]
        cfg["linux"]["sysctl"] = {"kernel.domainname": "a"}
        assert error_of(cfg) == (
            'linux.sysctl["kernel.domainname"]: is not in a separate '
            "kernel namespace"
        )

    @pytest.mark.parametrize(
        "key", ["vm.swappiness", "kernel.pid_max", "kernel/shmmax/x"]
    )
    def test_not_namespaced(self, key):
        cfg = base()
        cfg["linux"]["sysctl"] = {key: "1"}
        assert error_of(cfg).endswith("is not in a separate kernel namespace")

    def test_value_must_be_string(self):
        cfg = base()
        cfg["linux"]["sysctl"] = {"kernel.shmmax": 1}
        assert error_of(cfg) == (
            'linux.sysctl["kernel.shmmax"]: expected a string, got 1'
        )


class TestLoadBundle:
    def test_ok(self, bundle):
        spec = load_bundle(bundle(base()))
        assert spec.process.args == ["sh"]

    def test_missing_config(self, tmp_path):
        with pytest.raises(SpecError) as info:
            load_bundle(str(tmp_path))
        assert str(info.value).startswith("config.json: not found")

    def test_invalid_json(self, tmp_path):
        (tmp_path / "config.json").write_text('{"ociVersion": ')
        with pytest.raises(SpecError) as info:
            load_bundle(str(tmp_path))
        assert str(info.value).startswith("config.json: invalid json:")

    def test_nan_refused(self, tmp_path):
        (tmp_path / "config.json").write_text('{"x": NaN}')
        with pytest.raises(SpecError) as info:
            load_bundle(str(tmp_path))
        assert "invalid json" in str(info.value)

    def test_config_is_a_directory(self, tmp_path):
        (tmp_path / "config.json").mkdir()
        with pytest.raises(SpecError) as info:
            load_bundle(str(tmp_path))
        assert str(info.value).startswith("config.json: cannot read")

    def test_process_required(self, bundle):
        cfg = base()
        del cfg["process"]
        path = bundle(cfg)
        with pytest.raises(SpecError) as info:
            load_bundle(path)
        assert str(info.value).startswith("process: must be present")
        assert load_bundle(path, require_process=False).process is None

    def test_root_required(self, bundle):
        cfg = base()
        del cfg["root"]
        with pytest.raises(SpecError) as info:
            load_bundle(bundle(cfg))
        assert str(info.value) == "root: must be specified"

    def test_rootfs_missing(self, bundle):
        cfg = base()
        cfg["root"]["path"] = "nope"
        with pytest.raises(SpecError) as info:
            load_bundle(bundle(cfg))
        assert str(info.value).startswith("root.path: invalid rootfs ")
        assert str(info.value).endswith("No such file or directory")

    def test_rootfs_not_a_directory(self, bundle, tmp_path):
        (tmp_path / "file").write_text("")
        cfg = base()
        cfg["root"]["path"] = "file"
        with pytest.raises(SpecError) as info:
            load_bundle(bundle(cfg))
        assert str(info.value).endswith("not a directory")

    def test_rootfs_symlink_refused(self, bundle, tmp_path):
        os.symlink("rootfs", tmp_path / "link")
        cfg = base()
        cfg["root"]["path"] = "link"
        with pytest.raises(SpecError) as info:
            load_bundle(bundle(cfg))
        assert str(info.value).endswith("path has a symlink")

    def test_rootfs_absolute(self, bundle, tmp_path):
        cfg = base()
        cfg["root"]["path"] = str(tmp_path / "rootfs")
        load_bundle(bundle(cfg))

    def test_bundle_through_symlink(self, bundle, tmp_path):
        # runc works from the physical cwd of the bundle.
        path = bundle(base())
        link = tmp_path.parent / (tmp_path.name + "-link")
        os.symlink(path, link)
        try:
            load_bundle(str(link))
        finally:
            os.unlink(link)

    def test_net_sysctl_in_joined_host_netns(self, bundle):
        cfg = base()
        cfg["linux"]["namespaces"][1]["path"] = "/proc/self/ns/net"
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        with pytest.raises(SpecError) as info:
            load_bundle(bundle(cfg))
        assert str(info.value).startswith("linux.sysctl: net.* sysctls")

    def test_net_sysctl_bad_netns_path(self, bundle):
        cfg = base()
        cfg["linux"]["namespaces"][1]["path"] = "/nonexistent"
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        with pytest.raises(SpecError) as info:
            load_bundle(bundle(cfg))
        assert str(info.value).startswith(
            "linux.namespaces[1].path: invalid netns path /nonexistent"
        )

    def test_selinux_label_without_selinux(self, bundle):
        if os.path.exists("/sys/fs/selinux/enforce"):
            pytest.skip("selinux is enabled here")
        cfg = base()
        cfg["process"]["selinuxLabel"] = "system_u:system_r:x:s0"
        with pytest.raises(SpecError) as info:
            load_bundle(bundle(cfg))
        assert str(info.value).startswith("process.selinuxLabel: selinux")

    def test_does_not_modify_file(self, bundle, tmp_path):
        cfg = base()
        path = bundle(cfg)
        before = (tmp_path / "config.json").read_bytes()
        spec = load_bundle(path)
        assert spec.raw == json.loads(before)
        assert (tmp_path / "config.json").read_bytes() == before

    def test_parse_does_not_modify_input(self):
        cfg = base()
        cfg["mounts"][0]["destination"] = "proc"
        snapshot = copy.deepcopy(cfg)
        parse_spec(cfg)
        assert cfg == snapshot


def _set(path, value):
    """A mutation of base(): set the value at a dotted path."""
    def mutate(cfg):
        *parents, last = path
        node = cfg
        for key in parents:
            node = node[key]
        if isinstance(node, list) and last == len(node):
            node.append(value)
        else:
            node[last] = value
    return mutate


@pytest.mark.parametrize("path, value, field", [
    (("process", "args", 0), "sh\0zzz", "process.args[0]"),
    (("process", "cwd"), "/tmp\0/x", "process.cwd"),
    (("root", "path"), "root\0fs", "root.path"),
    (("hostname",), "box\0", "hostname"),
    (("linux", "maskedPaths", 0), "/etc\0/x", "linux.maskedPaths[0]"),
    (("mounts", 1, "options", 0), "size=1m\0,ro", "mounts[1].options[0]"),
    (("linux", "sysctl"), {"net.ipv4.ip_forward": "1\0"},
     'linux.sysctl["net.ipv4.ip_forward"]'),
])
def test_null_bytes_in_c_strings_name_the_field(path, value, field):
    # The kernel would cut these at the NUL and go on with the rest.
    cfg = base()
    _set(path, value)(cfg)
    assert error_of(cfg) == f"{field}: contains a null byte"


def test_annotations_may_hold_any_string():
    # Annotations only ever travel as JSON.
    cfg = base()
    cfg["annotations"] = {"note": "a\0b"}
    assert parse_spec(cfg).annotations == {"note": "a\0b"}


@pytest.mark.parametrize("destination", ["/", "/..", "/./", "//"])
def test_no_mount_over_the_root(destination):
    cfg = base()
    cfg["mounts"].append({"destination": destination, "type": "tmpfs",
                          "source": "tmpfs", "options": ["ro"]})
    index = len(cfg["mounts"]) - 1
    assert error_of(cfg).startswith(
        f"mounts[{index}].destination: cannot mount over the container's "
        "root")
