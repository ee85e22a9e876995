#!/bin/bash
# Build the default OCI bundle: a static busybox rootfs plus config.json.
#
# usage: bundles/build-bundle.sh [DEST]    (default: bundles/busybox)
#
# Environment: BUSYBOX (default /bin/busybox), PY (python used to write
# config.json; default .venv/bin/python, else /usr/bin/python3).
#
# Idempotent: the rootfs is rebuilt only when this script or the busybox
# binary changed (a stamp records both); config.json is regenerated on
# every call and replaced only when it differs. Builds go to a temporary
# directory that is renamed into place, under a lock, so concurrent callers
# (parallel test sessions) never see a half-built bundle.
set -euo pipefail
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${1:-$REPO/bundles/busybox}
BUSYBOX=${BUSYBOX:-/bin/busybox}
if [[ -z ${PY:-} ]]; then
    if [[ -x $REPO/.venv/bin/python ]]; then
        PY=$REPO/.venv/bin/python
    else
        PY=/usr/bin/python3
    fi
fi

# The container's command: it prints from inside so a reader can see the
# hostname, the ids and how many mounts the container has.
CMD='echo hello from pyrunc; hostname; id; grep -c . /proc/self/mountinfo'

say() { echo "build-bundle: $*" >&2; }
die() { say "error: $*"; exit 1; }

ensure_busybox() {
    if [[ -x $BUSYBOX ]]; then
        return
    fi
    if [[ $BUSYBOX != /bin/busybox ]]; then
        die "$BUSYBOX not found"
    fi
    say "installing busybox-static"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q busybox-static >/dev/null; then
        apt-get update -q >/dev/null
        apt-get install -y -q busybox-static >/dev/null
    fi
    [[ -x $BUSYBOX ]] || die "$BUSYBOX still missing after apt-get"
}

# A dynamically linked busybox would need the host's libc inside the
# rootfs; Debian's "busybox" package is that kind, "busybox-static" is not.
# An ELF with a PT_INTERP program header asks for a dynamic loader.
ensure_static() {
    local verdict
    verdict=$("$PY" - "$BUSYBOX" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read(1 << 16)
if data[:4] != b"\x7fELF":
    print("not an ELF file")
    sys.exit()
wide = data[4] == 2
end = "<" if data[5] == 1 else ">"
if wide:
    phoff, = struct.unpack_from(end + "Q", data, 32)
    phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
else:
    phoff, = struct.unpack_from(end + "I", data, 28)
    phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
PT_INTERP = 3
for i in range(phnum):
    p_type, = struct.unpack_from(end + "I", data, phoff + i * phentsize)
    if p_type == PT_INTERP:
        print("dynamically linked (has PT_INTERP)")
        sys.exit()
print("static")
EOF
)
    if [[ $verdict != static ]]; then
        die "$BUSYBOX is $verdict; install busybox-static"
    fi
}

build_rootfs() {
    local rootfs=$1 applet
    mkdir -p "$rootfs"
    (
        cd "$rootfs"
        mkdir -p bin dev etc proc sys tmp root run var/tmp home/test
        chmod 1777 tmp var/tmp
        chmod 0700 root
        chown 1000:1000 home/test
    )
    install -m 0755 "$BUSYBOX" "$rootfs/bin/busybox"
    while read -r applet; do
        if [[ -n $applet && $applet != busybox ]]; then
            ln -s busybox "$rootfs/bin/$applet"
        fi
    done < <("$BUSYBOX" --list)
    cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
test:x:1000:1000:test:/home/test:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
test:x:1000:
nogroup:x:65534:
EOF
    echo pyrunc >"$rootfs/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$rootfs/etc/hosts"
}

# Writes config.json to $1. The spec comes from pyrunc's own default (the
# equivalent of `runc spec`) and, until that module exists, from
# `runc spec` itself.
write_config() {
    PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} "$PY" - "$1" "$CMD" <<'EOF'
import json, os, subprocess, sys, tempfile

out, cmd = sys.argv[1], sys.argv[2]
try:
    from pyrunc.spec.default import default_spec
except ImportError as err:
    print(f"build-bundle: no pyrunc default spec ({err}); using runc spec",
          file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["runc", "spec", "--bundle", tmp], check=True)
        with open(os.path.join(tmp, "config.json")) as f:
            spec = json.load(f)
else:
    spec = default_spec(rootless=False)
spec["process"]["terminal"] = False
spec["process"]["args"] = ["sh", "-c", cmd]
spec["hostname"] = "pyrunc"
with open(out, "w") as f:
    json.dump(spec, f, indent="\t")
    f.write("\n")
EOF
}

main() {
    local parent stamp want tmpcfg new old count
    parent=$(dirname "$DEST")
    mkdir -p "$parent"
    # Serialise builders on the parent directory itself: no lock file to
    # clean up or to git-ignore.
    exec 9<"$parent"
    flock 9

    ensure_busybox
    ensure_static
    want="v1 $(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)"
    want+=" $(sha256sum <"$BUSYBOX" | cut -c1-16)"
    stamp=$(cat "$DEST/.stamp" 2>/dev/null || true)

    if [[ $stamp == "$want" && -d $DEST/rootfs ]]; then
        tmpcfg=$DEST/.config.json.$$
        write_config "$tmpcfg"
        if cmp -s "$tmpcfg" "$DEST/config.json"; then
            rm -f "$tmpcfg"
            say "up to date: $DEST"
        else
            mv -f "$tmpcfg" "$DEST/config.json"
            say "config.json updated: $DEST"
        fi
        return
    fi

    say "building $DEST"
    new=$DEST.new.$$
    old=$DEST.old.$$
    rm -rf "$new"
    trap 'rm -rf "$new"' EXIT
    mkdir -p "$new"
    build_rootfs "$new/rootfs"
    write_config "$new/config.json"
    echo "$want" >"$new/.stamp"
    if [[ -e $DEST ]]; then
        mv "$DEST" "$old"
    fi
    mv "$new" "$DEST"
    trap - EXIT
    rm -rf "$old"
    count=$(find "$DEST/rootfs/bin" -mindepth 1 | wc -l)
    say "built $DEST ($count entries in /bin)"
}

main
