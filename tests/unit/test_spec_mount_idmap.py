"""Idmapped mounts: the loader's rules and the plan's steps.

A mount's uidMappings/gidMappings (or the idmap/ridmap options) ask for
an idmapped bind mount (runtime-spec 1.2, runc 1.2). The loader checks
the config by runc's and the spec's rules and names the field at fault;
the planner turns the mount into an OP_MOUNT that moves a detached tree
(MNT_TREE) and records what the parent must prepare in Plan.trees.
"""

import os

import pytest

from pyrunc._native import launcher as L
from pyrunc.errors import NotSupported, SpecError
from pyrunc.process import idmap
from pyrunc.process import plan as P
from pyrunc.spec import mountopts as mo
from pyrunc.spec.load import check_idmapped_mounts, parse_spec

MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]
USERNS = {"namespaces": [{"type": "mount"}, {"type": "user"}],
          "uidMappings": MAPPING, "gidMappings": MAPPING}

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="idmapped mounts need root")


def config(linux=None, **mount):
    base = {"destination": "/data", "type": "bind", "source": "/tmp",
            "options": ["rbind"]}
    base.update(mount)
    cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
           "process": {"args": ["sh"], "cwd": "/"},
           "mounts": [{"destination": "/proc", "type": "proc",
                       "source": "proc"}, base],
           "linux": linux or {"namespaces": [{"type": "mount"}]}}
    return cfg


def check(cfg):
    check_idmapped_mounts(parse_spec(cfg))


@needs_root
class TestLoader:
    def test_plain_bind_accepted(self):
        check(config())

    def test_mappings_without_userns_accepted(self):
        # runc 1.2 needs no container user namespace for explicit maps.
        check(config(uidMappings=MAPPING, gidMappings=MAPPING))

    def test_mappings_with_userns_accepted(self):
        check(config(linux=USERNS, uidMappings=MAPPING,
                     gidMappings=MAPPING, options=["bind", "idmap"]))

    def test_idmap_option_takes_the_container_userns(self):
        check(config(linux=USERNS, options=["rbind", "ridmap"]))

    @pytest.mark.parametrize("option", ["idmap", "ridmap"])
    def test_idmap_option_without_userns_refused(self, option):
        with pytest.raises(SpecError,
                           match=r"^mounts\[1\]\.options: .*user namesp"):
            check(config(options=["rbind", option]))

    @pytest.mark.parametrize("key", ["uidMappings", "gidMappings"])
    def test_only_bind_mounts(self, key):
        cfg = config(type="tmpfs", source="tmpfs", options=["nosuid"],
                     **{key: MAPPING})
        with pytest.raises(SpecError,
                           match=rf"^mounts\[1\]\.{key}: .*bind mounts"):
            check(cfg)

    def test_idmap_option_only_bind_mounts(self):
        cfg = config(linux=USERNS, type="tmpfs", source="tmpfs",
                     options=["idmap"])
        with pytest.raises(SpecError,
                           match=r"^mounts\[1\]\.options: .*bind mounts"):
            check(cfg)

    def test_bind_option_makes_a_bind_whatever_the_type(self):
        check(config(type="none", options=["bind"], uidMappings=MAPPING,
                     gidMappings=MAPPING))

    @pytest.mark.parametrize("given,missing", [
        ("uidMappings", "gidMappings"), ("gidMappings", "uidMappings")])
    def test_both_maps_needed(self, given, missing):
        with pytest.raises(SpecError, match=rf"^mounts\[1\]\.{missing}: "):
            check(config(**{given: MAPPING}))

    def test_empty_range_refused(self):
        bad = [{"containerID": 0, "hostID": 1000, "size": 0}]
        with pytest.raises(SpecError,
                           match=r"^mounts\[1\]\.gidMappings\[0\]\.size: "):
            check(config(uidMappings=MAPPING, gidMappings=bad))


def test_rootless_refused(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NotSupported,
                       match=r"^mounts\[1\]\.uidMappings: .*rootless"):
        check(config(uidMappings=MAPPING, gidMappings=MAPPING))


def test_plain_bind_accepted_without_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    check(config())


# --- the plan


def build(tmp_path, linux=None, **mount):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    (tmp_path / "vol").mkdir(exist_ok=True)
    mount.setdefault("source", str(tmp_path / "vol"))
    spec = parse_spec(config(linux=linux, **mount))
    opts = P.Options(cid="c1", bundle=str(tmp_path), fifo_fd=7)
    return P.build(spec, opts)


def data_step(plan):
    return [s for s in plan.steps
            if s[0] == L.OP_MOUNT and s[2] == b"/data"][0]


