"""Calibrated confidence for the board: softmax temperature, per-class thresholds, risk-coverage.

Pure numpy, so it is tested with plain arrays. The board applies the same rule (DESIGN rule 9)::

    scaled = softmax(log(max(p, 1e-12)) / temperature)        # p: dequantized output probabilities
    accept top-1 class c  iff  scaled[c] >= thresholds[c]

``scaled_probs`` *is* the board's function (``edgecnn.devices.decision.to_probabilities``), so the
thresholds are chosen on exactly the numbers the board compares them with.

The temperature is fitted by minimising the negative log-likelihood on the validation split with a
golden-section search over ``log(T)`` (no scipy). Thresholds are chosen per class for a target
precision or a target coverage; both are written to the bundle's ``decision`` section by
:func:`edgecnn.evaluation.calibrate.calibrate_bundle`.
"""

import math

import numpy as np

from edgecnn.devices.decision import top1
from edgecnn.metrics import expected_calibration_error

T_MIN, T_MAX = 0.05, 20.0


def scaled_probs(probs, temperature: float = 1.0) -> np.ndarray:
    """Temperature-scaled probabilities, treating ``log(probs)`` as logits, as the board computes them."""
    from edgecnn.devices.decision import to_probabilities

    return to_probabilities(np.asarray(probs, dtype=np.float32), float(temperature)).astype(np.float64)


def nll(probs, y_true, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true class after temperature scaling."""
    p = scaled_probs(probs, temperature)
    y = np.asarray(y_true, dtype=np.int64)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def fit_temperature(probs, y_true, lo: float = T_MIN, hi: float = T_MAX, tol: float = 1e-4) -> float:
    """The temperature in ``[lo, hi]`` that minimises the NLL (golden-section search on log T).

    The NLL of temperature scaling is unimodal in T for a fixed set of logits, so the search
    converges; a coarse grid first guards against flat regions.
    """
    if len(y_true) == 0:
        return 1.0
    a, b = math.log(lo), math.log(hi)
    grid = np.linspace(a, b, 25)
    values = [nll(probs, y_true, math.exp(g)) for g in grid]
    i = int(np.argmin(values))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(probs, y_true, math.exp(c)), nll(probs, y_true, math.exp(d))
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(probs, y_true, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(probs, y_true, math.exp(d))
    best = math.exp((a + b) / 2)
    # Keep T = 1 unless scaling really helps (avoids a meaningless tweak on a perfect fit).
    return best if nll(probs, y_true, best) < nll(probs, y_true, 1.0) - 1e-9 else 1.0


def thresholds_for_precision(probs, y_true, target: float, num_classes: int = None):
    """Per-class thresholds on the top-1 probability so each class's accepted predictions reach
    ``target`` precision, keeping as many as possible.

    For class c, among images predicted c sorted by confidence, the threshold is the lowest
    confidence at which the precision of all images at or above it is at least ``target``. A class
    that never reaches it gets threshold 1.0 (accept only certain predictions) and is listed in
    ``unreached``.

    Returns:
        ``(thresholds list, unreached class indices)``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    num_classes = num_classes or probs.shape[1]
    y = np.asarray(y_true, dtype=np.int64)
    pred, conf = top1(probs), probs.max(1)
    thresholds, unreached = [], []
    for c in range(num_classes):
        mask = pred == c
        if not mask.any():
            thresholds.append(0.0)
            continue
        order = np.argsort(-conf[mask], kind="stable")
        cs, ok = conf[mask][order], (y[mask][order] == c).astype(np.float64)
        precision = np.cumsum(ok) / np.arange(1, len(ok) + 1)
        # Only cut between distinct confidences: ties are accepted or refused together.
        last_of_tie = np.append(cs[1:] != cs[:-1], True)
        good = np.flatnonzero((precision >= target - 1e-12) & last_of_tie)
        if len(good):
            thresholds.append(float(cs[good[-1]]))
        else:
            thresholds.append(1.0)
            unreached.append(c)
    return thresholds, unreached


def thresholds_for_coverage(probs, coverage: float, num_classes: int = None) -> list:
    """Per-class thresholds that accept about ``coverage`` of each predicted class's images
    (the most confident ones)."""
    probs = np.asarray(probs, dtype=np.float64)
    num_classes = num_classes or probs.shape[1]
    pred, conf = top1(probs), probs.max(1)
    out = []
    for c in range(num_classes):
        cs = np.sort(conf[pred == c])[::-1]
        if not len(cs) or coverage >= 1.0:
            out.append(0.0)
            continue
        k = max(int(math.ceil(coverage * len(cs))), 1)
        out.append(float(cs[k - 1]))
    return out


def apply_thresholds(probs, thresholds):
    """Boolean mask of accepted images: top-1 probability at or above its class's threshold."""
    probs = np.asarray(probs, dtype=np.float64)
    pred = top1(probs)
    return probs.max(1) >= np.asarray(thresholds, dtype=np.float64)[pred]


def selective_metrics(probs, y_true, thresholds) -> dict:
    """Coverage and accuracy (1 - risk) of the accepted images under ``thresholds``."""
    accepted = apply_thresholds(probs, thresholds)
    y = np.asarray(y_true, dtype=np.int64)
    correct = top1(probs) == y
    n_acc = int(accepted.sum())
    return {"n": int(len(y)), "accepted": n_acc, "coverage": float(accepted.mean()) if len(y) else 0.0,
            "selective_accuracy": float(correct[accepted].mean()) if n_acc else None,
            "risk": float(1 - correct[accepted].mean()) if n_acc else None}


def risk_coverage(probs, y_true) -> dict:
    """The risk-coverage curve (reject the least confident first) and its area (AURC, lower is better).

    Returns:
        ``{"coverage": [...], "risk": [...], "aurc": float}``: point k keeps the k most confident images.
    """
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    if not len(y):
        return {"coverage": [], "risk": [], "aurc": 0.0}
    order = np.argsort(-probs.max(1), kind="stable")
    wrong = (top1(probs) != y)[order].astype(np.float64)
    k = np.arange(1, len(y) + 1)
    risk = np.cumsum(wrong) / k
    coverage = k / len(y)
    return {"coverage": coverage.round(6).tolist(), "risk": risk.round(6).tolist(), "aurc": float(risk.mean())}


def calibration_summary(val_probs, val_y, temperature, thresholds, held_probs=None, held_y=None) -> dict:
    """ECE and NLL before and after scaling on the fitting split (and on a held-out split when given),
    the selective metrics of the thresholds and the risk-coverage curves."""
    def block(p, y):
        scaled = scaled_probs(p, temperature)
        return {"n": int(len(y)),
                # before = what the board shows at temperature 1 (renormalized), the figure the decision compares
                "ece_before": expected_calibration_error(scaled_probs(p, 1.0), y),
                "ece_after": expected_calibration_error(scaled, y),
                "nll_before": nll(p, y, 1.0), "nll_after": nll(p, y, temperature),
                "selective": selective_metrics(scaled, y, thresholds),
                "risk_coverage": risk_coverage(scaled, y)}

    out = {"temperature": float(temperature), "thresholds": [float(t) for t in thresholds],
           "fit": block(val_probs, val_y)}
    if held_probs is not None and len(held_y):
        out["held_out"] = block(held_probs, held_y)
    return out


def stratified_folds(y_true, folds: int = 5, seed: int = 0) -> list:
    """``folds`` index arrays that split the images, each class spread evenly (seeded)."""
    y = np.asarray(y_true, dtype=np.int64)
    rng = np.random.default_rng(seed)
    parts = [[] for _ in range(folds)]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        for i, index in enumerate(members):
            parts[(i + int(c)) % folds].append(int(index))  # the class offset evens out the fold sizes
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts if p]


