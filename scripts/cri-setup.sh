#!/bin/bash
# Prepare a Debian 12 machine (as root) to run and test pyrunc-cri.
#
# Idempotent, and quick on a second run. Run scripts/setup.sh first (it
# makes .venv and installs pyrunc); this adds what the CRI server needs:
#   1. Debian packages: conmon (the per-container monitor), the CNI
#      plugins (bridge, host-local, loopback, portmap), static busybox
#      (the test image, and the pause fallback), iptables (portmap),
#      skopeo (PullImage from registries), docker-registry (the loopback
#      registry of the pull tests; its service is not left running)
#   2. grpcio and the CRI runtime.v1 stubs in .venv
#   3. pyrunc/cri/pyrunc-pause, the pods' pause process, when the
#      editable install predates it or pause.c changed
#   4. .venv/bin/pyrunc-cri, linked at /usr/local/bin/pyrunc-cri
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$REPO/.venv
PY=$VENV/bin/python
LINK=${PYRUNC_CRI_LINK-/usr/local/bin/pyrunc-cri}

PACKAGES=(conmon containernetworking-plugins busybox-static iptables
          skopeo docker-registry)
PIP_PACKAGES=('grpcio>=1.73' 'protobuf>=6.31'
              'container-runtime-interface-api>=2.0.1')

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

say() { echo "cri-setup: $*"; }
die() { echo "cri-setup: error: $*" >&2; exit 1; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null \
        | grep -q 'install ok installed'
}

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        say "debian packages ok"
        return
    fi
    ((EUID == 0)) || die "missing packages (${missing[*]}); run as root"
    say "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts a registry on :5000 when it installs docker-registry;
    # the tests run their own on a free port.
    if [[ " ${missing[*]} " == *" docker-registry "* ]] \
        && command -v systemctl >/dev/null \
        && [[ -d /run/systemd/system ]]; then
        systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
    fi
}

# setup.py builds pyrunc-pause with the package; an editable install made
# before it existed has none. The same compiler command as setup.py.
build_pause() {
    local src=$REPO/pyrunc/cri/pause.c out=$REPO/pyrunc/cri/pyrunc-pause
    if [[ -x $out && $out -nt $src ]]; then
        say "pyrunc-pause ok"
        return
    fi
    say "building $out"
    "${CC:-cc}" -Os -static -s -Wall -o "$out.tmp" "$src" \
        || die "cannot build pyrunc-pause (needs gcc and libc6-dev)"
    mv "$out.tmp" "$out"
}

install_python() {
    [[ -x $PY ]] || die "$PY missing: run scripts/setup.sh first"
    if "$PY" -c 'import grpc, cri_api.v1.api_pb2_grpc' 2>/dev/null; then
        say "grpcio and CRI stubs ok"
        return
    fi
    say "pip install ${PIP_PACKAGES[*]}"
    "$PY" -m pip install -q "${PIP_PACKAGES[@]}"
    "$PY" -c 'import grpc, cri_api.v1.api_pb2_grpc' \
        || die "the CRI stubs do not import"
}

# pip writes this console script on an install of the project; until
# then (or when the editable install predates pyrunc-cri) write one.
write_launcher() {
    local launcher=$VENV/bin/pyrunc-cri
    if [[ -x $launcher ]]; then
        say "$launcher ok"
    else
        cat >"$launcher.tmp" <<LAUNCHER
#!$PY
"""pyrunc-cri: written by scripts/cri-setup.sh."""
import sys

sys.path.insert(0, "$REPO")
from pyrunc.cri.server import main  # noqa: E402

main()
LAUNCHER
        chmod 755 "$launcher.tmp"
        mv "$launcher.tmp" "$launcher"
        say "wrote $launcher"
    fi
    if [[ -n $LINK && $EUID -eq 0 ]]; then
        ln -sfn "$launcher" "$LINK"
    fi
}

install_packages
install_python
build_pause
write_launcher
say "done"
