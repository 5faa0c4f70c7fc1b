"""Core helpers: atomic writes, metrics, registry, the flat classifier."""

import os
import subprocess
import sys

import numpy as np
import pytest

from edgecnn import atomic, metrics
from edgecnn.errors import ModelError
from edgecnn.models.registry import BACKBONES, get_backbone, resolve_weights


def test_atomic_write_leaves_no_temp_and_keeps_old_on_failure(tmp_path):
    target = tmp_path / "x.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text().strip() == '{\n  "a": 1\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "d"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "f").write_text("1")
    with pytest.raises(ValueError):
        with atomic.atomic_dir(target) as tmp:
            (tmp / "f").write_text("2")
            raise ValueError
    assert (target / "f").read_text() == "1"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "g").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["g"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_classification_report_known_case():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 2, 2]
    rep = metrics.classification_report(y_true, y_pred, ["a", "b", "c"])
    assert rep["accuracy"] == pytest.approx(6 / 8)
    assert rep["per_class"]["a"]["recall"] == pytest.approx(3 / 4)
    assert rep["per_class"]["a"]["precision"] == pytest.approx(3 / 4)
    assert rep["per_class"]["b"]["recall"] == pytest.approx(1 / 2)
    assert rep["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    assert rep["confusion_matrix"] == [[3, 1, 0], [1, 1, 0], [0, 0, 2]]


def test_softmax_temperature_and_ece():
    p = metrics.softmax([[2.0, 0.0]], temperature=2.0)
    assert p[0, 0] == pytest.approx(1 / (1 + np.exp(-1.0)))
    probs = np.array([[0.9, 0.1]] * 10)
    y = np.array([0] * 9 + [1])
    assert metrics.expected_calibration_error(probs, y) == pytest.approx(0.0)
    assert metrics.expected_calibration_error(probs, np.array([0] * 5 + [1] * 5)) == pytest.approx(0.4)


def test_registry_errors_and_local_weights(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="unknown backbone 'resnet9000'. Choose one of: efficientnet_b0"):
        get_backbone("resnet9000")
    entry = BACKBONES["mobilenet_v1"]
    assert resolve_weights(entry, "none", 0.5, 160) is None
    with pytest.raises(ModelError, match="weights file 'nope.h5' does not exist"):
        resolve_weights(entry, "nope.h5", 0.5, 160)
    local = tmp_path / "mobilenet_v1_0.5_160_imagenet_notop.h5"
    local.write_bytes(b"")
    monkeypatch.setenv("EDGECNN_WEIGHTS_DIR", str(tmp_path))
    assert resolve_weights(entry, "imagenet", 0.5, 160) == str(local)
    assert resolve_weights(entry, "imagenet", 0.25, 128) == "imagenet"  # not there: Keras downloads


def test_classifier_is_flat_and_starts_with_rescaling():
    from edgecnn.models.classifier import build_classifier, feature_extractor, head_model
    from edgecnn.tf import keras

    model, config = build_classifier(3, "mobilenet_v2", input_size=48, alpha=0.35, weights="none")
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert isinstance(model.layers[1], keras.layers.Rescaling)
    assert config["input_size"] == 48 and config["num_classes"] == 3
    x = np.random.RandomState(0).randint(0, 256, (2, 48, 48, 3)).astype("float32")
    full = model.predict(x, verbose=0)
    split = head_model(model).predict(feature_extractor(model).predict(x, verbose=0), verbose=0)
    np.testing.assert_allclose(full, split, atol=1e-6)


def test_pretrained_base_loads_and_custom_base(tmp_path, pretrained_dir):
    from edgecnn.models.classifier import build_classifier
    from edgecnn.tf import keras

    weights = pretrained_dir / "mobilenet_v1_0.25_128_imagenet_notop.h5"
    model, _ = build_classifier(2, "mobilenet_v1", input_size=128, alpha=0.25, weights=str(weights))
    ref = keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, include_top=False,
                                       weights=str(weights))
    np.testing.assert_array_equal(model.get_layer("conv1").get_weights()[0], ref.get_layer("conv1").get_weights()[0])
    # A user's own functional feature extractor, inlined the same way.
    ref.save(tmp_path / "base.keras")
    custom, cfg = build_classifier(2, base_path=str(tmp_path / "base.keras"))
    assert cfg["backbone"] == "custom" and cfg["input_size"] == 128
    assert not any(isinstance(layer, keras.Model) for layer in custom.layers)
    dynamic = keras.applications.MobileNet(input_shape=(None, None, 3), alpha=0.25, include_top=False, weights=None)
    dynamic.save(tmp_path / "dyn.keras")
    with pytest.raises(ModelError, match="has input shape .* edgecnn needs a fixed square input"):
        build_classifier(2, base_path=str(tmp_path / "dyn.keras"))


def test_import_edgecnn_is_light():
    code = "import sys, edgecnn, edgecnn.bundle.manifest, edgecnn.models.registry, edgecnn.cli; " \
           "print(sorted(m for m in ('tensorflow', 'tf_keras', 'cv2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.stdout.strip() == "[]"
