"""Perceptual hashes (dHash, pHash) as 64-bit integers, and Hamming distances.

Two images whose hashes differ in at most a few of the 64 bits look alike: the same photo
re-encoded, resized, slightly brightened or cropped by a few pixels.

The hashes are the ``imagehash`` library's (``dhash``: a 9x8 grayscale thumbnail, one bit per
horizontal neighbour comparison; ``phash``: the 8x8 lowest DCT frequencies of a 32x32 grayscale
thumbnail against their median), packed into an integer so that the multi-index search of
:mod:`edgecnn.audit.duplicates` can split them into chunks.

imagehash (4.3.2) replaced a hand-written numpy/OpenCV version once ``benchmarks/audit_speed.py``
(hymenoptera + 3000 generated images, on a shared 2-core machine at load 5-7.5) showed it keeps the
goal: 186-393 images/s over 8 runs, median 278, 7 of 8 at >= 200 (the hand-written one: 186-517 over
6 runs, median 371, also once under 200 at the same load), and in every run the same 160 duplicate
pairs as the naive all-pairs search, all 152 planted copies among them. It is slower: about 320 us
for a pHash of a 64x64 thumbnail against 140 us by hand (dHash 175 against 41 us), and 5-28% fewer
images/s in 4 of 5 back-to-back pairs of benchmark runs.
"""

import numpy as np

HASH_BITS = 64
HASH_METHODS = ("dhash", "phash")
_POWERS = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _pack(bits: np.ndarray) -> int:
    """The 64 booleans of an 8x8 hash as an integer, first bit the most significant."""
    return int(np.bitwise_or.reduce(_POWERS[np.asarray(bits).ravel().astype(bool)], initial=np.uint64(0)))


def image_hash(rgb: np.ndarray, method: str = "phash") -> int:
    """The 64-bit perceptual hash of a uint8 RGB (or grayscale) image with ``method``."""
    if method not in HASH_METHODS:
        raise ValueError(f"unknown hash method '{method}'; use one of {', '.join(HASH_METHODS)}")
    import imagehash
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb))
    digest = imagehash.dhash(image) if method == "dhash" else imagehash.phash(image)
    return _pack(digest.hash)


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
