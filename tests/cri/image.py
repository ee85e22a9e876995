"""Build small OCI images locally (no registry): busybox from the host.

``build_busybox(dest)`` writes an OCI image layout at dest (or an OCI
archive when dest ends in .tar) holding one image: Debian's static
busybox with a link per applet, /etc/passwd and /etc/group, and a
config running ``sh``. ``extra_layer`` adds a second layer, to exercise
whiteouts and opaque directories.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time

BUSYBOX = "/bin/busybox"
REF = "docker.io/library/busybox:latest"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
www:x:33:33:www:/var/www:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
www:x:33:www
extra:x:1234:www
nogroup:x:65534:
"""


def _applets():
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True,
                         text=True, check=True).stdout
    return sorted(set(out.split()) - {"busybox"})


def _tar_bytes(entries):
    """entries: list of (name, kind, payload, mode); kind in dir/file/sym."""
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) \
            as tf:
        for name, kind, payload, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime = now
            info.mode = mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = payload
                tf.addfile(info)
            else:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def busybox_layer():
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    entries = [
        ("bin", "dir", None, 0o755),
        ("bin/busybox", "file", binary, 0o755),
        ("etc", "dir", None, 0o755),
        ("etc/passwd", "file", PASSWD.encode(), 0o644),
        ("etc/group", "file", GROUP.encode(), 0o644),
        ("tmp", "dir", None, 0o1777),
        ("root", "dir", None, 0o700),
        ("var", "dir", None, 0o755),
        ("var/www", "dir", None, 0o755),
        ("gone", "dir", None, 0o755),
        ("gone/file", "file", b"should be whited out\n", 0o644),
        ("opaque", "dir", None, 0o755),
        ("opaque/lower", "file", b"hidden by the opaque dir\n", 0o644),
    ]
    for applet in _applets():
        entries.append((f"bin/{applet}", "sym", "busybox", 0o777))
    return _tar_bytes(entries)


def extra_layer():
    return _tar_bytes([
        ("gone", "dir", None, 0o755),
        ("gone/.wh.file", "file", b"", 0o644),
        ("opaque", "dir", None, 0o755),
        ("opaque/.wh..wh..opq", "file", b"", 0o644),
        ("opaque/upper", "file", b"from the upper layer\n", 0o644),
        ("etc", "dir", None, 0o755),
        ("etc/motd", "file", b"hello from layer two\n", 0o644),
    ])


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_busybox(dest, ref=REF, cmd=("sh",), compress=True):
    """Write an OCI layout (or .tar archive) of the busybox image.

    Returns the image id (the config digest).
    """
    blobs = {}
    layer_descs = []
    diff_ids = []
    for raw in (busybox_layer(), extra_layer()):
        diff_ids.append(_digest(raw))
        data = gzip.compress(raw, mtime=0) if compress else raw
        media = "application/vnd.oci.image.layer.v1.tar"
        if compress:
            media += "+gzip"
        blobs[_digest(data)] = data
        layer_descs.append({"mediaType": media, "digest": _digest(data),
                            "size": len(data)})
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                    "/usr/bin:/sbin:/bin", "IMAGE_VAR=from-image"],
            "Cmd": list(cmd),
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    blobs[_digest(config)] = config
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _digest(config), "size": len(config)},
        "layers": layer_descs,
    }).encode()
    blobs[_digest(manifest)] = manifest
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _digest(manifest), "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": ref},
        }],
    }).encode()
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
             "index.json": index}
    for digest, data in blobs.items():
        files[f"blobs/sha256/{digest.split(':', 1)[1]}"] = data
    dest = str(dest)
    if dest.endswith(".tar"):
        with tarfile.open(dest, "w") as tf:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    else:
        for name, data in files.items():
            path = os.path.join(dest, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
    return _digest(config)
