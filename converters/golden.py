"""Golden samples: a few inputs with the scores the converted model gave on the workstation.

For each sample (format in ``edgecnn/bundle.py``): ``golden/NNN.png``, the source photo downscaled
so its longer side is at most 128 px (lossless, small); ``golden/NNN.npy``, that PNG decoded with
OpenCV, converted to RGB and resized with the manifest's method -- exactly what the board computes
from it -- and the dequantized scores of the converted model on that input from LiteRT's reference kernels, with
a tolerance measured against its optimized ones (:mod:`edgecnn.devices.golden_kernels` says why). ``edgecnn run --self-test`` replays them on the board.
"""

import io
from pathlib import Path
from typing import List

import numpy as np

from edgecnn.devices.preprocess import bgr_to_rgb, resize_rgb

SOURCE_MAX_SIDE = 128


def _png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise RuntimeError("OpenCV could not encode a PNG")
    return buf.tobytes()


def _decode_png(data: bytes) -> np.ndarray:
    import cv2

    return bgr_to_rgb(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


def make_golden(paths: List[Path], content: bytes, size, resize: str) -> tuple:
    """Build golden samples from image files.

    Args:
        paths: source images (held-out images of the run, e.g. the first ones of val).
        content: the converted .tflite model.
        size: the model's ``(height, width)``.
        resize: the manifest's resize method.

    Returns:
        ``(files, samples)``: bundle-relative name -> bytes, and the manifest's golden list.
    """
    from edgecnn.devices.golden_kernels import golden_scores
    from edgecnn.scan import load_image_rgb

    files, inputs, samples = {}, [], []
    for i, path in enumerate(paths):
        rgb = load_image_rgb(path)
        h, w = rgb.shape[:2]
        scale = min(1.0, SOURCE_MAX_SIDE / max(h, w))
        small = resize_rgb(rgb, (max(1, round(h * scale)), max(1, round(w * scale))), "area")
        png = _png_bytes(small)
        model_input = resize_rgb(_decode_png(png), size, resize)  # what the board derives from the PNG
        buf = io.BytesIO()
        np.save(buf, model_input, allow_pickle=False)
        files[f"golden/{i:03d}.png"] = png
        files[f"golden/{i:03d}.npy"] = buf.getvalue()
        inputs.append(model_input)
        samples.append({"input": f"golden/{i:03d}.npy", "source": f"golden/{i:03d}.png",
                        "origin": Path(path).name})
    for sample, (scores, atol) in zip(samples, golden_scores(content, inputs, backend="litert")):
        sample["scores"] = [float(v) for v in scores]
        sample["atol"] = float(atol)
    return files, samples
