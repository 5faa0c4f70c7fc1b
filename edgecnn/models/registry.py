"""The backbone registry: per-backbone defaults that travel with the model (the timm idea).

Standard library only, so the CLI can list backbones and the search space can be built without
importing TensorFlow. ``edgecnn.models.classifier`` turns an entry into a Keras graph.
"""

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Tuple

from edgecnn.errors import ModelError


@dataclass(frozen=True)
class Backbone:
    """One entry of the registry.

    Attributes:
        name: registry name used on the command line (``--backbone``).
        application: attribute of ``keras.applications`` that builds it.
        input_size: default square input size in pixels.
        alpha: default width multiplier, or None when the family has none.
        rescale: ``(scale, offset)`` applied by the classifier's first layer to raw 0-255 pixels,
            or None when the keras application carries its own preprocessing layers.
        unfreeze_from: default first layer to unfreeze in phase 2: a block boundary.
        sizes: input sizes the family supports with ImageNet weights (the search space).
        alphas: widths with ImageNet weights (the search space).
        extra: keyword arguments passed to the application.
        cut_pattern: regular expression on layer names marking one cut point per block
            (``--cut-at``; see :mod:`edgecnn.models.cuts`), or None for every boundary the graph has.
    """

    name: str
    application: str
    input_size: int
    alpha: Optional[float]
    rescale: Optional[Tuple[float, float]]
    unfreeze_from: Optional[str]
    sizes: Tuple[int, ...]
    alphas: Tuple[float, ...] = ()
    extra: dict = field(default_factory=dict)
    cut_pattern: Optional[str] = None

    def weights_filename(self, alpha: Optional[float], size: int) -> str:
        """File name of local ImageNet weights, as in ``../shared/models/pretrained``."""
        # Keras and ../shared spell whole widths with one decimal (1.0), others as is (0.25, 0.5).
        if alpha is None:
            width = ""
        elif float(alpha).is_integer():
            width = f"_{alpha:.1f}"
        else:
            width = f"_{alpha:g}"
        return f"{self.name}{width}_{size}_imagenet_notop.h5"

    def to_config(self) -> dict:
        """A JSON-safe description recorded in run.json."""
        return asdict(self)


_MOBILENET_RESCALE = (1.0 / 127.5, -1.0)  # inputs in [-1, 1], as keras' MobileNet weights expect

BACKBONES = {
    b.name: b
    for b in [
        Backbone("mobilenet_v1", "MobileNet", 160, 0.5, _MOBILENET_RESCALE, "conv_dw_12",
                 (128, 160, 192, 224), (0.25, 0.5, 0.75, 1.0), cut_pattern=r"conv_pw_\d+_relu"),
        Backbone("mobilenet_v2", "MobileNetV2", 224, 1.0, _MOBILENET_RESCALE, "block_15_expand",
                 (96, 128, 160, 192, 224), (0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
                 cut_pattern=r"(expanded_conv|block_\d+)_(project_BN|add)"),
        Backbone("mobilenet_v3_small", "MobileNetV3Small", 224, 1.0, None, None,
                 (224,), (0.75, 1.0), {"include_preprocessing": True},
                 cut_pattern=r"expanded_conv(_\d+)?/(project/BatchNorm|Add)"),
        Backbone("mobilenet_v3_large", "MobileNetV3Large", 224, 1.0, None, None,
                 (224,), (0.75, 1.0), {"include_preprocessing": True},
                 cut_pattern=r"expanded_conv(_\d+)?/(project/BatchNorm|Add)"),
        Backbone("efficientnet_b0", "EfficientNetB0", 224, None, None, "block6a_expand_conv", (224,),
                 cut_pattern=r"block\d[a-z]_(project_bn|add)"),
    ]
}

# Where `--weights imagenet` looks first, so offline machines can keep the files locally.
WEIGHTS_DIR_ENV = "EDGECNN_WEIGHTS_DIR"


def get_backbone(name: str) -> Backbone:
    """Return the registry entry for ``name`` or raise a ModelError listing the choices."""
    try:
        return BACKBONES[name]
    except KeyError:
        choices = ", ".join(sorted(BACKBONES))
        raise ModelError(f"unknown backbone '{name}'. Choose one of: {choices}, or pass --base PATH "
                         "for your own Keras feature extractor.") from None


def resolve_weights(backbone: Backbone, weights: Optional[str], alpha: Optional[float], size: int):
    """Turn ``--weights imagenet|none|PATH`` into what keras.applications takes.

    ``imagenet`` first looks for ``<name>_<alpha>_<size>_imagenet_notop.h5`` in the folder named by
    ``$EDGECNN_WEIGHTS_DIR`` (offline machines), then lets Keras download the weights.

    Returns:
        ``None``, ``"imagenet"`` or the path of a local weights file, as a string.
    """
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        local_dir = os.environ.get(WEIGHTS_DIR_ENV)
        if local_dir:
            candidate = Path(local_dir) / backbone.weights_filename(alpha, size)
            if candidate.is_file():
                return str(candidate)
        return "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise ModelError(f"weights file '{weights}' does not exist. Pass --weights imagenet, none, "
                         "or the path of a Keras .h5 weights file for this backbone (no top).")
    return str(path)
