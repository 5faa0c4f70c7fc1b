"""Exact ties in quantized outputs: one top-1 rule on the board and in `evaluate`, and a tie is flagged.

uint8 and int8 softmax outputs take 256 values, so two classes with the same score happen on real
photos (issue 13: one photo scored [0, .5, 0, .5, 0] and the board picked the other class).
"""

import numpy as np
import pytest

from edgecnn.devices.decision import Policy, decide, dequantize, top1, top2, uncertainty

pytestmark = pytest.mark.device

LABELS = ["a", "b", "c", "d", "e"]


def default_policy(**overrides):
    decision = {"temperature": 1.0, "thresholds": [0.0] * 5, "margin": 0.0,
                "smoothing": {"method": "none"}, "fallback_action": "unknown"}
    decision.update(overrides)
    return Policy(decision, LABELS)


# Softmax outputs of a TFLite int8 model: uint8 with scale 1/256 and zero point 0, or int8 with
# scale 1/256 and zero point -128 (what the converter writes for a softmax).
TIES = [
    (np.array([0, 128, 0, 128, 0], dtype=np.uint8), 1 / 256, 0),
    (np.array([-128, 0, -128, 0, -128], dtype=np.int8), 1 / 256, -128),
    (np.array([10, 90, 20, 90, 46], dtype=np.uint8), 1 / 256, 0),
]


@pytest.mark.parametrize("q,scale,zero_point", TIES)
def test_a_tie_goes_to_the_lowest_index_and_is_flagged_low_margin(q, scale, zero_point):
    scores = dequantize(q, scale, zero_point)
    assert scores[1] == scores[3] == scores.max()
    assert int(top1(scores)) == 1 == int(np.argmax(scores))
    index, score, gap = top2(scores)
    assert (index, gap) == (1, 0.0) and score == scores[1]
    assert uncertainty(scores, [0.0] * 5, 0.0) == "low_margin"
    label, _, frame = default_policy()(scores)
    # margin 0 asks for the plain top-1: the tie keeps the class evaluate counts, flagged for review
    assert label == "b" and frame.index == 1 and frame.reason == "low_margin"


@pytest.mark.parametrize("q,scale,zero_point", TIES)
def test_board_top1_equals_the_workstation_top1_on_ties(q, scale, zero_point):
    from edgecnn.evaluation.compare import model_metrics  # numpy only: importable in the board venv too

    scores = dequantize(q, scale, zero_point)[None].repeat(3, axis=0)
    board = [LABELS.index(default_policy()(s)[0]) for s in scores]
    report = model_metrics(np.array([1, 1, 3]), scores, LABELS)
    assert board == [1, 1, 1]
    assert report["accuracy"] == pytest.approx(2 / 3)  # evaluate counted the same class


def test_a_tie_is_unknown_under_a_margin_and_a_fallback_breaks_it():
    scores = dequantize(np.array([0, 128, 0, 128, 0], dtype=np.uint8), 1 / 256, 0)
    label, _, frame = default_policy(margin=0.05)(scores)
    assert label == "unknown" and frame.reason == "low_margin"
    called = []

    def fallback():
        called.append(1)
        return np.array([0.0, 0.2, 0.0, 0.8, 0.0], dtype=np.float32)

    frame = decide(scores, [0.0] * 5, 0.0, [fallback])
    assert called and frame.model == "ensemble" and frame.index == 3 and frame.reason == "low_margin"


def test_temperature_keeps_ties_and_order():
    scores = dequantize(np.array([0, 128, 0, 128, 0], dtype=np.uint8), 1 / 256, 0)
    policy = default_policy(temperature=2.0)
    p = policy.probabilities(scores)
    assert p[1] == p[3] and int(top1(p)) == 1
    assert policy(scores)[0] == "b"


def test_no_tie_is_not_flagged():
    scores = dequantize(np.array([0, 129, 0, 127, 0], dtype=np.uint8), 1 / 256, 0)
    assert uncertainty(scores, [0.0] * 5, 0.0) is None
    assert default_policy()(scores)[2].reason is None
    assert top2(np.array([0.7], dtype=np.float32)) == (0, pytest.approx(0.7), pytest.approx(0.7))
    np.testing.assert_array_equal(top1(np.array([[0.2, 0.2, 0.6], [0.5, 0.5, 0.0]])), [2, 0])
