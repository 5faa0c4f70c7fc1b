"""The probe's linear head (edgecnn.train.linear_head, what probe-cuts scores each cut with): the
fold changes no output, and the softmax mapping predicts what the regression predicts."""

import numpy as np
import pytest

from edgecnn.train import linear_head


def _blobs(num_classes, n=300, dims=20, offset=40.0, spread=25.0, seed=0):
    """Separable classes in features with a large offset and a wide spread, as inside a base."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    centres = rng.normal(0, 1.5, (num_classes, dims))
    x = offset + spread * (centres[y] + rng.normal(0, 1, (n, dims)))
    x[:, 0] = 7.0  # a constant feature: its scale is floored, not zero
    return x.astype(np.float32), y


@pytest.mark.parametrize("num_classes", [2, 3])
def test_the_folded_kernel_gives_on_raw_features_what_it_gave_on_standardised_ones(num_classes):
    x, y = _blobs(num_classes)
    mean, scale = linear_head.feature_scale(x)
    assert np.all(np.isfinite(scale)) and scale[0] > 0
    z = linear_head.standardise(x, mean, scale)
    kernel, bias = linear_head.fit_linear(z, y, num_classes, seed=0)
    folded, folded_bias = linear_head.fold(kernel, bias, mean, scale)
    np.testing.assert_allclose(x @ folded + folded_bias, z @ kernel + bias, rtol=1e-4, atol=1e-3)
    # the floor keeps the folded kernel's range near the typical feature's (int8 quantizes it per tensor)
    typical = np.median(np.abs(folded[1:]))
    assert np.abs(folded).max() < 50 * typical


@pytest.mark.parametrize("num_classes", [2, 3])
def test_the_softmax_kernel_predicts_what_the_regression_predicts(num_classes):
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(num_classes, seed=1)
    mean, scale = linear_head.feature_scale(x)
    z = linear_head.standardise(x, mean, scale)
    kernel, bias = linear_head.fit_linear(z, y, num_classes, seed=0)
    clf = LogisticRegression(max_iter=linear_head.PROBE_MAX_ITER, C=linear_head.PROBE_C, random_state=0).fit(z, y)
    np.testing.assert_array_equal(np.argmax(z @ kernel + bias, axis=1), clf.predict(z))
    probs = np.exp(z @ kernel + bias)
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, clf.predict_proba(z), atol=1e-4)
