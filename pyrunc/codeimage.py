"""The compiled code of pyrunc's modules in one file, for the CLI.

An import through Python's path finder lists the package directory,
stats the source, opens its cached bytecode and checks it, all in
interpreted importlib code: for the 45 modules `run` imports, about 1 ms
before any of them runs. The CLI's launcher (written by
scripts/setup.sh) puts an ImageFinder first on sys.meta_path instead;
it finds a module in the image's index and reads its code with one
pread().

The code is compiled without docstrings (nothing reads them; asserts,
which the same level drops, are not used either), and setup.sh runs the
build with -X no_debug_ranges, which leaves out the column positions of
tracebacks: 18% less code to load and keep in memory.

A module whose source file changed after the image was written (its
mtime or size differs) is left to the path finder, so an edited
checkout never runs stale code; it is only slower until setup.sh writes
the image again.

Layout: HEADER, Python's bytecode magic number, the index's length as
8 bytes little-endian, the marshalled index, then each module's
marshalled code object. The index maps a module name to (source path,
is package, mtime_ns, size, offset, length), offsets counted from the
end of the index.

    python -m pyrunc.codeimage OUTPUT PACKAGE=DIRECTORY...
"""

import marshal
import os
import sys

from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER

HEADER = b"pyrunc code image\n"
_CODE = type((lambda: None).__code__)
_LENGTH_BYTES = 8


def build(output, packages):
    """Write the image of packages, (name, directory) pairs, to output.

    The directory's .py files become name.module; its subdirectories
    with an __init__.py become subpackages. The file is written under a
    temporary name and renamed, so a CLI starting meanwhile reads the
    old image or the new one, never half of one.
    """
    index = {}
    blobs = []
    offset = 0
    for package, directory in packages:
        for name, path, is_package in _modules(package, directory):
            with open(path, "rb") as f:
                source = f.read()
                st = os.fstat(f.fileno())
            code = compile(source, path, "exec", dont_inherit=True,
                           optimize=2)
            blob = marshal.dumps(code)
            index[name] = (path, is_package, st.st_mtime_ns, st.st_size,
                           offset, len(blob))
            blobs.append(blob)
            offset += len(blob)
    table = marshal.dumps(index)
    tmp = f"{output}.tmp"
    with open(tmp, "wb") as f:
        f.write(HEADER + MAGIC_NUMBER)
        f.write(len(table).to_bytes(_LENGTH_BYTES, "little"))
        f.write(table)
        for blob in blobs:
            f.write(blob)
    os.rename(tmp, output)
    return len(index)


def _modules(package, directory):
    """Yield (module name, source path, is package) under directory."""
    init = os.path.join(directory, "__init__.py")
    if os.path.isfile(init):
        yield package, init, True
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if entry.endswith(".py") and entry != "__init__.py":
            yield f"{package}.{entry[:-3]}", path, False
        elif (entry.isidentifier() and os.path.isfile(
                os.path.join(path, "__init__.py"))):
            yield from _modules(f"{package}.{entry}", path)


class ImageFinder:
    """A meta path finder and loader serving modules from an image."""

    def __init__(self, fd, index, base):
        self.fd = fd
        self.index = index
        # Where the code objects start; index offsets count from here.
        self.base = base

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        origin, is_package, mtime_ns, size, offset, length = entry
        try:
            st = os.stat(origin)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None
        # Read here rather than in exec_module: a damaged entry is then
        # left to the path finder instead of failing the import.
        try:
            data = os.pread(self.fd, length, self.base + offset)
            code = marshal.loads(data)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if len(data) != length or type(code) is not _CODE:
            return None
        spec = ModuleSpec(name, self, origin=origin, is_package=is_package)
        spec.has_location = True
        spec.loader_state = code
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        # A module's top-level code runs once: let it go, with the class
        # bodies among its constants, instead of keeping it on the spec.
        spec = module.__spec__
        code = spec.loader_state
        spec.loader_state = None
        exec(code, module.__dict__)


def install(path):
    """Put the image at path first on sys.meta_path; False if unusable.

    A missing, cut short or foreign image (another Python version)
    changes nothing: imports go through the path finder as usual, and so
    does a module whose entry does not unmarshal to code.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        finder = _read_index(fd)
    except (OSError, EOFError, ValueError, TypeError):
        finder = None
    if finder is None:
        os.close(fd)
        return False
    sys.meta_path.insert(0, finder)
    return True


def _read_index(fd):
    """The ImageFinder of the image open at fd, or None if it is not one
    (or is cut short: every entry must lie within the file)."""
    magic = HEADER + MAGIC_NUMBER
    head = os.pread(fd, len(magic) + _LENGTH_BYTES, 0)
    if not head.startswith(magic) or len(head) != len(magic) + _LENGTH_BYTES:
        return None
    length = int.from_bytes(head[len(magic):], "little")
    size = os.fstat(fd).st_size
    base = len(head) + length
    if base > size:
        return None
    index = marshal.loads(os.pread(fd, length, len(head)))
    if type(index) is not dict:
        return None
    for entry in index.values():
        if type(entry) is not tuple or len(entry) != 6:
            return None
        if base + entry[4] + entry[5] > size:
            return None
    return ImageFinder(fd, index, base)


def main(argv):
    if len(argv) < 2 or not all("=" in arg for arg in argv[1:]):
        sys.exit("usage: python -m pyrunc.codeimage OUTPUT "
                 "PACKAGE=DIRECTORY...")
    packages = [tuple(arg.split("=", 1)) for arg in argv[1:]]
    count = build(argv[0], packages)
    print(f"{argv[0]}: {count} modules")


if __name__ == "__main__":
    main(sys.argv[1:])
