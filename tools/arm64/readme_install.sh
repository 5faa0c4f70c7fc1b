#!/usr/bin/env bash
# Run the README's Raspberry Pi install lines (between <!-- board-install --> markers) as written,
# inside the arm64 root, as far as they can run there:
# - the apt line needs Raspberry Pi's repository (python3-picamera2): skipped, python3-venv is there;
# - pip has no index in the root: it installs from the cached aarch64 wheels (PIP_NO_INDEX, PIP_FIND_LINKS);
# - there is no camera: the picamera2 line must fail with edgecnn's clear error, not a traceback;
# - a chroot runs no systemd: systemctl is skipped, the unit file written by the sed line is checked.
# Usage (from tools/arm64/test.sh): readme_install.sh ROOT WHEELS_IN_ROOT BUNDLE_IN_ROOT
set -euo pipefail
root=$1 wheels=$2 bundle=$3
steps=$(awk '/<!-- board-install -->/ {on=1; next} /<!-- \/board-install -->/ {on=0} on' README.md \
        | sed '/^```/d')
[ -n "$steps" ] || { echo "arm64: README.md has no board-install block"; exit 1; }

script="$root/opt/readme-steps.sh"
{
    echo 'set -euo pipefail'
    echo 'sudo() { "$@"; }   # the root is already root'
    echo "export PIP_NO_INDEX=1 PIP_FIND_LINKS=$wheels"
    echo 'rm -rf ~/edgecnn ~/edgecnn-src ~/bundle ~/edgecnn-venv && cp -a /opt/edgecnn ~/edgecnn-src && cp -a '"$bundle"' ~/bundle'
    echo 'mkdir -p /etc/systemd/system'
    # Join continued lines, then rewrite the ones that cannot run here.
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' <<<"$steps" | while IFS= read -r line; do
        case "$line" in
            *"apt install"*) echo "echo 'skipped (needs the Raspberry Pi repository): ${line%%#*}'" ;;
            *systemctl*) echo "echo 'skipped (no systemd in a chroot): ${line%%#*}'" ;;
            *"--source picamera2"*)
                echo "if out=\$(${line%%#*} 2>&1); then echo 'picamera2 ran without a camera?'; exit 1; fi"
                echo 'echo "$out" | tail -n 1 | grep -q "^Error: source .picamera2. needs the picamera2 package" || { echo "$out"; exit 1; }'
                echo 'echo "no camera: picamera2 refused with a clear Error, as expected"' ;;
            *) echo "$line" ;;
        esac
    done
    # The unit file the README wrote must start the venv's edgecnn on ROOT/current, a link to the bundle.
    echo 'exec_start=$(sed -n "s/^ExecStart=//p" /etc/systemd/system/edgecnn.service)'
    echo 'test -x "${exec_start%% *}" && grep -q "run $HOME/edgecnn/current " /etc/systemd/system/edgecnn.service'
    echo 'test -L ~/edgecnn/current && ~/edgecnn-venv/bin/edgecnn bundle verify ~/edgecnn/current'
    echo 'echo "README board install: every step that can run here ran"'
} > "$script"
chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 /bin/bash /opt/readme-steps.sh
