"""Phase 1's closed-form start (edgecnn.train.linear_head): the fold changes no output, the two-class
mapping predicts what the regression predicts, and on features far from unit scale the head that
finetune trains reaches the probe's accuracy (it used to end below chance on a MobileNet v2 block-3 cut)."""

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


def test_phase_one_reaches_the_probe_on_features_far_from_unit_scale():
    """The dense head trained by finetune's phase 1 code on offset, wide features: as accurate as the
    probe, and the classifier it leaves takes the raw features (the fold)."""
    from types import SimpleNamespace

    from edgecnn.models.classifier import HEAD_DENSE, HEAD_DROPOUT, POOL_LAYER
    from edgecnn.tf import keras, tf
    from edgecnn.train import phases
    from edgecnn.train.options import DEFAULTS

    x, y = _blobs(3, n=600, seed=2)
    feats, labels = {"train": x[:400], "val": x[400:]}, {"train": y[:400], "val": y[400:]}
    # the classifier's head as build_classifier makes it, on features instead of a base
    inputs = keras.Input(shape=(x.shape[1],))
    pooled = keras.layers.Activation("linear", name=POOL_LAYER)(inputs)
    dropped = keras.layers.Dropout(0.2, name=HEAD_DROPOUT)(pooled)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name=HEAD_DENSE)(dropped))
    ctx = SimpleNamespace(args=dict(DEFAULTS, epochs=3, seed=0), strategy=tf.distribute.get_strategy(),
                          num_classes=3, labels=["a", "b", "c"], log=lambda *a, **k: None, verbose=0)
    tracker = phases.train_head(ctx, model, feats, labels)
    probe = linear_head.probe_accuracy(feats["train"], labels["train"], feats["val"], labels["val"], 3, 0)
    acc = float(np.mean(np.argmax(model.predict(feats["val"], verbose=0), axis=1) == labels["val"]))
    assert probe > 0.8
    assert acc >= probe - 0.03, (acc, probe)
    assert tracker.best >= probe - 0.03
