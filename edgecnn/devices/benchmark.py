"""``edgecnn benchmark MODEL_OR_BUNDLE``: invoke latency, throughput and peak RSS per backend and threads.

Each (backend, threads) configuration runs in its own child process, so its peak RSS is its own
and a crashing model cannot take the caller down. The JSON is a stable contract (other tools,
e.g. an AutoML search timing models on a board over SSH, parse it)::

    {
      "schema": "edgecnn.benchmark/1",
      "model": "path/to/model.tflite", "model_bytes": 3976, "sha256": "...",
      "edgetpu": false, "runs": 100, "warmup": 10,
      "host": {"system": "Linux", "machine": "aarch64", "python": "3.11.2", "cpus": 4},
      "results": [
        {"backend": "tflite-runtime", "requested": "auto", "threads": 1, "device": "cpu",
         "p50_ms": 1.9, "p90_ms": 2.1, "p99_ms": 2.6, "mean_ms": 2.0, "min_ms": 1.8,
         "throughput_fps": 500.1, "load_ms": 4.2, "peak_rss_mb": 61.3, "error": null}
      ]
    }

``throughput_fps`` is back-to-back invokes per second (1000 / mean_ms); ``peak_rss_mb`` is the
child process's peak resident memory (interpreter, model and Python). A configuration that
cannot run keeps its entry with the other figures null and ``error`` saying why.
"""

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgecnn.errors import DeviceError

SCHEMA = "edgecnn.benchmark/1"
FIGURES = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "throughput_fps", "load_ms", "peak_rss_mb")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux/macOS; 0 elsewhere)."""
    try:
        import resource
    except ImportError:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 2)


def resolve_model(target, edgetpu=False) -> Path:
    """A .tflite path from a model file or a bundle folder (its Edge TPU model when ``edgetpu``)."""
    target = Path(target)
    if target.is_dir():
        from edgecnn.bundle.manifest import load_manifest, model_path

        path = model_path(target, load_manifest(target), edgetpu=edgetpu)
        if path is None:
            raise DeviceError(f"bundle '{target}' has no Edge TPU model; benchmark the CPU model without --edgetpu")
        return path
    if not target.is_file():
        raise DeviceError(f"'{target}' is neither a .tflite file nor a bundle folder.")
    return target


def measure(model, backend="auto", threads=1, runs=100, warmup=10, edgetpu=False) -> dict:
    """Time ``runs`` invokes in this process (after ``warmup``); one result entry."""
    from edgecnn.devices import backends

    entry = {"backend": None, "requested": backend, "threads": threads, "device": "edgetpu" if edgetpu else "cpu",
             **{key: None for key in FIGURES}, "error": None}
    try:
        be = backends.get_backend(backend)
        entry["backend"] = be.name
        delegates = None
        if edgetpu:
            from edgecnn.devices.edgetpu import load_edgetpu_delegate

            delegates = [load_edgetpu_delegate(be)]
        t0 = time.perf_counter()
        interpreter, _ = backends.make_interpreter(model, be, threads, delegates)
        entry["load_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        details = backends.input_details(interpreter)
        rng = np.random.default_rng(0)
        dtype = np.dtype(details["dtype"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            data = rng.integers(info.min, int(info.max) + 1, size=details["shape"]).astype(dtype)
        else:
            data = rng.standard_normal(details["shape"]).astype(dtype)
        backends.set_input(interpreter, data)
        for _ in range(warmup):
            interpreter.invoke()
        times = np.empty(runs)
        for i in range(runs):
            t0 = time.perf_counter()
            interpreter.invoke()
            times[i] = time.perf_counter() - t0
        ms = times * 1000
        entry.update({"p50_ms": round(float(np.percentile(ms, 50)), 4), "p90_ms": round(float(np.percentile(ms, 90)), 4),
                      "p99_ms": round(float(np.percentile(ms, 99)), 4), "mean_ms": round(float(ms.mean()), 4),
                      "min_ms": round(float(ms.min()), 4), "throughput_fps": round(float(1000 / ms.mean()), 2)})
    except Exception as exc:  # a config that cannot run is reported, not fatal
        entry["error"] = str(exc)
    entry["peak_rss_mb"] = peak_rss_mb()
    return entry


def _measure_child(model, backend, threads, runs, warmup, edgetpu, timeout):
    cmd = [sys.executable, "-m", "edgecnn.devices.benchmark", str(model), "--backend", backend,
           "--threads", str(threads), "--runs", str(runs), "--warmup", str(warmup)] + (["--edgetpu"] if edgetpu else [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if lines:
            return json.loads(lines[-1])
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        error = f"benchmark process died ({why}): {proc.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        error = f"timed out after {timeout:.0f} s"
    return {"backend": None, "requested": backend, "threads": threads, "device": "edgetpu" if edgetpu else "cpu",
            **{key: None for key in FIGURES}, "error": error}


def benchmark(target, backends=("auto",), threads=(1,), runs=100, warmup=10, edgetpu=False, isolate=True,
              timeout=600.0) -> dict:
    """Benchmark a .tflite or a bundle's model for each backend × thread count (see module doc)."""
    from edgecnn.bundle.manifest import sha256_file

    model = resolve_model(target, edgetpu)
    results = []
    for backend in backends:
        for n in threads:
            if isolate:
                results.append(_measure_child(model, backend, int(n), runs, warmup, edgetpu, timeout))
            else:
                results.append(measure(model, backend, int(n), runs, warmup, edgetpu))
    return {"schema": SCHEMA, "model": str(model), "model_bytes": model.stat().st_size, "sha256": sha256_file(model),
            "edgetpu": bool(edgetpu), "runs": int(runs), "warmup": int(warmup),
            "host": {"system": platform.system(), "machine": platform.machine(),
                     "python": platform.python_version(), "cpus": _cpus()},
            "results": results}


def _cpus():
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Time one backend/threads configuration; print one JSON entry.")
    parser.add_argument("model")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--edgetpu", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model, args.backend, args.threads, args.runs, args.warmup, args.edgetpu)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