class TestPlan:
    def test_plain_bind_has_no_tree(self, tmp_path):
        plan = build(tmp_path)
        step = data_step(plan)
        assert plan.trees == []
        assert len(step) == 10
        assert not step[6] & L.MNT_TREE

    def test_mappings_make_a_tree(self, tmp_path):
        maps = [{"containerID": 1000, "hostID": 0, "size": 1}]
        plan = build(tmp_path, options=["bind"], uidMappings=maps,
                     gidMappings=MAPPING)
        step = data_step(plan)
        assert step[6] & L.MNT_TREE and step[6] & L.MNT_BIND
        assert step[6] & L.MNT_MKDIR
        # Argument 9: the index of the request in plan.trees.
        assert len(step) == 11 and step[10] == 0
        (tree,) = plan.trees
        assert tree.where == "mounts[1]"
        assert tree.field == "mounts[1]"
        assert tree.source == str(tmp_path / "vol")
        assert tree.uid_map == "1000 0 1\n"
        assert tree.gid_map == "0 100000 65536\n"
        assert tree.userns_path is None
        assert not tree.recursive_tree and not tree.recursive_idmap
        # A bind in the container's rslave namespace is a slave.
        assert tree.propagation == mo.MS_SLAVE

    def test_step_fits_the_executor(self, tmp_path):
        plan = build(tmp_path, uidMappings=MAPPING, gidMappings=MAPPING)
        assert len(data_step(plan)) - 1 <= 10

    def test_rbind_clones_the_whole_tree(self, tmp_path):
        plan = build(tmp_path, options=["rbind", "idmap"],
                     uidMappings=MAPPING, gidMappings=MAPPING)
        (tree,) = plan.trees
        assert tree.recursive_tree and not tree.recursive_idmap
        assert data_step(plan)[4] & mo.MS_REC

    def test_ridmap_maps_every_mount(self, tmp_path):
        plan = build(tmp_path, options=["rbind", "ridmap"],
                     uidMappings=MAPPING, gidMappings=MAPPING)
        (tree,) = plan.trees
        assert tree.recursive_tree and tree.recursive_idmap

    def test_idmap_option_takes_the_container_maps(self, tmp_path):
        plan = build(tmp_path, linux=USERNS, options=["bind", "idmap"])
        (tree,) = plan.trees
        assert tree.uid_map == tree.gid_map == "0 100000 65536\n"
        assert tree.field == "linux"

    def test_idmap_option_takes_a_joined_userns(self, tmp_path):
        linux = {"namespaces": [{"type": "mount"},
                                {"type": "user", "path": "/proc/1/ns/user"}]}
        plan = build(tmp_path, linux=linux, options=["bind", "idmap"])
        (tree,) = plan.trees
        assert tree.userns_path == "/proc/1/ns/user"
        assert tree.uid_map == ""

    def test_mount_maps_win_over_the_container_maps(self, tmp_path):
        maps = [{"containerID": 5, "hostID": 6, "size": 7}]
        plan = build(tmp_path, linux=USERNS, options=["bind", "idmap"],
                     uidMappings=maps, gidMappings=maps)
        assert plan.trees[0].uid_map == "5 6 7\n"

    def test_shared_rootfs_keeps_the_peer_group(self, tmp_path):
        linux = {"namespaces": [{"type": "mount"}],
                 "rootfsPropagation": "rshared"}
        plan = build(tmp_path, linux=linux, uidMappings=MAPPING,
                     gidMappings=MAPPING)
        assert plan.trees[0].propagation == 0

    def test_private_rootfs_makes_a_private_tree(self, tmp_path):
        linux = {"namespaces": [{"type": "mount"}],
                 "rootfsPropagation": "private"}
        plan = build(tmp_path, linux=linux, uidMappings=MAPPING,
                     gidMappings=MAPPING)
        assert plan.trees[0].propagation == mo.MS_PRIVATE

    def test_indexes_follow_the_mounts(self, tmp_path):
        (tmp_path / "rootfs").mkdir()
        (tmp_path / "vol").mkdir()
        mounts = [{"destination": f"/d{i}", "type": "bind",
                   "source": str(tmp_path / "vol"), "options": ["bind"],
                   "uidMappings": MAPPING, "gidMappings": MAPPING}
                  for i in range(3)]
        cfg = config()
        cfg["mounts"] = mounts
        opts = P.Options(cid="c1", bundle=str(tmp_path), fifo_fd=7)
        plan = P.build(parse_spec(cfg), opts)
        steps = [s for s in plan.steps
                 if s[0] == L.OP_MOUNT and s[6] & L.MNT_TREE]
        assert [s[10] for s in steps] == [0, 1, 2]
        assert [t.where for t in plan.trees] == [
            "mounts[0]", "mounts[1]", "mounts[2]"]

    def test_no_mount_namespace_makes_no_tree(self, tmp_path):
        linux = {"namespaces": [{"type": "pid"}]}
        plan = build(tmp_path, linux=linux, uidMappings=MAPPING,
                     gidMappings=MAPPING)
        assert plan.trees == []


def test_with_tree_fds_swaps_the_index_for_the_fd(tmp_path):
    plan = build(tmp_path, uidMappings=MAPPING, gidMappings=MAPPING)
    steps = idmap.with_tree_fds(plan.steps, [42], L)
    assert data_step(P.Plan(0, steps, ""))[10] == 42
    # Every other step is left as it was.
    others = [s for s in steps if s[0] != L.OP_MOUNT or s[2] != b"/data"]
    assert others == [s for s in plan.steps
                      if s[0] != L.OP_MOUNT or s[2] != b"/data"]


def test_launch_of_a_plan_without_trees_opens_none():
    from pyrunc.process import launch

    assert launch.open_trees(P.Plan(0, [], ""), L) == []
