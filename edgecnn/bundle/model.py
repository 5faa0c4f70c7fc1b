"""The manifest's ``model`` section as one type: what the board needs to feed the model a frame.

Every writer builds the section through :class:`ModelSpec` (``edgecnn convert``,
``edgecnn bundle wrap``, ``edgecnn search --export``) and every reader takes it back through
:meth:`ModelSpec.from_manifest`, so each default below is written once, here. Standard library only.
"""

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence, Tuple

from edgecnn.errors import BundleError

MODEL = "model.tflite"
MODEL_EDGETPU = "model_edgetpu.tflite"
RESIZE_METHODS = ("bilinear", "area", "nearest")
# INTER_AREA: the resize the training images went through (edgecnn.data.pixels.load_images), so a
# camera frame reaches the model the way the training photos did. A wrapped model trained elsewhere
# says its own with `bundle wrap --resize`.
DEFAULT_RESIZE = "area"
COLOR_ORDERS = ("RGB", "BGR")
DEFAULT_COLOR_ORDER = "RGB"
QUANTIZATIONS = ("int8", "float16", "dynamic", "float32")


@dataclass(frozen=True)
class ModelSpec:
    """The ``model`` section.

    Attributes:
        input_size: ``(height, width)`` in pixels.
        input_dtype, output_dtype: the .tflite tensors' dtypes ("uint8", "int8", "float32").
        quantization: int8 (full integer), float16, dynamic or float32.
        tflite: the CPU model's file name; ``edgetpu`` its Edge TPU twin (or None); ``fallbacks``
            models with the same labels tried on uncertain frames.
        resize: how a frame is resized to ``input_size`` (bilinear, area or nearest).
        color_order: the channel order the model takes.
        input_mean, input_std: the model's real input is ``(pixel - mean) / std``; 0 and 1 for
            edgecnn models, whose graph rescales itself. Scale and zero point are never stored:
            they are read from the .tflite (DESIGN rule 6).
        tflite_report, bias_correction: what the conversion did (None for a wrapped model).
    """

    input_size: Optional[Tuple[int, int]] = None  # writers give it; the board reads the size from the model
    input_dtype: str = "uint8"
    output_dtype: str = "uint8"
    quantization: str = "int8"
    tflite: str = MODEL
    edgetpu: Optional[str] = None
    fallbacks: Tuple[str, ...] = field(default_factory=tuple)
    resize: str = DEFAULT_RESIZE
    color_order: str = DEFAULT_COLOR_ORDER
    input_mean: float = 0.0
    input_std: float = 1.0
    tflite_report: Optional[dict] = None  # what the converter's verification saw (ops, tensors, float layers)
    bias_correction: Optional[dict] = None  # whether int8 weight-rounding bias was corrected, and where

    def __post_init__(self):
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "fallbacks", tuple(self.fallbacks))
        object.__setattr__(self, "input_mean", float(self.input_mean))
        object.__setattr__(self, "input_std", float(self.input_std))
        problems = []
        if self.resize not in RESIZE_METHODS:
            problems.append(f"resize '{self.resize}' (use one of {', '.join(RESIZE_METHODS)})")
        if self.color_order not in COLOR_ORDERS:
            problems.append(f"color_order '{self.color_order}' (use RGB or BGR)")
        if self.quantization not in QUANTIZATIONS:
            problems.append(f"quantization '{self.quantization}' (use one of {', '.join(QUANTIZATIONS)})")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) <= 0):
            problems.append(f"input_size {list(self.input_size)} ([height, width] in pixels)")
        if not self.input_std > 0:
            problems.append(f"input_std {self.input_std:g} (a number above 0)")
        if problems:
            raise BundleError("the bundle's model section has " + "; ".join(problems) + ".")

    @classmethod
    def from_manifest(cls, manifest: dict) -> "ModelSpec":
        """The spec of a manifest read by :func:`edgecnn.bundle.manifest.verify_bundle` (already
        checked by :func:`edgecnn.bundle.schema.check_manifest`); keys it lacks take the defaults."""
        section = manifest["model"]
        return cls(**{k: section[k] for k in cls.__dataclass_fields__ if section.get(k) is not None})

    def to_section(self) -> dict:
        """The section as the manifest stores it (JSON types: lists, not tuples)."""
        section = asdict(self)
        section["input_size"] = list(self.input_size) if self.input_size is not None else None
        section["fallbacks"] = list(self.fallbacks)
        return section

    def files(self) -> Sequence[str]:
        """The model files the section names, CPU model first."""
        return [self.tflite] + ([self.edgetpu] if self.edgetpu else []) + list(self.fallbacks)
