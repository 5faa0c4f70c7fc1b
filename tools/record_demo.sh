#!/usr/bin/env bash
# `make demo` as CI's demo stage, recorded for tests/test_demo.py: stdout, stderr and the exit status go
# to RECORD_DIR (default .ci-demo/) beside the demo's own folder, so `make test` afterwards (with
# EDGECNN_DEMO_RECORDED=RECORD_DIR) judges this run instead of running the demo a second time.
# Exit status: the demo's.
set -uo pipefail
cd "$(dirname "$0")/.."
record=${1:-.ci-demo}
rm -rf "$record" && mkdir -p "$record"
make demo DEMO_OUT="$record/demo_out" > >(tee "$record/stdout") 2> >(tee "$record/stderr" >&2)
rc=$?
echo "$rc" > "$record/rc"
exit "$rc"
