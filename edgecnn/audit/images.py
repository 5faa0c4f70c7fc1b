"""One pass over every file: scan (the same scanner as finetune), sha256, the perceptual hashes of
its views (:mod:`edgecnn.audit.views`) and the small numbers the shortcut check compares (size,
aspect ratio, brightness, colour, format, EXIF).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn.audit.hashing import hashes_of
from edgecnn.audit.views import GRAY_SIDE, view_stack
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
    hash: int = 0  # the plain view's hash (views[0])
    thumb: Optional[np.ndarray] = None  # THUMB x THUMB x 3 uint8 (view_thumbs[0])
    views: Optional[np.ndarray] = None  # uint64 hash of each view of edgecnn.audit.views.VIEWS
    view_thumbs: Optional[np.ndarray] = None  # V x THUMB x THUMB x 3 uint8
    gray: Optional[np.ndarray] = None  # 64 x 64 uint8, to tell what an edited copy went through
    colour: Optional[np.ndarray] = None  # 32 x 32 x 3 uint8, to check the colours of an aligned pair
    brightness: float = 0.0  # mean luma 0-255
    colour_a: float = 0.0  # CIELAB a*: green (-) to red (+)
    colour_b: float = 0.0  # CIELAB b*: blue (-) to yellow (+)
    grayscale: bool = False


def describe(rgb: np.ndarray, hash_method: str = "phash") -> dict:
    """Perceptual hashes and colour thumbnails of its views, and colour statistics of an RGB image."""
    import cv2

    # One pass over the full-size pixels (the costly one): a 160-pixel thumbnail, and the rest from it.
    mid = cv2.resize(rgb, (GRAY_SIDE, GRAY_SIDE), interpolation=cv2.INTER_AREA) if rgb.shape[:2] != (64, 64) else rgb
    small = cv2.resize(mid, (64, 64), interpolation=cv2.INTER_AREA) if mid.shape[:2] != (64, 64) else mid
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    spread = small.max(axis=2).astype(np.int16) - small.min(axis=2).astype(np.int16)
    grays, thumbs, gray = view_stack(mid, small, hash_method)
    views = hashes_of(grays, hash_method)
    return {
        "hash": int(views[0]),
        "thumb": thumbs[0],
        "views": views,
        "view_thumbs": thumbs,
        "gray": gray,
        "colour": cv2.resize(small, (32, 32), interpolation=cv2.INTER_AREA),
        "brightness": float(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).mean()),
        "colour_a": float(lab[..., 1].mean()),
        "colour_b": float(lab[..., 2].mean()),
        "grayscale": bool(np.percentile(spread, 99) <= 6),
    }


def record_image(path: Path, rel: str, split: str, label: int, hash_method: str = "phash",
                 max_pixels: int = DEFAULT_MAX_PIXELS, keep=None) -> ImageRecord:
    """Scan one file and, when usable, hash and describe it (one decode).

    ``keep(record, rgb)``, when given, receives each usable file's decoded pixels (finetune keeps them at
    the model's input size, so the file is not decoded a second time).
    """
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
    if keep is not None:
        keep(rec, rgb)
    return rec
