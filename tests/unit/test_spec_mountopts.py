"""Unit tests for pyrunc.spec.mountopts."""

import pytest

from pyrunc.errors import SpecError
from pyrunc.spec import mountopts as mo
from pyrunc.spec.mountopts import MountFlags, parse_mount_options


class TestConstants:
    def test_kernel_values(self):
        assert mo.MS_RDONLY == 1
        assert mo.MS_NOSUID == 2
        assert mo.MS_NODEV == 4
        assert mo.MS_NOEXEC == 8
        assert mo.MS_REMOUNT == 32
        assert mo.MS_NOATIME == 1024
        assert mo.MS_BIND == 4096
        assert mo.MS_REC == 16384
        assert mo.MS_PRIVATE == 1 << 18
        assert mo.MS_SLAVE == 1 << 19
        assert mo.MS_SHARED == 1 << 20
        assert mo.MS_RELATIME == 1 << 21
        assert mo.MS_STRICTATIME == 1 << 24
        assert mo.MOUNT_ATTR_RDONLY == 1
        assert mo.MOUNT_ATTR_NOSUID == 2
        assert mo.MOUNT_ATTR_NODEV == 4
        assert mo.MOUNT_ATTR_NOEXEC == 8
        assert mo.MOUNT_ATTR__ATIME == 0x70
        assert mo.MOUNT_ATTR_RELATIME == 0
        assert mo.MOUNT_ATTR_NOATIME == 0x10
        assert mo.MOUNT_ATTR_STRICTATIME == 0x20
        assert mo.MOUNT_ATTR_NODIRATIME == 0x80


class TestFlags:
    def test_empty(self):
        assert parse_mount_options([]) == MountFlags()
        assert parse_mount_options(None) == MountFlags()

    def test_default_dev_tmpfs(self):
        m = parse_mount_options(
            ["nosuid", "strictatime", "mode=755", "size=65536k"]
        )
        assert m.flags == mo.MS_NOSUID | mo.MS_STRICTATIME
        assert m.data == "mode=755,size=65536k"
        assert m.propagation == []
        assert not m.bind

    def test_sys_default(self):
        m = parse_mount_options(["nosuid", "noexec", "nodev", "ro"])
        assert m.flags == 15

    def test_runc_value_for_dev(self):
        # runc prints Flags:16777218 for the default /dev tmpfs.
        m = parse_mount_options(["nosuid", "strictatime"])
        assert m.flags == 16777218

    @pytest.mark.parametrize(
        "on, off, bit",
        [
            ("ro", "rw", mo.MS_RDONLY),
            ("nosuid", "suid", mo.MS_NOSUID),
            ("nodev", "dev", mo.MS_NODEV),
            ("noexec", "exec", mo.MS_NOEXEC),
            ("sync", "async", mo.MS_SYNCHRONOUS),
            ("mand", "nomand", mo.MS_MANDLOCK),
            ("noatime", "atime", mo.MS_NOATIME),
            ("nodiratime", "diratime", mo.MS_NODIRATIME),
            ("relatime", "norelatime", mo.MS_RELATIME),
            ("strictatime", "nostrictatime", mo.MS_STRICTATIME),
            ("iversion", "noiversion", mo.MS_I_VERSION),
            ("lazytime", "nolazytime", mo.MS_LAZYTIME),
            ("silent", "loud", mo.MS_SILENT),
            ("nosymfollow", "symfollow", mo.MS_NOSYMFOLLOW),
        ],
    )
    def test_pairs(self, on, off, bit):
        m = parse_mount_options([on])
        assert m.flags == bit
        assert m.clear == 0
        m = parse_mount_options([on, off])
        assert m.flags == 0
        assert m.clear == bit
        m = parse_mount_options([off, on])
        assert m.flags == bit
        assert m.clear == 0

    def test_dirsync_remount(self):
        m = parse_mount_options(["dirsync", "remount"])
        assert m.flags == mo.MS_DIRSYNC | mo.MS_REMOUNT

    def test_bind(self):
        m = parse_mount_options(["bind", "ro"])
        assert m.flags == mo.MS_BIND | mo.MS_RDONLY
        assert m.bind
        assert not m.recursive_bind

    def test_rbind(self):
        m = parse_mount_options(["rbind"])
        assert m.flags == mo.MS_BIND | mo.MS_REC
        assert m.bind
        assert m.recursive_bind

    def test_rw_bind_records_clear(self):
        m = parse_mount_options(["rbind", "rw"])
        assert m.flags & mo.MS_RDONLY == 0
        assert m.clear == mo.MS_RDONLY


class TestPropagation:
    @pytest.mark.parametrize(
        "opt, value",
        [
            ("private", 1 << 18),
            ("rprivate", (1 << 18) | 16384),
            ("slave", 1 << 19),
            ("rslave", (1 << 19) | 16384),
            ("shared", 1 << 20),
            ("rshared", (1 << 20) | 16384),
            ("unbindable", 1 << 17),
            ("runbindable", (1 << 17) | 16384),
        ],
    )
    def test_each(self, opt, value):
        m = parse_mount_options([opt])
        assert m.propagation == [value]
        assert m.flags == 0

    def test_order_kept(self):
        m = parse_mount_options(["rbind", "rslave", "private"])
        assert m.propagation == [mo.MS_SLAVE | mo.MS_REC, mo.MS_PRIVATE]


