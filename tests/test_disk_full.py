"""A full disk and a read-only one, for real: small tmpfs mounts (root only; skipped otherwise).

finetune refuses up front when RUN_DIR cannot hold the run, and a disk that fills during training
(h5py and TensorFlow checkpoint writes) gives one `Error:` line; partial files are removed and the
same command resumes once space is back. convert, bundle wrap, calibrate and calibration select:
one `Error:` naming the path and the space, no temporary left, the previous artifact untouched.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from cli_helpers import EDGECNN, assert_user_error, edgecnn
from train_helpers import ROOT, finetune_flags

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

MICRO = dict(epochs=2, fine_tune_epochs=30, batch_size=16, lr=3e-3, fine_tune_lr=1e-3, patience=30, seed=0)


@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount_tmpfs(size, ro=False) -> folder``: a tmpfs of ``size`` (mount's syntax: 64k, 2M)."""
    mounted = []

    def mount(size: str, ro: bool = False):
        folder = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            pytest.skip(f"a disk-full test needs a small tmpfs and `mount -t tmpfs` was refused here "
                        f"({(proc.stderr or proc.stdout).strip() or 'exit ' + str(proc.returncode)}; it needs root)")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder, leave: int = 0):
    """Fill ``folder``'s file system, leaving about ``leave`` bytes free; returns the filler file."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as fh:
        try:
            fh.write(b"\0" * max(0, free - leave))
        except OSError:
            pass
    return filler


def temporaries(folder):
    """Temporary files and folders anywhere under ``folder`` (ours and TensorFlow's)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith((".tmp", "_temp")) or ".tmp." in p.name or ".tempstate" in p.name)


@pytest.fixture(scope="module")
def micro_base(tmp_path_factory):
    from train_helpers import save_micro_base

    return save_micro_base(tmp_path_factory.mktemp("micro_base") / "base.keras", "micro_base")


# -- finetune -----------------------------------------------------------------------------------

def test_finetune_refuses_before_training_when_run_dir_cannot_hold_the_run(mount_tmpfs, demo_data, micro_base):
    fs = mount_tmpfs("1M")
    proc = edgecnn("finetune", demo_data, "--out", fs / "run", *finetune_flags(dict(MICRO, base=str(micro_base))))
    assert_user_error(proc, f"'{fs / 'run'}' has", "free but this training run needs about", "MB")
    assert "Phase 1" not in proc.stderr
    assert temporaries(fs) == []


def test_a_disk_that_fills_during_finetune_is_one_error_and_the_run_resumes(mount_tmpfs, demo_data, micro_base,
                                                                             tmp_path):
    fs = mount_tmpfs("24M")
    out = fs / "run"
    flags = finetune_flags(dict(MICRO, base=str(micro_base)))
    with open(tmp_path / "full.log", "w") as log:
        proc = subprocess.Popen(EDGECNN + ["finetune", str(demo_data), "--out", str(out), "-q"] + flags, cwd=ROOT,
                                stdout=log, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while proc.poll() is None and not (out / ".progress" / "phase1.h5").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before phase 1 was saved"
    # Room for one more weights file, not for TensorFlow's checkpoint: both writers meet the full disk.
    filler = fill(fs, leave=75_000)
    _, stderr = proc.communicate(timeout=300)
    assert "Traceback" not in stderr, stderr[-3000:]
    assert proc.returncode == 2, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and f"no space left on the device holding RUN_DIR '{out}'" in errors[0], stderr[-2000:]
    assert "the run needs about" in errors[0]
    assert temporaries(fs) == []  # no half-written checkpoint, weights file or model
    assert json.loads((out / ".progress" / "state.json").read_text())["phases"]["1"]["done"] is True

    filler.unlink()
    again = edgecnn("finetune", demo_data, "--out", out, *flags, timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Phase 1 (head) already done in an earlier attempt: skipped." in again.stderr
    assert (out / "model.keras").is_file() and temporaries(fs) == []


def test_half_written_progress_files_of_a_killed_run_go_on_the_rerun(demo_data, micro_base, tmp_path):
    out = tmp_path / "run"
    flags = finetune_flags(dict(MICRO, base=str(micro_base), fine_tune_epochs=12, patience=12))
    proc = subprocess.Popen(EDGECNN + ["finetune", str(demo_data), "--out", str(out), "-q"] + flags, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / ".progress" / "phase2" / "backup" / "chief" / "checkpoint"
    deadline = time.time() + 240
    while proc.poll() is None and not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL
    # What writers killed mid-save leave: ours (pid-named, and the PID-less names of earlier versions), TensorFlow's.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    phase2 = out / ".progress" / "phase2"
    half = [phase2 / f".best-0003.h5.{dead}.a1b2c3d4.tmp.h5", out / ".progress" / ".phase2.k2j3h4g5.h5",
            phase2 / "backup" / "chief" / "ckpt-9_temp"]
    half[0].write_bytes(b"\x89HDF half")
    half[1].write_bytes(b"\x89HDF half")
    half[2].mkdir()
    (half[2] / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(b"half")
    rerun = subprocess.Popen(EDGECNN + ["finetune", str(demo_data), "--out", str(out)] + flags, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    gone_while_training = None
    for line in rerun.stderr:  # wait for the resumed phase 2, then look
        if "Phase 2: resuming at epoch" in line:
            gone_while_training = not any(p.exists() for p in half)
            break
    rest = rerun.stderr.read()
    assert rerun.wait(400) == 0, rest[-3000:]
    assert gone_while_training is True
    assert temporaries(out.parent) == []


# -- convert, bundle wrap, calibrate, calibration select ----------------------------------------

@pytest.fixture(scope="module")
def small_bundle(mini_run, tmp_path_factory):
    from edgecnn.compress.convert import convert_run

    out = tmp_path_factory.mktemp("small_bundle") / "bundle"
    convert_run(mini_run, out, calibration_size=16, eval_size=0, golden=2)
    return out


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_convert_onto_a_full_disk_keeps_the_old_bundle(mount_tmpfs, mini_run, small_bundle):
    fs = mount_tmpfs("2M")
    bundle = fs / "bundle"
    shutil.copytree(small_bundle, bundle)
    before = _snapshot(bundle)
    fill(fs)
    proc = edgecnn("convert", mini_run, "--out", bundle, "--calibration-size", "16", "-q")
    assert_user_error(proc, f"the bundle '{bundle}' needs about", "free but")
    assert _snapshot(bundle) == before and temporaries(fs) == []


def test_bundle_wrap_onto_a_full_disk_keeps_the_old_bundle(mount_tmpfs, small_bundle):
    fs = mount_tmpfs("2M")
    bundle = fs / "bundle"
    shutil.copytree(small_bundle, bundle)
    before = _snapshot(bundle)
    fill(fs, leave=8192)  # the wrap starts writing, then the disk fills
    proc = edgecnn("bundle", "wrap", small_bundle / "model.tflite", "--labels", small_bundle / "labels.txt",
                   "--out", bundle)
    assert_user_error(proc, f"no space left on the device writing '{bundle}'", "free there")
    assert _snapshot(bundle) == before and temporaries(fs) == []


def test_calibrate_onto_a_full_disk_keeps_the_manifest(mount_tmpfs, mini_run, small_bundle):
    fs = mount_tmpfs("2M")
    bundle = fs / "bundle"
    shutil.copytree(small_bundle, bundle)
    before = _snapshot(bundle)
    fill(fs)
    proc = edgecnn("calibrate", bundle, "--against", mini_run)
    assert_user_error(proc, f"writing '{bundle / 'edgecnn.json'}'", "it needs")
    assert _snapshot(bundle) == before and temporaries(fs) == []


def test_calibration_select_onto_a_full_disk(mount_tmpfs, mini_run):
    fs = mount_tmpfs("64k")
    proc = edgecnn("calibration", "select", mini_run, "--per-class", "20", "--out", fs / "calib")
    assert_user_error(proc, f"no space left on the device writing '{fs / 'calib'}'")
    assert sorted(p.name for p in fs.iterdir()) == []


def test_a_read_only_folder_is_one_error(mount_tmpfs, mini_run, small_bundle):
    fs = mount_tmpfs("1M", ro=True)
    proc = edgecnn("convert", mini_run, "--out", fs / "bundle", "--calibration-size", "16", "-q")
    assert_user_error(proc, f"cannot write '{fs / 'bundle'}': the file system is read-only")
    wrap = edgecnn("bundle", "wrap", small_bundle / "model.tflite", "--labels", small_bundle / "labels.txt",
                   "--out", fs / "wrapped")
    assert_user_error(wrap, f"cannot write '{fs / 'wrapped'}': the file system is read-only")
