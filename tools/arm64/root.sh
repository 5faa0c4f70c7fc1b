#!/usr/bin/env bash
# Build (once) and cache a Debian 12 "bookworm" arm64 root: the OS and Python 3.11 of Raspberry Pi OS
# Bookworm, run on this x86-64 machine through qemu-user. Sourced by tools/arm64/test.sh.
#
# The root is cached outside the clone, keyed by what goes into it, so a second run on the same
# machine reuses it; a fresh machine builds it from nothing (about 15 minutes).

ARM64_SUITE=bookworm
ARM64_PACKAGES=python3,python3-venv,python3-pip,ca-certificates
ARM64_RECIPE=1   # bump when the recipe below changes: a new key, a new root
ARM64_CACHE=${EDGECNN_ARM64_CACHE:-/var/cache/edgecnn-arm64}

arm64_key() { echo "$ARM64_SUITE $ARM64_PACKAGES $ARM64_RECIPE" | sha256sum | cut -c1-12; }

# Why emulation cannot run here, or nothing (exit 0) when it can. Sets it up when it can.
arm64_emulation() {
    [ "$(id -u)" = 0 ] || { echo "needs root (binfmt_misc registration, chroot, mounts)"; return 1; }
    if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
        command -v apt-get >/dev/null || { echo "qemu-user-static and debootstrap are missing and there is no apt-get"; return 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 qemu-user-static debootstrap >/dev/null 2>&1 \
            || (apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -q -o DPkg::Lock::Timeout=300 qemu-user-static debootstrap >/dev/null 2>&1) \
            || { echo "apt-get could not install qemu-user-static and debootstrap"; return 1; }
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
            || { echo "binfmt_misc cannot be mounted on /proc/sys/fs/binfmt_misc (a container without that permission)"; return 1; }
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ] || { echo "/usr/lib/binfmt.d/qemu-aarch64.conf is missing (qemu-user-static too old?)"; return 1; }
        cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register 2>/dev/null \
            || { echo "registering qemu-aarch64 in binfmt_misc was refused"; return 1; }
    fi
    grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || { echo "binfmt_misc's qemu-aarch64 entry is disabled"; return 1; }
    return 0
}

# The Debian mirror this machine's apt already uses (deb822 or one-line sources), for debootstrap.
arm64_mirror() {
    if [ -n "${EDGECNN_DEBIAN_MIRROR:-}" ]; then echo "$EDGECNN_DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(grep -h -A3 -E '^Types: *deb' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '/^URIs:/ {print $2}' | grep -v security | head -n1)
    [ -n "$uri" ] || uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -n1)
    echo "$uri"
}

# Path of the cached root, building it when missing. A half-built root is never used: it is built
# under a temporary name and renamed when debootstrap has finished.
arm64_root() {
    local root="$ARM64_CACHE/root-$(arm64_key)"
    if [ -f "$root/.edgecnn-complete" ]; then echo "$root"; return 0; fi
    local mirror tmp
    mirror=$(arm64_mirror)
    [ -n "$mirror" ] || { echo "no Debian mirror found in /etc/apt (set EDGECNN_DEBIAN_MIRROR)" >&2; return 1; }
    mkdir -p "$ARM64_CACHE"
    tmp="$root.tmp.$$"
    rm -rf "$ARM64_CACHE"/root-*.tmp.*
    echo "arm64: building the $ARM64_SUITE arm64 root with debootstrap (about 15 minutes, once)" >&2
    debootstrap --arch=arm64 --variant=minbase --include="$ARM64_PACKAGES" "$ARM64_SUITE" "$tmp" "$mirror" \
        > "$ARM64_CACHE/debootstrap.log" 2>&1 \
        || { echo "debootstrap failed; see $ARM64_CACHE/debootstrap.log" >&2; tail -n 5 "$ARM64_CACHE/debootstrap.log" >&2; rm -rf "$tmp"; return 1; }
    touch "$tmp/.edgecnn-complete"
    mv "$tmp" "$root"
    echo "$root"
}
