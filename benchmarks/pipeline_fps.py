"""Pipeline throughput on the board side: the full app against the bare interpreter loop.

    python benchmarks/pipeline_fps.py [--shared ../shared] [--frames 300] [--threads N]

On one video file written with OpenCV (640×480 MJPG, from the Coral photos in ../shared, or
generated frames without it), in one run:

- ``app``: ``edgecnn.devices.app.run`` in replay mode (capture thread decoding ahead, preprocessing,
  interpreter, decision policy, JSON-lines events to a file);
- ``bare``: the interpreter alone, ``set_input`` + ``invoke`` + read the output, on the same frames
  already preprocessed (the ceiling for the app);
- ``naive``: a single-threaded read -> preprocess -> infer loop with cv2.VideoCapture.

The model is Coral's mobilenet_v2_1.0_224_quant wrapped into a bundle (mean 128, std 128), or the
committed tiny test model without ../shared. The three are measured in interleaved rounds
(``--rounds``, default 5) and the medians reported. The last line is one JSON object with ``app_fps``,
``bare_fps``, ``fps_ratio`` (app over bare; the goal is >= 0.9), ``naive_fps``, ``p50_ms`` and ``p99_ms``
(the app's per-frame latency: preprocessing to decision) and ``peak_rss_mb`` (this process).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ["cat.bmp", "bird.bmp", "hot_dog.jpg", "dragonfly.bmp", "grace_hopper.bmp", "cat_720p.jpg"]


def make_video(path, frames, coral):
    """Write ``frames`` 640×480 frames (the photos in turn, or generated ones) as MJPG."""
    import cv2

    if coral is not None:
        images = [cv2.imread(str(coral / name)) for name in PHOTOS]
    else:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8) for _ in range(6)]
    images = [cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA) for img in images if img is not None]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(frames):
        writer.write(images[(i // 10) % len(images)])
    writer.release()


def make_bundle(out, coral, threads):
    from edgecnn.devices.wrap import wrap_tflite

    if coral is not None:
        return wrap_tflite(coral / "mobilenet_v2_1.0_224_quant.tflite", coral / "imagenet_labels.txt", out,
                           mean=128, std=128, images=[coral / "cat.bmp"])
    return ROOT / "tests" / "device" / "assets" / "tiny_bundle"


def bare_fps(bundle, video, threads):
    """The interpreter alone on the same frames, preprocessed beforehand (only the small tensors are kept)."""
    import cv2

    from edgecnn.devices import backends
    from edgecnn.devices.engine import Engine

    engine = Engine(bundle, threads=threads, probe=False)
    runner = engine.primary
    cap = cv2.VideoCapture(str(video))
    tensors = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        tensors.append(runner.frame_tensor(frame))
    cap.release()
    for tensor in tensors[:5]:
        runner.invoke(tensor)
    t0 = time.perf_counter()
    for tensor in tensors:
        backends.set_input(runner.interpreter, tensor)
        runner.interpreter.invoke()
        backends.output_scores(runner.interpreter)
    elapsed = time.perf_counter() - t0
    engine.close()
    return len(tensors) / elapsed, runner.backend.name


def naive_fps(bundle, video, threads):
    """Single-threaded: read a frame, preprocess, infer, decide; repeat."""
    import cv2

    from edgecnn.devices.engine import Engine

    engine = Engine(bundle, threads=threads, probe=False)
    cap = cv2.VideoCapture(str(video))
    n, t0 = 0, time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        engine.classify(frame)
        n += 1
    elapsed = time.perf_counter() - t0
    cap.release()
    engine.close()
    return n / elapsed


def app_figures(bundle, video, threads, events):
    from edgecnn.devices.app import run

    run(bundle, str(video), threads=threads, mode="replay", events=events, install_signals=False)
    records = [json.loads(line) for line in Path(events).read_text().splitlines()]
    frames = [e for e in records if e["event"] == "frame"]
    # throughput between the first and the last decision (engine loading excluded, as for bare)
    span = frames[-1]["time"] - frames[0]["time"]
    latencies = np.array([e["latency_ms"] for e in frames])
    return (len(frames) - 1) / span, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99)), \
        len(frames)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared folder (default ../shared)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians are reported")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: its own)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from edgecnn.devices.benchmark import peak_rss_mb

    coral = Path(args.shared) / "models" / "coral"
    coral = coral if (coral / "mobilenet_v2_1.0_224_quant.tflite").is_file() else None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "frames.avi"
        make_video(video, args.frames, coral)
        bundle = make_bundle(tmp / "bundle", coral, args.threads)
        bares, apps, naives, p50s, p99s = [], [], [], [], []
        for i in range(args.rounds):  # interleaved rounds, medians: a busy machine skews one run, not all
            app, p50, p99, n = app_figures(bundle, video, args.threads, tmp / f"events{i}.jsonl")
            naive = naive_fps(bundle, video, args.threads)
            bare, backend = bare_fps(bundle, video, args.threads)
            for acc, value in zip((bares, apps, naives, p50s, p99s), (bare, app, naive, p50, p99)):
                acc.append(value)
        bare, app, naive, p50, p99 = (float(np.median(v)) for v in (bares, apps, naives, p50s, p99s))
        ratio = float(np.median(np.array(apps) / np.array(bares)))
    result = {"app_fps": round(app, 2), "bare_fps": round(bare, 2), "fps_ratio": round(ratio, 3),
              "naive_fps": round(naive, 2), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
              "peak_rss_mb": peak_rss_mb(), "frames": n, "rounds": args.rounds, "backend": backend, "threads": args.threads,
              "model": "mobilenet_v2_1.0_224_quant" if coral else "tiny_int8 (no ../shared)"}
    print(f"app {app:.1f} fps, bare interpreter {bare:.1f} fps (ratio {ratio:.3f}), naive loop {naive:.1f} fps; "
          f"app latency p50 {p50:.2f} ms p99 {p99:.2f} ms", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
