"""What every latency target shares: the ``Target`` interface, its error, and reading a benchmark report.

A target returns ``{"latency_ms", "latency_kind": "measured"|"estimate", "target", ...}``;
``latency_ms`` is the statistic the search optimizes and budgets (``DEFAULT_STAT`` unless asked
otherwise). The targets themselves are in ``host_target``, ``ssh_target`` and ``targets``.
"""

from typing import Optional

from edgecnn.errors import EdgecnnError

STATS = ("p50", "p90", "p99", "mean")
DEFAULT_STAT = "p50"
DEFAULT_RUNS = 50  # timed invokes per measurement (host and ssh://)


class TargetError(EdgecnnError):
    """A latency target is malformed or cannot be reached."""


class Target:
    """Base class: ``measure(tflite_path)`` and ``estimate_counts(counts)`` (None when it cannot)."""

    name = "target"
    kind = "measured"

    def measure(self, model_path) -> dict:
        raise NotImplementedError

    def estimate_counts(self, counts: dict) -> Optional[float]:
        return None

    def describe(self) -> dict:
        return {"target": self.name, "latency_kind": self.kind}


def stat_from_report(report: dict, stat: str) -> Optional[float]:
    """Find ``stat`` (p50...) in a benchmark JSON, whatever its nesting (``p50_ms``, ``latency_ms.p50``)."""
    results = report.get("results")
    if isinstance(results, list):  # edgecnn benchmark: one entry per backend x threads
        entries = [r for r in results if isinstance(r, dict) and not r.get("error")]
        if not entries and results:
            raise TargetError(f"the benchmark could not run the model: {results[0].get('error')}")
        for entry in entries:
            found = stat_from_report(entry, stat)
            if found is not None:
                return found
    for key in (f"{stat}_ms", stat):
        if isinstance(report.get(key), (int, float)):
            return float(report[key])
    # The usual places first, then any nested object.
    usual = [report.get(key) for key in ("latency_ms", "latency", "invoke_ms", "timings_ms", "stats")]
    for sub in usual + list(report.values()):
        if isinstance(sub, dict):
            found = stat_from_report(sub, stat)
            if found is not None:
                return found
    return None
