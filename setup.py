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
        sources=[f"{NATIVE}/launcher.pyx", f"{NATIVE}/executor.c"],
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
# A freestanding program: no libc, no dynamic loader, a few hundred bytes.
DMZ_FLAGS = [
    "-Os", "-nostdlib", "-static", "-ffreestanding", "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables", "-fno-pie", "-no-pie", "-s",
    "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-Wl,-n",
]


class BuildWithDmz(build_ext):
    """Build the extensions, then the pyrunc-dmz trampoline next to them.

    The trampoline is a program, not a module, so setuptools has no
    step for it; it is installed as package data of pyrunc._native.
    """

    def run(self):
        super().run()
        cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        targets = [os.path.join(self.build_lib, NATIVE, DMZ_NAME)]
        if self.inplace:
            targets = [os.path.join(NATIVE, DMZ_NAME)]
        for target in targets:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            cmd = cc.split() + DMZ_FLAGS + ["-o", target, DMZ_SOURCE]
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
