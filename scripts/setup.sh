#!/bin/bash
# Prepare a Debian 12 machine (as root) to build, run and test pyrunc.
#
# Idempotent, and fast on a second run: each step checks first and does
# nothing when its result is already there.
#   1. Debian packages (apt-get update only when one is missing)
#   2. .venv on /usr/bin/python3 (never a pyenv shim)
#   3. pip install -e '.[test]' (builds the compiled core), redone only
#      when the build inputs changed
#   4. the default bundle, bundles/busybox
#   5. /usr/local/bin/pyrunc -> .venv/bin/pyrunc, for containerd and podman
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$REPO/.venv
PY=$VENV/bin/python
# Where containerd and podman look for the runtime; PYRUNC_LINK= skips it.
LINK=${PYRUNC_LINK-/usr/local/bin/pyrunc}

# Every Debian package the project needs, in one place.
PACKAGES=(
    build-essential
    pkg-config
    python3
    python3-venv
    python3-dev
    libseccomp-dev
    busybox-static
    runc
    crun
    file
)

# Build inputs of the compiled core; a change to any of them reinstalls.
BUILD_INPUTS=(pyproject.toml setup.py)

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1

say() { echo "setup: $*"; }

# pip, quietly. Some machines' pip configuration names package indexes
# on local paths that do not exist; pip warns about each of them on
# every call, which would bury setup's own messages.
pip_quiet() {
    "$PY" -m pip "$@" 2> >(grep -v 'is neither a file nor a directory' >&2)
}
die() { echo "setup: error: $*" >&2; exit 1; }

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
    apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends "${missing[@]}" >/dev/null
}

# A venv is usable when its interpreter is Debian's python3 and it runs.
venv_ok() {
    local real
    [[ -x $PY ]] || return 1
    real=$(readlink -f "$PY")
    [[ $real == /usr/bin/python3* ]] || return 1
    "$PY" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'
}

make_venv() {
    if venv_ok; then
        say "venv ok: $VENV"
        return
    fi
    say "creating $VENV on /usr/bin/python3"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
}

build_hash() {
    local files=()
    (
        cd "$REPO"
        for f in "${BUILD_INPUTS[@]}"; do
            [[ -e $f ]] && files+=("$f")
        done
        while IFS= read -r -d '' f; do
            # Cython writes foo.c next to foo.pyx: an output, not an input.
            if [[ $f == *.c && -e ${f%.c}.pyx ]]; then
                continue
            fi
            files+=("$f")
        done < <(find pyrunc/_native -type f \
            \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \
               -o -name '*.h' -o -name '*.c' -o -name '*.flags' \) \
            -print0 | sort -z)
        sha256sum "${files[@]}" | sha256sum | cut -c1-32
    )
}

# The editable install serves Python changes live; only the compiled core
# needs a rebuild, so reinstall only when its inputs changed.
install_project() {
    local stamp=$VENV/.pyrunc-build want
    want=$(build_hash)
    if [[ -f $stamp && $(cat "$stamp") == "$want" && -x $VENV/bin/pyrunc ]] \
        && "$PY" -c 'import pyrunc._native.launcher' 2>/dev/null; then
        say "pyrunc installed (compiled core up to date)"
        return
    fi
    # Build in this venv (--no-build-isolation) so the build does not
    # fetch setuptools and Cython again on every install.
    if ! "$PY" -c 'import setuptools, wheel, Cython' 2>/dev/null; then
        say "installing build requirements"
        pip_quiet install -q 'setuptools>=61' wheel 'cython>=3.0'
    fi
    say "pip install -e '.[test]' (builds the compiled core)"
    (cd "$REPO" && pip_quiet install -q --no-build-isolation -e '.[test]')
    "$PY" -c 'import pyrunc._native.launcher' \
        || die "the compiled core does not import"
    echo "$want" >"$stamp"
}

# pip's console script runs site, which with an editable install imports
# setuptools' path finder: about 11 ms on every command. Instead,
# .venv/bin/pyrunc is a small static program (pyrunc/_native/entry.c)
# that execs the real interpreter with -I -S on a launcher script, which
# puts the source tree and the venv's site-packages on sys.path itself
# (2 ms). For create, run and exec the program first starts the cgroup
# attach helper, so that the kernel's wait overlaps with Python's start.
# pyrunc.cli lives in cli/; a
# directory holding only a link to it is added to pyrunc's __path__ so
# that nothing else of the checkout becomes importable.
#
# Two more savings, about 1 ms each on `run` (see benchmarks/README.md):
# the cyclic garbage collector is off (a CLI call lives milliseconds and
# its garbage goes by reference counting; `events`, which loops, turns
# it back on), and pyrunc's modules come from one code image
# (pyrunc/codeimage.py) rather than a search and a file each.
write_launcher() {
    local launcher=$VENV/bin/pyrunc site shim=$VENV/lib/pyrunc-cli
    local image=$VENV/lib/pyrunc.image script=$VENV/lib/pyrunc-launcher.py
    local python cc flags
    python=$(readlink -f "$PY")
    site=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    mkdir -p "$shim"
    ln -sfn "$REPO/cli" "$shim/cli"
    "$PY" -X no_debug_ranges -m pyrunc.codeimage "$image" \
        "pyrunc=$REPO/pyrunc" "pyrunc.cli=$shim/cli" | sed 's/^/setup: /'
    cat >"$script.tmp" <<LAUNCHER
#!$python -IS
"""pyrunc: written by scripts/setup.sh; see write_launcher there."""
import gc
import sys

gc.disable()
# The checkout first; the venv's packages last, after the standard
# library, as site would put them. Its own order would make each first
# import of a standard module (struct, _json) list site-packages too.
sys.path.insert(0, "$REPO")
sys.path.append("$site")
from pyrunc import codeimage  # noqa: E402

codeimage.install("$image")
import os  # noqa: E402

import pyrunc  # noqa: E402

pyrunc.__path__.append("$shim")
# The cgroup-attach helper that the entry program forked (entry.c).
prewarm = os.environ.pop("PYRUNC_PREWARM", "")
if prewarm:
    from pyrunc.process.prewarm import adopt

    adopt(prewarm)
from pyrunc.cli.main import main  # noqa: E402

main()
LAUNCHER
    chmod 755 "$script.tmp"
    mv "$script.tmp" "$script"
    # The entry program execs "$python -IS $script"; see entry.c.
    cc=${CC:-cc}
    # Freestanding, as setup.py builds pyrunc-dmz and pyrunc-prewarm.
    mapfile -t flags < <(grep -v '^#' \
        "$REPO/pyrunc/_native/freestanding.flags")
    $cc "${flags[@]}" -Werror \
        -DPYRUNC_PYTHON="\"$python\"" -DPYRUNC_SCRIPT="\"$script\"" \
        -o "$launcher.tmp" "$REPO/pyrunc/_native/entry.c"
    mv "$launcher.tmp" "$launcher"
}

build_bundle() {
    PY=$PY bash "$REPO/bundles/build-bundle.sh" 2>&1 | sed 's/^/setup: /'
}

link_cli() {
    local target=$VENV/bin/pyrunc
    [[ -x $target ]] || die "$target missing"
    if [[ -z $LINK ]]; then
        return
    fi
    if [[ $(readlink "$LINK" 2>/dev/null) == "$target" ]]; then
        say "$LINK ok"
        return
    fi
    if ((EUID != 0)); then
        say "not root: skipping $LINK"
        return
    fi
    ln -sfn "$target" "$LINK"
    say "linked $LINK -> $target"
}

install_packages
make_venv
install_project
write_launcher
build_bundle
link_cli
say "done"
