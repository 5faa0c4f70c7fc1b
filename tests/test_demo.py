"""`edgecnn demo` end to end, as a new user runs it, and its step runner (issue 12)."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from cli_helpers import assert_user_error, edgecnn

from edgecnn.demo.trip import fail, format_result, run_demo
from edgecnn.errors import RunError

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

NOISE = ["absl::InitializeLog", "oneDNN", "cudart_stub", "cuInit", "use_unbounded_threadpool", "fully_quantize",
         "XNNPACK"]


def _demo(tmp_path):
    """``(demo_out, process)`` of `edgecnn demo` as a new user runs it. Where CI has just run `make demo`
    (tools/record_demo.sh: its output, exit status and folder under $EDGECNN_DEMO_RECORDED), that run is
    judged instead of a second one of three minutes."""
    recorded = os.environ.get("EDGECNN_DEMO_RECORDED")
    if recorded:
        rec = Path(recorded)
        return rec / "demo_out", subprocess.CompletedProcess(
            ["make", "demo"], int((rec / "rc").read_text()), (rec / "stdout").read_text(), (rec / "stderr").read_text())
    out = tmp_path / "demo_out"
    env = {k: v for k, v in os.environ.items() if k not in ("EDGECNN_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    return out, edgecnn("demo", "--out", out, timeout=1200, env=env)


@pytest.mark.slow
def test_the_demo_passes_end_to_end_and_its_numbers_mean_something(tmp_path):
    from edgecnn.bundle.manifest import verify_bundle
    from edgecnn.compress.convert import DEFAULT_CALIBRATION_SIZE

    out, proc = _demo(tmp_path)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert re.fullmatch(r"Demo passed in \d+ s\.", lines[-1]), lines[-3:]
    assert not [m for m in NOISE if m in proc.stderr + proc.stdout], proc.stderr[-3000:]

    # Each step announces itself before its summary, in order.
    names = ["data", "finetune", "convert", "evaluate", "board", "prune"]
    starts = [next(i for i, line in enumerate(lines) if line.startswith(f"[{k}/6] {name}: ")) for k, name in
              enumerate(names, 1)]
    ends = [next(i for i, line in enumerate(lines) if line.startswith(f"{name}: ")) for name in names]
    assert starts == sorted(starts) and all(s < e for s, e in zip(starts, ends))
    assert any(line.startswith("Epoch ") for line in lines[starts[1]:ends[1]])  # finetune shows its progress

    # A test split where one image is less than one pp, and the gate at the CLI's conversion defaults.
    report = json.loads((out / "evaluate" / "report.json").read_text())
    assert report["data"]["split"] == "test" and report["data"]["n"] >= 100
    assert report["gate"]["checked"] and report["gate"]["passed"]
    bundle = verify_bundle(out / "bundle")
    assert bundle["calibration"]["count"] == DEFAULT_CALIBRATION_SIZE

    # Golden samples the model gets right, or marked as wrong answers kept on purpose.
    assert bundle["golden"] and all(g["correct"] or "kept on purpose" in g["note"] for g in bundle["golden"])
    assert {g["label"] for g in bundle["golden"]} == set(bundle["labels"])

    # The temperature is in the bundle only when it made ECE better on images its fit never saw.
    calib = bundle["metrics"]["calibration"]
    if calib["kept_previous"]:
        assert bundle["decision"]["temperature"] == 1.0
    else:
        assert calib["cross_validated"]["ece_after"] < calib["cross_validated"]["ece_before"]
        assert calib["held_out"]["ece_after"] <= calib["held_out"]["ece_before"]
    assert [line for line in lines if line.startswith("confidence: ")]

    # The board video holds every class, and most frames are right.
    board = [line for line in lines[starts[4]:] if line.startswith("  ") and ".jpg (" in line]
    assert {re.search(r"\((\w+)\)", line).group(1) for line in board} == set(bundle["labels"])
    frames = re.search(r"(\d+) frames right, (\d+) wrong, (\d+) 'unknown'", lines[ends[4]])
    right, wrong, unknown = map(int, frames.groups())
    assert right > 2 * (wrong + unknown), lines[ends[4]]

    # Pruning kept its accuracy (or the demo would have failed, saying so).
    assert "held" in lines[ends[5]] and verify_bundle(out / "bundle_pruned")


def test_a_failed_check_and_a_raising_step_are_named_in_the_last_line(tmp_path):
    def gate(ctx):
        """Check something."""
        fail(ctx, "gate", "int8 drop 8.33 pp > --max-drop 5")
        return "gate: FAILED"

    def broken(ctx):
        """Load the run."""
        raise RunError("run 'x' recorded no test split.")

    def never(ctx):  # pragma: no cover - the demo stops at the raising step
        raise AssertionError("a step after a raising one ran")

    said = []
    result = run_demo(tmp_path, echo=said.append, steps=[("gate", gate), ("load", broken), ("later", never)])
    assert said == ["[1/3] gate: Check something.", "gate: FAILED", "[2/3] load: Load the run."]
    assert not result["passed"] and result["failed_step"] == "gate"
    assert result["failures"] == [{"step": "gate", "why": "int8 drop 8.33 pp > --max-drop 5"},
                                  {"step": "load", "why": "run 'x' recorded no test split."}]
    last = format_result(result).splitlines()[-1]
    assert last.startswith("Demo FAILED at step 'gate' after ")
    assert last.endswith("s: gate: int8 drop 8.33 pp > --max-drop 5; load: run 'x' recorded no test split.")


def test_an_unexpected_exception_keeps_its_traceback_and_names_the_step(tmp_path):
    def buggy(ctx):
        """Divide."""
        return str(1 / 0)

    said = []
    result = run_demo(tmp_path, echo=said.append, steps=[("divide", buggy)])
    assert result["failed_step"] == "divide"
    assert result["failures"][0]["why"] == "ZeroDivisionError: division by zero"
    assert any("Traceback (most recent call last)" in line for line in said)


def test_demo_out_that_is_a_file_is_a_user_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    proc = edgecnn("demo", "--out", target, timeout=120)
    assert_user_error(proc, f"--out '{target}' is a file; pass a folder")


def test_demo_help_states_its_duration():
    proc = edgecnn("demo", "--help", timeout=60)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "About two and a half minutes on two free cores (145 s measured)" in text and "the last line names that step and why" in text
