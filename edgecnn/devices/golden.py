"""Golden samples: a few inputs with the scores the model gave where the bundle was built.

The one builder of them, for ``edgecnn convert`` (held-out photos of the run) and ``edgecnn bundle
wrap`` (the user's images, or synthetic ones). For each sample (format in
:mod:`edgecnn.bundle.manifest`): ``golden/NNN.png``, the source image downscaled so its longer side
is at most ``max(SOURCE_MAX_SIDE, the model's input side)`` (lossless, small, never smaller than
what the model takes); ``golden/NNN.npy``, that PNG decoded with OpenCV, converted to RGB and
resized with the manifest's method -- exactly what the board computes from it -- and the
dequantized scores of the model on that input from LiteRT's reference kernels, with a tolerance
measured against its optimized ones (:mod:`edgecnn.devices.golden_kernels` says why).
``edgecnn run --self-test`` replays them on the board.
"""

import io
from typing import Optional, Sequence

import numpy as np

from edgecnn.devices.preprocess import bgr_to_rgb, resize_rgb
from edgecnn.errors import BundleError

SOURCE_MAX_SIDE = 128


def _png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise BundleError("OpenCV could not encode a golden source as PNG")
    return buf.tobytes()


def _decode_png(data: bytes) -> np.ndarray:
    import cv2

    return bgr_to_rgb(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


def _source(rgb: np.ndarray, longest: int) -> bytes:
    """The lossless PNG stored as the sample's source: ``rgb``, its longer side cut to ``longest``."""
    h, w = rgb.shape[:2]
    scale = min(1.0, longest / max(h, w))
    # INTER_AREA whatever the manifest says: this is a photo being made smaller, not a model input
    small = resize_rgb(rgb, (max(1, round(h * scale)), max(1, round(w * scale))), "area")
    return _png_bytes(small)


def golden_samples(content: bytes, images: Sequence[np.ndarray], size, resize: str, mean: float = 0.0,
                   std: float = 1.0, backend: str = "auto", origins: Optional[Sequence[str]] = None) -> tuple:
    """Build golden samples.

    Args:
        content: the .tflite model.
        images: H x W x 3 uint8 RGB source images (held-out photos, or synthetic ones).
        size: the model's ``(height, width)``; ``resize``: the manifest's resize method.
        mean, std: the model's input normalization (the manifest's ``input_mean``/``input_std``).
        backend: the interpreter whose reference kernels score them ("auto", "litert", "tflite-runtime").
        origins: optional file names the images came from (recorded as ``origin``).

    Returns:
        ``(files, samples)``: bundle-relative name -> bytes, and the manifest's ``golden`` list.
    """
    from edgecnn.devices.golden_kernels import golden_scores

    longest = max(SOURCE_MAX_SIDE, *size)
    files, inputs, samples = {}, [], []
    for i, rgb in enumerate(images):
        png = _source(np.ascontiguousarray(rgb), longest)
        model_input = resize_rgb(_decode_png(png), size, resize)  # what the board derives from the PNG
        buf = io.BytesIO()
        np.save(buf, model_input, allow_pickle=False)
        files[f"golden/{i:03d}.png"] = png
        files[f"golden/{i:03d}.npy"] = buf.getvalue()
        inputs.append(model_input)
        sample = {"input": f"golden/{i:03d}.npy", "source": f"golden/{i:03d}.png"}
        if origins is not None:
            sample["origin"] = str(origins[i])
        samples.append(sample)
    for sample, (scores, atol) in zip(samples, golden_scores(content, inputs, mean, std, backend)):
        sample.update(scores=[round(float(v), 8) for v in scores], atol=float(atol), top1=int(np.argmax(scores)))
    return files, samples
