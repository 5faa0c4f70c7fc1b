"""Frame preprocessing shared by the board and the workstation (DESIGN rule 5).

The model's graph does its own rescaling, so the only steps outside it are: colour order to RGB,
resize to the model's input size with the manifest's method, and casting or quantizing to the
interpreter's input dtype with the scale and zero point read from the .tflite file (rule 6).
The workstation builds its training and evaluation inputs with the same functions, so both sides
feed identical tensors for the same image.
"""

import numpy as np

from edgecnn.bundle.model import DEFAULT_RESIZE

_CV2_INTERPOLATION = {"bilinear": "INTER_LINEAR", "area": "INTER_AREA", "nearest": "INTER_NEAREST"}


def resize_rgb(rgb: np.ndarray, size, method: str = DEFAULT_RESIZE) -> np.ndarray:
    """Resize an H×W×3 uint8 RGB image to ``size`` (``(height, width)`` or an int) with OpenCV.

    Args:
        rgb: H×W×3 uint8 array in RGB order.
        size: target ``(height, width)`` or a square size.
        method: ``bilinear``, ``area`` or ``nearest`` (as written in the manifest).

    Returns:
        A C-contiguous ``size``×3 uint8 array.
    """
    import cv2

    if isinstance(size, int):
        size = (size, size)
    height, width = int(size[0]), int(size[1])
    try:
        interpolation = getattr(cv2, _CV2_INTERPOLATION[method])
    except KeyError:
        raise ValueError(f"unknown resize method '{method}'; use one of {sorted(_CV2_INTERPOLATION)}") from None
    if rgb.shape[0] == height and rgb.shape[1] == width:
        return np.ascontiguousarray(rgb)
    return np.ascontiguousarray(cv2.resize(rgb, (width, height), interpolation=interpolation))


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """OpenCV frames are BGR; models take RGB."""
    return np.ascontiguousarray(frame[..., ::-1])


def quantize(x: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    """Map real values to an integer input tensor: ``q = round(x / scale) + zero_point``, clipped."""
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    q = np.round(x.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def to_input_tensor(rgb: np.ndarray, size, method: str, dtype, scale: float = 0.0, zero_point: int = 0,
                    mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """Build the 1×H×W×3 tensor an interpreter takes from an RGB image of any size.

    The model's real-valued input is ``(pixel - mean) / std``: mean 0 and std 1 for edgecnn models,
    whose graph rescales itself; Coral's ImageNet models expect mean 127.5-128 and std 128.
    ``dtype``, ``scale`` and ``zero_point`` come from the interpreter's input details (rule 6).
    When quantizing would map pixels onto themselves (``scale * std == 1`` and
    ``mean == zero_point``) the raw resized pixels are fed unchanged, as pycoral does.
    """
    resized = resize_rgb(rgb, size, method)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return ((resized.astype(np.float32) - mean) / std)[None].astype(dtype)
    if not scale or (abs(scale * std - 1.0) < 1e-5 and abs(mean - zero_point) < 1e-5):
        return resized[None].astype(dtype)
    real = (resized.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return quantize(real, dtype, scale, zero_point)[None]
