#!/bin/bash
# Install what the engine tests (tests/engines) need, on Debian 12, as root.
#
# Idempotent and quick on a second run: each step checks first.
#   1. Debian packages: containerd 1.6 (ctr), podman 4.3, conmon, the CNI
#      plugins, umoci and skopeo (to build and check the local image)
#   2. the Python CRI client (container-runtime-interface-api, grpcio)
#      into .venv
# No service is started or enabled here: the tests start their own
# containerd on a private socket, and podman needs no daemon.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$REPO/.venv/bin/python

PACKAGES=(
    containerd
    podman
    conmon
    containernetworking-plugins
    golang-github-containers-common
    umoci
    skopeo
    iproute2
)

# The CRI client: the generated gRPC stubs of k8s.io/cri-api and grpcio.
PIP_PACKAGES=(
    'container-runtime-interface-api>=2,<3'
    'grpcio>=1.50'
    'protobuf>=4'
)

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

say() { echo "engines-setup: $*"; }
die() { echo "engines-setup: error: $*" >&2; exit 1; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null \
        | grep -q 'install ok installed'
}

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! is_installed "$pkg"; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        say "debian packages ok"
        return
    fi
    if ((EUID != 0)); then
        die "missing packages (${missing[*]}); run as root"
    fi
    say "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    # A package's maintainer script must not start containerd as a
    # system service: policy-rc.d answering 101 forbids it for this run.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local status=0
    apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends "${missing[@]}" \
        >/dev/null || status=$?
    if ((made_policy)); then
        rm -f "$policy"
    fi
    ((status == 0)) || die "apt-get install failed ($status)"
}

install_python() {
    [[ -x $PY ]] || die "$PY missing: run scripts/setup.sh first"
    if "$PY" -c 'import grpc; from cri_api.v1 import api_pb2_grpc' \
        2>/dev/null; then
        say "python CRI client ok"
        return
    fi
    say "pip install ${PIP_PACKAGES[*]}"
    "$PY" -m pip install -q "${PIP_PACKAGES[@]}"
    "$PY" -c 'import grpc; from cri_api.v1 import api_pb2_grpc' \
        || die "the CRI client does not import"
}

# podman asks every runtime for RLIMIT_NOFILE and RLIMIT_NPROC of
# 1048576. Where root lacks CAP_SYS_RESOURCE (containers such as this
# project's test machines) no runtime can raise a hard limit, and every
# `podman run` fails with "set rlimit 7: operation not permitted". Ask
# for what root has instead (docs/podman.md), unless already configured.
podman_ulimits() {
    local dropin=/etc/containers/containers.conf.d/90-pyrunc-ulimits.conf
    local caps
    caps=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
    if (((0x$caps >> 24) & 1)); then
        return
    fi
    if [[ -e $dropin ]]; then
        say "podman ulimits ok: $dropin"
        return
    fi
    mkdir -p "$(dirname "$dropin")"
    printf '%s\n' "# Written by pyrunc's scripts/engines-setup.sh: root has" \
        "# no CAP_SYS_RESOURCE here, so podman may not raise hard limits." \
        "[containers]" \
        "default_ulimits = [\"nofile=$(ulimit -Hn):$(ulimit -Hn)\"," \
        "                   \"nproc=32768:32768\"]" > "$dropin"
    say "wrote $dropin (no CAP_SYS_RESOURCE: podman's ulimits lowered)"
}

install_packages
install_python
podman_ulimits
say "done"
