"""What was done to a copy: mirrored, cropped, brighter or darker, more or less contrast, resized,
saved in another format. Found by aligning the pair, not guessed from the hash that matched.

Both images keep a 64-pixel grayscale thumbnail from the scan (``ImageRecord.gray``). The copy's is
compared with a box cut from the original's, mirrored or not, by normalised correlation (so
brightness and contrast do not move the match); the box starts at the view that matched (or at the
whole image) and each side moves in steps of 4, 2 and 1% while the correlation improves. Then the
aligned pixels are compared: the ratio of mean luma says brighter or darker, the ratio of the
coefficient of variation (standard deviation over mean, which a brightness factor leaves alone)
says more or less contrast, the pixel sizes say resized, the formats and file hashes say re-encoded.
"""

from typing import Dict, Optional

import numpy as np

MATCH_SIDE = 32  # the copy and the cut box are compared at this size
MAX_CROP = 0.2  # no side is searched beyond this
STEPS = (0.04, 0.02, 0.01)
MIN_CROP = 0.025  # a side cut by less is alignment noise (about a pixel and a half of the thumbnail)
BRIGHTNESS_RATIO = 1.08  # mean luma ratio that counts as brighter (1/1.08: darker)
CONTRAST_RATIO = 1.1  # coefficient-of-variation ratio that counts as more contrast (1/1.1: less)
RESIZE_RATIO = 1.1  # pixel-size ratio (after the crop) that counts as resized


