"""The image content store: blobs by digest, unpacked layers, overlay rootfs.

Layout under the image root::

    blobs/sha256/<hex>      manifests, configs and layer blobs
    layers/<hex>/           a layer unpacked once, named by its diff id
    images.json             {"images": {image id: record}}
    leases/<owner>.json     diff ids a container's rootfs is stacked on
    lock                    flock held by whoever changes the store

Images come in by importing an OCI image layout (a directory), an OCI
archive (a tar of one) or a ``docker save`` archive; ``import_image``
works for the server and for the ``pyrunc-cri import`` command alike, as
they coordinate through the lock. Registry pulls (pull.py) fetch an
OCI layout with skopeo and import it here.

The image id is the digest of its config, as in containerd and Docker.
"""

import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import tarfile

from pyrunc.cri import layers, records
from pyrunc.cri.errors import FailedPrecondition, InvalidArgument

log = logging.getLogger(__name__)

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = \
    "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"

DEFAULT_DOMAIN = "docker.io"
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm",
          "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}

MS_RDONLY = 1
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def normalize(ref):
    """Return ref in its full form, as Docker names images.

    ``busybox`` -> ``docker.io/library/busybox:latest``; a digest
    (``name@sha256:...``) is kept and gets no default tag.
    """
    ref = ref.strip()
    if not ref:
        raise InvalidArgument("empty image reference")
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    name, tag = ref, ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, _, rest = name.partition("/")
    if not rest or not ("." in first or ":" in first
                        or first == "localhost"):
        name = f"{DEFAULT_DOMAIN}/{name}"
    domain, _, path = name.partition("/")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        name = f"{domain}/library/{path}"
    if digest:
        return f"{name}@{digest}"
    return f"{name}:{tag or 'latest'}"


def repository(ref):
    """Return the name part of a normalized ref (no tag, no digest)."""
    if "@" in ref:
        return ref.split("@", 1)[0]
    return ref.rsplit(":", 1)[0]


