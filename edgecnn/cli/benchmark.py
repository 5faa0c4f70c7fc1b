"""``edgecnn benchmark MODEL_OR_BUNDLE``: latency, throughput and peak RSS (edgecnn.devices.benchmark)."""

import click

from edgecnn.cli.common import emit, output_options
from edgecnn.errors import DeviceError


def _format(result):
    rows = [f"{result['model']} ({result['model_bytes']} bytes, {result['runs']} runs)"]
    for r in result["results"]:
        if r["error"]:
            rows.append(f"  {r['requested']:<14} threads {r['threads']}: error: {r['error']}")
        else:
            rows.append(f"  {r['backend']:<14} threads {r['threads']} {r['device']}: p50 {r['p50_ms']:.3f} ms, "
                        f"p90 {r['p90_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms, {r['throughput_fps']:.1f} fps, "
                        f"peak RSS {r['peak_rss_mb']:.1f} MB")
    return "\n".join(rows)


@click.command("benchmark")
@click.argument("target", type=click.Path(exists=True))
@click.option("--backend", "backends", multiple=True, default=("auto",), show_default=True,
              type=click.Choice(["auto", "litert", "tflite-runtime", "tensorflow"]), help="Repeatable.")
@click.option("--threads", "threads", multiple=True, type=click.IntRange(1), default=(1,), show_default=True,
              help="Interpreter threads; repeatable.")
@click.option("--runs", type=click.IntRange(1), default=100, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=10, show_default=True)
@click.option("--edgetpu", is_flag=True, help="Time the bundle's Edge TPU model with libedgetpu.")
@output_options
def benchmark(target, backends, threads, runs, warmup, edgetpu, quiet, as_json):
    """Invoke latency p50/p90/p99, throughput and peak RSS of a .tflite or a bundle's model.

    Exit 2 when a configuration cannot run (the model does not load, the backend is not installed).
    """
    from edgecnn.devices.benchmark import benchmark as run_benchmark

    result = run_benchmark(target, backends, threads, runs, warmup, edgetpu)
    emit(result, as_json, quiet, lambda: _format(result))
    failed = [r for r in result["results"] if r["error"]]
    if failed:  # the JSON above keeps every entry; the exit status says that not all of them ran
        raise DeviceError(f"{len(failed)} of {len(result['results'])} benchmark configurations of "
                          f"'{result['model']}' could not run: " +
                          "; ".join(f"{r['requested']} threads {r['threads']}: {r['error']}" for r in failed))
