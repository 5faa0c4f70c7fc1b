"""One pass over every file: scan (the same scanner as finetune), sha256, perceptual hash and the
small numbers the shortcut check compares (size, aspect ratio, brightness, colour, format, EXIF).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn.audit.hashing import image_hash
from edgecnn.data.scan import DEFAULT_MAX_PIXELS, scan_details

THUMB = 8  # colour thumbnail side used to confirm a near-duplicate


@dataclass
class ImageRecord:
    """What the audit knows about one file (``ok`` False: skipped, with ``reason``)."""

    path: Path
    rel: str
    split: str
    label: int
    ok: bool
    reason: Optional[str]
    format: Optional[str]
    width: int
    height: int
    mode: Optional[str]
    orientation: int = 1
    sha256: Optional[str] = None
    hash: int = 0
    thumb: Optional[np.ndarray] = None  # THUMB x THUMB x 3 uint8
    brightness: float = 0.0  # mean luma 0-255
    colour_a: float = 0.0  # CIELAB a*: green (-) to red (+)
    colour_b: float = 0.0  # CIELAB b*: blue (-) to yellow (+)
    grayscale: bool = False


def describe(rgb: np.ndarray, hash_method: str = "phash") -> dict:
    """Perceptual hash, colour thumbnail and colour statistics of an RGB image."""
    import cv2

    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA) if rgb.shape[:2] != (64, 64) else rgb
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    spread = small.max(axis=2).astype(np.int16) - small.min(axis=2).astype(np.int16)
    return {
        "hash": image_hash(small, hash_method),
        "thumb": cv2.resize(small, (THUMB, THUMB), interpolation=cv2.INTER_AREA),
        "brightness": float(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).mean()),
        "colour_a": float(lab[..., 1].mean()),
        "colour_b": float(lab[..., 2].mean()),
        "grayscale": bool(np.percentile(spread, 99) <= 6),
    }


def record_image(path: Path, rel: str, split: str, label: int, hash_method: str = "phash",
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageRecord:
    """Scan one file and, when usable, hash and describe it (one decode)."""
    from edgecnn.bundle.manifest import sha256_file

    result, rgb, orientation = scan_details(path, max_pixels)
    rec = ImageRecord(path=Path(path), rel=rel, split=split, label=label, ok=result.ok, reason=result.reason,
                      format=result.format, width=result.width, height=result.height, mode=result.mode,
                      orientation=orientation)
    if rgb is None:
        return rec
    rec.sha256 = sha256_file(path)
    for key, value in describe(rgb, hash_method).items():
        setattr(rec, key, value)
    return rec
