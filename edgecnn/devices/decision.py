"""Decisions on the board: pure numpy functions of scores (DESIGN rule 9).

The bundle's ``decision`` section drives them: ``temperature``, per-class ``thresholds``, ``margin``,
``smoothing`` (``{"method": "none"|"ema"|"kofn", "window": n, "alpha": a, "k": k, "hysteresis": h}``)
and ``fallback_action``. A frame is *certain* when its top-1 probability reaches that class's
threshold and beats the runner-up by the margin; an exact tie of the top two is never certain
(``low_margin``), though under margin 0 it keeps :func:`top1`'s class. An uncertain frame is sent to the fallback
model(s) and their probabilities are averaged with the primary's (an ensemble); still uncertain
gives ``unknown``.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from edgecnn.errors import BundleError

UNKNOWN = "unknown"


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``real = scale * (q - zero_point)`` as float32."""
    return (np.float32(scale) * (np.asarray(q).astype(np.float32) - np.float32(zero_point))).astype(np.float32)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax of ``logits / temperature`` along the last axis."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def to_probabilities(scores: np.ndarray, temperature: float = 1.0, kind: str = "probabilities") -> np.ndarray:
    """Calibrated probabilities from model outputs.

    ``kind="probabilities"`` (the model ends in a softmax, as edgecnn and Coral models do): the
    temperature is applied to the log-probabilities, ``softmax(log p / T)``; T=1 only renormalises.
    ``kind="logits"``: ``softmax(scores / T)``.
    """
    scores = np.asarray(scores, dtype=np.float32)
    if kind == "logits":
        return softmax(scores, temperature)
    p = np.clip(scores, 0.0, None)
    if temperature == 1.0:
        total = p.sum(axis=-1, keepdims=True)
        return (p / np.where(total > 0, total, 1.0)).astype(np.float32)
    return softmax(np.log(np.maximum(p, 1e-12)), temperature)


def top1(scores) -> np.ndarray:
    """Index of the highest score along the last axis; of exactly equal scores the lowest index wins.

    The one top-1 of edgecnn: the board's decisions and the workstation's accuracy figures
    (``evaluate``, calibration, the remedy ladder) both call it, so a tie, common in uint8 outputs,
    is resolved to the same class on both sides. The rule is numpy's argmax rule (first maximum).
    """
    return np.argmax(np.asarray(scores), axis=-1)


def top2(probs: np.ndarray):
    """``(top index, top probability, margin over the runner-up)`` of one score vector.

    The top index is :func:`top1`'s; the margin is 0.0 when the top two are exactly equal.
    """
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    index = int(top1(probs))
    if probs.size == 1:
        return index, float(probs[0]), float(probs[0])
    runner_up = float(np.max(np.delete(probs, index)))
    return index, float(probs[index]), float(probs[index]) - runner_up


def uncertainty(probs: np.ndarray, thresholds: Sequence[float], margin: float) -> Optional[str]:
    """None when the top-1 is accepted, else the reason: ``below_threshold`` or ``low_margin``.

    An exact tie of the top two is always ``low_margin``, even with margin 0: which of them is the
    answer was decided by the tie rule, not by the model.
    """
    index, score, gap = top2(probs)
    threshold = float(thresholds[index]) if thresholds is not None and len(thresholds) else 0.0
    if score < threshold:
        return "below_threshold"
    if gap < margin or (gap <= 0.0 and np.asarray(probs).size > 1):
        return "low_margin"
    return None


def _labelled(probs, thresholds, margin) -> bool:
    """Whether a decision on ``probs`` names a class: it is certain, or its only doubt is a tie under
    margin 0 (a policy asking for the plain top-1 gets :func:`top1`'s class, the one ``evaluate``
    counted, still flagged ``low_margin``)."""
    reason = uncertainty(probs, thresholds, margin)
    return reason is None or (reason == "low_margin" and margin <= 0.0)


@dataclass
class FrameDecision:
    """One frame's decision before smoothing."""
    index: Optional[int]          # class index, None for unknown
    score: float                  # probability of ``index`` (or of the top class when unknown)
    probs: np.ndarray             # the probabilities that decided
    model: str                    # "primary" or "ensemble"
    reason: Optional[str] = None  # why the primary was not trusted (None when it was)


def decide(primary_probs: np.ndarray, thresholds, margin: float,
           fallbacks: Sequence[Callable[[], np.ndarray]] = ()) -> FrameDecision:
    """Cascade: accept the primary, else average it with the fallback models' probabilities.

    ``fallbacks`` are callables returning probabilities, called only when the primary is uncertain.
    """
    primary_probs = np.asarray(primary_probs, dtype=np.float32)
    reason = uncertainty(primary_probs, thresholds, margin)
    if reason is None:
        index, score, _ = top2(primary_probs)
        return FrameDecision(index, score, primary_probs, "primary")
    probs, model = primary_probs, "primary"
    if fallbacks:
        probs = np.mean([primary_probs] + [np.asarray(f(), dtype=np.float32) for f in fallbacks], axis=0)
        model = "ensemble"
    index, score, _ = top2(probs)
    return FrameDecision(index if _labelled(probs, thresholds, margin) else None, score, probs, model, reason)


