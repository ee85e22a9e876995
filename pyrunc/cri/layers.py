"""Unpack image layers into directories that overlayfs can stack.

Each layer is unpacked once, into its own directory. OCI whiteouts are
turned into the form overlayfs reads from a lower layer: ``.wh.NAME``
becomes a 0/0 character device NAME, and ``.wh..wh..opq`` marks its
directory opaque with the ``trusted.overlay.opaque`` xattr.

tarfile here (Python 3.11.2) has no extraction filters, so every member
is checked before it is written: no absolute or ``..`` names, a parent
that resolves inside the layer directory, and an existing entry of the
same name removed first so that a symlink planted by an earlier member
is replaced, never followed, when a file of that name is written.
"""

import gzip
import hashlib
import logging
import os
import shutil
import stat
import tarfile

from pyrunc.cri.errors import InvalidArgument, Unimplemented

log = logging.getLogger(__name__)

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _HashingReader:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw):
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, size=-1):
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def drain(self):
        """Read to the end so that the hash covers the whole stream."""
        while self.read(1 << 20):
            pass


def _open_layer(path):
    f = open(path, "rb")
    magic = f.read(4)
    f.seek(0)
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    if magic == ZSTD_MAGIC:
        f.close()
        raise Unimplemented("zstd-compressed layers are not supported")
    return f, f


def unpack(blob, dest):
    """Unpack the layer blob (tar, optionally gzipped) into dest.

    dest must not exist; the layer is unpacked beside it and renamed
    into place, so a half-unpacked layer is never seen. Returns the
    layer's diff id ("sha256:<hex>" of the uncompressed tar).
    """
    tmp = f"{dest}.unpacking"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp, mode=0o755)
    stream, raw = _open_layer(blob)
    try:
        reader = _HashingReader(stream)
        with tarfile.open(fileobj=reader, mode="r|") as tf:
            for member in tf:
                _extract(tf, member, tmp)
        reader.drain()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        raw.close()
    os.rename(tmp, dest)
    return "sha256:" + reader.hash.hexdigest()


def _clean_name(name):
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"layer entry `{name}` leaves the layer")
    return "/".join(parts)


def _resolved_parent(root, rel):
    """Return the real directory that will hold rel, checked to be inside.

    Missing directories on the way are created (tar archives do not
    always list them), each checked again once it exists.
    """
    parent = os.path.dirname(rel)
    real_root = os.path.realpath(root)
    path = real_root
    for part in filter(None, parent.split("/")):
        path = os.path.realpath(os.path.join(path, part))
        if not _inside(path, real_root):
            raise InvalidArgument(
                f"layer entry `{rel}` resolves outside the layer")
        if not os.path.isdir(path):
            os.makedirs(path, mode=0o755)
    return path


def _inside(path, root):
    return path == root or path.startswith(root + "/")


def _remove(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _extract(tf, member, root):
    rel = _clean_name(member.name)
    if not rel:
        return
    parent = _resolved_parent(root, rel)
    base = os.path.basename(rel)
    target = os.path.join(parent, base)
    if base == OPAQUE:
        os.setxattr(parent, "trusted.overlay.opaque", b"y")
        return
    if base.startswith(WHITEOUT):
        hidden = os.path.join(parent, base[len(WHITEOUT):])
        _remove(hidden)
        os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        return
    if member.isdir() and os.path.isdir(target) \
            and not os.path.islink(target):
        # A directory listed again (or after its contents) keeps what
        # it holds; only its attributes change.
        _set_attrs(member, target)
        return
    _remove(target)
    if member.islnk():
        _link(member, root, target)
        return
    # extract() joins the member name to the path we give; hand it the
    # checked parent and the bare name, so nothing is resolved again.
    member.name = base
    tf.extract(member, parent, set_attrs=True, numeric_owner=True)


def _link(member, root, target):
    rel = _clean_name(member.linkname)
    source = os.path.join(_resolved_parent(root, rel), os.path.basename(rel))
    if not os.path.lexists(source):
        raise InvalidArgument(
            f"layer hard link `{member.name}` to missing `{rel}`")
    os.link(source, target, follow_symlinks=False)


def _set_attrs(member, path):
    os.lchown(path, member.uid, member.gid)
    os.chmod(path, member.mode)
    os.utime(path, (member.mtime, member.mtime))
