"""Exact and near-duplicate search, and grouping of duplicates into leakage / conflicts / copies.

(The audit searches the views of :mod:`edgecnn.audit.views`, an image's mirror image and crops,
with :func:`candidates` below; ``near_pairs`` is the same search on one hash per image.)

Near-duplicates are pairs of images whose 64-bit perceptual hashes differ in at most
``max_distance`` bits and whose 8x8 colour thumbnails, each normalised to zero mean and unit
standard deviation, differ by at most ``thumb_tolerance`` (mean absolute difference, in standard
deviations). The hash compares layout in grayscale; the thumbnail confirms colour (two different
circles on a plain background can share a grayscale hash, not a colour thumbnail). The normalising
makes the check indifferent to brightness and contrast changes, and as strict for dark images as
for bright ones. Measured: re-encoding, resizing, blur and +-30 brightness stay under 0.17;
different images with the same layout start at 0.3.

The search is multi-index hashing: split the 64 bits into ``m`` chunks; by the pigeonhole principle
two hashes within ``d = max_distance`` bits are within ``floor(d / m)`` bits of each other on at
least one chunk. Each chunk's values are sorted once; every image looks up the few keys within that
radius of its own (binary search), so only images sharing a nearby chunk value are compared, and
the cost grows with ``n * probes`` plus the (few) candidates instead of ``n**2``. It returns exactly
the pairs of the naive all-pairs comparison (``near_pairs_naive``): the tests and the benchmark
check it.
"""

from itertools import combinations
from math import comb
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.audit.hashing import HASH_BITS, hamming

MAX_DISTANCE_LIMIT = 32