@dataclass
class Smoother:
    """Temporal smoothing of frame decisions with hysteresis.

    ``ema``: exponential moving average of the probabilities; the reported class changes only when
    another class's average beats the current one by ``hysteresis`` and passes its threshold.
    ``kofn``: a class is reported once it won ``k`` of the last ``window`` frames, and kept until
    another class does so or it wins none of the window. ``none``: every frame stands alone.
    """
    method: str = "none"
    window: int = 1
    alpha: float = 0.5
    k: int = 1
    hysteresis: float = 0.0
    thresholds: Optional[Sequence[float]] = None
    _ema: Optional[np.ndarray] = field(default=None, repr=False)
    _history: list = field(default_factory=list, repr=False)
    _current: Optional[int] = field(default=None, repr=False)

    def __post_init__(self):
        self.method = {"k-of-n": "kofn", "k_of_n": "kofn"}.get(self.method, self.method)
        if self.method not in ("none", "ema", "kofn"):
            raise ValueError(f"unknown smoothing method '{self.method}'; use none, ema or kofn")

    def update(self, frame: FrameDecision):
        """Feed one frame; return ``(index or None, score)`` to report."""
        if self.method == "ema":
            return self._update_ema(frame)
        if self.method == "kofn":
            return self._update_kofn(frame)
        return frame.index, frame.score

    def _threshold(self, index):
        return float(self.thresholds[index]) if self.thresholds is not None and len(self.thresholds) else 0.0

    def _update_ema(self, frame):
        p = np.asarray(frame.probs, dtype=np.float32)
        self._ema = p.copy() if self._ema is None else self.alpha * p + (1.0 - self.alpha) * self._ema
        top = int(top1(self._ema))
        if self._current is None or (top != self._current and
                                     self._ema[top] - self._ema[self._current] > self.hysteresis):
            self._current = top if self._ema[top] >= self._threshold(top) else None
        if self._current is not None and self._ema[self._current] < self._threshold(self._current):
            self._current = None
        index = self._current
        return index, float(self._ema[index if index is not None else top])

    def _update_kofn(self, frame):
        self._history.append(frame.index)
        del self._history[:-max(1, self.window)]
        counts = {}
        for index in self._history:
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        winners = [i for i, c in counts.items() if c >= self.k and i != self._current]
        if winners:
            self._current = max(winners, key=lambda i: counts[i])
        elif self._current is not None and counts.get(self._current, 0) == 0:
            self._current = None
        if self._current is None:
            return None, frame.score
        return self._current, float(frame.probs[self._current])


class Policy:
    """The bundle's decision section as a callable: probabilities in, labelled decision out."""

    def __init__(self, decision: dict, labels: Sequence[str]):
        self.labels = list(labels)
        self.temperature = float(decision.get("temperature", 1.0))
        self.kind = decision.get("scores", "probabilities")
        self.thresholds = np.asarray(decision.get("thresholds") or [0.0] * len(self.labels), dtype=np.float32)
        if self.thresholds.size != len(self.labels):  # the manifest schema refuses this on load; a dict may not
            raise BundleError(f"decision.thresholds has {self.thresholds.size} entries for {len(self.labels)} labels: "
                              "give one threshold per label, in label order, in the bundle's edgecnn.json, or fit "
                              "them again with `edgecnn calibrate BUNDLE --against RUN_DIR`.")
        self.margin = float(decision.get("margin", 0.0))
        self.fallback_action = decision.get("fallback_action", UNKNOWN)
        smoothing = dict(decision.get("smoothing") or {})
        self.smoother = Smoother(method=smoothing.get("method", "none"), window=int(smoothing.get("window", 1)),
                                 alpha=float(smoothing.get("alpha", 0.5)), k=int(smoothing.get("k", 1)),
                                 hysteresis=float(smoothing.get("hysteresis", 0.0)), thresholds=self.thresholds)

    def probabilities(self, scores):
        return to_probabilities(scores, self.temperature, self.kind)

    def __call__(self, primary_scores, fallbacks=()):
        """Return ``(label, score, FrameDecision)``; ``fallbacks`` are callables giving raw scores."""
        frame = decide(self.probabilities(primary_scores), self.thresholds, self.margin,
                       [lambda f=f: self.probabilities(f()) for f in fallbacks])
        index, score = self.smoother.update(frame)
        label = self.labels[index] if index is not None else (
            UNKNOWN if self.fallback_action in (UNKNOWN, None) else str(self.fallback_action))
        return label, score, frame
