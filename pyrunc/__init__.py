"""pyrunc: a runc-compatible OCI container runtime with a compiled core."""

__version__ = "0.1.0"

# The runtime-spec version this runtime implements; `--version` prints it.
SPEC_VERSION = "1.2.0"