def _chunks(m: int) -> List[Tuple[int, int]]:
    """``(shift, width)`` of ``m`` near-equal chunks covering the 64 bits."""
    widths = [HASH_BITS // m + (1 if k < HASH_BITS % m else 0) for k in range(m)]
    out, shift = [], 0
    for w in widths:
        out.append((shift, w))
        shift += w
    return out


def _flip_masks(width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``radius`` bits set (the keys to probe around a key)."""
    masks = [0]
    for r in range(1, radius + 1):
        masks.extend(sum(1 << b for b in bits) for bits in combinations(range(width), r))
    return np.asarray(masks, dtype=np.uint64)


def plan_search(n: int, max_distance: int) -> Tuple[int, int]:
    """Choose ``(chunks, radius)`` for ``n`` hashes: the cheapest by a simple cost model.

    With ``m`` chunks and a per-chunk radius ``floor(d / m)``, two hashes within ``d`` bits are within
    the radius on at least one chunk (otherwise the distance would be at least ``m * (radius + 1) > d``).
    Cost per image: ``m * probes`` look-ups plus ``m * probes * n / 2**width`` candidates to verify.
    """
    best = None
    for m in range(1, max_distance + 2):
        width = HASH_BITS // m
        radius = max_distance // m
        if width > 32 and radius > 0:  # too many keys to probe
            continue
        probes = sum(comb(width, r) for r in range(radius + 1))
        cost = m * probes * (2.0 + n / 2.0 ** width)  # measured: a probe costs ~2 verified candidates
        if best is None or cost < best[0]:
            best = (cost, m, radius)
    return best[1], best[2]


def check_distance(max_distance: int) -> None:
    if not 0 <= int(max_distance) <= MAX_DISTANCE_LIMIT:
        raise ValueError(f"max_distance={max_distance} must be between 0 and {MAX_DISTANCE_LIMIT} bits "
                         "(of 64); 4-10 finds re-encoded, resized or slightly edited copies.")


NAIVE_SHARE = 0.05  # more chunk collisions than this share of all comparisons: compare them all instead


def _expected(tables, queries) -> int:
    """How many candidates the chunk look-ups would yield (binary searches only, nothing gathered)."""
    total = 0
    for shift, width, _, sorted_keys, masks in tables:
        qkeys = (queries >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        for start in range(0, len(queries), 4096):
            probes = (qkeys[start:start + 4096, None] ^ masks[None, :]).ravel()
            total += int((np.searchsorted(sorted_keys, probes, side="right")
                          - np.searchsorted(sorted_keys, probes, side="left")).sum())
    return total


def candidates(index: np.ndarray, queries: np.ndarray, max_distance: int, block: int = 4096):
    """``(query, entry)`` index arrays of every query hash within the radius of an ``index`` hash on at
    least one chunk (a superset of the pairs within ``max_distance`` bits; each pair once)."""
    n, nq = len(index), len(queries)
    if n == 0 or nq == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    m, radius = plan_search(n, max_distance)
    tables = []
    for shift, width in _chunks(m):
        keys = (index >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        tables.append((shift, width, order, keys[order], _flip_masks(width, radius)))
    if _expected(tables, queries) > NAIVE_SHARE * n * nq:
        # Hashes that crowd together (generated images, the 24 views of one photo at a large radius)
        # give more chunk collisions than comparisons: then comparing all of them is cheaper.
        return candidates_naive(index, queries, max_distance)
    codes = []
    for shift, width, order, sorted_keys, masks in tables:
        qkeys = (queries >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        for start in range(0, nq, block):
            rows = np.arange(start, min(nq, start + block))
            probes = (qkeys[rows, None] ^ masks[None, :]).ravel()
            lo = np.searchsorted(sorted_keys, probes, side="left")
            counts = np.searchsorted(sorted_keys, probes, side="right") - lo
            hit = counts > 0
            if not hit.any():
                continue
            query = np.repeat(rows, len(masks))[hit]
            lo, counts = lo[hit], counts[hit]
            offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            other = order[np.repeat(lo, counts) + offsets]
            codes.append(np.repeat(query, counts).astype(np.int64) * n + other.astype(np.int64))
    if not codes:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    codes = np.unique(np.concatenate(codes))
    return codes // n, codes % n


def candidates_naive(index: np.ndarray, queries: np.ndarray, max_distance: int, block: int = 512):
    """``(query, entry)`` of every query hash within ``max_distance`` bits of an ``index`` hash, by
    comparing all of them (quadratic; for tests and the benchmark)."""
    out_q, out_e = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for start in range(0, len(queries), block):
        rows = np.arange(start, min(len(queries), start + block))
        r, c = np.nonzero(hamming(queries[rows, None], index[None, :]) <= max_distance)
        out_q.append(rows[r].astype(np.int64))
        out_e.append(c.astype(np.int64))
    return np.concatenate(out_q), np.concatenate(out_e)


def _candidates(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Pair codes ``i * n + j`` (i < j) of images within the radius on at least one chunk."""
    n = len(hashes)
    i, j = candidates(hashes, hashes, max_distance)
    keep = i < j
    return i[keep] * n + j[keep]


def normalise_thumbs(thumbs: np.ndarray) -> np.ndarray:
    """N x ... uint8 thumbnails -> N x K float32, each with zero mean and unit std (std floored at 2)."""
    t = np.asarray(thumbs, dtype=np.float32).reshape(len(thumbs), -1)
    t = t - t.mean(axis=1, keepdims=True)
    return t / np.maximum(t.std(axis=1, keepdims=True), 2.0)


def _confirm(i, j, hashes, thumbs, max_distance, thumb_tolerance):
    """Keep the pairs within ``max_distance`` bits (and the thumbnail tolerance when thumbs are given)."""
    d = hamming(hashes[i], hashes[j])
    keep = d <= max_distance
    i, j, d = i[keep], j[keep], d[keep]
    if thumbs is not None and thumb_tolerance is not None and len(i):
        z = normalise_thumbs(thumbs)
        keep = np.abs(z[i] - z[j]).mean(axis=1) <= thumb_tolerance
        i, j, d = i[keep], j[keep], d[keep]
    return i, j, d


def near_pairs(hashes, max_distance: int = 8, thumbs: Optional[np.ndarray] = None,
               thumb_tolerance: Optional[float] = None) -> List[Tuple[int, int, int]]:
    """Near-duplicate pairs ``(i, j, distance)`` with ``i < j``, by multi-index hashing (sorted)."""
    check_distance(max_distance)
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    codes = _candidates(hashes, max_distance)
    i, j = codes // max(n, 1), codes % max(n, 1)
    i, j, d = _confirm(i, j, hashes, thumbs, max_distance, thumb_tolerance)
    return sorted(zip(i.tolist(), j.tolist(), d.tolist()))


def near_pairs_naive(hashes, max_distance: int = 8, thumbs: Optional[np.ndarray] = None,
                     thumb_tolerance: Optional[float] = None) -> List[Tuple[int, int, int]]:
    """The same pairs by comparing every pair (quadratic; for tests and the benchmark)."""
    check_distance(max_distance)
    hashes = np.asarray(hashes, dtype=np.uint64)
    i, j = candidates_naive(hashes, hashes, max_distance)
    keep = i < j
    i, j, d = _confirm(i[keep], j[keep], hashes, thumbs, max_distance, thumb_tolerance)
    return sorted(zip(i.tolist(), j.tolist(), d.tolist()))


def exact_pairs(digests: Sequence[str]) -> List[Tuple[int, int]]:
    """Pairs of items with the same content hash (each file linked to the first of its kind)."""
    first: Dict[str, int] = {}
    pairs = []
    for k, digest in enumerate(digests):
        if digest is None:
            continue
        if digest in first:
            pairs.append((first[digest], k))
        else:
            first[digest] = k
    return pairs


def connected_groups(n: int, pairs) -> List[List[int]]:
    """Connected components (size >= 2) of the graph with ``pairs`` as edges, sorted."""
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pair in pairs:
        a, b = find(pair[0]), find(pair[1])
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: Dict[int, List[int]] = {}
    for k in range(n):
        groups.setdefault(find(k), []).append(k)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def classify_groups(groups, labels: Sequence[int], splits: Sequence[str], digests: Sequence[str]) -> Dict[str, list]:
    """Sort duplicate groups into ``leakage`` (several splits), ``label_conflicts`` (several labels),
    ``exact_duplicates`` and ``near_duplicates`` (one class, one split; exact when every member
    has the same content hash). A group in several splits and with several labels counts in both
    ``leakage`` and ``label_conflicts``.
    """
    out = {"leakage": [], "label_conflicts": [], "exact_duplicates": [], "near_duplicates": []}
    for group in groups:
        multi_split = len({splits[k] for k in group}) > 1
        multi_label = len({labels[k] for k in group}) > 1
        if multi_split:
            out["leakage"].append(group)
        if multi_label:
            out["label_conflicts"].append(group)
        if not multi_split and not multi_label:
            exact = len({digests[k] for k in group}) == 1
            out["exact_duplicates" if exact else "near_duplicates"].append(group)
    return out
