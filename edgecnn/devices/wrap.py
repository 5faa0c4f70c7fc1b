"""Wrap an existing .tflite classifier (e.g. Coral's ImageNet models) into a bundle. No TensorFlow.

The model section is read from the model itself (input size and dtypes); golden samples are
computed with the interpreter on this machine, from the given images or, without any, from a few
deterministic synthetic ones, so ``edgecnn run BUNDLE --self-test`` on the board compares against
them. Each golden sample stores the resized input (``golden/NNN.npy``) and a lossless PNG source
(``golden/NNN.png``) whose OpenCV decode resizes to exactly that input.
"""

from pathlib import Path

import numpy as np

from edgecnn.bundle.manifest import make_manifest, write_bundle
from edgecnn.bundle.model import DEFAULT_RESIZE, MODEL, MODEL_EDGETPU, RESIZE_METHODS, ModelSpec
from edgecnn.bundle.tflite_metadata import read_model_metadata
from edgecnn.devices import backends
from edgecnn.devices.golden import golden_samples
from edgecnn.devices.preprocess import bgr_to_rgb, quantize
from edgecnn.devices.imageio import read_image
from edgecnn.errors import BundleError, DeviceError


def read_labels(path) -> list:
    """One class name per line (blank lines at the end dropped); the file must be UTF-8."""
    data = Path(path).read_bytes()
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BundleError(f"labels file '{path}' is not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                          f"{exc.start}). Save it as UTF-8 (e.g. iconv -f latin1 -t utf-8).") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def synthetic_images(count=3, size=(96, 128), seed=0):
    """Deterministic RGB test images: gradients plus noise."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    images = []
    for i in range(count):
        base = np.stack([(xx * (i + 1) * 3) % 256, (yy * (i + 2) * 2) % 256, ((xx + yy) * (i + 1)) % 256], -1)
        noise = rng.integers(0, 64, size=(height, width, 3))
        images.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return images


def _quantization_mode(details: dict) -> str:
    if details["input"]["dtype"] in ("uint8", "int8"):
        return "int8"  # full integer (Coral's uint8 models included; input_dtype says which)
    return "float32"


def _load_rgb(image):
    if isinstance(image, np.ndarray):
        return np.ascontiguousarray(image)
    try:  # through bytes, with the pixel cap: any file name, never a decompression bomb
        return bgr_to_rgb(read_image(image))
    except DeviceError as exc:
        raise BundleError(f"cannot use golden image '{image}': {exc}") from None


MIN_INPUT_LEVELS = 32  # of an integer input's 256: fewer and every frame looks alike to the model


def check_normalization(interpreter, mean, std, model="the model"):
    """Refuse ``mean``/``std`` that the model's input quantization turns into a handful of levels.

    The 256 pixel values become ``q = round((pixel - mean) / std / scale) + zero_point`` (DESIGN rule
    6: scale and zero point from the .tflite). ``--mean 128 --std 128`` on a model whose quantization
    says it takes raw pixels (scale 1) leaves 2 levels, and forgetting them on a Coral model (scale
    1/128) clips all but one pixel value: either way every frame becomes one class.
    """
    if not std or float(std) <= 0:
        raise BundleError(f"--std {std:g} must be above 0 (the model sees (pixel - mean) / std).")
    dtype, scale, zero_point = backends.input_quantization(interpreter)
    if dtype.kind == "f" or not scale:
        return  # a float input takes any real value: nothing to compare with
    pixels = np.arange(256, dtype=np.float32)
    levels = len(np.unique(quantize((pixels - np.float32(mean)) / np.float32(std), dtype, scale, zero_point)))
    if levels >= MIN_INPUT_LEVELS:
        return
    # the mean and std under which pixel p is fed as the integer p (uint8) or p - 128 (int8)
    fit_mean = zero_point + (128 if dtype == np.int8 else 0)
    raise BundleError(
        f"--mean {mean:g} --std {std:g} map the 256 pixel values onto only {levels} of the input levels of "
        f"'{model}' (its input quantization: {dtype.name}, scale {scale:g}, zero point {zero_point}): every "
        f"frame would look alike to it. That quantization says the model takes (pixel - {fit_mean:g}) / "
        f"{1 / scale:.4g}: use --mean {fit_mean:g} --std {1 / scale:.4g}, or the values its documentation gives.")


# The normalization of a model that neither the caller nor its metadata describes: raw pixels, as
# edgecnn's own models take them (their graph rescales itself, DESIGN rule 5); check_normalization
# refuses it where an integer input's quantization says otherwise.
UNDESCRIBED_MEAN, UNDESCRIBED_STD = 0.0, 1.0


def described(model, labels=None, mean=None, std=None) -> tuple:
    """``(labels, mean, std, what came from the model's TFLite metadata)``: the given values win; the
    others are read from the model's metadata (:mod:`edgecnn.bundle.tflite_metadata`)."""
    meta = read_model_metadata(model) if labels is None or mean is None or std is None else None
    taken = []
    if labels is None:
        if meta is None or not meta.labels:
            why = ("has no TFLite metadata" if meta is None else "has TFLite metadata without a label file"
                   if meta.labels_file is None else f"names the label file '{meta.labels_file}' in its TFLite "
                   "metadata but does not pack it")
            raise BundleError(f"model '{model}' {why}, so its labels are unknown: give them with --labels FILE "
                              "(one class name per line, in output order).")
        labels, taken = list(meta.labels), ["labels"]
    stored = meta.normalization(f"'{model}'") if meta is not None and (mean is None or std is None) else None
    if stored is not None:
        taken.append("normalization")
    mean = mean if mean is not None else stored[0] if stored else UNDESCRIBED_MEAN
    std = std if std is not None else stored[1] if stored else UNDESCRIBED_STD
    return labels, float(mean), float(std), taken


def wrap_tflite(model, labels, out, mean=None, std=None, edgetpu_model=None, fallbacks=(), resize=DEFAULT_RESIZE,
                images=None, backend="auto", decision=None, source=None):
    """Write a bundle around an existing .tflite classifier.

    Args:
        model: the CPU .tflite (becomes ``model.tflite``, its metadata kept).
        labels: a labels file (one per line) or a list, in output order; None reads them from the
            model's TFLite metadata (an error when it has none).
        out: the bundle folder to write (replaced atomically).
        mean, std: the model's real input is ``(pixel - mean) / std`` (Coral ImageNet models: 127.5 or 128);
            None takes the model's metadata, else 0 and 1 (raw pixels).
        edgetpu_model: optional ``*_edgetpu.tflite`` twin (becomes ``model_edgetpu.tflite``).
        fallbacks: optional fallback .tflite files with the same labels.
        resize: bilinear, area or nearest.
        images: golden images (paths or RGB arrays); 3 synthetic ones when None.

    Returns:
        The bundle path.
    """
    if resize not in RESIZE_METHODS:
        raise BundleError(f"unknown resize method '{resize}'; use one of {', '.join(RESIZE_METHODS)}")
    labels = read_labels(labels) if isinstance(labels, (str, Path)) else labels
    labels, mean, std, taken = described(model, labels, mean, std)
    details = backends.probe_model(model, backend)
    classes = int(details["output"]["shape"][-1])
    if classes != len(labels):
        raise BundleError(f"model '{model}' has {classes} outputs but the labels list has {len(labels)} entries.")
    interpreter, _ = backends.make_interpreter(model, backend)
    check_normalization(interpreter, mean, std, model)
    size = backends.input_size(interpreter)
    golden_files, samples = golden_samples(Path(model).read_bytes(),
                                           [_load_rgb(image) for image in (images if images is not None
                                                                           else synthetic_images())],
                                           size, resize, mean, std, backend)
    files = {MODEL: Path(model), **golden_files}
    fallback_names = []
    for i, path in enumerate(fallbacks):
        backends.probe_model(path, backend)
        fallback_names.append(f"fallback{i}.tflite")
        files[fallback_names[-1]] = Path(path)
    if edgetpu_model:
        backends.check_model_file(edgetpu_model)
        files[MODEL_EDGETPU] = Path(edgetpu_model)
    spec = ModelSpec(input_size=size, input_dtype=details["input"]["dtype"], output_dtype=details["output"]["dtype"],
                     quantization=_quantization_mode(details), tflite=MODEL,
                     edgetpu=MODEL_EDGETPU if edgetpu_model else None, fallbacks=fallback_names, resize=resize,
                     input_mean=mean, input_std=std)
    manifest = make_manifest(labels, spec, decision=decision, golden=samples,
                             source=source or {"wrapped": Path(model).name, "from_metadata": taken})
    return write_bundle(out, files, manifest)
