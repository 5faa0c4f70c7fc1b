"""The board's decisions do not depend on subnormal floats (issue 17).

On aarch64, importing tflite_runtime 2.14 turns on the FPU's flush-to-zero mode for the whole
process (seen under qemu with the manylinux aarch64 wheel: a float32 1e-39 becomes 0.0 right
after the import; LiteRT 2.3 and OpenCV leave it off). Every subnormal input or result then reads
as zero. These tests flush the subnormals of real score vectors by hand and check that every
decision the board makes (probabilities, temperature, thresholds, margin, fallback, smoothing) is
the same: nothing the board decides can hinge on a value below 1.2e-38.
"""

import numpy as np
import pytest

from edgecnn.devices.decision import Policy, softmax, to_probabilities

TINY = np.finfo(np.float32).tiny


def flush(x: np.ndarray) -> np.ndarray:
    """What flush-to-zero hardware makes of ``x``: subnormals become zero."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(np.abs(x) < TINY, np.float32(0.0), x)


def score_vectors(seed: int, n: int = 300, classes: int = 5):
    """Softmax-like score vectors, many with subnormal entries (as a sharp float model gives)."""
    rng = np.random.default_rng(seed)
    vectors = []
    for _ in range(n):
        # a softmax of random logits (numpy's Dirichlet draws gave NaN under flush-to-zero)
        logits = rng.normal(0.0, 4.0, classes)
        p = np.exp(logits - logits.max()).astype(np.float32)
        tiny = rng.random(classes) < 0.4
        tiny[np.argmax(p)] = False  # a softmax's top entry is at least 1/classes (all-tiny flushed to 0/0)
        p[tiny] = (rng.random(int(tiny.sum())) * 1e-39).astype(np.float32)   # subnormal float32
        vectors.append(p / p.sum())
    assert np.isfinite(vectors).all()
    return vectors


def test_there_are_subnormals_to_flush_on_this_cpu():
    """Without them the tests below would compare equal inputs (true on a flush-to-zero CPU)."""
    vectors = np.stack(score_vectors(0))
    subnormal = (vectors > 0) & (vectors < TINY)
    if not subnormal.any():
        pytest.skip("this process flushes subnormals already (flush-to-zero is on): nothing to compare")
    assert subnormal.mean() > 0.1


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("kind", ["probabilities", "logits"])
def test_probabilities_are_the_same_with_subnormals_flushed(temperature, kind):
    for p in score_vectors(1):
        scores = np.log(np.maximum(p, 1e-30)) if kind == "logits" else p
        a = to_probabilities(scores, temperature, kind)
        b = to_probabilities(flush(scores), temperature, kind)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-30)


def test_softmax_of_very_negative_logits_underflows_to_zero_not_nan():
    logits = np.array([0.0, -800.0, -1e4, 5.0], dtype=np.float32)
    p = softmax(logits, 1.0)
    assert np.isfinite(p).all() and abs(float(p.sum()) - 1.0) < 1e-6 and p[2] == 0.0


@pytest.mark.parametrize("decision", [
    {"temperature": 1.0, "thresholds": [0.0] * 5, "margin": 0.0},
    {"temperature": 1.7, "thresholds": [0.5, 0.6, 0.4, 0.55, 0.5], "margin": 0.1},
    {"temperature": 0.8, "thresholds": [0.3] * 5, "margin": 0.05, "fallback_action": "unknown",
     "smoothing": {"method": "kofn", "window": 5, "k": 3}},
    {"temperature": 1.3, "thresholds": [0.4] * 5, "margin": 0.0,
     "smoothing": {"method": "ema", "alpha": 0.3, "hysteresis": 0.05}},
])
def test_every_decision_is_the_same_with_subnormals_flushed(decision):
    labels = ["a", "b", "c", "d", "e"]
    plain, flushed = Policy(decision, labels), Policy(decision, labels)
    vectors, fallback = score_vectors(2), score_vectors(3)
    for p, f in zip(vectors, fallback):
        label_a, score_a, frame_a = plain(p, [lambda f=f: f])
        label_b, score_b, frame_b = flushed(flush(p), [lambda f=f: flush(f)])
        assert (label_a, frame_a.index, frame_a.reason, frame_a.model) == (label_b, frame_b.index, frame_b.reason,
                                                                           frame_b.model)
        assert abs(score_a - score_b) < 1e-30
