"""edgecnn finetune: run dir contents, accuracy above chance, seeds, resume, refusals, strategies."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from train_helpers import ROOT, TINY_RUN_OPTIONS, finetune_flags
from edgecnn.errors import RunError
from edgecnn.train import options as opts
from edgecnn.train.pipeline import class_weights, oversample_indices

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

# The mechanics tests (seeds, resume, strategies) use a tiny custom base (--base PATH) at 32 px:
# the same code path as a backbone, at a fraction of the cost.
MICRO = dict(epochs=2, fine_tune_epochs=2, batch_size=16, lr=3e-3, fine_tune_lr=1e-3, patience=5, seed=0)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from train_helpers import save_micro_base

    return save_micro_base(tmp_path_factory.mktemp("tiny_base") / "base.keras", "tiny_base")


def _history(run_dir, phase):
    with open(run_dir / "history.csv", newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["phase"] == str(phase)]


# -- no training --------------------------------------------------------------------------------

def test_option_errors_name_the_value_and_the_fix(tmp_path):
    with pytest.raises(RunError) as err:
        opts.resolve_args(tmp_path, {"unfreeze_top": 5, "unfreeze_from": "block_15_expand"})
    assert str(err.value) == "pass either --unfreeze-top or --unfreeze-from, not both."
    with pytest.raises(RunError) as err:
        opts.resolve_args(tmp_path, {"epochs": 0})
    assert str(err.value) == "--epochs must be an integer >= 1, got 0."
    with pytest.raises(RunError) as err:
        opts.resolve_args(tmp_path, {"select_by": "f1"})
    assert str(err.value) == "--select-by 'f1' is not one of: accuracy, balanced_accuracy, macro_f1."


def test_diff_args_lists_each_difference():
    old = opts.resolve_args("/data", {"epochs": 5})
    new = opts.resolve_args("/data", {"epochs": 3, "lr": 0.01})
    assert opts.diff_args(old, new) == ["--epochs (was 5, now 3)", "--lr (was 0.001, now 0.01)"]


def test_balancing_is_seeded_and_balanced():
    y = np.array([0] * 30 + [1] * 5 + [2] * 10)
    idx = oversample_indices(y, seed=3)
    assert np.bincount(y[idx]).tolist() == [30, 30, 30]
    assert np.array_equal(idx, oversample_indices(y, seed=3))
    assert not np.array_equal(idx, oversample_indices(y, seed=4))
    w = class_weights(y, 3)
    assert w[1] == pytest.approx(45 / (3 * 5)) and w[0] == pytest.approx(45 / 90)


def test_focal_loss_with_gamma_zero_is_crossentropy():
    from edgecnn.tf import keras
    from edgecnn.train.losses import SparseFocalLoss

    y = np.array([0, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]], dtype=np.float32)
    ce = keras.losses.SparseCategoricalCrossentropy()(y, p).numpy()
    assert SparseFocalLoss(gamma=0.0)(y, p).numpy() == pytest.approx(ce, rel=1e-5)
    assert SparseFocalLoss(gamma=2.0)(y, p).numpy() < ce
    assert keras.losses.deserialize(keras.losses.serialize(SparseFocalLoss(gamma=1.5))).gamma == 1.5


def test_unfreeze_default_is_the_registry_block_and_keeps_batchnorm_frozen():
    from edgecnn.models.classifier import build_classifier
    from edgecnn.tf import keras
    from edgecnn.train.phases import unfreeze

    model, config = build_classifier(3, "mobilenet_v2", input_size=32, alpha=0.35, weights="none")
    info = unfreeze(model, dict(config, weights="imagenet"))  # as if pretrained
    base = config["base_layers"]
    assert info["unfreeze_from"] == "block_15_expand" and info["batchnorm_trains"] is False
    start = base.index("block_15_expand")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable
        elif layer.name in base:
            assert layer.trainable == (base.index(layer.name) >= start), layer.name
    assert model.get_layer("head_dense").trainable
    assert unfreeze(model, dict(config, weights="imagenet"), unfreeze_top=10)["unfrozen_layers"] == 10
    with pytest.raises(Exception, match="--unfreeze-from 'nope' is not a layer"):
        unfreeze(model, dict(config, weights="imagenet"), unfreeze_from="nope")


def test_import_edgecnn_and_help_do_not_import_tensorflow():
    code = ("import sys, edgecnn\nfrom click.testing import CliRunner\nfrom edgecnn.cli import cli\n"
            "for args in (['--help'], ['finetune', '--help'], ['demo', '--help']):\n"
            "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
            "import edgecnn.train.options, edgecnn.train.state, edgecnn.demo.trip\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- the tiny run (shared fixture) --------------------------------------------------------------

def test_run_dir_contents_and_safe_mode_load(tiny_run, demo_data):
    from edgecnn.models.classifier import load_classifier
    from edgecnn.run import load_run, split_samples

    names = sorted(p.name for p in tiny_run.iterdir())
    assert names == [".cache", "confusion_matrix.png", "history.csv", "labels.txt", "metrics.json", "model.keras",
                     "run.json"]
    run = load_run(tiny_run)
    assert run["labels"] == ["circle", "square", "stripes", "triangle"]
    assert run["fine_tune"]["batchnorm_trains"] is True  # from scratch: BatchNorm trains too
    assert (tiny_run / "labels.txt").read_text().split() == run["labels"]
    assert run["preprocess"] == {"input_size": [64, 64], "resize": "area", "color_order": "RGB"}
    assert run["model"]["backbone"] == "mobilenet_v1" and run["model"]["input_size"] == 64
    assert run["arguments"]["data_dir"] == str(demo_data.resolve()) and run["seed"] == 0
    assert set(run["timings"]) >= {"dataset_s", "features_s", "phase1_s", "phase2_s", "total_s"}
    assert {"tensorflow", "tf_keras", "python"} <= set(run["versions"])
    assert len(split_samples(run, "test")) == sum(run["data"]["class_counts"]["test"].values()) > 0
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for split in ("val", "test"):
        assert {"accuracy", "balanced_accuracy", "per_class", "confusion_matrix"} <= set(metrics[split])
    assert (tiny_run / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert [int(r["epoch"]) for r in _history(tiny_run, 2)] == list(range(1, 11))
    model = load_classifier(tiny_run / "model.keras")
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 4)
    assert model.optimizer is None


def test_tiny_run_learns_well_above_chance(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["val"]["accuracy"] >= 0.45, metrics["val"]["accuracy"]  # chance: 0.25


def test_same_arguments_report_complete_and_changed_arguments_are_refused(tiny_run, demo_data):
    from edgecnn.train.finetune import finetune

    result = finetune(demo_data, tiny_run, quiet=True, **TINY_RUN_OPTIONS)
    assert result["status"] == "complete" and result["run_dir"] == str(tiny_run.resolve())
    with pytest.raises(RunError) as err:
        finetune(demo_data, tiny_run, quiet=True, **dict(TINY_RUN_OPTIONS, epochs=2, select_by="macro_f1"))
    assert str(err.value) == (
        f"RUN_DIR '{tiny_run}' holds a finished run made with different arguments: --epochs (was 1, now 2), "
        "--select-by (was 'accuracy', now 'macro_f1'). Use a new --out, or pass --overwrite to replace it.")


# -- more training ------------------------------------------------------------------------------

def test_same_seed_same_weights_and_the_feature_cache_is_reused(demo_data, tmp_path, tiny_base):
    from edgecnn.models.classifier import load_classifier
    from edgecnn.train.finetune import finetune

    options = dict(MICRO, base=str(tiny_base), augment="light", balance="oversample", loss="focal", select_by="balanced_accuracy")
    out = tmp_path / "run"
    first = finetune(demo_data, out, quiet=True, **options)
    weights = load_classifier(out / "model.keras").get_weights()
    assert first["timings"].get("features_cached") is False
    second = finetune(demo_data, out, quiet=True, overwrite=True, **options)
    assert second["timings"]["features_cached"] is True
    again = load_classifier(out / "model.keras").get_weights()
    assert len(weights) == len(again)
    assert all(np.array_equal(a, b) for a, b in zip(weights, again))


def test_killed_run_resumes_in_phase_2(demo_data, tmp_path, capsys, tiny_base):
    from edgecnn.train.finetune import finetune

    options = dict(MICRO, base=str(tiny_base), fine_tune_epochs=12, patience=12)
    out = tmp_path / "run"
    log = open(tmp_path / "first.log", "w")
    cmd = [sys.executable, "-c", "import sys; from edgecnn.cli import main; sys.exit(main())", "finetune",
           str(demo_data), "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd + finetune_flags(options), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    checkpoint = out / ".progress" / "phase2" / "backup" / "chief" / "checkpoint"
    deadline = time.time() + 150
    while proc.poll() is None and not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before a phase-2 checkpoint appeared"
    assert not (out / "model.keras").exists()

    result = finetune(demo_data, out, **options)
    logged = capsys.readouterr().err
    assert "Phase 1 (head) already done in an earlier attempt: skipped." in logged
    assert "Phase 2: resuming at epoch" in logged
    resumed = json.loads((out / "run.json").read_text())["resumed"]
    assert resumed == result["resumed"]
    assert resumed["phase1_skipped"] is True and resumed["phase2_resumed_at_epoch"] >= 2
    assert [int(r["epoch"]) for r in _history(out, 2)] == list(range(1, 13))
    assert not (out / ".progress").exists()


_MIRRORED = """
import json, sys
from edgecnn.tf import tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from edgecnn.train.finetune import finetune
finetune(sys.argv[1], sys.argv[2], quiet=True, strategy="mirrored", **json.loads(sys.argv[3]))
"""


def test_mirrored_strategy_over_two_logical_cpus(demo_data, tmp_path, tiny_base):
    out = tmp_path / "run"
    options = dict(MICRO, base=str(tiny_base), epochs=1, fine_tune_epochs=1)
    proc = subprocess.run([sys.executable, "-c", _MIRRORED, str(demo_data), str(out), json.dumps(options)],
                          capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["strategy"]["name"] == "MirroredStrategy" and run["strategy"]["replicas"] == 2
    assert run["arguments"]["strategy"] == "mirrored"


def test_multiworker_without_tf_config_is_refused(monkeypatch):
    from edgecnn.train.distribute import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(RunError, match="--strategy multiworker needs the TF_CONFIG environment variable"):
        make_strategy("multiworker")


def test_mixed_precision_trains_and_saves_a_float32_model(demo_data, tmp_path, tiny_base):
    from edgecnn.models.classifier import load_classifier
    from edgecnn.train.finetune import finetune

    out = tmp_path / "run"
    finetune(demo_data, out, quiet=True, mixed_precision=True, **dict(MICRO, base=str(tiny_base), epochs=1,
                                                                       fine_tune_epochs=1, augment="strong"))
    model = load_classifier(out / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
