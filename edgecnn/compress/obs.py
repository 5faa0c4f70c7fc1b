"""``edgecnn prune --method obs``: one-shot pruning with layer-wise reconstruction, no training.

Magnitude pruning zeroes the smallest weights and leaves fine-tuning to repair the damage; with a
few hundred training images that repair falls short (a pretrained MobileNet v1 at 50% lost 2 to 5
of 153 hymenoptera val images after 40 epochs). The Optimal Brain Surgeon family (Hassibi & Stork
1993; OBC, Frantar & Alistarh 2022; SparseGPT 2023) treats each layer as a least-squares problem
instead: from the layer's inputs X on calibration images, choose which weights to drop and re-solve
the kept ones so that the layer's outputs stay as close as possible to the unpruned layer's.

* Per output channel j with kept inputs S: ``w_S = (H_SS + damp I)^-1 (X_p^T X_d w_j)_S``, where
  ``H = X_p^T X_p``. X_p are the inputs the already pruned layers produce and X_d the unpruned
  model's, so each layer also corrects the error of the layers before it.
* The mask: each output channel removes its weights a few at a time (d/32 per round), always those
  of least OBS saliency ``w_i^2 / [H_S^-1]_ii`` (the output error of dropping w_i once the others
  compensate), updating the inverse Hessian after each round; the layer then takes, over all its
  channels, the removals that cost least (OBC's global mask selection), so redundant inputs lose
  one twin, not both, and channels that matter keep more weights. The numpy core is
  :mod:`edgecnn.compress.obs_solver`.
* An intercept is fitted too (a column of ones in X) and folded into the following
  BatchNormalization's moving mean, or into the layer's bias; without either, none is fitted.

Calibration images are training images only (never val or test), mirrored and augmented copies:
more rows make the Gram matrices of the last layers (5x5 positions) well conditioned.
"""

from typing import Callable, Dict, Optional, Sequence

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.compress.obs_solver import solve
from edgecnn.tf import keras

DAMP = 1e-3                 # ridge term, a share of the mean diagonal of H (SparseGPT uses 1e-2;
                            # with thousands of rows per layer less damping fits better here)
BATCH = 32
MAX_SOURCE_IMAGES = 512     # a larger train split is subsampled evenly: the Gram matrices converge long
                            # before, and (2 + copies) x 512 uint8 images at 224 px stay under 0.5 GB