def cross_validate(probs, y_true, fit_temperature_fn, fit_thresholds_fn, folds: int = 5, seed: int = 0) -> dict:
    """Held-out figures of a calibration recipe: each fold is scored by a fit on the other folds.

    Args:
        probs, y_true: the images' dequantized probabilities and labels.
        fit_temperature_fn: ``(probs, y) -> temperature`` (``fit_temperature``, or a constant).
        fit_thresholds_fn: ``(scaled probs, y) -> thresholds`` on the fitting folds.

    Returns:
        ``{"n", "folds", "ece_before", "ece_after", "nll_before", "nll_after", "selective"}``: ECE
        and NLL of the raw and the out-of-fold scaled probabilities, and the coverage and precision
        of the out-of-fold thresholds (``selective_accuracy``: the precision of accepted top-1s).
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    scaled = np.zeros_like(p)
    accepted = np.zeros(len(y), dtype=bool)
    parts = stratified_folds(y, folds, seed)
    for held in parts:
        fit = np.setdiff1d(np.arange(len(y)), held)
        temperature = fit_temperature_fn(p[fit], y[fit])
        thresholds = fit_thresholds_fn(scaled_probs(p[fit], temperature), y[fit])
        scaled[held] = scaled_probs(p[held], temperature)
        accepted[held] = apply_thresholds(scaled[held], thresholds)
    correct = top1(scaled) == y
    n_acc = int(accepted.sum())
    nll_after = float(-np.log(np.clip(scaled[np.arange(len(y)), y], 1e-12, 1.0)).mean()) if len(y) else 0.0
    return {"n": int(len(y)), "folds": len(parts),
            "ece_before": expected_calibration_error(scaled_probs(p, 1.0), y),
            "ece_after": expected_calibration_error(scaled, y),
            "nll_before": nll(p, y, 1.0), "nll_after": nll_after,
            "selective": {"n": int(len(y)), "accepted": n_acc, "coverage": float(accepted.mean()) if len(y) else 0.0,
                          "selective_accuracy": float(correct[accepted].mean()) if n_acc else None,
                          "risk": float(1 - correct[accepted].mean()) if n_acc else None}}
