"""Build the classifier: one flat functional graph, Rescaling first, the base inlined, a small head.

Flat matters: tfmot pruning and QAT refuse a Keras model nested in another, so the base's layers
are called directly on our tensors instead of being wrapped as a sub-model.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.models.cuts import cut_base
from edgecnn.models.safe_load import load_keras_model
from edgecnn.models.registry import Backbone, get_backbone, resolve_weights
from edgecnn.tf import keras, tf

POOL_LAYER = "pool"  # the cached-feature boundary: phase 1 trains only what follows it
HEAD_DROPOUT = "head_dropout"
HEAD_DENSE = "head_dense"
RESCALE_LAYER = "rescale"


def inline_model(model, x):
    """Call the layers of functional ``model`` on tensor ``x`` and return the output tensor.

    The layer objects (and so their weights) are reused, so the caller's graph contains the base's
    layers directly rather than a nested Model. Mirrors Keras' own functional graph walk.
    """
    if not getattr(model, "_is_graph_network", False) or len(model.inputs) != 1:
        raise ModelError(f"base model '{model.name}' must be a functional Keras model with one input.")
    # Keras pops one copy of a tensor per use, so store as many copies as it has consumers.
    usage = model._tensor_usage_count
    tensors = {str(id(model.inputs[0])): [x] * usage[str(id(model.inputs[0]))]}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            args, kwargs = node.map_arguments(tensors)
            outputs = node.layer(*args, **kwargs)
            for tid, out in zip(node.flat_output_ids, tf.nest.flatten(outputs)):
                tensors[tid] = [out] * usage[tid]
    return tensors[str(id(model.outputs[0]))][0]


def _load_base(backbone: Backbone, size: int, alpha, weights):
    app = getattr(keras.applications, backbone.application)
    kwargs = dict(input_shape=(size, size, 3), include_top=False, weights=weights, **backbone.extra)
    if backbone.alpha is not None:
        kwargs["alpha"] = alpha
    try:
        return app(**kwargs)
    except ValueError as exc:
        raise ModelError(f"cannot build {backbone.name} (alpha={alpha}, size={size}, weights={weights}): "
                         f"{exc}") from None
    except Exception as exc:  # download errors surface as URLError, HTTPError, OSError, Exception
        if weights == "imagenet":
            raise ModelError(
                f"could not download ImageNet weights for {backbone.name} ({exc}). Offline, download "
                f"'{backbone.weights_filename(alpha, size)}' elsewhere and pass --weights PATH, or set "
                "EDGECNN_WEIGHTS_DIR to the folder that holds it.") from None
        raise ModelError(f"cannot load weights '{weights}' into {backbone.name} (alpha={alpha}, "
                         f"size={size}): {exc}. Check that the file matches this backbone, width and "
                         "size.") from None


def load_custom_base(path):
    """Load a user's Keras feature extractor (``--base PATH``) through the checked door."""
    if not Path(path).exists():
        raise ModelError(f"--base '{path}' does not exist. Pass a .keras or .h5 feature extractor.")
    return load_keras_model(path, role="--base")


@dataclass
class LoadedBase:
    """A base before it is inlined: the Keras model, its input size, names, preprocessing and cut points."""

    model: object
    size: int
    name: str
    alpha: Optional[float]
    rescale: Optional[tuple]
    unfreeze_from: Optional[str]
    cut_pattern: Optional[str]  # the registry's, None for a --base model (every boundary counts)
    what: str  # how messages name it


def load_base(backbone: str = "mobilenet_v2", input_size: Optional[int] = None, alpha: Optional[float] = None,
              weights: Optional[str] = "imagenet", base_path: Optional[str] = None, rescale=None) -> LoadedBase:
    """The pretrained base ``build_classifier`` inlines (arguments as there), whole."""
    if base_path:
        base = load_custom_base(base_path)
        shape = base.input_shape
        if shape[1] is None or shape[2] is None or shape[1] != shape[2]:
            raise ModelError(f"--base '{base_path}' has input shape {shape}; edgecnn needs a fixed square "
                             "input (for example 224x224x3) so the TFLite model has a static shape.")
        if all(isinstance(layer, keras.layers.InputLayer) for layer in base.layers):
            raise ModelError(f"--base '{base_path}' has no layers besides its input, so it computes no features. "
                             "Pass a feature extractor, for example a MobileNet saved with include_top=False.")
        if len(base.output_shape) not in (2, 4):
            raise ModelError(f"--base '{base_path}' outputs shape {base.output_shape}; edgecnn needs a feature map "
                             "(batch, height, width, channels) or pooled features (batch, channels). End the base "
                             "at a convolution block or a global pooling layer.")
        size, name, alpha = int(shape[1]), "custom", None
        rescale = tuple(rescale) if rescale is not None else (1.0 / 127.5, -1.0)
        unfreeze_from = None
    else:
        entry = get_backbone(backbone)
        size = int(input_size or entry.input_size)
        alpha = alpha if alpha is not None else entry.alpha
        if entry.alpha is None:
            alpha = None
        base = _load_base(entry, size, alpha, resolve_weights(entry, weights, alpha, size))
        name, unfreeze_from = entry.name, entry.unfreeze_from
        rescale = tuple(rescale) if rescale is not None else entry.rescale
    return LoadedBase(base, size, name, alpha, rescale, unfreeze_from,
                      None if base_path else entry.cut_pattern,
                      f"the --base model '{base_path}'" if base_path else f"the {name} base")


