"""Perceptual hashes (dHash, pHash) as 64-bit integers, and Hamming distances. numpy + OpenCV.

Two images whose hashes differ in at most a few of the 64 bits look alike: the same photo
re-encoded, resized, slightly brightened or cropped by a few pixels.
"""

import numpy as np

HASH_BITS = 64
HASH_METHODS = ("dhash", "phash")
_POWERS = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)


def _pack(bits: np.ndarray) -> int:
    return int(np.bitwise_or.reduce(_POWERS[bits.ravel().astype(bool)], initial=np.uint64(0)))


def dhash(rgb: np.ndarray) -> int:
    """Difference hash: a 9x8 grayscale thumbnail, one bit per horizontal neighbour comparison."""
    import cv2

    small = cv2.resize(_gray(rgb), (9, 8), interpolation=cv2.INTER_AREA)
    return _pack(small[:, 1:] > small[:, :-1])


def phash(rgb: np.ndarray) -> int:
    """DCT hash: a 32x32 grayscale thumbnail, the 8x8 lowest frequencies against their median."""
    import cv2

    small = cv2.resize(_gray(rgb), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8]
    median = np.median(low.ravel()[1:])  # the DC term says only how bright the image is
    return _pack(low > median)


def image_hash(rgb: np.ndarray, method: str = "phash") -> int:
    """The 64-bit perceptual hash of an RGB (or grayscale) image with ``method``."""
    if method == "dhash":
        return dhash(rgb)
    if method == "phash":
        return phash(rgb)
    raise ValueError(f"unknown hash method '{method}'; use one of {', '.join(HASH_METHODS)}")


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64 (vectorised SWAR popcount)."""
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x).astype(np.int64)
    m1, m2, m4 = np.uint64(0x5555555555555555), np.uint64(0x3333333333333333), np.uint64(0x0F0F0F0F0F0F0F0F)
    h01 = np.uint64(0x0101010101010101)
    with np.errstate(over="ignore"):
        x = x - ((x >> np.uint64(1)) & m1)
        x = (x & m2) + ((x >> np.uint64(2)) & m2)
        x = (x + (x >> np.uint64(4))) & m4
        return ((x * h01) >> np.uint64(56)).astype(np.int64)


def hamming(a, b) -> np.ndarray:
    """Hamming distance between uint64 hashes (broadcasting)."""
    return popcount64(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)))