def calibration_images(x: np.ndarray, copies: int = 4, seed: int = 0) -> np.ndarray:
    """Training images (at most MAX_SOURCE_IMAGES), their mirror images and ``copies``
    light-augmented passes (uint8)."""
    from edgecnn.train.augment import make_augmenter

    x = np.asarray(x)
    if len(x) > MAX_SOURCE_IMAGES:
        x = x[np.linspace(0, len(x) - 1, MAX_SOURCE_IMAGES).astype(int)]
    out = [x, x[:, :, ::-1]]
    for copy in range(copies):
        augment = make_augmenter("light", seed + 10 * copy)
        passes = [np.asarray(augment(x[i:i + BATCH].astype(np.float32), training=True))
                  for i in range(0, len(x), BATCH)]
        out.append(np.clip(np.rint(np.concatenate(passes)), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def _check_layer(layer) -> None:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if layer.depth_multiplier != 1:
            raise EdgecnnError(f"--method obs: layer '{layer.name}' has depth_multiplier {layer.depth_multiplier}; "
                               "only 1 is supported. Exclude it (--exclude) or use --method magnitude.")
    elif isinstance(layer, keras.layers.Conv2D):
        if getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last":
            raise EdgecnnError(f"--method obs: layer '{layer.name}' is a grouped or channels_first convolution. "
                               "Exclude it (--exclude) or use --method magnitude.")


def _rows(layer, inputs) -> np.ndarray:
    """The layer's input as rows the kernel multiplies: (N, d), or (N, k*k, C) for depthwise."""
    from edgecnn.tf import tf

    if isinstance(layer, keras.layers.Dense):
        a = np.asarray(inputs)
        return a.reshape(-1, a.shape[-1])
    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    dh, dw = layer.dilation_rate
    patches = tf.image.extract_patches(inputs, sizes=[1, kh, kw, 1], strides=[1, sh, sw, 1], rates=[1, dh, dw, 1],
                                       padding=layer.padding.upper()).numpy()
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return patches.reshape(-1, kh * kw, inputs.shape[-1])   # patch order is (row, col, channel)
    return patches.reshape(-1, kh * kw * inputs.shape[-1])


def _intercept_target(model, layer):
    """``("bn", layer)`` when a BatchNormalization alone consumes ``layer``, ``("bias", layer)`` when it
    has a bias, else None (no intercept is fitted)."""
    from edgecnn.models.classifier import next_batchnorm

    bn = next_batchnorm(model, layer)
    if bn is not None:
        return "bn", bn
    if getattr(layer, "use_bias", False):
        return "bias", layer
    return None


def _grams(dense_fn, work_fn, layer, images, intercept: bool):
    """``H = X_p^T X_p`` and ``G = X_p^T X_d`` over the calibration images (float64; per channel for
    depthwise), with a column of ones appended when ``intercept``."""
    same = work_fn is dense_fn  # nothing before the layer is pruned (the sensitivity measurement)
    h = g = None
    for i in range(0, len(images), BATCH):
        batch = images[i:i + BATCH].astype(np.float32)
        xd = _with_ones(_rows(layer, dense_fn(batch, training=False)), intercept)
        xp = xd if same else _with_ones(_rows(layer, work_fn(batch, training=False)), intercept)
        hb = _gram(xp, xp)
        gb = hb if same else _gram(xp, xd)
        h, g = (hb, gb) if h is None else (h + hb, g + gb)
    return h, g


def _gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a^T b``; for depthwise rows (N, k*k, C) one (k*k)^2 matrix per channel."""
    return a.T @ b if a.ndim == 2 else np.einsum("nic,njc->cij", a, b)


def _with_ones(rows: np.ndarray, intercept: bool) -> np.ndarray:
    """float64 rows, with a column of ones appended (per channel for depthwise) when ``intercept``."""
    rows = rows.astype(np.float64)
    if not intercept:
        return rows
    if rows.ndim == 2:
        return np.concatenate([rows, np.ones((len(rows), 1))], axis=1)
    return np.concatenate([rows, np.ones((rows.shape[0], 1, rows.shape[2]))], axis=1)


def _problem(dense, work, name: str, images: np.ndarray):
    """The layer of ``work``, where its intercept folds, its unpruned kernel and its OBS blocks."""
    layer = work.get_layer(name)
    _check_layer(layer)
    fold = _intercept_target(work, layer)
    dense_fn = keras.Model(dense.input, dense.get_layer(name).input)
    work_fn = dense_fn if dense is work else keras.Model(work.input, layer.input)
    h, g = _grams(dense_fn, work_fn, layer, images, intercept=fold is not None)
    kernel = dense.get_layer(name).get_weights()[0].astype(np.float64)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        per_channel = kernel.reshape(-1, kernel.shape[2])
        blocks = [(h[c], g[c], per_channel[:, c:c + 1]) for c in range(kernel.shape[2])]
    else:
        blocks = [(h, g, kernel.reshape(-1, kernel.shape[-1]))]
    return layer, fold, kernel, blocks


def _new_weights(layer, fold, kernel: np.ndarray, solved) -> dict:
    """``{layer name: weights}`` setting the solved kernel and folding the intercept."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        new = np.stack([k[:, 0] for k, _ in solved], axis=1).reshape(kernel.shape)
        icpt = np.array([c[0] for _, c in solved])
    else:
        new, icpt = solved[0][0].reshape(kernel.shape), solved[0][1]
    weights = layer.get_weights()
    out = {layer.name: [new.astype(np.float32)] + weights[1:]}
    if fold is not None and fold[0] == "bias":
        out[layer.name][1] = (weights[1] + icpt).astype(np.float32)
    elif fold is not None:  # BN(y + c) == BN with moving_mean - c
        bn = fold[1].get_weights()
        bn[-2] = (bn[-2] - icpt).astype(np.float32)   # [gamma?, beta?, moving_mean, moving_variance]
        out[fold[1].name] = bn
    return out


def prune_layer(dense, work, name: str, images: np.ndarray, sparsity: float, damp: float = DAMP) -> dict:
    """Prune ``work``'s layer ``name`` in place by OBS reconstruction toward ``dense``'s outputs."""
    layer, fold, kernel, blocks = _problem(dense, work, name, images)
    solved = solve(blocks, [sparsity], damp, fold is not None)[sparsity]
    for target, weights in _new_weights(layer, fold, kernel, solved).items():
        work.get_layer(target).set_weights(weights)
    new = layer.get_weights()[0]
    return {"sparsity": float(np.mean(new == 0)), "rows": int(len(images)),
            "intercept": None if fold is None else fold[0]}


def level_weights(model, name: str, images: np.ndarray, levels: Sequence[float], damp: float = DAMP) -> dict:
    """``{level: {layer name: weights}}``: ``name`` pruned alone (its inputs unpruned) at each level,
    for the sensitivity allocation (one removal path per channel serves every level)."""
    layer, fold, kernel, blocks = _problem(model, model, name, images)
    return {level: _new_weights(layer, fold, kernel, solved)
            for level, solved in solve(blocks, list(levels), damp, fold is not None).items()}


def obs_prune(model, per_layer: Dict[str, float], images: np.ndarray, damp: float = DAMP,
              progress: Optional[Callable[[str], None]] = None):
    """A copy of ``model`` with each layer of ``per_layer`` pruned to its sparsity, in model order.

    Args:
        model: the unpruned float model (left untouched).
        per_layer: ``{layer name: sparsity}`` for Conv2D, DepthwiseConv2D and Dense layers.
        images: calibration images from the training split (see :func:`calibration_images`).
        damp: ridge term as a share of the mean diagonal of each layer's Gram matrix.
        progress: called with a line per pruned layer.

    Returns:
        ``(pruned_model, {layer: {"sparsity", "rows", "intercept"}})``.
    """
    from edgecnn.models.classifier import copy_model

    work = copy_model(model)
    order = [layer.name for layer in model.layers if layer.name in per_layer]
    missing = sorted(set(per_layer) - set(order))
    if missing:
        raise EdgecnnError(f"--method obs: no layer named {missing} in the model.")
    report = {}
    for done, name in enumerate(order, 1):
        report[name] = prune_layer(model, work, name, images, per_layer[name], damp)
        if progress:
            progress(f"obs {done}/{len(order)} {name}: sparsity {report[name]['sparsity']:.3f}")
    return work, report


def describe(images: int, copies: int, damp: float = DAMP) -> dict:
    """What run.json records of the method."""
    return {"calibration": "train split, mirrored and light-augmented copies",
            "calibration_images": int(images), "augmented_copies": int(copies), "damp": damp,
            "mask": "greedy OBS paths per output channel, global selection per layer"}
