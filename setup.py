"""Builds the compiled core; everything else is in pyproject.toml."""

import os
import subprocess
import sysconfig

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = "pyrunc/_native"

extensions = [
    Extension(
        "pyrunc._native.launcher",
        sources=[f"{NATIVE}/launcher.pyx", f"{NATIVE}/executor.c",
                 f"{NATIVE}/idmap.c"],
        include_dirs=[NATIVE],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    ),
    # libseccomp builds the seccomp filters (in the parent only).
    Extension(
        "pyrunc._native.seccomp",
        sources=[f"{NATIVE}/seccomp.pyx"],
        libraries=["seccomp"],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    ),
]

DMZ_SOURCE = f"{NATIVE}/dmz.c"
DMZ_NAME = "pyrunc-dmz"


def freestanding_flags():
    """The flags in pyrunc/_native/freestanding.flags (no libc)."""
    with open(f"{NATIVE}/freestanding.flags") as f:
        lines = (line.strip() for line in f)
        return [line for line in lines if line and not line.startswith("#")]


# A few hundred bytes, copied into a memfd for every container process:
# -n packs code and data into one (writable and executable) segment.
# The other programs keep them apart.
DMZ_FLAGS = freestanding_flags() + ["-Wl,-n"]


# pyrunc-pause: the pause process of pyrunc-cri's pods. Static, as it
# runs in a rootfs with nothing else in it.
PAUSE_DIR = "pyrunc/cri"
PAUSE_SOURCE = f"{PAUSE_DIR}/pause.c"
PAUSE_NAME = "pyrunc-pause"
PAUSE_FLAGS = ["-Os", "-static", "-s", "-Wall"]

# pyrunc-prewarm: keeps the cgroup attach lock warm (see
# pyrunc/process/prewarm.py). Freestanding too: it starts in microseconds.
PREWARM_NAME = "pyrunc-prewarm"
PREWARM_FLAGS = freestanding_flags()

# (directory, program, compiler flags, source)
PROGRAMS = [
    (NATIVE, DMZ_NAME, DMZ_FLAGS, DMZ_SOURCE),
    (NATIVE, PREWARM_NAME, PREWARM_FLAGS, f"{NATIVE}/prewarm.c"),
    (PAUSE_DIR, PAUSE_NAME, PAUSE_FLAGS, PAUSE_SOURCE),
]


class BuildWithDmz(build_ext):
    """Build the extensions, then the programs (pyrunc-dmz, pyrunc-prewarm,
    pyrunc-pause).

    They are programs, not modules, so setuptools has no step for them;
    each is installed as package data of its package.
    """

    def run(self):
        super().run()
        cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        for directory, name, flags, source in PROGRAMS:
            target = os.path.join(self.build_lib, directory, name)
            if self.inplace:
                target = os.path.join(directory, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            cmd = cc.split() + flags + ["-o", target, source]
            self.announce(" ".join(cmd), level=2)
            subprocess.run(cmd, check=True)


setup(
    cmdclass={"build_ext": BuildWithDmz},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False},
    ),
)
