#!/bin/bash
# Build a local OCI image of the busybox rootfs, without a registry.
#
# usage: scripts/make-image.sh OUT.tar [REF] [-- CMD [ARG...]]
#
#   OUT.tar  the image as an OCI archive: an OCI image layout (oci-layout,
#            index.json, blobs/) in a plain tar, which both
#            `ctr images import` and `podman load` (oci-archive) accept
#   REF      the name recorded in index.json (default
#            localhost/pyrunc-busybox:latest); containerd reads it from
#            the io.containerd.image.name annotation, podman from
#            org.opencontainers.image.ref.name
#   CMD      the image's default command (default: /bin/sh)
#
# Environment: ROOTFS, the tree to pack (default: the rootfs of
# bundles/busybox, built first with bundles/build-bundle.sh when missing).
#
# umoci (Debian package umoci) writes the layer, config and manifest; the
# index's annotations are then set here, since umoci's tag names may not
# hold a registry host or a colon. Nothing is downloaded.
set -euo pipefail
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { echo "make-image: $*" >&2; }
die() { say "error: $*"; exit 1; }

(($# >= 1)) || die "usage: make-image.sh OUT.tar [REF] [-- CMD...]"
OUT=$1
shift
REF=localhost/pyrunc-busybox:latest
if (($# >= 1)) && [[ $1 != -- ]]; then
    REF=$1
    shift
fi
CMD=(/bin/sh)
if (($# >= 1)); then
    [[ $1 == -- ]] || die "unexpected argument: $1"
    shift
    (($# >= 1)) || die "no command after --"
    CMD=("$@")
fi

if [[ -x $REPO/.venv/bin/python ]]; then
    PY=$REPO/.venv/bin/python
else
    PY=/usr/bin/python3
fi

command -v umoci >/dev/null \
    || die "umoci is missing: run scripts/engines-setup.sh"

if [[ -z ${ROOTFS:-} ]]; then
    ROOTFS=$REPO/bundles/busybox/rootfs
    if [[ ! -x $ROOTFS/bin/busybox ]]; then
        PY=$PY bash "$REPO/bundles/build-bundle.sh" >/dev/null
    fi
fi
[[ -d $ROOTFS ]] || die "$ROOTFS is not a directory"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout=$work/layout
tag=latest

umoci --log error init --layout "$layout"
umoci --log error new --image "$layout:$tag"
# One layer holding the whole tree, inserted at the image's root.
umoci --log error insert --image "$layout:$tag" "$ROOTFS" /

path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
config_args=(
    --config.env "PATH=$path"
    --config.workingdir /
    --config.label "org.opencontainers.image.title=pyrunc busybox"
)
for word in "${CMD[@]}"; do
    config_args+=(--config.cmd "$word")
done
umoci --log error config --image "$layout:$tag" "${config_args[@]}"
# Each umoci step above wrote a new manifest; drop the unreferenced ones.
umoci --log error gc --layout "$layout"

# The platform lets ctr's import pick the manifest for this machine.
arch=$(dpkg --print-architecture)
"$PY" - "$layout/index.json" "$REF" "$arch" <<'EOF'
import json, sys
path, ref, arch = sys.argv[1:4]
with open(path) as f:
    index = json.load(f)
if len(index["manifests"]) != 1:
    sys.exit(f"expected one manifest in {path}")
desc = index["manifests"][0]
desc["annotations"] = {
    "io.containerd.image.name": ref,
    "org.opencontainers.image.ref.name": ref,
}
desc["platform"] = {"architecture": arch, "os": "linux"}
with open(path, "w") as f:
    json.dump(index, f)
EOF

mkdir -p "$(dirname "$OUT")"
# Sorted names and numeric owners: the listing does not depend on the
# order of the directory or on the names in /etc/passwd.
tar --sort=name --numeric-owner -C "$layout" -cf "$OUT.tmp" .
mv "$OUT.tmp" "$OUT"
say "wrote $OUT ($REF)"
