"""What the finished trials tell about a running one: the pruning rule, and a base's known latency.

A trial stops after its head phase when an earlier finished, feasible trial reached a head-phase
accuracy at least ``margin`` higher *and* is no slower and no bigger (same base, or lower measured
latency and size). Such a trial already dominates this one at the same point of training, so
fine-tuning and converting it is not worth the time. Optuna's own pruners compare one objective
only, so they cannot be used in this multi-objective study.
"""

from typing import Optional


def known_latency(study_trials, base: str) -> Optional[float]:
    """The smallest latency measured so far for ``base`` by finished trials (None when none)."""
    values = [t.user_attrs.get("latency_ms") for t in study_trials
              if t.user_attrs.get("base") == base and t.user_attrs.get("latency_measured")]
    values = [v for v in values if v is not None]
    return min(values) if values else None


def should_prune(head_acc: float, base: str, est_latency, est_size, finished, margin: float):
    """The pruning rule (see the module docstring); returns the dominating trial number or None."""
    for t in finished:
        a = t.user_attrs
        if a.get("head_acc") is None or not a.get("feasible"):
            continue
        if a["head_acc"] < head_acc + margin:
            continue
        same = a.get("base") == base
        cheaper = (est_latency is not None and est_size is not None and a.get("latency_ms") is not None
                   and a["latency_ms"] <= est_latency and a.get("size_kb", float("inf")) <= est_size)
        if same or cheaper:
            return t.number
    return None
