"""A deterministic generator of a small class-folder dataset for the demo and the tests.

Each image is a large shape (circle, square, triangle) or a set of stripes on a random
background (colour gradient plus low-frequency texture), with camera-like defects: a lighting
gradient, sensor noise, slight blur, scale/position jitter, a small tilt (+-20 degrees: shapes stay
roughly upright so a small CNN learns them from ~40 images per class), JPEG compression.
The same seed gives byte-identical files. numpy and OpenCV only.
"""

import math
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_CLASSES = ("circle", "square", "triangle", "stripes")
_SUPERSAMPLE = 2  # draw at 2x and downscale, for anti-aliased edges
_JPEG_QUALITY = 90


def _background(rng, n: int) -> np.ndarray:
    """A float32 n x n x 3 background: two-colour gradient plus smooth texture."""
    import cv2

    c0 = rng.uniform(30, 225, 3)
    c1 = np.clip(c0 + rng.uniform(-60, 60, 3), 0, 255)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / max(n - 1, 1)
    t = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    cells = int(rng.integers(2, 6))
    texture = rng.normal(0, rng.uniform(3, 12), (cells, cells, 3)).astype(np.float32)
    img = img + cv2.resize(texture, (n, n), interpolation=cv2.INTER_CUBIC)
    return img.astype(np.float32)


def _contrasting_colour(rng, background: np.ndarray) -> np.ndarray:
    """A colour whose brightness differs clearly from the background's mean."""
    mean = float(background.mean())
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if abs(float(colour.mean()) - mean) >= 90:
            return colour
    return np.full(3, 255.0 if mean < 128 else 0.0) + rng.uniform(-20, 20, 3)


def _rotate(points: np.ndarray, angle: float, centre) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return (points @ rot.T) + np.asarray(centre)


def _draw(cls: str, img: np.ndarray, rng, n: int) -> None:
    import cv2

    colour = tuple(float(v) for v in _contrasting_colour(rng, img))
    half = rng.uniform(0.28, 0.40) * n  # shapes cover a large part of the image
    margin = half + 0.04 * n
    cx, cy = rng.uniform(margin, n - margin, 2)
    angle = rng.uniform(0, 2 * math.pi)
    tilt = math.radians(rng.uniform(-20, 20))  # shapes keep their orientation roughly upright
    shift = 4  # sub-pixel precision bits for cv2 drawing
    scale = 1 << shift
    if cls == "circle":
        cv2.circle(img, (int(cx * scale), int(cy * scale)), int(half * scale), colour, -1, cv2.LINE_AA, shift)
    elif cls in ("square", "triangle"):
        if cls == "square":
            base = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * half * 0.85
        else:
            base = np.array([[math.cos(a), math.sin(a)] for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]) * half * 1.1
        pts = _rotate(base, tilt, (cx, cy))
        cv2.fillPoly(img, [np.round(pts * scale).astype(np.int32)], colour, cv2.LINE_AA, shift)
    elif cls == "stripes":
        period = rng.uniform(0.16, 0.26) * n
        thickness = max(2, int(period * rng.uniform(0.35, 0.55)))
        direction = np.array([math.cos(angle), math.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        centre = np.array([n / 2, n / 2]) + rng.uniform(-0.5, 0.5) * period * normal
        for k in range(-8, 9):
            mid = centre + k * period * normal
            p0 = mid - direction * 2 * n
            p1 = mid + direction * 2 * n
            cv2.line(img, (int(p0[0] * scale), int(p0[1] * scale)), (int(p1[0] * scale), int(p1[1] * scale)),
                     colour, thickness, cv2.LINE_AA, shift)
    else:
        # Any other class name: a polygon with a class-specific number of corners.
        corners = 5 + (sum(map(ord, cls)) % 4)
        base = np.array([[math.cos(2 * math.pi * k / corners), math.sin(2 * math.pi * k / corners)]
                         for k in range(corners)]) * half
        pts = _rotate(base, angle, (cx, cy))
        cv2.fillPoly(img, [np.round(pts * scale).astype(np.int32)], colour, cv2.LINE_AA, shift)


def make_image(cls: str, rng, size: int = 96) -> np.ndarray:
    """One size x size x 3 uint8 RGB image of class ``cls`` drawn with generator ``rng``."""
    import cv2

    n = size * _SUPERSAMPLE
    img = _background(rng, n)
    _draw(cls, img, rng, n)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    # Lighting: a smooth multiplicative gradient (vignette-like), then blur, then sensor noise.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    gx, gy = rng.uniform(-0.35, 0.35, 2)
    light = rng.uniform(0.75, 1.2) * (1 + gx * (xx - 0.5) + gy * (yy - 0.5))
    img = img * light[..., None].astype(np.float32)
    sigma = float(rng.uniform(0.3, 1.0))
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, rng.uniform(2, 8), img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _encode_jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:  # pragma: no cover
        raise RuntimeError("OpenCV could not encode a JPEG")
    return buf.tobytes()


def make_demo_dataset(out_dir, classes: Sequence[str] = DEFAULT_CLASSES, per_class: int = 60, size: int = 96,
                      seed: int = 0, bad_files: bool = False) -> Path:
    """Write a class-folder dataset ``out_dir/<class>/<class>_NNNN.jpg`` and return ``out_dir``.

    Args:
        out_dir: destination folder (created; only the generated file names are overwritten).
        classes: class names; ``circle``, ``square``, ``triangle`` and ``stripes`` have their own
            drawings, any other name gets a polygon with a name-dependent number of corners.
        per_class: images per class.
        size: square image size in pixels.
        seed: the same seed gives byte-identical files.
        bad_files: also write three files the scanner must skip into the first class folder:
            ``bad_empty.jpg`` (0 bytes), ``bad_text.jpg`` (a text file) and ``bad_truncated.jpg``
            (a JPEG cut in half).

    Returns:
        ``Path(out_dir)``.
    """
    from edgecnn.atomic import write_bytes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for ci, cls in enumerate(classes):
        folder = out / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng([int(seed), ci, i])
            (folder / f"{cls}_{i:04d}.jpg").write_bytes(_encode_jpeg(make_image(cls, rng, size)))
    if bad_files and classes:
        folder = out / classes[0]
        write_bytes(folder / "bad_empty.jpg", b"")
        write_bytes(folder / "bad_text.jpg", b"This is a text file with a .jpg name, not an image.\n")
        rng = np.random.default_rng([int(seed), 9999])
        data = _encode_jpeg(make_image(classes[0], rng, size))
        write_bytes(folder / "bad_truncated.jpg", data[: len(data) // 2])
    return out
