"""Reading images and opening videos on the board, safely, whatever the file is called.

* Names that are not valid UTF-8 (a folder copied from a camera or an old file system) crash
  OpenCV's path functions with SIGSEGV. Images are therefore read through bytes
  (``np.fromfile`` + ``cv2.imdecode``), and a video whose name OpenCV cannot take is opened
  through ``/proc/self/fd/N``.
* A decompression bomb (a small PNG that decodes to 30000x30000 pixels, 5 GB) would kill a 1-4 GB
  board. Its size is read from the header first and it is refused above :data:`MAX_PIXELS`, the
  one pixel cap of the project: the training scanner (:mod:`edgecnn.data.scan`) imports it from
  here, so the board and the workstation refuse the same images.
"""

import os
import struct
from pathlib import Path

import numpy as np

from edgecnn.errors import DeviceError

MAX_PIXELS = 50_000_000  # own decompression-bomb cap (PIL's warning is not enough)
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data: bytes):
    """``(width, height)`` from an encoded image's header, or None when the format is not known."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
        if data[:1] == b"P" and data[1:2] in b"123456":
            tokens = _pnm_tokens(data[2:])
            return int(tokens[0]), int(tokens[1])
        if data[:4] == b"GIF8":
            return struct.unpack("<HH", data[6:10])
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _jpeg_size(data):
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length field
            i += 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def _webp_size(data):
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = struct.unpack("<I", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def _tiff_size(data):
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    found = {}
    for k in range(count):
        tag, kind = struct.unpack(order + "HH", data[offset + 2 + 12 * k:offset + 6 + 12 * k])
        value = data[offset + 10 + 12 * k:offset + 14 + 12 * k]
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2 if kind == 3 else 4])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm_tokens(rest: bytes):
    tokens = []
    for line in rest[:1024].splitlines():
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 2:
            return tokens
    raise ValueError("no size in the PNM header")


def read_image(path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to a BGR uint8 array; DeviceError saying why when it cannot or must not.

    The header is read and checked before the rest of the file: unknown formats and images over
    ``max_pixels`` are refused without decoding a pixel.
    """
    import cv2

    path = Path(path)
    try:
        with open(path, "rb") as fh:  # opened by Python: any file name works
            data = fh.read(1 << 18)
            size = image_size(data)
            if size is None and data[:2] == b"\xff\xd8":  # a JPEG's size can follow large metadata
                data += fh.read()
                size = image_size(data)
            if size is None:
                raise DeviceError(f"'{path}' is not an image this board can check (no PNG, JPEG, BMP, WebP, TIFF "
                                  "or PNM header): skipped.")
            width, height = size
            if width * height > max_pixels:
                raise DeviceError(f"'{path}' is a decompression bomb or far too large: {width}x{height} = "
                                  f"{width * height:,} pixels is over the limit of {max_pixels:,}; not decoded.")
            data += fh.read()
    except OSError as exc:
        raise DeviceError(f"cannot read image '{path}': {exc.strerror or exc}.") from None
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise DeviceError(f"OpenCV cannot decode image '{path}' (corrupt or truncated).")
    return frame


def opencv_path(path):
    """``(name OpenCV can open, fd to close or None)`` for a video file, whatever its name.

    A name that is not valid UTF-8 segfaults cv2.VideoCapture; the file is then opened here and
    given to OpenCV as ``/proc/self/fd/N`` (Linux). Elsewhere such a name is refused clearly.
    """
    text = str(path)
    try:
        text.encode("utf-8")
        return text, None
    except UnicodeEncodeError:
        pass
    if not os.path.isdir("/proc/self/fd"):
        raise DeviceError(f"the video file name {os.fsencode(text)!r} is not valid UTF-8, which OpenCV cannot open "
                          "on this system. Rename the file.")
    fd = os.open(text, os.O_RDONLY)
    return f"/proc/self/fd/{fd}", fd