def build_classifier(num_classes: int, backbone: str = "mobilenet_v2", input_size: Optional[int] = None,
                     alpha: Optional[float] = None, weights: Optional[str] = "imagenet",
                     dropout: float = 0.2, base_path: Optional[str] = None,
                     rescale=None, cut_at=None):
    """Build the flat classifier and describe it.

    Args:
        num_classes: number of output classes (softmax).
        backbone: registry name; ignored when ``base_path`` is given.
        input_size: square input size; the backbone's default when None.
        alpha: width multiplier; the backbone's default when None.
        weights: ``"imagenet"``, ``"none"``/None or a path to a no-top weights file.
        dropout: dropout rate before the dense layer.
        base_path: a user's own Keras feature extractor (its input size is used).
        rescale: ``(scale, offset)`` to override the backbone's first-layer rescaling; for
            ``base_path`` the default is MobileNet-style [-1, 1].
        cut_at: end the base at this cut point (a layer name or an index among
            :func:`edgecnn.models.cuts.cut_points`); everything after it is left out of the graph.
            None keeps the whole base.

    Returns:
        ``(model, config)``: the Keras model taking raw RGB pixels (float, 0-255) and a
        JSON-safe config (backbone, alpha, input size, rescale, layer names) for run.json.
    """
    if num_classes < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got {num_classes}.")
    found = load_base(backbone, input_size, alpha, weights, base_path, rescale)
    base, size, name, alpha, rescale, unfreeze_from = (found.model, found.size, found.name, found.alpha,
                                                       found.rescale, found.unfreeze_from)
    base, cut = cut_base(base, cut_at, found.cut_pattern, found.what)
    if cut and unfreeze_from and unfreeze_from not in {layer.name for layer in base.layers}:
        unfreeze_from = None  # the registry's block is cut off: phase 2 unfreezes the top of what is left

    inputs = keras.Input(shape=(size, size, 3), name="image")
    x = inputs
    if rescale is not None:
        x = keras.layers.Rescaling(rescale[0], offset=rescale[1], name=RESCALE_LAYER)(x)
    x = inline_model(base, x)
    # A base that pools itself (global pooling at its end) already gives (batch, channels); the pool
    # layer is then an identity, kept because it marks the cached-feature boundary.
    pool = keras.layers.GlobalAveragePooling2D if len(x.shape) == 4 else keras.layers.Flatten
    x = pool(name=POOL_LAYER)(x)
    x = keras.layers.Dropout(dropout, name=HEAD_DROPOUT)(x)
    # float32 output even under mixed precision, so softmax and the loss stay stable.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=HEAD_DENSE)(x)
    model = keras.Model(inputs, outputs, name=f"edgecnn_{name}")
    base_layers = [layer.name for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    config = {
        "backbone": name,
        "alpha": alpha,
        "input_size": size,
        "rescale": list(rescale) if rescale is not None else None,
        "weights": str(weights) if not base_path else str(base_path),
        "dropout": dropout,
        "num_classes": num_classes,
        "base_layers": base_layers,
        "unfreeze_from": unfreeze_from,
        "pool_layer": POOL_LAYER,
        "cut_at": cut,
    }
    return model, config


def copy_model(model):
    """An independent copy of ``model``: the same graph with its own weights (a change to one leaves
    the other as it was)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def keras_probs(model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Softmax outputs of a classifier built here on uint8 pixels (the graph rescales itself)."""
    return np.asarray(model.predict(np.asarray(images, dtype=np.float32), batch_size=batch_size, verbose=0))


def next_batchnorm(model, layer):
    """The BatchNormalization that alone consumes ``layer``'s output in ``model``, or None.

    Only for a layer without an activation of its own, so a shift of its output is a shift of the
    BatchNorm's input: the converter folds such a BatchNorm into the layer's kernel, and bias
    correction and OBS pruning put their per-channel offsets into it.
    """
    consumers = [node.outbound_layer for node in layer.outbound_nodes if node.outbound_layer in model.layers]
    if len(consumers) == 1 and isinstance(consumers[0], keras.layers.BatchNormalization) \
            and getattr(layer, "activation", None) in (None, keras.activations.linear):
        return consumers[0]
    return None


def feature_extractor(model):
    """The frozen part of a classifier: raw pixels in, pooled features out (shares weights)."""
    return keras.Model(model.input, model.get_layer(POOL_LAYER).output, name="features")


def head_model(model):
    """The trainable head on cached features, sharing the classifier's dropout and dense layers."""
    pool = model.get_layer(POOL_LAYER)
    feats = keras.Input(shape=pool.output_shape[1:], name="features")
    x = model.get_layer(HEAD_DROPOUT)(feats)
    out = model.get_layer(HEAD_DENSE)(x)
    return keras.Model(feats, out, name="head")


def load_classifier(path):
    """Load a RUN_DIR's ``model.keras`` through the checked door (no code in it runs)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist. Run `edgecnn finetune` first.")
    return load_keras_model(path, role="model")
