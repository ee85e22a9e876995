"""Builds the compiled core; everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

NATIVE = "pyrunc/_native"

extensions = [
    Extension(
        "pyrunc._native.launcher",
        sources=[f"{NATIVE}/launcher.pyx", f"{NATIVE}/executor.c"],
        include_dirs=[NATIVE],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False},
    ),
)
