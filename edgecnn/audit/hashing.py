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

The views of :mod:`edgecnn.audit.views` (an image, its mirror and its crops: 24 hashes per image) use
:func:`hashes_of`, the same two algorithms on a stack of grayscale thumbnails at once: imagehash
runs one image at a time at about 130 us a pHash, which 24 views would make the whole audit's budget.
A test checks that they give imagehash's bits on the same thumbnails.
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


# The hash size each algorithm reads its grayscale thumbnail at, (height, width), as imagehash does.
HASH_INPUT = {"phash": (32, 32), "dhash": (8, 9)}


def _dct_matrix(n: int) -> np.ndarray:
    """DCT-II as a matrix (unnormalised, as scipy.fftpack.dct): ``D @ x`` transforms the columns of x."""
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT32 = _dct_matrix(32)


def hashes_of(gray: np.ndarray, method: str = "phash") -> np.ndarray:
    """64-bit hashes (uint64) of a stack of grayscale thumbnails, N x H x W at ``HASH_INPUT[method]``.

    pHash: the 8x8 lowest frequencies of the 2-D DCT against their median; dHash: one bit per
    horizontal neighbour comparison. The same bits as imagehash's ``phash``/``dhash`` on each thumbnail.
    """
    if method not in HASH_METHODS:
        raise ValueError(f"unknown hash method '{method}'; use one of {', '.join(HASH_METHODS)}")
    g = np.asarray(gray, dtype=np.float64)
    if g.shape[1:] != HASH_INPUT[method]:
        raise ValueError(f"{method} reads {HASH_INPUT[method]} thumbnails, got {g.shape[1:]}")
    if method == "phash":
        low = (_DCT32[:8] @ g @ _DCT32[:8].T).reshape(len(g), 64)
        bits = low > np.median(low, axis=1, keepdims=True)
    else:
        bits = (g[:, :, 1:] > g[:, :, :-1]).reshape(len(g), 64)
    return (bits.astype(np.uint64) * _POWERS).sum(axis=1, dtype=np.uint64)


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
