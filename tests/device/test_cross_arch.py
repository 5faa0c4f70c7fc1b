"""Bundles converted on x86-64 behave the same on aarch64 (issue 17): the aarch64 half.

``make test-arm64`` (tools/arm64/test.sh) converts real bundles on x86-64 with
tools/arm64/make_bundles.py, records every frame's label and score from ``edgecnn run`` on one
video under each x86-64 interpreter, and runs this file inside the Debian arm64 root, where
EDGECNN_CROSS_ARCH names that folder and EDGECNN_CROSS_ARCH_BACKEND the interpreter of this venv.
Each bundle must pass its self-test here and give the same label on every frame; the largest score
difference per bundle goes to ``arm64-<backend>.json`` beside them (the closing note quotes it).
Elsewhere (no folder named) the file skips, saying where it runs.
"""

import json
import os
import platform
import subprocess
from pathlib import Path

import pytest
from board_helpers import edgecnn_cmd

CROSS = Path(os.environ["EDGECNN_CROSS_ARCH"]) if os.environ.get("EDGECNN_CROSS_ARCH") else None
BACKEND = os.environ.get("EDGECNN_CROSS_ARCH_BACKEND", "litert")
# Under emulation a MobileNet v2 frame takes seconds: the deadline is for a CPU 20x slower.
TIMEOUT_S = 1800


def recorded():
    if CROSS is None or not (CROSS / "x86.json").is_file():
        return {}
    return json.loads((CROSS / "x86.json").read_text())["bundles"]


def kinds():
    found = sorted(recorded())
    if found:
        return found
    reason = "runs under `make test-arm64`, which converts the bundles on x86-64 and names them in EDGECNN_CROSS_ARCH"
    if platform.machine() == "aarch64" and os.environ.get("EDGECNN_REQUIRE_ARM64") == "1":
        return [pytest.param("missing", marks=pytest.mark.xfail(strict=True, reason=f"EDGECNN_REQUIRE_ARM64=1: {reason}"))]
    return [pytest.param("none", marks=pytest.mark.skip(reason=reason))]


def frames_of(stdout: str) -> list:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [[e["label"], e["score"]] for e in sorted((e for e in events if e.get("event") == "frame"),
                                                      key=lambda e: e["frame"])]


def record_figure(kind: str, figures: dict):
    path = CROSS / f"arm64-{BACKEND}.json"
    table = json.loads(path.read_text()) if path.is_file() else {"machine": platform.machine(), "bundles": {}}
    table["bundles"][kind] = figures
    path.write_text(json.dumps(table, sort_keys=True))


@pytest.mark.parametrize("kind", kinds())
def test_an_x86_bundle_self_tests_and_labels_every_frame_alike_here(kind):
    assert kind in recorded(), "no x86-64 record of the bundles (run through `make test-arm64`)"
    bundle = CROSS / "bundles" / kind
    proc = subprocess.run(edgecnn_cmd("run", bundle, "--self-test", "--json", "--backend", BACKEND),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True, result

    x86 = recorded()[kind][BACKEND]
    proc = subprocess.run(edgecnn_cmd("run", bundle, "--source", CROSS / recorded()[kind]["video"], "--replay",
                                      "--backend", BACKEND), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    here = frames_of(proc.stdout)
    assert len(here) == len(x86) > 0
    differ = [i for i, (a, b) in enumerate(zip(here, x86)) if a[0] != b[0]]
    max_diff = max(abs(a[1] - b[1]) for a, b in zip(here, x86))
    record_figure(kind, {"frames": len(here), "labels_differ": len(differ), "max_score_diff": round(max_diff, 4)})
    assert not differ, f"frames {differ} labelled differently on {platform.machine()} than on x86-64"