class TestRecursive:
    @pytest.mark.parametrize(
        "on, off, bit",
        [
            ("rro", "rrw", mo.MOUNT_ATTR_RDONLY),
            ("rnosuid", "rsuid", mo.MOUNT_ATTR_NOSUID),
            ("rnodev", "rdev", mo.MOUNT_ATTR_NODEV),
            ("rnoexec", "rexec", mo.MOUNT_ATTR_NOEXEC),
            ("rnodiratime", "rdiratime", mo.MOUNT_ATTR_NODIRATIME),
            ("rnosymfollow", "rsymfollow", mo.MOUNT_ATTR_NOSYMFOLLOW),
        ],
    )
    def test_pairs(self, on, off, bit):
        m = parse_mount_options([on])
        assert (m.recursive_set, m.recursive_clear) == (bit, 0)
        m = parse_mount_options([off])
        assert (m.recursive_set, m.recursive_clear) == (0, bit)
        m = parse_mount_options([on, off])
        assert (m.recursive_set, m.recursive_clear) == (0, bit)
        m = parse_mount_options([off, on])
        assert (m.recursive_set, m.recursive_clear) == (bit, 0)
        assert m.flags == 0
        assert m.data == ""

    @pytest.mark.parametrize(
        "opt, attr",
        [
            ("rnoatime", mo.MOUNT_ATTR_NOATIME),
            ("rstrictatime", mo.MOUNT_ATTR_STRICTATIME),
            ("rrelatime", mo.MOUNT_ATTR_RELATIME),
        ],
    )
    def test_atime_sets_mask_in_clear(self, opt, attr):
        m = parse_mount_options([opt])
        assert m.recursive_set == attr
        assert m.recursive_clear == mo.MOUNT_ATTR__ATIME

    @pytest.mark.parametrize(
        "opt", ["ratime", "rnostrictatime", "rnorelatime"]
    )
    def test_atime_clear_options(self, opt):
        m = parse_mount_options([opt])
        assert m.recursive_set == 0
        assert m.recursive_clear == mo.MOUNT_ATTR__ATIME

    def test_last_atime_wins(self):
        m = parse_mount_options(["rnoatime", "rstrictatime"])
        assert m.recursive_set == mo.MOUNT_ATTR_STRICTATIME
        m = parse_mount_options(["rnoatime", "rrelatime"])
        assert m.recursive_set == 0
        assert m.recursive_clear == mo.MOUNT_ATTR__ATIME

    def test_atime_keeps_other_bits(self):
        m = parse_mount_options(["rro", "rnodiratime", "rnoatime"])
        assert m.recursive_set == (
            mo.MOUNT_ATTR_RDONLY
            | mo.MOUNT_ATTR_NODIRATIME
            | mo.MOUNT_ATTR_NOATIME
        )
        assert m.recursive_clear == mo.MOUNT_ATTR__ATIME


class TestData:
    def test_unknown_to_data_in_order(self):
        m = parse_mount_options(
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "gid=5"]
        )
        assert m.data == "newinstance,ptmxmode=0666,gid=5"

    def test_defaults_goes_to_data_like_runc(self):
        assert parse_mount_options(["defaults"]).data == "defaults"

    def test_acl_goes_to_data_like_runc(self):
        m = parse_mount_options(["acl", "noacl"])
        assert m.flags == 0
        assert m.data == "acl,noacl"

    def test_empty_option_goes_to_data(self):
        assert parse_mount_options(["", "ro"]).data == ""
        assert parse_mount_options(["a", "", "b"]).data == "a,,b"

    def test_idmap_is_an_extension_not_data(self):
        m = parse_mount_options(["bind", "idmap"])
        assert m.data == ""
        assert m.idmap and not m.recursive_idmap

    def test_ridmap_is_recursive(self):
        m = parse_mount_options(["rbind", "ridmap"])
        assert m.data == ""
        assert m.idmap and m.recursive_idmap

    def test_last_idmap_option_wins(self):
        assert not parse_mount_options(["ridmap", "idmap"]).recursive_idmap
        assert parse_mount_options(["idmap", "ridmap"]).recursive_idmap

    def test_tmpcopyup(self):
        m = parse_mount_options(["tmpcopyup", "mode=755"])
        assert m.tmpcopyup
        assert m.data == "mode=755"

    def test_non_string(self):
        with pytest.raises(SpecError) as info:
            parse_mount_options(["ro", 1], "mounts[3].options")
        assert str(info.value) == "mounts[3].options[1]: expected a string"


class TestKnownOptions:
    def test_sorted_and_unique(self):
        known = mo.KNOWN_OPTIONS
        assert list(known) == sorted(set(known))

    def test_every_known_option_is_parsed(self):
        for opt in mo.KNOWN_OPTIONS:
            assert parse_mount_options([opt]).data == "", opt

    def test_repr_and_eq(self):
        m = parse_mount_options(["ro"])
        assert "flags=1" in repr(m)
        assert m == parse_mount_options(["ro"])
        assert m != parse_mount_options(["rw"])
