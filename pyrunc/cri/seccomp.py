"""Seccomp profiles of CRI security contexts -> OCI linux.seccomp.

A pod or container names its profile in one of two fields. The
SecurityProfile message ``seccomp`` (RuntimeDefault, Unconfined or
Localhost with a path) wins when it is set; otherwise the deprecated
string ``seccomp_profile_path``, which critest 1.26 and older kubelets
still send, is read as containerd 1.6 reads it:

    ""                  no profile (the CRI's default is unconfined)
    "unconfined"        no profile
    "runtime/default"   the runtime's default profile
    "docker/default"    the same
    "localhost/<path>"  the JSON profile at <path> (absolute)
    anything else       an error: the request is refused

A Localhost profile may be in the OCI format or in Docker's (``name``,
``archMap``, ``includes`` and ``excludes``), which is converted.
"""

import json
import os
import platform

from pyrunc.cri.errors import InvalidArgument

# SecurityProfile.ProfileType values of the CRI.
RUNTIME_DEFAULT, UNCONFINED, LOCALHOST = 0, 1, 2

PATH_UNCONFINED = "unconfined"
PATH_DEFAULTS = ("runtime/default", "docker/default")
PATH_LOCALHOST = "localhost/"

# Syscalls the RuntimeDefault profile refuses with EPERM. This is a
# deny-list over an allow-by-default filter, smaller than containerd's
# allow-list: it blocks what can change the host kernel or escape.
DEFAULT_DENIED_SYSCALLS = [
    "acct", "add_key", "bpf", "delete_module", "finit_module",
    "init_module", "kexec_file_load", "kexec_load", "keyctl",
    "lookup_dcookie", "open_by_handle_at", "perf_event_open",
    "quotactl", "request_key", "swapoff", "swapon", "userfaultfd",
    "nfsservctl", "get_kernel_syms", "create_module", "query_module",
]

# platform.machine() -> (Docker's arch name, libseccomp's arch name).
ARCHES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}
# Keys of an OCI profile a Docker profile shares.
OCI_KEYS = ("defaultAction", "defaultErrnoRet", "architectures", "flags",
            "listenerPath", "listenerMetadata")
OCI_RULE_KEYS = ("action", "errnoRet", "args")


def profile_for(sec, privileged, caps=()):
    """Return linux.seccomp for a security context, or None (none).

    sec is a LinuxContainerSecurityContext or LinuxSandboxSecurityContext;
    caps the container's bounding capabilities, for the ``includes`` and
    ``excludes`` of a Docker profile. A privileged container gets no
    profile, whatever it asks for (as in containerd). Raises
    InvalidArgument for an unknown profile or one that does not load.
    """
    if privileged:
        return None
    if sec.HasField("seccomp"):
        return _from_security_profile(sec.seccomp, caps)
    return _from_path(sec.seccomp_profile_path, caps)


def _from_security_profile(profile, caps):
    kind = profile.profile_type
    if kind == UNCONFINED:
        return None
    if kind == LOCALHOST:
        return load(profile.localhost_ref, caps)
    if kind == RUNTIME_DEFAULT:
        return default_profile()
    raise InvalidArgument(f"unknown seccomp profile type {kind}")


def _from_path(path, caps):
    if not path or path == PATH_UNCONFINED:
        return None
    if path in PATH_DEFAULTS:
        return default_profile()
    if path.startswith(PATH_LOCALHOST):
        return load(path[len(PATH_LOCALHOST):], caps)
    raise InvalidArgument(
        f"unknown seccomp profile `{path}`: expected `unconfined`, "
        f"`runtime/default`, `docker/default` or `localhost/<path>`")


def default_profile():
    """Return the RuntimeDefault profile (see DEFAULT_DENIED_SYSCALLS)."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": list(DEFAULT_DENIED_SYSCALLS),
                      "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


def load(path, caps=()):
    """Read a Localhost profile (OCI or Docker JSON) as OCI linux.seccomp."""
    if not os.path.isabs(path):
        raise InvalidArgument(f"seccomp profile `{path}` is not absolute")
    try:
        with open(path) as f:
            profile = json.load(f)
    except (OSError, ValueError) as err:
        raise InvalidArgument(f"seccomp profile {path}: {err}") from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument(f"seccomp profile {path}: no defaultAction")
    if not _is_docker(profile):
        return profile
    try:
        return from_docker(profile, caps)
    except (TypeError, ValueError, AttributeError) as err:
        raise InvalidArgument(f"seccomp profile {path}: {err}") from None


def _is_docker(profile):
    if "archMap" in profile:
        return True
    for rule in profile.get("syscalls") or []:
        if isinstance(rule, dict) and (
                "name" in rule or "includes" in rule or "excludes" in rule):
            return True
    return False


def from_docker(profile, caps=(), machine=None, kernel=None):
    """Convert a Docker seccomp profile to an OCI one for this host.

    The rules whose ``includes`` this host or the capabilities miss,
    or whose ``excludes`` they meet, are left out, as Docker does.
    """
    docker_arch, scmp_arch = ARCHES.get(machine or platform.machine(),
                                        ("", ""))
    kernel = kernel or platform.release()
    out = {k: profile[k] for k in OCI_KEYS if k in profile}
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == scmp_arch:
            out["architectures"] = [scmp_arch] + list(
                entry.get("subArchitectures") or [])
    rules = []
    for rule in profile.get("syscalls") or []:
        if not _rule_applies(rule, docker_arch, caps, kernel):
            continue
        names = list(rule.get("names") or [])
        if rule.get("name"):
            names.append(rule["name"])
        if not names:
            continue
        oci = {"names": names}
        oci.update({k: rule[k] for k in OCI_RULE_KEYS if k in rule})
        rules.append(oci)
    out["syscalls"] = rules
    return out


def _rule_applies(rule, arch, caps, kernel):
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or []):
        return False
    if inc.get("minKernel") and \
            _kernel_tuple(kernel) < _kernel_tuple(inc["minKernel"]):
        return False
    if arch in (exc.get("arches") or []):
        return False
    if any(c in caps for c in exc.get("caps") or []):
        return False
    return True


def _kernel_tuple(text):
    """"6.1.0-18-amd64" -> (6, 1, 0)."""
    out = []
    for part in text.split("-", 1)[0].split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits or 0))
    return tuple(out)
