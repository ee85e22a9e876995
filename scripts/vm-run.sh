#!/bin/bash
# Run the cgroup tests on a pure cgroup v2 kernel, in a VM.
#
# usage: scripts/vm-run.sh [PYTEST ARGS...]   (default: the VM test set)
#
# Boots Debian's kernel with cgroup_no_v1=all under qemu's TCG through
# virtme-ng: the guest sees the host's root read-only, this repository
# through a writable overlay (nothing it writes reaches the host), and
# one writable directory for the results (pytest's log and exit status).
# Exits with pytest's status. Needs scripts/vm-setup.sh.
#
# Environment: VM_KERNEL (default: the newest /boot/vmlinuz-*), VM_CPUS
# (2), VM_MEMORY (2G), VM_TIMEOUT (seconds, 1500), VM_KEEP=1 keeps the
# results directory.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VNG=$REPO/.venv/bin/vng
KERNEL=${VM_KERNEL:-$(ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n 1)}
CPUS=${VM_CPUS:-2}
MEMORY=${VM_MEMORY:-2G}
TIMEOUT=${VM_TIMEOUT:-1500}

# The tests that must pass on a real cgroup v2 kernel. All but
# tests/vm/test_vm_cgroup2.py (v2 only) run on the v1 host too, in
# `make test`. On a 2-core machine a run takes 2 to 4 minutes, boot
# included (TCG; slower while the host is busy).
DEFAULT_TESTS=(
    tests/vm
    tests/integration/test_resources_e2e.py
    tests/integration/test_cgroups_bpf.py
)

say() { echo "vm-run: $*" >&2; }
die() { say "error: $*"; exit 2; }

[[ -x $VNG ]] || die "$VNG missing: run scripts/vm-setup.sh"
[[ -n $KERNEL && -r $KERNEL ]] || die "no kernel (VM_KERNEL=$KERNEL)"
command -v qemu-system-x86_64 >/dev/null \
    || die "qemu-system-x86_64 missing: run scripts/vm-setup.sh"

args=("$@")
if ((${#args[@]} == 0)); then
    # --timeout: a hung test fails alone instead of the whole VM run
    # reaching VM_TIMEOUT.
    args=(-q -ra --timeout=300 "${DEFAULT_TESTS[@]}")
fi

# The bundle is built here, on the host: in the guest the repository is
# an overlay, and a bundle built there would be thrown away each run.
PY="$REPO/.venv/bin/python" bash "$REPO/bundles/build-bundle.sh" >/dev/null

results=$(mktemp -d /tmp/pyrunc-vm.XXXXXX)
if [[ -z ${VM_KEEP:-} ]]; then
    trap 'rm -rf "$results"' EXIT
fi

# The guest command: pytest as root, in the repository, with no writes
# that need the host (no bytecode, no cache). PYRUNC_VM tells the tests
# they run in the VM. First it makes sure the guest is what the run is
# for, a pure cgroup v2 kernel: a guest that is not would only skip the
# v2 tests, and pass.
printf -v pytest_args '%q ' "${args[@]}"
guest="cd $(printf %q "$REPO") && export PYRUNC_VM=1 \
PYTHONDONTWRITEBYTECODE=1 CI=${CI:-} && \
{ test -e /sys/fs/cgroup/cgroup.controllers \
|| mount -t cgroup2 cgroup2 /sys/fs/cgroup; }; \
if grep -qw cgroup_no_v1=all /proc/cmdline \
&& test -e /sys/fs/cgroup/cgroup.controllers \
&& ! grep -q '^[^ ]* [^ ]* cgroup ' /proc/mounts; then \
.venv/bin/python -m pytest -p no:cacheprovider $pytest_args \
>$results/log 2>&1; echo \$? >$results/status; \
else echo not-v2 >$results/status; cat /proc/cmdline /proc/mounts \
>$results/log; fi"

say "booting $(basename "$KERNEL") (TCG, $CPUS cpus, $MEMORY) for: ${args[*]}"
start=$(date +%s)
# vng finds its helper scripts (virtme-run) on PATH.
PATH="$REPO/.venv/bin:$PATH" timeout --foreground "$TIMEOUT" "$VNG" \
    --disable-kvm --run "$KERNEL" \
    --append cgroup_no_v1=all \
    --cpus "$CPUS" --memory "$MEMORY" \
    --overlay-rwdir "$REPO" --rwdir "$results" \
    --exec "$guest" </dev/null >"$results/console" 2>&1
vng_status=$?
elapsed=$(($(date +%s) - start))

cat "$results/log" 2>/dev/null
if [[ ! -s $results/status ]]; then
    say "the guest did not finish (vng exit $vng_status, ${elapsed}s);" \
        "console:"
    tail -n 40 "$results/console" >&2
    exit 1
fi
status=$(cat "$results/status")
if [[ $status == not-v2 ]]; then
    say "the guest is not a pure cgroup v2 system (its cmdline and" \
        "mounts are above)"
    exit 1
fi
say "pytest exited $status in the VM; ${elapsed}s in all"
exit "$status"