class ImageStore:
    """The content store under one directory.

        >>> store = ImageStore("/var/lib/pyrunc-cri/images")
        >>> image = store.import_image("busybox.tar", name="busybox")
        >>> store.get("busybox")["id"]
        'sha256:...'
    """

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.blobs = os.path.join(self.root, "blobs", "sha256")
        self.layers = os.path.join(self.root, "layers")
        self.leases = os.path.join(self.root, "leases")
        self.index_path = os.path.join(self.root, "images.json")
        for d in (self.blobs, self.layers, self.leases):
            os.makedirs(d, mode=0o700, exist_ok=True)

    # --- locking and the index

    @contextlib.contextmanager
    def _locked(self):
        fd = os.open(os.path.join(self.root, "lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self):
        data = records.read_json(self.index_path) or {}
        return data.get("images", {})

    def _save(self, images):
        records.write_json(self.index_path, {"images": images})

    # --- queries

    def list(self):
        """Return every image record, sorted by id."""
        images = self._load()
        return [images[k] for k in sorted(images)]

    def get(self, ref):
        """Return the image record for an id, tag or digest ref, or None.

        Accepted: the id (``sha256:<hex>``, the bare hex, or a unique
        prefix of at least 12 digits), a tag (``busybox``,
        ``docker.io/library/busybox:latest``) or a repo digest.
        """
        images = self._load()
        return _find(images, ref)

    def config(self, image):
        """Return the parsed image config of an image record."""
        return self._read_blob_json(image["config"])

    def fs_usage(self):
        """Return (used bytes, used inodes) under the image root."""
        used = 0
        inodes = 0
        for top, dirs, files in os.walk(self.root):
            for name in dirs + files:
                try:
                    st = os.lstat(os.path.join(top, name))
                except OSError:
                    continue
                used += st.st_blocks * 512
                inodes += 1
        return used, inodes

    # --- import

    def import_image(self, source, name=None):
        """Import an OCI layout, OCI archive or docker-save archive.

        name, when given, tags the (first) image instead of the names
        the source carries. Returns the list of imported image records.
        """
        if os.path.isdir(source):
            reader = _DirReader(source)
        else:
            reader = _TarReader(source)
        with reader, self._locked():
            if reader.exists("index.json"):
                found = self._import_oci(reader)
            elif reader.exists("manifest.json"):
                found = self._import_docker(reader)
            else:
                raise InvalidArgument(
                    f"{source}: neither an OCI layout nor a docker archive")
            if not found:
                raise InvalidArgument(f"{source}: no image for this platform")
            images = self._load()
            out = []
            for i, (manifest_digest, refs) in enumerate(found):
                if name:
                    refs = [name] if i == 0 else []
                out.append(self._register(images, manifest_digest, refs))
            self._save(images)
        return out

    def _import_oci(self, reader):
        index = json.loads(reader.read("index.json"))
        found = []
        for desc in index.get("manifests", []):
            ref = desc.get("annotations", {}).get(REF_NAME, "")
            digest = self._pick_manifest(reader, desc)
            if digest:
                found.append((digest, [ref] if ref else []))
        return found

    def _pick_manifest(self, reader, desc):
        """Copy a manifest (chosen from an index) and its blobs in."""
        media = desc.get("mediaType", "")
        digest = desc["digest"]
        self._copy_blob(reader, digest)
        if media in (MEDIA_INDEX, MEDIA_DOCKER_LIST):
            sub = self._read_blob_json(digest)
            for entry in sub.get("manifests", []):
                if _platform_matches(entry.get("platform")):
                    return self._pick_manifest(reader, entry)
            return None
        manifest = self._read_blob_json(digest)
        self._copy_blob(reader, manifest["config"]["digest"])
        for layer in manifest.get("layers", []):
            self._copy_blob(reader, layer["digest"])
        return digest

    def _import_docker(self, reader):
        entries = json.loads(reader.read("manifest.json"))
        found = []
        for entry in entries:
            config = reader.read(entry["Config"])
            config_digest = self._put_blob(config)
            descs = []
            for path in entry["Layers"]:
                data = reader.read(path)
                descs.append({"mediaType": MEDIA_LAYER,
                              "digest": self._put_blob(data),
                              "size": len(data)})
            manifest = {
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG,
                           "digest": config_digest, "size": len(config)},
                "layers": descs,
            }
            raw = json.dumps(manifest, sort_keys=True).encode()
            found.append((self._put_blob(raw), entry.get("RepoTags") or []))
        return found

    def _register(self, images, manifest_digest, refs):
        manifest = self._read_blob_json(manifest_digest)
        config_digest = manifest["config"]["digest"]
        config = self._read_blob_json(config_digest)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        descs = manifest.get("layers", [])
        if len(diff_ids) != len(descs):
            raise InvalidArgument(
                f"image {config_digest}: {len(descs)} layers but "
                f"{len(diff_ids)} diff ids")
        for desc, diff_id in zip(descs, diff_ids):
            self._unpack(desc["digest"], diff_id)
        image_id = config_digest
        record = images.get(image_id) or {
            "id": image_id, "repo_tags": [], "repo_digests": []}
        tags = [normalize(r) for r in refs if r]
        # A tag names one image: move it off any other image.
        for other in images.values():
            if other["id"] != image_id:
                other["repo_tags"] = [
                    t for t in other["repo_tags"] if t not in tags]
        for tag in tags:
            if "@" in tag:
                # Pulled by digest: the name the caller knows it by.
                if tag not in record["repo_digests"]:
                    record["repo_digests"].append(tag)
                continue
            if tag not in record["repo_tags"]:
                record["repo_tags"].append(tag)
            digest_ref = f"{repository(tag)}@{manifest_digest}"
            if digest_ref not in record["repo_digests"]:
                record["repo_digests"].append(digest_ref)
        record.update({
            "manifest": manifest_digest,
            "config": config_digest,
            "layers": [{"digest": d["digest"], "diff_id": i,
                        "size": d.get("size", 0)}
                       for d, i in zip(descs, diff_ids)],
            "size": sum(d.get("size", 0) for d in descs)
            + manifest["config"].get("size", 0),
        })
        images[image_id] = record
        log.info("imported image %s %s", image_id, record["repo_tags"])
        return record

    # --- blobs and layers

    def blob_path(self, digest):
        """Return the path of a blob; raises InvalidArgument on odd ones."""
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not _is_hex(hexd):
            raise InvalidArgument(f"unsupported digest `{digest}`")
        return os.path.join(self.blobs, hexd)

    def _read_blob_json(self, digest):
        with open(self.blob_path(digest), "rb") as f:
            return json.loads(f.read())

    def _put_blob(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not os.path.exists(path):
            with open(f"{path}.tmp", "wb") as f:
                f.write(data)
            os.rename(f"{path}.tmp", path)
        return digest

    def _copy_blob(self, reader, digest):
        path = self.blob_path(digest)
        if os.path.exists(path):
            return
        hexd = digest.split(":", 1)[1]
        h = hashlib.sha256()
        tmp = f"{path}.tmp"
        with reader.open(f"blobs/sha256/{hexd}") as src, \
                open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                h.update(chunk)
                dst.write(chunk)
        if h.hexdigest() != hexd:
            os.unlink(tmp)
            raise InvalidArgument(f"blob {digest}: digest mismatch")
        os.rename(tmp, path)

    def layer_dir(self, diff_id):
        """Return the directory of an unpacked layer."""
        return os.path.join(self.layers, diff_id.split(":", 1)[1])

    def _unpack(self, digest, diff_id):
        dest = self.layer_dir(diff_id)
        if os.path.isdir(dest):
            return
        got = layers.unpack(self.blob_path(digest), dest)
        if got != diff_id:
            shutil.rmtree(dest, ignore_errors=True)
            raise InvalidArgument(
                f"layer {digest}: diff id {got}, config says {diff_id}")

    # --- removal

    def remove(self, ref):
        """Remove the image ref names, with all its tags; unknown is fine.

        Blobs and layers no other image shares are deleted, except the
        layers a container's rootfs still stacks on (see mount_rootfs).
        """
        with self._locked():
            images = self._load()
            image = _find(images, ref)
            if image is None:
                return None
            del images[image["id"]]
            self._save(images)
            self._collect(images)
        return image

    def _collect(self, images):
        keep_blobs = set()
        keep_layers = set()
        for image in images.values():
            keep_blobs.update((image["manifest"], image["config"]))
            for layer in image["layers"]:
                keep_blobs.add(layer["digest"])
                keep_layers.add(layer["diff_id"])
        for name in os.listdir(self.leases):
            lease = records.read_json(os.path.join(self.leases, name))
            keep_layers.update(lease or [])
        keep_hex = {d.split(":", 1)[1] for d in keep_blobs}
        for name in os.listdir(self.blobs):
            if name not in keep_hex:
                os.unlink(os.path.join(self.blobs, name))
        # Manifests of indexes (other platforms' images) are not
        # recorded; they went with the image that brought them in.
        layer_hex = {d.split(":", 1)[1] for d in keep_layers}
        for name in os.listdir(self.layers):
            if name not in layer_hex:
                shutil.rmtree(os.path.join(self.layers, name),
                              ignore_errors=True)

    # --- container root filesystems

    def mount_rootfs(self, owner, image, directory):
        """Mount an overlay of the image's layers at directory/rootfs.

        The writable layer lives in directory/upper (work dir
        directory/work). owner (the container id) leases the layers, so
        that removing the image keeps them while the container exists.
        Returns the rootfs path.
        """
        diff_ids = [layer["diff_id"] for layer in image["layers"]]
        with self._locked():
            records.write_json(self._lease_path(owner), diff_ids)
        rootfs = os.path.join(directory, "rootfs")
        upper = os.path.join(directory, "upper")
        work = os.path.join(directory, "work")
        for d in (rootfs, upper, work):
            os.makedirs(d, mode=0o755, exist_ok=True)
        lowers = [self.layer_dir(d) for d in reversed(diff_ids)]
        if not lowers:
            empty = os.path.join(directory, "empty")
            os.makedirs(empty, exist_ok=True)
            lowers = [empty]
        options = (f"lowerdir={':'.join(lowers)},upperdir={upper},"
                   f"workdir={work}")
        mount("overlay", rootfs, "overlay", 0, options)
        return rootfs

    def unmount_rootfs(self, owner, directory):
        """Unmount directory/rootfs if mounted and drop owner's lease."""
        rootfs = os.path.join(directory, "rootfs")
        if os.path.ismount(rootfs):
            umount(rootfs)
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lease_path(owner))

    def _lease_path(self, owner):
        return os.path.join(self.leases, f"{owner}.json")


def _find(images, ref):
    if not ref:
        return None
    hexd = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
    if _is_hex(hexd) and len(hexd) >= 12:
        matches = [i for i in images.values()
                   if i["id"].split(":", 1)[1].startswith(hexd)]
        if len(matches) == 1:
            return matches[0]
    try:
        full = normalize(ref)
    except InvalidArgument:
        return None
    for image in images.values():
        if full in image["repo_tags"] or full in image["repo_digests"]:
            return image
    return None


def _is_hex(text):
    return all(c in "0123456789abcdef" for c in text)


def _platform_matches(plat):
    if not plat:
        return True
    arch = ARCHES.get(platform.machine(), platform.machine())
    return plat.get("os") == "linux" and plat.get("architecture") == arch


class _DirReader:
    """Reads files of an OCI layout directory."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def exists(self, name):
        return os.path.isfile(os.path.join(self.path, name))

    def open(self, name):
        return open(os.path.join(self.path, name), "rb")

    def read(self, name):
        with self.open(name) as f:
            return f.read()


class _TarReader:
    """Reads files of an OCI or docker archive (a tar, maybe gzipped)."""

    def __init__(self, path):
        try:
            self.tf = tarfile.open(path, "r:*")
        except (OSError, tarfile.TarError) as err:
            raise InvalidArgument(f"open {path}: {err}") from None
        self.members = {}
        for m in self.tf.getmembers():
            self.members[m.name.lstrip("./")] = m

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tf.close()
        return False

    def exists(self, name):
        return name in self.members

    def open(self, name):
        member = self.members.get(name)
        if member is None:
            raise InvalidArgument(f"archive has no `{name}`")
        while member.issym() or member.islnk():
            target = member.linkname
            if member.issym():
                target = os.path.normpath(
                    os.path.join(os.path.dirname(name), target))
            member = self.members.get(target.lstrip("./"))
            if member is None:
                raise InvalidArgument(f"archive link `{name}` is dangling")
        return self.tf.extractfile(member)

    def read(self, name):
        with self.open(name) as f:
            return f.read()


def mount(source, target, fstype, flags, data):
    """mount(2) through libc; raises FailedPrecondition on failure."""
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode(),
                     flags, data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise FailedPrecondition(
            f"mount {fstype} on {target}: {os.strerror(err)}")


def umount(target):
    """Detach the mount at target (umount2 with MNT_DETACH)."""
    rc = _libc.umount2(target.encode(), MNT_DETACH)
    if rc != 0:
        err = ctypes.get_errno()
        raise FailedPrecondition(f"umount {target}: {os.strerror(err)}")
