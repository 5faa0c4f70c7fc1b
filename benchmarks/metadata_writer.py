"""edgecnn's TFLite metadata writer against tflite-support 0.4.4's, side by side on Coral's real models.

Why edgecnn writes the metadata itself (issue 21): tflite-support pins ``protobuf<4`` against
TensorFlow 2.21's ``protobuf>=6.31``, so it can only run in a venv of its own, from a subprocess.
This measures what that costs against the in-process writer (:mod:`edgecnn.converters.metadata`),
and checks that both write the same facts: each model (Coral's CPU models, and the Edge TPU twins,
stripped of their metadata as ``edgetpu_compiler`` leaves them) gets ImageNet labels and 127.5/127.5
from both writers, read back by edgecnn's board-side reader; with ``--mediapipe-python`` MediaPipe
Tasks classifies ``cat.bmp`` with both outputs (top-1 label and score must agree).

Usage::

    python benchmarks/metadata_writer.py [--shared DIR] --tflite-support-python VENV/bin/python \\
        [--mediapipe-python .venv-mediapipe/bin/python] [--repeat 5]

(``python -m venv V && V/bin/pip install tflite-support==0.4.4``; its native library also needs the
system's libusb-1.0, ``apt-get install libusb-1.0-0``.) Prints one JSON object as the last line.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# run in tflite-support's venv: write each model's metadata ``repeat`` times, time the populate step only
TFLITE_SUPPORT = r"""
import json, sys, time
t0 = time.perf_counter()
from tflite_support.metadata_writers import image_classifier
import_s = time.perf_counter() - t0
jobs, labels, repeat = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = {"import_s": import_s, "ms": {}}
for src, dest in jobs:
    buf, times = open(src, "rb").read(), []
    for _ in range(repeat):
        t = time.perf_counter()
        model = image_classifier.MetadataWriter.create_for_inference(buf, [127.5], [127.5], [labels]).populate()
        times.append((time.perf_counter() - t) * 1000)
    open(dest, "wb").write(model)
    out["ms"][src] = times
print(json.dumps(out))
"""

MEDIAPIPE = r"""
import json, sys
import mediapipe as mp
from mediapipe.tasks.python.vision import ImageClassifier
out = {}
for path in sys.argv[2:]:
    with ImageClassifier.create_from_model_path(path) as c:
        top = c.classify(mp.Image.create_from_file(sys.argv[1])).classifications[0].categories[0]
        out[path] = [top.category_name, top.score]
print(json.dumps(out))
"""


def main(argv=None):
    with tempfile.TemporaryDirectory(prefix="metadata-bench-") as tmp:
        print(json.dumps(measure(argv, Path(tmp))))


def measure(argv, tmp: Path) -> dict:
    from edgecnn.bundle.tflite_metadata import read_metadata
    from edgecnn.converters.metadata import About, with_metadata, without_metadata
    from edgecnn.devices.wrap import read_labels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--tflite-support-python", required=True)
    parser.add_argument("--mediapipe-python")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    coral = args.shared / "models" / "coral"
    labels_file = coral / "imagenet_labels.txt"
    labels = read_labels(labels_file)
    models = sorted(p for p in coral.glob("*.tflite") if "inat" not in p.name)  # the ImageNet ones
    rows, jobs = [], []
    for path in models:
        bare = tmp / f"{path.stem}.bare.tflite"
        bare.write_bytes(without_metadata(path.read_bytes()))
        content, times = bare.read_bytes(), []
        for _ in range(args.repeat):
            t = time.perf_counter()
            ours = with_metadata(content, About(labels, name="ImageClassifier", mean=127.5, std=127.5))
            times.append((time.perf_counter() - t) * 1000)
        (tmp / f"{path.stem}.edgecnn.tflite").write_bytes(ours)
        jobs.append([str(bare), str(tmp / f"{path.stem}.tflite_support.tflite")])
        rows.append({"model": path.name, "bytes": len(content), "edgecnn_ms": statistics.median(times)})
    t = time.perf_counter()
    proc = subprocess.run([args.tflite_support_python, "-c", TFLITE_SUPPORT, json.dumps(jobs), str(labels_file),
                           str(args.repeat)], capture_output=True, text=True, timeout=1200)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"tflite-support failed: {proc.stderr.strip().splitlines()[-1:]}")
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    for row, (bare, dest) in zip(rows, jobs):
        row["tflite_support_ms"] = statistics.median(theirs["ms"][bare])
        a = read_metadata((tmp / f"{Path(bare).name.replace('.bare', '.edgecnn')}").read_bytes())
        b = read_metadata(Path(dest).read_bytes())
        row["same_labels_and_normalization"] = (a.labels, a.normalization()) == (b.labels, b.normalization())
    mediapipe = None
    if args.mediapipe_python:
        paths = [str(tmp / f"{p.stem}.{w}.tflite") for p in models if "edgetpu" not in p.name
                 for w in ("edgecnn", "tflite_support")]
        res = subprocess.run([args.mediapipe_python, "-c", MEDIAPIPE, str(coral / "cat.bmp")] + paths,
                             capture_output=True, text=True, timeout=1200)
        mediapipe = ({Path(k).name: v for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items()}
                     if res.returncode == 0 else res.stderr[-500:])
    ours_ms = sum(r["edgecnn_ms"] for r in rows)
    result = {"models": rows, "edgecnn_ms_total": round(ours_ms, 2),
              "tflite_support_ms_total": round(sum(r["tflite_support_ms"] for r in rows), 2),
              "tflite_support_import_s": round(theirs["import_s"], 3),
              "tflite_support_subprocess_wall_s": round(wall, 3),
              "ratio_subprocess_over_edgecnn": round(wall * 1000 / ours_ms, 1),
              "same_facts": all(r["same_labels_and_normalization"] for r in rows), "mediapipe_top1": mediapipe,
              "note": "a shared 2-core machine with other jobs running; times are medians of --repeat"}
    return result


if __name__ == "__main__":
    main()
