#!/bin/bash
# Set the machine up, then run the default busybox bundle with pyrunc.
#
# The container prints a greeting, its hostname, its ids and how many
# mounts it sees. If runc is installed the same bundle is run through it
# afterwards, for comparison.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUNDLE=bundles/busybox
CID=pyrunc-demo-$$

bash "$REPO/scripts/setup.sh"
cd "$REPO"

echo
echo "\$ pyrunc run -b $BUNDLE $CID"
status=0
.venv/bin/pyrunc run -b "$BUNDLE" "$CID" </dev/null || status=$?
echo "(exit status $status)"

if command -v runc >/dev/null; then
    # A private --root keeps the comparison away from any runc state.
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    echo
    echo "\$ runc --root $root run -b $BUNDLE $CID    # the same bundle"
    runc_status=0
    runc --root "$root" run -b "$BUNDLE" "$CID" </dev/null \
        || runc_status=$?
    echo "(exit status $runc_status)"
fi
exit "$status"
