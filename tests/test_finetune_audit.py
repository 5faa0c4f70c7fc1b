"""finetune runs the data audit first: leakage warns, and --strict refuses it before any training."""

import shutil

from click.testing import CliRunner

from edgecnn.cli import cli
import pytest

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


def test_strict_finetune_refuses_leaky_splits(tmp_path, demo_data):
    data = tmp_path / "data"
    for split in ("train", "val"):
        for cls in sorted(p.name for p in demo_data.iterdir() if p.is_dir()):
            files = sorted((demo_data / cls).iterdir())
            (data / split / cls).mkdir(parents=True)
            chosen = files[:12] if split == "train" else files[12:18]
            for f in chosen:
                shutil.copy(f, data / split / cls / f.name)
    first = sorted((data / "train").iterdir())[0]
    leaked = sorted(first.iterdir())[0]
    shutil.copy(leaked, data / "val" / first.name / ("leak_" + leaked.name))
    result = CliRunner().invoke(cli, ["finetune", str(data), "--out", str(tmp_path / "run"), "--weights", "none",
                                      "--strict", "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output == ("Error: the audit found 1 group(s) of identical or near-identical images are in more "
                             "than one split: val/test accuracy is inflated by images the model trained on. Fix the "
                             "data (see `edgecnn audit DATA_DIR --report`) or drop --strict.\n")
    assert not (tmp_path / "run" / "model.keras").exists()


def _shortcut_data(root, per_class=25):
    """Two classes told apart by brightness alone (a planted shortcut cue): 'dark' and 'light' noise images."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for cls, level in (("dark", 40), ("light", 215)):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(rng.normal(level, 20, (48, 48, 3)), 0, 255).astype(np.uint8)
            assert cv2.imwrite(str(root / cls / f"{cls}_{i:02d}.jpg"), img)
    return root


def _brightness_base(path):
    """A user's own feature extractor (``--base``): one fixed 3x3 convolution that averages the pixels,
    so its features see brightness at once, with no download and no training."""
    from edgecnn.tf import keras

    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(4, 3, strides=2, kernel_initializer=keras.initializers.Constant(1.0 / 27))
    keras.Model(inputs, conv(inputs)).save(path)
    return path


def test_too_good_to_be_true_warning_after_finetune(tmp_path):
    import json

    data = _shortcut_data(tmp_path / "data")
    base = _brightness_base(tmp_path / "base.keras")
    args = ["finetune", str(data), "--out", str(tmp_path / "run"), "--base", str(base), "--epochs", "60",
            "--lr", "0.05", "--fine-tune-epochs", "0", "--patience", "60", "--seed", "0"]
    result = CliRunner().invoke(cli, args + ["--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["metrics"]["val"]["accuracy"] >= 0.98  # brightness alone separates the classes
    [warning] = out["warnings"]
    assert warning.startswith(f"val accuracy {out['metrics']['val']['accuracy']:.1%} is too good to be true: the "
                              "audit found ")
    assert "shortcut cue(s)" in warning and "brightness" in warning
    # the human-readable run prints it too (on stderr, with the other progress messages)
    again = CliRunner().invoke(cli, args[:3] + [str(tmp_path / "run2")] + args[4:])
    assert again.exit_code == 0, again.output
    assert "Warning: val accuracy" in again.stderr and "too good to be true" in again.stderr
