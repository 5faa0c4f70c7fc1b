"""Temperature scaling, thresholds and risk-coverage on synthetic scores with known answers."""

import numpy as np
import pytest

from edgecnn.evaluation.confidence import (apply_thresholds, fit_temperature, risk_coverage, scaled_probs,
                               thresholds_for_coverage, thresholds_for_precision)
from edgecnn.metrics import expected_calibration_error, softmax


def overconfident(n, seed):
    """A 3-class model whose logits are 4x too sharp: its true temperature is 4."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 3)) * 1.5
    true_p = softmax(logits)
    y = np.array([rng.choice(3, p=p) for p in true_p])
    return softmax(logits * 4.0), y


def test_temperature_lowers_ece_on_held_out_data():
    fit_p, fit_y = overconfident(2000, seed=0)
    held_p, held_y = overconfident(2000, seed=1)
    t = fit_temperature(fit_p, fit_y)
    assert 3.0 < t < 5.0
    before = expected_calibration_error(held_p, held_y)
    after = expected_calibration_error(scaled_probs(held_p, t), held_y)
    assert after < before / 2


def test_temperature_stays_one_when_calibrated():
    p = np.array([[0.5, 0.5]] * 10)
    y = np.array([0, 1] * 5)
    assert fit_temperature(p, y) == 1.0


def test_thresholds_for_precision():
    # Predicted class 0 with confidences 0.9 (right), 0.8 (right), 0.7 (wrong), 0.6 (right).
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8]])
    y = np.array([0, 0, 1, 0, 1])
    th, unreached = thresholds_for_precision(p, y, 1.0)
    assert th == [0.8, 0.8] and unreached == []
    th, _ = thresholds_for_precision(p, y, 0.75)  # 3 of 4 right at 0.6
    assert th[0] == 0.6
    # Class 1 predictions all wrong: unreachable, so only certain predictions pass.
    th, unreached = thresholds_for_precision(p, np.array([0, 0, 1, 0, 0]), 0.9)
    assert unreached == [1] and th[1] == 1.0
    assert apply_thresholds(p, [0.8, 0.5]).tolist() == [True, True, False, False, True]


def test_thresholds_for_coverage():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.4, 0.6]])
    th = thresholds_for_coverage(p, 0.5)
    assert th == [0.8, 0.8]
    assert apply_thresholds(p, th).mean() == pytest.approx(0.5)


def test_risk_coverage():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.7, 0.3]])
    y = np.array([0, 0, 0, 1])  # the 0.7 one is wrong
    rc = risk_coverage(p, y)
    assert rc["coverage"] == [0.25, 0.5, 0.75, 1.0]
    assert rc["risk"] == pytest.approx([0, 0, 1 / 3, 0.25])
    assert rc["aurc"] == pytest.approx((0 + 0 + 1 / 3 + 0.25) / 4)
