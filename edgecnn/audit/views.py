"""Views: the hashes of an image, its mirror image and its crops, so that edited copies still match.

A plain perceptual hash survives re-encoding, resizing, brightness and contrast, but not a mirror
image (a model trained with flip augmentation has seen it) nor a crop of more than a few percent
(the hash of a crop is the hash of another layout). So each image is hashed in 24 views: itself, 3
centred crops (4, 8 and 12% per side), 8 off-centre crops (10% off one side or two adjacent sides,
5% off each side of one axis and 10% off one side of the other), and the mirror image of each. A
copy matches its original when its plain hash is within ``max_distance`` bits of any view of the
original (or the other way round).

Chosen by measurement on the hymenoptera train photos (``benchmarks/audit_recall.py``): with
the plain hash alone a mirrored copy is 30+ bits away and one cropped 10% per side 12-20; with
the 12 centred crops and their mirrors (8 views) random crops of up to 10% per side are within 12
bits in 91% of copies; with these 24 views in 100% (a crop off one side only: 99%), while the
nearest view of any of the other real photos stays at 10 bits or more (14 or more for all but one).

The search indexes every view (``n * 24`` hashes) in the multi-index of
:mod:`edgecnn.audit.duplicates` and looks up each image's plain hash; the naive search compares
each plain hash with every view and finds the same pairs.
"""

from typing import Callable, List, Optional, Tuple

import numpy as np

from edgecnn.audit.duplicates import check_distance, candidates, candidates_naive, normalise_thumbs
from edgecnn.audit.hashing import HASH_INPUT, hamming

GRAY_SIDE = 160  # the grayscale thumbnail crops are cut from (a 4% crop is 6 pixels of it)


def _crops() -> List[Tuple[float, float, float, float]]:
    """``(left, top, right, bottom)`` fractions cut off, the plain image first."""
    crops = [(0.0, 0.0, 0.0, 0.0)] + [(c, c, c, c) for c in (0.04, 0.08, 0.12)]
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                crops.append((0.05 + 0.05 * dx, 0.05 + 0.05 * dy, 0.05 - 0.05 * dx, 0.05 - 0.05 * dy))
    return crops


CROPS = _crops()
# view k: CROPS[k // 2], mirrored when k is odd
VIEWS = [(crop, mirrored) for crop in CROPS for mirrored in (False, True)]


def describe_view(k: int) -> str:
    """The view in words: ``image``, ``mirrored``, ``crop 8%``, ``mirrored, crop l10 t0 r0 b0%``."""
    (l, t, r, b), mirrored = VIEWS[k]
    words = ["mirrored"] if mirrored else []
    if l == t == r == b and l:
        words.append(f"crop {l:.0%}")
    elif l or t or r or b:
        words.append("crop " + " ".join(f"{side}{v * 100:.0f}" for side, v in zip("ltrb", (l, t, r, b))) + "%")
    return ", ".join(words) or "image"


def _cut(img: np.ndarray, crop) -> np.ndarray:
    h, w = img.shape[:2]
    l, t, r, b = crop
    return img[round(t * h):h - round(b * h), round(l * w):w - round(r * w)]


def view_stack(rgb: np.ndarray, small: np.ndarray, method: str):
    """``(gray thumbnails for hashes_of, 8x8 colour thumbnails, 64x64 grayscale thumbnail)`` of every
    view of an RGB image (best given as its GRAY_SIDE thumbnail; the last one for
    :mod:`edgecnn.audit.transform`); ``small`` is its 64x64 colour thumbnail."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if gray.shape != (GRAY_SIDE, GRAY_SIDE):
        gray = cv2.resize(gray, (GRAY_SIDE, GRAY_SIDE), interpolation=cv2.INTER_AREA)
    h, w = HASH_INPUT[method]
    grays, thumbs = [], []
    for crop in CROPS:
        g = cv2.resize(_cut(gray, crop), (w, h), interpolation=cv2.INTER_AREA)
        c = cv2.resize(_cut(small, crop), (8, 8), interpolation=cv2.INTER_AREA)
        grays += [g, g[:, ::-1]]
        thumbs += [c, c[:, ::-1]]
    return np.stack(grays), np.stack(thumbs), cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)


RECHECK_FACTOR = 1.5  # thumbnails this many times the tolerance apart are compared again, aligned


def _recheck(keep, far, q, holder, view, tolerance, recheck) -> None:
    """Set ``keep`` for the closest near-miss candidate of each pair not yet kept, if it passes aligned."""
    kept = {(min(a, h), max(a, h)) for a, h in zip(q[keep].tolist(), holder[keep].tolist())}
    tried = set()
    for k in np.argsort(far, kind="stable"):  # the closest thumbnail of a pair first: one alignment per pair
        pair = (min(int(q[k]), int(holder[k])), max(int(q[k]), int(holder[k])))
        if keep[k] or pair in kept or pair in tried or far[k] > RECHECK_FACTOR * tolerance:
            continue
        tried.add(pair)
        if recheck(int(q[k]), int(holder[k]), int(view[k])) <= tolerance:
            keep[k] = True
            kept.add(pair)


def near_view_pairs(views: np.ndarray, thumbs: Optional[np.ndarray], max_distance: int,
                    thumb_tolerance: Optional[float], naive: bool = False,
                    recheck: Optional[Callable[[int, int, int], float]] = None) -> List[Tuple[int, int, int, int, int]]:
    """Near-duplicate pairs of images from their view hashes (N x V) and view thumbnails (N x V x 8x8x3).

    A view is cut on a fixed grid, so a copy cropped between two grid crops is a little off every view
    and its thumbnail can miss the tolerance by that much: ``recheck(query, holder, view)`` (when given)
    returns the thumbnail distance once the pair is aligned exactly (:func:`edgecnn.audit.transform.
    aligned_thumb_distance`), for the candidates within ``RECHECK_FACTOR`` times the tolerance.

    Returns:
        Sorted ``(i, j, distance, view, holder)`` with ``i < j``: the plain hash of one image of the
        pair is ``distance`` bits from view ``view`` of image ``holder`` (``i`` or ``j``). Each pair
        once, with its closest view (the plain image before a crop or a mirror image at a tie).
    """
    check_distance(max_distance)
    views = np.asarray(views, dtype=np.uint64)
    n, v = views.shape if views.ndim == 2 else (0, len(VIEWS))
    index, plain = views.reshape(-1), views[:, 0] if n else np.empty(0, np.uint64)
    find = candidates_naive if naive else candidates
    q, e = find(index, plain, max_distance)
    holder, view = e // max(v, 1), e % max(v, 1)
    d = hamming(plain[q], index[e])
    keep = (holder != q) & (d <= max_distance)
    q, holder, view, d = q[keep], holder[keep], view[keep], d[keep]
    if thumbs is not None and thumb_tolerance is not None and len(q):
        z = normalise_thumbs(np.asarray(thumbs).reshape(n * v, -1))
        far = np.abs(z[q * v] - z[holder * v + view]).mean(axis=1)
        keep = far <= thumb_tolerance
        if recheck is not None:
            _recheck(keep, far, q, holder, view, thumb_tolerance, recheck)
        q, holder, view, d = q[keep], holder[keep], view[keep], d[keep]
    best = {}
    for a, h, k, dist in zip(q.tolist(), holder.tolist(), view.tolist(), d.tolist()):
        key = (min(a, h), max(a, h))
        if key not in best or (dist, k) < best[key][:2]:
            best[key] = (dist, k, h)
    return sorted((i, j, dist, k, h) for (i, j), (dist, k, h) in best.items())
