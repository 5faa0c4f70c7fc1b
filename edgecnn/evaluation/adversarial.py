"""FGSM adversarial examples on raw pixels (workstation: TensorFlow via edgecnn.tf).

edgecnn models take raw RGB pixels (0-255) and rescale inside the graph, so the gradient is taken
with respect to the pixels themselves and ``epsilon`` is in pixel units: epsilon 2 moves every
pixel by at most 2 levels out of 255.
"""

from typing import Callable, Dict, Optional, Sequence

import numpy as np


def fgsm(model, x_uint8: np.ndarray, y: np.ndarray, epsilon: float, batch_size: int = 64) -> np.ndarray:
    """Fast Gradient Sign Method: ``x + epsilon * sign(d loss / d x)``, clipped to 0-255.

    Args:
        model: a Keras model taking raw pixels (float, 0-255) and returning probabilities.
        x_uint8: N x H x W x 3 uint8 images.
        y: N integer labels.
        epsilon: step in pixel units (0-255 scale).
        batch_size: images per gradient computation.

    Returns:
        N x H x W x 3 uint8 adversarial images.
    """
    from edgecnn.tf import keras, tf

    x_uint8 = np.asarray(x_uint8)
    if x_uint8.dtype != np.uint8:
        raise ValueError(f"fgsm() takes uint8 images (0-255), got {x_uint8.dtype}")
    y = np.asarray(y).astype(np.int64)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=False)
    out = np.empty_like(x_uint8)
    for start in range(0, len(x_uint8), batch_size):
        xb = tf.convert_to_tensor(x_uint8[start:start + batch_size].astype(np.float32))
        yb = tf.convert_to_tensor(y[start:start + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(xb)
            loss = loss_fn(yb, model(xb, training=False))
        grad = tape.gradient(loss, xb)
        adv = xb + float(epsilon) * tf.sign(grad)
        out[start:start + batch_size] = np.clip(np.round(adv.numpy()), 0, 255).astype(np.uint8)
    return out


def fgsm_report(model, x_uint8: np.ndarray, y: np.ndarray, epsilons: Sequence[float] = (0.5, 1, 2, 4, 8),
                predict_fns: Optional[Dict[str, Callable]] = None, name: str = "model") -> dict:
    """Accuracy under FGSM crafted on ``model`` at each epsilon, for ``model`` and any other
    predictors (e.g. the int8 interpreter: adversarial examples transferred to it). ``name`` is the
    key of ``model`` in the result.

    Returns:
        ``{"epsilons": [...], "accuracy": {name: [acc at epsilon 0, then each epsilon]}}``.
    """
    from edgecnn.models.classifier import keras_probs

    y = np.asarray(y).astype(np.int64)
    fns = {name: lambda x: keras_probs(model, x)}
    fns.update(predict_fns or {})
    acc = {key: [float(np.mean(np.argmax(fn(x_uint8), -1) == y))] for key, fn in fns.items()}
    for eps in epsilons:
        adv = fgsm(model, x_uint8, y, eps)
        for key, fn in fns.items():
            acc[key].append(float(np.mean(np.argmax(fn(adv), -1) == y)))
    return {"epsilons": [0.0] + [float(e) for e in epsilons], "accuracy": acc}
