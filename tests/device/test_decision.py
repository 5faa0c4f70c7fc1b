"""Decisions are pure numpy: tested with plain arrays (DESIGN rule 9)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgecnn.devices.decision import (FrameDecision, Policy, Smoother, decide, dequantize, softmax, to_probabilities,
                                      uncertainty)
from edgecnn.errors import BundleError

pytestmark = pytest.mark.device


def test_dequantize_uses_scale_and_zero_point():
    q = np.array([-128, 0, 127], dtype=np.int8)
    np.testing.assert_allclose(dequantize(q, 1 / 256, -128), [0.0, 0.5, 255 / 256])


# No subnormal inputs: on aarch64, importing tflite_runtime turns on flush-to-zero, so the board
# cannot hold them (and hypothesis refuses to draw them there); test_flush_to_zero.py shows that
# flushing them changes no decision.
@given(arrays(np.float32, st.integers(2, 20), elements=st.floats(-30, 30, width=32, allow_subnormal=False)),
       st.floats(0.2, 5.0, allow_subnormal=False))
@settings(max_examples=50, deadline=None)
def test_softmax_is_a_distribution_and_keeps_order(logits, temperature):
    p = softmax(logits, temperature)
    assert p.shape == logits.shape and np.all(p >= 0)
    assert abs(float(p.sum()) - 1.0) < 1e-5
    assert p[np.argmax(logits)] == p.max()


def test_temperature_on_probabilities_flattens_or_sharpens():
    p = np.array([0.7, 0.2, 0.1], dtype=np.float32)
    np.testing.assert_allclose(to_probabilities(p, 1.0), p, atol=1e-6)
    assert to_probabilities(p, 2.0)[0] < 0.7 < to_probabilities(p, 0.5)[0]
    np.testing.assert_allclose(to_probabilities(np.log(p), 1.0, kind="logits"), p, atol=1e-6)


def test_thresholds_and_margin():
    assert uncertainty(np.array([0.6, 0.3, 0.1]), [0.5, 0.5, 0.5], 0.1) is None
    assert uncertainty(np.array([0.6, 0.3, 0.1]), [0.7, 0.5, 0.5], 0.0) == "below_threshold"
    assert uncertainty(np.array([0.5, 0.45, 0.05]), [0.0, 0.0, 0.0], 0.1) == "low_margin"


def test_cascade_calls_fallbacks_only_when_uncertain_and_averages():
    calls = []

    def fallback():
        calls.append(1)
        return np.array([0.9, 0.05, 0.05], dtype=np.float32)

    sure = decide(np.array([0.9, 0.05, 0.05]), [0.6] * 3, 0.0, [fallback])
    assert (sure.index, sure.model, sure.reason, calls) == (0, "primary", None, [])
    rescued = decide(np.array([0.5, 0.4, 0.1]), [0.6] * 3, 0.0, [fallback])
    assert calls == [1] and rescued.model == "ensemble" and rescued.index == 0
    assert rescued.reason == "below_threshold" and rescued.score == pytest.approx(0.7)
    lost = decide(np.array([0.4, 0.35, 0.25]), [0.9] * 3, 0.0, [lambda: np.array([0.3, 0.4, 0.3])])
    assert lost.index is None and lost.model == "ensemble"
    alone = decide(np.array([0.4, 0.35, 0.25]), [0.9] * 3, 0.0)
    assert alone.index is None and alone.model == "primary"


def _frame(index, probs):
    return FrameDecision(index, float(max(probs)), np.asarray(probs, dtype=np.float32), "primary")


def test_kofn_smoothing_with_hysteresis():
    s = Smoother("kofn", window=5, k=3)
    a, b = [0.9, 0.1], [0.1, 0.9]
    out = [s.update(_frame(i, p))[0] for i, p in [(0, a), (0, a), (0, a), (1, b), (1, b), (0, a), (1, b), (1, b)]]
    # class 0 appears after 3 of 5; a short burst of class 1 does not flip it until it has 3 of the last 5
    assert out == [None, None, 0, 0, 0, 0, 1, 1]


def test_ema_smoothing_ignores_a_single_outlier():
    s = Smoother("ema", alpha=0.3, hysteresis=0.1, thresholds=[0.5, 0.5])
    seq = [[0.9, 0.1]] * 4 + [[0.05, 0.95]] + [[0.9, 0.1]] * 2
    labels = [s.update(_frame(int(np.argmax(p)), p))[0] for p in seq]
    assert labels == [0] * len(seq)
    for _ in range(6):
        last = s.update(_frame(1, [0.05, 0.95]))[0]
    assert last == 1


def test_policy_from_a_decision_section():
    policy = Policy({"temperature": 1.0, "thresholds": [0.6, 0.6, 0.6], "margin": 0.0,
                     "smoothing": {"method": "none"}, "fallback_action": "unknown"}, ["r", "g", "b"])
    assert policy(np.array([0.8, 0.1, 0.1]))[0] == "r"
    label, score, frame = policy(np.array([0.4, 0.3, 0.3]))
    assert label == "unknown" and frame.reason == "below_threshold"
    label, _, frame = policy(np.array([0.4, 0.3, 0.3]), [lambda: np.array([0.9, 0.05, 0.05])])
    assert label == "r" and frame.model == "ensemble"
    with pytest.raises(BundleError, match=r"decision.thresholds has 1 entries for 2 labels: give one threshold per "
                                          r"label, in label order, .*edgecnn calibrate"):
        Policy({"thresholds": [0.5]}, ["a", "b"])


def test_the_cli_on_a_bundle_with_a_threshold_per_label_missing_prints_one_error(tiny_bundle, colour_folder,
                                                                                  monkeypatch):
    # the manifest schema refuses this bundle on load (tests/device/test_field_manifest.py); with that check
    # out of the way the decision policy must refuse it just as clearly (it raised a bare ValueError: a traceback)
    import json

    from click.testing import CliRunner

    import edgecnn.bundle.manifest as manifest_module
    from edgecnn.cli import cli

    path = tiny_bundle / "edgecnn.json"
    manifest = json.loads(path.read_text())
    manifest["decision"]["thresholds"] = [0.5, 0.5]  # three labels
    path.write_text(json.dumps(manifest))
    monkeypatch.setattr(manifest_module, "check_manifest", lambda m, path=None: m)
    result = CliRunner().invoke(cli, ["run", str(tiny_bundle), "--source", str(colour_folder)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "decision.thresholds has 2 entries for 3 labels" in errors[0] and "one threshold per label" in errors[0]
    assert '"event": "frame"' not in result.stdout
