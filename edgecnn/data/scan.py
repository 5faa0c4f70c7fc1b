"""Scan image files before training: decode each one fully and say why a file cannot be used.

Pillow and numpy only (no TensorFlow, no OpenCV), so ``edgecnn audit`` and ``finetune`` share it.

What a scan catches, and what it does with it:

* not an image, zero-byte, truncated or corrupt (a full decode with ``im.load()``): skipped;
* a decompression bomb: ``width * height > max_pixels``, checked from the header before any pixel is
  decoded: skipped;
* a placeholder or blank image (few distinct colours with one dominant colour, or a uniform
  image, such as a "this image could not be found" GIF): skipped;
* a real format that does not match the extension (a PNG named ``.jpg``): the image decodes
  correctly, so it is **kept**, with a warning in ``ScanResult.reason``.

``load_image_rgb`` turns every supported mode into H x W x 3 uint8 RGB: grayscale, palette,
RGBA (composited on white), CMYK, 16-bit; the first frame of an animation; EXIF orientation
applied.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from edgecnn.devices.imageio import MAX_PIXELS as DEFAULT_MAX_PIXELS  # one cap, board and workstation
from edgecnn.errors import DataError

# Pillow's own warnings (a truncated EXIF, a large image under the cap) are the scan's verdicts to give,
# not the user's to read. One process-wide filter, not catch_warnings around each decode: the scan
# decodes on a thread pool, and catch_warnings from several threads at once can leave the process's
# filters as one thread's "ignore everything" (a later warning of edgecnn's own was then lost).
warnings.filterwarnings("ignore", module=r"PIL(\..*)?$")
warnings.filterwarnings("ignore", message="Image size .* exceeds limit")

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

# Pillow format names an extension may carry without a warning.
_EXTENSION_FORMATS = {
    ".jpg": {"JPEG", "MPO"},
    ".jpeg": {"JPEG", "MPO"},
    ".png": {"PNG"},
    ".bmp": {"BMP", "DIB"},
    ".gif": {"GIF"},
    ".webp": {"WEBP"},
    ".tif": {"TIFF"},
    ".tiff": {"TIFF"},
}
# Formats Pillow may recognise that we accept as images.
_ACCEPTED_FORMATS = set().union(*_EXTENSION_FORMATS.values())

# Placeholder / blank detection (on a subsample of at most ~128 px per side, colours at 5 bits).
PLACEHOLDER_MAX_COLOURS = 64
PLACEHOLDER_MIN_DOMINANT = 0.5
BLANK_MAX_STD = 2.0


@dataclass
class ScanResult:
    """The verdict on one file.

    Attributes:
        path: the file scanned.
        ok: True when the file can be used for training.
        reason: why it is skipped (``ok`` False), or a warning about a kept file (``ok`` True,
            e.g. a PNG named ``.jpg``); None for a clean image.
        format: the real format Pillow found (``JPEG``, ``PNG``...), None when unreadable.
        width, height: from the header (0 when unreadable).
        mode: Pillow mode of the file (``RGB``, ``P``, ``CMYK``, ``I;16``...).
    """

    path: Path
    ok: bool
    reason: Optional[str]
    format: Optional[str]
    width: int
    height: int
    mode: Optional[str]


class _Unusable(Exception):
    """Internal: a file cannot be used; the message is the reason."""

    def __init__(self, reason, fmt=None, width=0, height=0, mode=None):
        super().__init__(reason)
        self.reason, self.format, self.width, self.height, self.mode = reason, fmt, width, height, mode


def _open_checked(path: Path, max_pixels: int):
    """Open ``path`` (header only) and refuse empty files, non-images and bombs before decoding."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _Unusable(f"cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise _Unusable("empty file (0 bytes)")
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise _Unusable(f"decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise _Unusable("not an image (Pillow cannot identify the file format)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise _Unusable(f"not a readable image ({exc})") from None
    width, height = im.size
    if im.format not in _ACCEPTED_FORMATS:
        im.close()
        raise _Unusable(f"unsupported image format {im.format}; convert it to JPEG or PNG",
                        im.format, width, height, im.mode)
    if width <= 0 or height <= 0:
        im.close()
        raise _Unusable(f"image has no pixels ({width}x{height})", im.format, width, height, im.mode)
    if width * height > max_pixels:
        im.close()
        raise _Unusable(f"decompression bomb: {width}x{height} = {width * height:,} pixels is over the "
                        f"limit of {max_pixels:,} (max_pixels); not decoded",
                        im.format, width, height, im.mode)
    return im


def _to_rgb(im) -> np.ndarray:
    """Decode ``im`` (first frame, EXIF orientation applied) into H x W x 3 uint8 RGB."""
    from PIL import Image, ImageOps

    try:
        im.seek(0)
    except EOFError:
        pass
    im.load()  # full decode: truncated or corrupt data raises here
    if im.format in ("JPEG", "MPO", "TIFF", "WEBP", "PNG"):
        try:
            transposed = ImageOps.exif_transpose(im)
        except Exception:  # a broken EXIF block must not lose an otherwise good image
            transposed = None
        if transposed is not None:
            im = transposed
    mode = im.mode
    if mode == "RGB":
        return np.array(im, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im)
        if arr.dtype.kind == "f":
            arr = np.clip(arr, 0, 255)
        elif arr.max(initial=0) > 255:
            # 16-bit data (also Pillow's mode "I" for 16-bit PNGs): keep the top 8 bits.
            arr = np.clip(arr, 0, 65535) / 257.0
        gray = np.round(arr).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.array(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    return np.array(im.convert("RGB"), dtype=np.uint8)


def degenerate_reason(rgb: np.ndarray) -> Optional[str]:
    """Why an image looks like a placeholder or a blank frame, or None for a real picture.

    A placeholder ("image not found" GIFs and the like) has few distinct colours and one colour
    covering most of it; a blank frame is (nearly) uniform. Photos have thousands of colours.
    """
    h, w = rgb.shape[:2]
    step = max(1, max(h, w) // 128)
    sub = np.ascontiguousarray(rgb[::step, ::step])  # a copy is faster to reduce than a strided view
    std = float(sub.std())
    if std < BLANK_MAX_STD:
        return f"blank image (uniform colour, pixel std {std:.2f})"
    q = sub >> 3
    key = (q[..., 0].astype(np.uint16) << 10) | (q[..., 1].astype(np.uint16) << 5) | q[..., 2]  # 15 bits
    counts = np.bincount(key.ravel(), minlength=1 << 15)
    distinct = int(np.count_nonzero(counts))
    dominant = float(counts.max()) / float(key.size)
    if distinct <= PLACEHOLDER_MAX_COLOURS and dominant >= PLACEHOLDER_MIN_DOMINANT:
        return (f"placeholder or blank image ({distinct} distinct colours, one colour covers "
                f"{dominant:.0%} of it), not a photo")
    return None


def _extension_warning(path: Path, fmt: Optional[str]) -> Optional[str]:
    expected = _EXTENSION_FORMATS.get(path.suffix.lower())
    if fmt is None or expected is None or fmt in expected:
        return None
    return (f"extension {path.suffix} but the file is {fmt}; kept because it decodes correctly "
            f"(rename it to .{fmt.lower()} to silence this warning)")


def _orientation(im) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _scan(path: Path, max_pixels: int) -> Tuple[ScanResult, Optional[np.ndarray], int]:
    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return ScanResult(path, False, f"not an image file (extension '{path.suffix}')",
                          None, 0, 0, None), None, 1
    try:
        im = _open_checked(path, max_pixels)
    except _Unusable as exc:
        return ScanResult(path, False, exc.reason, exc.format, exc.width, exc.height, exc.mode), None, 1
    fmt, (width, height), mode = im.format, im.size, im.mode
    orientation = 1
    try:
        rgb = _to_rgb(im)  # decode first: getexif() may load a PNG and swallow its errors
        orientation = _orientation(im)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for corrupt data
        text = str(exc) or type(exc).__name__
        reason = (f"truncated or corrupt image data ({text})" if "truncat" in text.lower()
                  else f"corrupt image data, cannot decode ({text})")
        return ScanResult(path, False, reason, fmt, width, height, mode), None, orientation
    finally:
        im.close()
    bad = degenerate_reason(rgb)
    if bad:
        return ScanResult(path, False, bad, fmt, width, height, mode), None, orientation
    return ScanResult(path, True, _extension_warning(path, fmt), fmt, width, height, mode), rgb, orientation


def scan_file(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ScanResult:
    """Check that ``path`` is a usable image; never raises for a bad file.

    Args:
        path: the image file.
        max_pixels: refuse images with more pixels than this (checked from the header, before
            decoding).

    Returns:
        A ScanResult; ``ok`` False with a ``reason`` for a file to skip.
    """
    return _scan(Path(path), max_pixels)[0]


def scan_details(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[ScanResult, Optional[np.ndarray], int]:
    """Scan ``path`` and return ``(result, rgb, exif_orientation)``; ``rgb`` is None for a skipped file.

    One decode for both, for callers (the audit) that need the pixels of every good file.
    ``exif_orientation`` is the EXIF tag's value (1 = upright, also when there is none).
    """
    return _scan(Path(path), max_pixels)


def load_image_rgb(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` into an H x W x 3 uint8 RGB array.

    Grayscale, palette, RGBA (composited on white), CMYK and 16-bit images are converted; the
    first frame of an animation is used; EXIF orientation is applied. Placeholders are not
    refused here (``scan_file`` does that); unreadable files are.

    Raises:
        DataError: naming the file and why it cannot be read.
    """
    path = Path(path)
    try:
        im = _open_checked(path, max_pixels)
    except _Unusable as exc:
        raise DataError(f"cannot load image '{path}': {exc.reason}. Remove or replace the file "
                        "(`edgecnn audit DATA_DIR` lists every bad file).") from None
    try:
        return _to_rgb(im)
    except Exception as exc:
        raise DataError(f"cannot load image '{path}': corrupt or truncated image data ({exc}). Remove or "
                        "replace the file (`edgecnn audit DATA_DIR` lists every bad file).") from None
    finally:
        im.close()
