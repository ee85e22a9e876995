#!/bin/bash
# Install what the cgroup v2 VM tests need (as root, on Debian 12):
#   - Debian's kernel (linux-image-amd64), booted with cgroup_no_v1=all
#   - qemu-system-x86, run under TCG (no KVM needed)
#   - virtme-ng (vng), which boots that kernel on the host's own root
#     filesystem, shared read-only; Debian 12 does not package it, so it
#     goes into the project's venv from PyPI, at the version the VM run
#     was checked with (VNG_VERSION overrides it)
#   - busybox-static, from which vng builds the guest's initramfs (the
#     Debian kernel has 9p and virtio as modules); setup.sh installs it
#     too, for the bundle.
#
# Idempotent and quick when everything is there. scripts/setup.sh must
# have made .venv first.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$REPO/.venv/bin/python
VNG_VERSION=${VNG_VERSION:-virtme-ng==1.42}

PACKAGES=(linux-image-amd64 qemu-system-x86 busybox-static)

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

say() { echo "vm-setup: $*"; }
die() { echo "vm-setup: error: $*" >&2; exit 1; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null \
        | grep -q 'install ok installed'
}

[[ -x $PY ]] || die "$PY missing: run scripts/setup.sh first"

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing packages (${missing[*]}); run as root"
    say "installing ${missing[*]}"
    apt-get update -q >/dev/null
    # No recommends: firmware and a bootloader are of no use in a VM
    # that boots the kernel directly.
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
    say "debian packages ok"
fi

# pip answers at once, without the network, when the version is there.
"$PY" -m pip install -q "$VNG_VERSION"
[[ -x $REPO/.venv/bin/vng ]] || die "pip installed no vng"
say "virtme-ng ok ($("$REPO/.venv/bin/vng" --version 2>&1 | head -1))"

ls /boot/vmlinuz-* >/dev/null 2>&1 || die "no kernel in /boot"
say "done"
