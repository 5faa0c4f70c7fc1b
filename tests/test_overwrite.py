"""finetune --overwrite builds the new run beside the old one; a run that failed before training does
not block the next; refusals name real defaults. Real subprocesses of `edgecnn finetune`, killed."""

import json
import signal
import subprocess
import time

import pytest

from cli_helpers import EDGECNN, assert_user_error, edgecnn
from train_helpers import ROOT, finetune_flags

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

MICRO = dict(epochs=2, fine_tune_epochs=2, batch_size=16, lr=3e-3, fine_tune_lr=1e-3, patience=5, seed=0)
RUN_FILES = ("model.keras", "run.json", "metrics.json", "history.csv", "labels.txt")


@pytest.fixture(scope="module")
def micro_base(tmp_path_factory):
    """A three-block conv base at 32 px (the mechanics of --base at a fraction of a backbone's cost)."""
    from train_helpers import save_micro_base

    return save_micro_base(tmp_path_factory.mktemp("micro_base") / "base.keras", "micro_base")


@pytest.fixture
def finished(demo_data, tmp_path, micro_base):
    """A finished RUN_DIR and the bytes of its files."""
    from edgecnn.train.finetune import finetune

    out = tmp_path / "run"
    finetune(demo_data, out, quiet=True, base=str(micro_base), **MICRO)
    return out, {name: (out / name).read_bytes() for name in RUN_FILES}


def _same_files(out, before):
    return {name: (out / name).read_bytes() for name in RUN_FILES} == before


def test_a_killed_overwrite_leaves_the_old_run_whole_and_resumes(demo_data, finished, micro_base, tmp_path):
    out, before = finished
    options = dict(MICRO, base=str(micro_base), fine_tune_epochs=12, patience=12, seed=1)
    cmd = EDGECNN + ["finetune", str(demo_data), "--out", str(out), "--overwrite", "-q"] + finetune_flags(options)
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    checkpoint = out / ".progress" / "phase2" / "backup" / "chief" / "checkpoint"
    deadline = time.time() + 240
    while proc.poll() is None and not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-2000:]
    assert _same_files(out, before)  # the previous run is still there, file for file
    done = edgecnn("finetune", demo_data, "--out", out, "--overwrite", *finetune_flags(options), timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Phase 1 (head) already done in an earlier attempt: skipped." in done.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["arguments"]["seed"] == 1 and run["resumed"]["phase1_skipped"] is True
    assert not (out / ".progress").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["killed.log", "run"]  # no temporary folder left


def test_an_overwrite_that_fails_keeps_the_old_run(demo_data, finished, micro_base):
    out, before = finished
    options = dict(MICRO, base=str(micro_base), seed=2, unfreeze_from="no_such_layer")  # fails in phase 2
    failed = edgecnn("finetune", demo_data, "--out", out, "--overwrite", *finetune_flags(options))
    assert_user_error(failed, "--unfreeze-from 'no_such_layer'")
    assert _same_files(out, before)
    again = edgecnn("finetune", demo_data, "--out", out, *finetune_flags(dict(MICRO, base=str(micro_base))))
    assert again.returncode == 0 and "Already complete" in again.stdout, again.stderr[-2000:]


def test_a_run_that_failed_before_training_does_not_block_the_next(demo_data, tmp_path, micro_base):
    out = tmp_path / "run"
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a model")  # as a failed weights download leaves nothing usable either
    first = edgecnn("finetune", demo_data, "--out", out, *finetune_flags(dict(MICRO, base=str(broken))))
    assert first.returncode == 2, first.stderr[-2000:]
    second = edgecnn("finetune", demo_data, "--out", out, *finetune_flags(dict(MICRO, base=str(micro_base))))
    assert second.returncode == 0, second.stderr[-2000:]
    assert (out / "model.keras").is_file()


def test_refusals_show_the_default_not_none(tiny_run, demo_data):
    from train_helpers import TINY_RUN_OPTIONS

    changed = dict(TINY_RUN_OPTIONS, alpha=0.5, unfreeze_top=3)
    proc = edgecnn("finetune", demo_data, "--out", tiny_run, *finetune_flags(changed))
    error = assert_user_error(proc, "--unfreeze-top (was none, now 3)", "--alpha (was 0.25, now 0.5)")
    assert "None" not in error
    from edgecnn.train import options as opts

    default, wider = opts.resolve_args("/d", {}), opts.resolve_args("/d", {"alpha": 0.5, "input_size": 160})
    assert opts.diff_args(default, wider) == ["--alpha (was 1.0 (mobilenet_v2's default), now 0.5)",
                                              "--input-size (was 224 (mobilenet_v2's default), now 160)"]
