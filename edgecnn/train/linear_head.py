"""The linear head in closed form: standardised features and a logistic regression fitted to them.

``probe-cuts`` scores every cut with it (:mod:`edgecnn.train.cut_probe`). Phase 1 does not start from
it yet: that lifted shallow cuts to the probe's accuracy, but the folded scale widened the dense kernel
and cost int8 accuracy elsewhere (the remedy and QAT tests), so it waits for a fold int8 keeps. Why it
matters: a dense layer trained by Adam for the default 10 epochs at 1e-3 takes only a few
hundred steps on a small dataset, which is not enough to leave its random start on features that are
not at unit scale (a MobileNet v2 block-3 cut began at loss 2.8 for two classes and ended below
chance while a logistic regression on the same features reached 0.82). The regression is convex:
its optimum does not depend on the steps, the learning rate or the start.
"""

import numpy as np

# L2 strength of the regression on standardised features (sklearn's inverse C): strong enough that
# a few hundred images and a thousand features do not overfit; the same for every cut and backbone.
PROBE_C = 0.1
PROBE_MAX_ITER = 2000
# Floor of a feature's scale, as a fraction of the median feature's: the folded kernel's range
# (int8-quantized per tensor) stays within 10x of a typical feature's weight.
SCALE_FLOOR = 0.1


def feature_scale(train_feats: np.ndarray):
    """Per-feature mean and scale: each pooled feature centred and scaled to unit spread, the scale
    floored at ``SCALE_FLOOR`` of the median spread (a near-constant feature does not blow it up)."""
    x = np.asarray(train_feats, dtype=np.float64)
    mean, spread = x.mean(axis=0), x.std(axis=0)
    floor = max(float(np.median(spread)) * SCALE_FLOOR, 1e-6)
    return mean.astype(np.float32), np.maximum(spread, floor).astype(np.float32)


def standardise(feats: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return ((np.asarray(feats, dtype=np.float32) - mean) / scale).astype(np.float32)


def fit_linear(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int, class_weight=None):
    """A multinomial logistic regression on standardised ``x``, as a softmax layer's
    ``(kernel (features, classes), bias (classes,))``."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=PROBE_MAX_ITER, C=PROBE_C, random_state=seed, class_weight=class_weight)
    clf.fit(x, y)
    coef, intercept = clf.coef_, clf.intercept_
    kernel = np.zeros((x.shape[1], num_classes), dtype=np.float32)
    bias = np.zeros(num_classes, dtype=np.float32)
    classes = clf.classes_.astype(int)
    if coef.shape[0] == 1:  # two classes: sklearn gives one logit; softmax over (-z/2, z/2) is its sigmoid
        kernel[:, classes[0]], kernel[:, classes[1]] = -coef[0] / 2, coef[0] / 2
        bias[classes[0]], bias[classes[1]] = -intercept[0] / 2, intercept[0] / 2
    else:
        kernel[:, classes], bias[classes] = coef.T, intercept
    return kernel, bias


def fold(kernel: np.ndarray, bias: np.ndarray, mean: np.ndarray, scale: np.ndarray):
    """The kernel and bias that give on raw features ``f`` what ``(kernel, bias)`` gives on
    ``(f - mean) / scale``: the classifier's graph does not change."""
    folded = kernel / scale[:, None]
    return folded.astype(kernel.dtype), (bias - mean @ folded).astype(bias.dtype)


def probe_accuracy(x_train, y_train, x_val, y_val, num_classes: int, seed: int) -> float:
    """Val accuracy of the linear head fitted on the train features (``probe-cuts``' score)."""
    mean, scale = feature_scale(x_train)
    kernel, bias = fit_linear(standardise(x_train, mean, scale), np.asarray(y_train), num_classes, seed)
    logits = standardise(x_val, mean, scale) @ kernel + bias
    return float((np.argmax(logits, axis=1) == np.asarray(y_val)).mean())
