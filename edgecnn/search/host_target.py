"""The ``host`` target: latency measured on this machine with the board-side benchmark."""

import time
from typing import Optional

from edgecnn.search.target_base import DEFAULT_RUNS, DEFAULT_STAT, Target, TargetError, stat_from_report


def _local_benchmark(model_path, runs: int, warmup: int, threads: Optional[int]) -> dict:
    """Time ``invoke()`` with the LiteRT interpreter (used when devices.benchmark is not installed)."""
    import numpy as np

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    interp = Interpreter(model_path=str(model_path), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    rng = np.random.default_rng(0)
    if np.dtype(inp["dtype"]).kind in "iu":
        info = np.iinfo(inp["dtype"])
        data = rng.integers(info.min, info.max + 1, size=inp["shape"], dtype=inp["dtype"])
    else:
        data = rng.uniform(0, 255, size=inp["shape"]).astype(inp["dtype"])
    interp.set_tensor(inp["index"], data)
    for _ in range(warmup):
        interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - t0) * 1000.0)
    times = np.asarray(times)
    return {"p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
            "p99_ms": float(np.percentile(times, 99)), "mean_ms": float(times.mean()), "runs": runs,
            "backend": "litert (edgecnn.search fallback timer)"}


def host_benchmark(model_path, runs: int = DEFAULT_RUNS, warmup: int = 5, threads: Optional[int] = None) -> dict:
    """Benchmark a .tflite here with the board-side library (``edgecnn.devices.benchmark``)."""
    try:
        from edgecnn.devices.benchmark import benchmark
    except ImportError:  # a partial install: time invoke() directly
        return _local_benchmark(model_path, runs, warmup, threads)
    return benchmark(str(model_path), backends=("auto",), threads=(int(threads or 1),), runs=runs, warmup=warmup,
                     isolate=False)


class HostTarget(Target):
    def __init__(self, stat: str = DEFAULT_STAT, runs: int = DEFAULT_RUNS, threads: Optional[int] = None):
        self.name, self.stat, self.runs, self.threads = "host", stat, runs, threads

    def measure(self, model_path) -> dict:
        report = host_benchmark(model_path, runs=self.runs, threads=self.threads)
        value = stat_from_report(report, self.stat)
        if value is None:
            raise TargetError(f"the host benchmark report has no '{self.stat}' figure: {sorted(report)}.")
        return {"latency_ms": value, "latency_kind": "measured", "target": "host", "stat": self.stat,
                "benchmark": report}
