"""Idmapped mounts are refused by name until they are implemented.

A mount with uidMappings/gidMappings (or the idmap options) that were
silently dropped would show the container its files with the host's
ids; the loader's host checks (validate_host, which create runs) say
which field they cannot honour instead.
"""

import pytest

from pyrunc.errors import NotSupported
from pyrunc.spec.load import check_idmapped_mounts, parse_spec

MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def config(**mount):
    base = {"destination": "/data", "type": "bind", "source": "/tmp",
            "options": ["rbind"]}
    base.update(mount)
    return {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/"},
            "mounts": [base]}


@pytest.mark.parametrize("key", ["uidMappings", "gidMappings"])
def test_mappings_refused(key):
    with pytest.raises(NotSupported, match=rf"^mounts\[0\]\.{key}: "):
        check_idmapped_mounts(parse_spec(config(**{key: MAPPING})))


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
def test_idmap_options_refused(option):
    with pytest.raises(NotSupported, match=r"^mounts\[0\]\.options: "):
        spec = parse_spec(config(options=["rbind", option]))
        check_idmapped_mounts(spec)


def test_plain_bind_accepted():
    check_idmapped_mounts(parse_spec(config()))