def _cut(gray: np.ndarray, box, mirrored: bool) -> np.ndarray:
    """The ``(left, top, right, bottom)`` box of a thumbnail at MATCH_SIDE, mirrored afterwards if asked."""
    import cv2

    side = gray.shape[0]
    l, t, r, b = (int(round(v * side)) for v in box)
    region = gray[t:side - b, l:side - r]
    small = cv2.resize(region, (MATCH_SIDE, MATCH_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    return small[:, ::-1] if mirrored else small


def _unit(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit norm: the dot product of two such arrays is their normalised correlation."""
    x = x.ravel() - x.mean()
    return x / max(float(np.sqrt(x @ x)), 1e-6)


def _align(container: np.ndarray, part: np.ndarray, box, mirrored: bool, steps=STEPS):
    """``(score, box)``: coordinate ascent of the correlation over the four sides of the box."""
    target = _unit(part)
    box = list(box)
    score = float(_unit(_cut(container, box, mirrored)) @ target)
    for step in steps:
        improved = True
        while improved:
            improved = False
            for side in range(4):
                for delta in (step, -step):
                    trial = list(box)
                    trial[side] = round(trial[side] + delta, 3)
                    if not 0.0 <= trial[side] <= MAX_CROP:
                        continue
                    s = float(_unit(_cut(container, trial, mirrored)) @ target)
                    if s > score + 1e-4:
                        score, box, improved = s, trial, True
    return score, box


def aligned_thumb_distance(container, copy, crop, mirrored: bool) -> float:
    """The 8x8 colour thumbnail check of :mod:`edgecnn.audit.duplicates` on an aligned pair: ``copy``'s
    thumbnail against the box of ``container`` that best matches it (from the view ``crop``, ``mirrored``)."""
    import cv2

    from edgecnn.audit.duplicates import normalise_thumbs

    # from a view of the grid the crop is at most 2.5% off per side: the fine steps suffice
    _, box = _align(container.gray, _cut(copy.gray, (0, 0, 0, 0), False), crop, mirrored, STEPS[1:])
    side = container.colour.shape[0]
    l, t, r, b = (int(round(v * side)) for v in box)
    region = cv2.resize(container.colour[t:side - b, l:side - r], (8, 8), interpolation=cv2.INTER_AREA)
    region = region[:, ::-1] if mirrored else region
    z = normalise_thumbs(np.stack([region, copy.thumb]))
    return float(np.abs(z[0] - z[1]).mean())


def _words(crop, mirrored, bright, contrast, scale, fmt_a, fmt_b) -> list:
    words = ["mirrored"] if mirrored else []
    if max(crop) >= MIN_CROP:
        even = max(crop) - min(crop) < MIN_CROP
        words.append(f"cropped {np.mean(crop):.0%}" if even else
                     "cropped " + ", ".join(f"{side} {v:.0%}" for side, v in zip(("left", "top", "right", "bottom"),
                                                                                  crop) if v >= MIN_CROP))
    if bright >= BRIGHTNESS_RATIO or bright <= 1 / BRIGHTNESS_RATIO:
        words.append("brighter" if bright > 1 else "darker")
    if contrast >= CONTRAST_RATIO or contrast <= 1 / CONTRAST_RATIO:
        words.append("more contrast" if contrast > 1 else "less contrast")
    if scale >= RESIZE_RATIO or scale <= 1 / RESIZE_RATIO:
        words.append(f"resized to {scale:.0%}")
    if fmt_a != fmt_b:
        words.append(f"saved as {fmt_b}")
    return words or ["re-encoded"]


def describe_pair(rec_a, rec_b, hint: Optional[dict] = None) -> Dict:
    """How one image of a near-duplicate pair (two ImageRecords) differs from the other.

    Args:
        hint: from the view search: ``{"container": 0 or 1, "mirrored", "crop"}``, the image whose view
            matched and that view; without it both directions and both mirror states are tried.

    Returns:
        ``{"a", "b", "how", "crop", "mirrored", "brightness", "contrast", "scale", "match"}``: ``a`` the
        larger view (the original, as far as pixels tell) and ``b`` the copy, ``how`` in words ("mirrored,
        cropped 6%, brighter"), the crop per side (left, top, right, bottom) as fractions of ``a``, the
        ratios of ``b`` to ``a``, and the alignment's correlation (1.0: the same pixels).
    """
    if rec_a.sha256 == rec_b.sha256:
        return {"a": rec_a.rel, "b": rec_b.rel, "how": "identical file", "crop": [0.0] * 4, "mirrored": False,
                "brightness": 1.0, "contrast": 1.0, "scale": 1.0, "match": 1.0}
    recs = (rec_a, rec_b)
    if hint and any(hint["crop"]):
        starts = [(hint["container"], hint["mirrored"], hint["crop"])]
    elif hint:  # the plain image matched: which one is the copy is not known
        starts = [(c, hint["mirrored"], (0.0, 0.0, 0.0, 0.0)) for c in (0, 1)]
    else:  # from the whole image and from a centred 8% crop, which a crop of 10% per side is nearer to
        starts = [(c, m, box) for c in (0, 1) for m in (False, True) for box in ((0.0,) * 4, (0.08,) * 4)]
    tried = []
    for container, mirrored, box in starts:
        orig, copy = recs[container], recs[1 - container]
        part = _cut(copy.gray, (0, 0, 0, 0), False)
        score, found = _align(orig.gray, part, box, mirrored)
        tried.append((score, container, mirrored, found))
    top = max(t[0] for t in tried)
    # Within a hair of the best (an uncropped pair fits both ways): the one with more pixels is the
    # original, then the first of the pair (train before val).
    near = [t for t in tried if t[0] >= top - 0.005]
    score, container, mirrored, crop = min(near, key=lambda t: (-recs[t[1]].width * recs[t[1]].height, t[1], -t[0]))
    orig, copy = recs[container], recs[1 - container]
    region, part = _cut(orig.gray, crop, mirrored), _cut(copy.gray, (0, 0, 0, 0), False)
    bright = max(part.mean(), 1.0) / max(region.mean(), 1.0)
    contrast = (max(part.std(), 1e-3) / max(part.mean(), 1.0)) / (max(region.std(), 1e-3) / max(region.mean(), 1.0))
    scale = copy.width / max(1.0, (1 - crop[0] - crop[2]) * orig.width)
    words = _words(crop, mirrored, bright, contrast, scale, orig.format, copy.format)
    return {"a": orig.rel, "b": copy.rel, "how": ", ".join(words), "crop": [round(v, 3) for v in crop],
            "mirrored": bool(mirrored), "brightness": round(float(bright), 3), "contrast": round(float(contrast), 3),
            "scale": round(float(scale), 3), "match": round(score, 3)}
