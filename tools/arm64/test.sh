#!/usr/bin/env bash
# `make test-arm64`: the board stack's tests on aarch64, the CPU of a Raspberry Pi, on this x86-64
# machine: a Debian 12 arm64 root (Python 3.11, as Raspberry Pi OS Bookworm) run through
# qemu-user, one venv per board extra installed offline from aarch64 wheels, tests/device in each,
# and bundles converted on x86-64 checked frame by frame on aarch64 (tests/device/test_cross_arch.py).
#
# Cached outside the clone, keyed by what goes in (EDGECNN_ARM64_CACHE, default /var/cache/edgecnn-arm64):
# the root, the wheels and the venvs. A fresh machine builds them (about 25 minutes), later runs
# take minutes. When emulation cannot be set up it says why and exits 0, unless
# EDGECNN_REQUIRE_ARM64=1 (CI), where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROJECT=$PWD
# shellcheck source=tools/arm64/root.sh
source tools/arm64/root.sh
EXTRAS=${EDGECNN_ARM64_EXTRAS:-"device-tflite device"}
SHARED=${EDGECNN_SHARED:-$PROJECT/../shared}
# Bookworm has glibc 2.36: every manylinux tag up to 2_36 runs there (pip matches tags exactly).
PLATFORMS=$(for v in 36 35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17; do
    printf -- '--platform manylinux_2_%s_aarch64 ' "$v"; done; printf -- '--platform manylinux2014_aarch64 --platform linux_aarch64')
# The 100-swap memory soak starts two interpreter processes per swap: about an hour under qemu.
# It measures glibc's heap, not the CPU, and runs in both x86-64 board venvs in `make test`.
DESELECT='-k "not rss_stays_flat_over_100_hot_swaps"'
T0=$SECONDS
stage_start=$SECONDS
stage() { echo "arm64: $1 took $((SECONDS - stage_start)) s"; stage_start=$SECONDS; }

if ! why=$(arm64_emulation); then
    if [ "${EDGECNN_REQUIRE_ARM64:-}" = 1 ]; then
        echo "arm64: cannot run aarch64 binaries here: $why (EDGECNN_REQUIRE_ARM64=1, so this fails)"; exit 1
    fi
    echo "arm64: skipped: cannot run aarch64 binaries here: $why"; exit 0
fi
# One run at a time: two would share the root's mounts and its copy of the project.
mkdir -p "$ARM64_CACHE"
exec 9>"$ARM64_CACHE/.lock"
flock -n 9 || { echo "arm64: another make test-arm64 holds $ARM64_CACHE/.lock; run again when it ends"; exit 1; }
root=$(arm64_root)
stage "the arm64 root ($root)"

# aarch64 wheels, downloaded on the host (the root has no index to reach), one folder per extra.
wheels_for() {
    local extra=$1 reqs key dir
    reqs=$(python3 tools/arm64/requirements.py "$extra")
    key=$(printf '%s\n%s\n' "$reqs" "$PLATFORMS" | sha256sum | cut -c1-12)
    dir="$ARM64_CACHE/wheels-$extra-$key"
    if [ ! -f "$dir/.edgecnn-complete" ]; then
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        echo "$reqs" > "$dir.tmp/requirements.txt"
        # shellcheck disable=SC2086
        if ! python3 -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
            --abi abi3 --abi none $PLATFORMS -d "$dir.tmp" -r "$dir.tmp/requirements.txt" > "$dir.log" 2>&1; then
            grep -v "is ignored: it is neither a file nor a directory" "$dir.log" >&2
            echo "arm64: pip download of the aarch64 wheels for $extra failed (log: $dir.log)" >&2; return 1
        fi
        touch "$dir.tmp/.edgecnn-complete"
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    echo "$dir"
}

mounted=()
cleanup() {
    for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() { mkdir -p "$2"; mount --bind "$1" "$2"; mounted+=("$2"); }
mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounted+=("$root/proc"); }
mountpoint -q "$root/dev" || bind /dev "$root/dev"
# No /sys: XNNPACK's cpuinfo reads the host's x86-64 topology there and LiteRT crashes under qemu;
# without it cpuinfo prints "Error in cpuinfo" lines and carries on (a real board has its own /sys).
bind "$ARM64_CACHE" "$root/mnt/cache"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# The project as this clone has it (tracked and untracked-not-ignored files), and the Coral models.
rm -rf "$root/opt/edgecnn" "$root/opt/shared" && mkdir -p "$root/opt/edgecnn" "$root/opt/shared/models"
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C "$root/opt/edgecnn" -xf -
[ -d "$SHARED/models/coral" ] && cp -a "$SHARED/models/coral" "$root/opt/shared/models/"
stage "copying the project into the root"

# The x86-64 half of the cross-architecture test: bundles and what x86-64 says of them.
rm -rf "$root/opt/xarch"
.venv/bin/python tools/arm64/make_bundles.py "$root/opt/xarch" --shared "$SHARED" \
    --venv litert=.venv/bin/python --venv tflite-runtime=.venv-board/bin/python 2>/dev/null | tail -n 1
stage "bundles converted and run on x86-64"

status=0
for extra in $EXTRAS; do
    wheels=$(wheels_for "$extra") || exit 1
    venv="/opt/venv-$extra-$(basename "$wheels" | sed 's/.*-//')"
    if [ ! -f "$root$venv/.edgecnn-complete" ]; then
        rm -rf "$root$venv"
        in_root python3 -m venv "$venv"
        in_root "$venv/bin/pip" install -q --no-index --find-links "/mnt/cache/$(basename "$wheels")" \
            -r "/mnt/cache/$(basename "$wheels")/requirements.txt"
        touch "$root$venv/.edgecnn-complete"
    fi
    in_root "$venv/bin/pip" install -q --no-index --no-deps --no-build-isolation -e /opt/edgecnn
    stage "the $extra venv on aarch64"
    board=(); backend=litert
    [ "$extra" = device-tflite ] && board=(EDGECNN_BOARD_VENV=1) && backend=tflite-runtime
    echo "arm64: tests/device in the $extra venv ($(in_root "$venv/bin/python" -c 'import platform; print(platform.machine(), platform.python_version())'))"
    in_root "${board[@]}" EDGECNN_SHARED=/opt/shared EDGECNN_REQUIRE_SHARED="${EDGECNN_REQUIRE_SHARED:-}" \
        EDGECNN_CROSS_ARCH=/opt/xarch EDGECNN_CROSS_ARCH_BACKEND=$backend \
        EDGECNN_REQUIRE_ARM64="${EDGECNN_REQUIRE_ARM64:-}" EDGECNN_SLOW_CPU=1 PYTHONDONTWRITEBYTECODE=1 \
        /bin/sh -c "cd /opt/edgecnn && $venv/bin/python -m pytest -q -p no:cacheprovider tests/device $DESELECT ${PYTEST_ARGS:-}" \
        || status=1
    stage "tests/device on aarch64 ($extra)"
    figures="$root/opt/xarch/arm64-$backend.json"
    [ -f "$figures" ] && echo "arm64: x86-64 vs aarch64 with $backend: $(cat "$figures")"
done
# The README's install lines for the Pi, as written, in the same root (tflite-runtime wheels).
tflite_wheels=$(wheels_for device-tflite) || exit 1
bash tools/arm64/readme_install.sh "$root" "/mnt/cache/$(basename "$tflite_wheels")" /opt/xarch/bundles/int8_uint8 \
    || { echo "arm64: the README's board install steps failed"; status=1; }
stage "the README's board install steps on aarch64"
echo "arm64: done in $((SECONDS - T0)) s"
exit $status
