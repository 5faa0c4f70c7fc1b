"""The x86-64 half of the cross-architecture test: bundles converted here, and what x86-64 says of them.

    .venv/bin/python tools/arm64/make_bundles.py OUT [--shared ../shared]

Writes under OUT:
- ``bundles/<kind>/``: real bundles made the way users make them on the workstation: a finetune run
  on generated shapes converted by ``convert_run`` to int8 with uint8 I/O, int8 with int8 I/O,
  float16, and int8 with the float16 model as its fallback; and Coral's uint8 MobileNet v2 wrapped
  with ``bundle wrap`` (when ../shared is there).
- ``video.avi``: an MJPG video of held-out images of every class, a few frames each, and
  ``photos.avi``, Coral's photos, for the ImageNet model;
- ``x86.json``: for each bundle, its video and, for each x86-64 interpreter venv given with
  ``--venv NAME=PYTHON``, every frame's label and score from ``edgecnn run`` on that video.

tests/device/test_cross_arch.py then runs the same bundles on aarch64 and compares frame by frame.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRAMES_PER_IMAGE = 2
IMAGES_PER_CLASS = 3
MIN_MARGIN = 0.2  # top-1 minus top-2 probability of the float model (see held_out_images)
SIZE = 32          # the model's input
CORAL_PHOTOS = ("cat.bmp", "bird.bmp", "dragonfly.bmp", "hot_dog.jpg", "grace_hopper.bmp")
VIDEO_SIZE = 96    # the frames: the board resizes them, as it does a camera's


def make_run(work: Path) -> Path:
    """A RUN_DIR of a small flat CNN (conv/BN/ReLU, as edgecnn builds them) trained on generated shapes.

    Trained from scratch for seconds, so the test needs nothing from ../shared, yet it tells the
    classes apart: a model that always says one class would make equal labels mean nothing.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    from convert_helpers import make_run as write_run, mini_model

    from edgecnn.data.synth import make_demo_dataset

    from edgecnn.tf import keras

    data = make_demo_dataset(work / "data", per_class=60, size=96, seed=0)
    keras.utils.set_random_seed(0)  # the same weights on every run (initialisation and shuffling)
    return write_run(work / "run", data, mini_model(4, SIZE), size=SIZE, epochs=25)


def make_bundles(run: Path, out: Path, shared) -> dict:
    from edgecnn.compress.convert import convert_run

    bundles = out / "bundles"
    kinds = {
        "int8_uint8": dict(mode="int8", io="uint8"),
        "int8_int8": dict(mode="int8", io="int8"),
        "float16": dict(mode="float16"),
    }
    made = {}
    for kind, options in kinds.items():
        convert_run(run, bundles / kind, golden=4, seed=0, **options)
        made[kind] = bundles / kind
    convert_run(run, bundles / "int8_fallback", mode="int8", io="uint8", fallbacks=[bundles / "float16"],
                golden=4, seed=0)
    made["int8_fallback"] = bundles / "int8_fallback"
    coral = Path(shared) / "models" / "coral" if shared else None
    if coral and coral.is_dir():
        from edgecnn.devices.wrap import wrap_tflite

        wrap_tflite(coral / "mobilenet_v2_1.0_224_quant.tflite", coral / "imagenet_labels.txt",
                    bundles / "coral_wrapped", mean=128, std=128,
                    images=[coral / "cat.bmp", coral / "bird.bmp", coral / "dragonfly.bmp"])
        made["coral_wrapped"] = bundles / "coral_wrapped"
    return made


def held_out_images(run: Path) -> list:
    """A few val images of every class of ``run``, class by class, that its float model labels right
    with a clear margin.

    ARM and x86-64 kernels round differently (largest top-1 score difference measured: 0.026 int8,
    0.012 float16), so a frame whose top two scores are closer than that has no one label across
    machines: one run's model put a 'square' at 0.361 with a near-tie second, and aarch64 named the
    other class. Frames with a margin of MIN_MARGIN (several times that difference) test whether the
    kernels change a decision; ties themselves are tested in tests/device/test_decision_ties.py.
    """
    from edgecnn.converters.representative import run_samples
    from edgecnn.data.pixels import load_images
    from edgecnn.devices.decision import top2
    from edgecnn.models.classifier import keras_probs
    from edgecnn.run import load_run, load_run_model, preprocessing

    info = load_run(run)
    samples = run_samples(info, "val")  # held out from training
    pre = preprocessing(info)
    x, y = load_images(samples, pre["input_size"], pre["resize"])
    by_class = {}
    for sample, p, label in zip(samples, keras_probs(load_run_model(info), x), y):
        index, _, margin = top2(p)  # the board's own top-2
        if index == label and margin >= MIN_MARGIN:
            by_class.setdefault(sample.label, []).append(Path(sample.path))
    if sorted(by_class) != sorted({s.label for s in samples}):
        raise SystemExit(f"the cross-architecture model labels no val image of some class with a margin of "
                         f"{MIN_MARGIN}: {sorted(by_class)} of {len(info['labels'])} classes")
    return [path for label in sorted(by_class) for path in by_class[label][:IMAGES_PER_CLASS]]


def write_video(images: list, video: Path, size) -> Path:
    """Each image held for FRAMES_PER_IMAGE frames, as MJPG (lossy, like a camera's stream)."""
    import cv2

    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for path in images:
        frame = cv2.resize(cv2.imread(str(path)), size, interpolation=cv2.INTER_AREA)
        for _ in range(FRAMES_PER_IMAGE):
            writer.write(frame)
    writer.release()
    return video


def run_frames(python: str, bundle: Path, video: Path) -> list:
    """``[(label, score)]`` per frame from ``edgecnn run BUNDLE --source VIDEO`` with ``python``'s venv."""
    cmd = [python, "-c", "import sys; from edgecnn.cli import main; sys.exit(main())", "run", str(bundle),
           "--source", str(video), "--replay"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"edgecnn run {bundle} failed with {python}:\n{proc.stderr}")
    return frames_of(proc.stdout)


def frames_of(stdout: str) -> list:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [[e["label"], e["score"]] for e in sorted((e for e in events if e.get("event") == "frame"),
                                                      key=lambda e: e["frame"])]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--venv", action="append", default=[], metavar="NAME=PYTHON",
                        help="an x86-64 interpreter venv to record (litert=.venv/bin/python, ...)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    run = make_run(args.out / "work")
    bundles = make_bundles(run, args.out, args.shared)
    shapes = write_video(held_out_images(run), args.out / "video.avi", (VIDEO_SIZE, VIDEO_SIZE))
    # An ImageNet model on drawn shapes gives near-ties whose order means nothing: it gets photos.
    coral = Path(args.shared) / "models" / "coral"
    photos = write_video([coral / n for n in CORAL_PHOTOS], args.out / "photos.avi", (320, 240)) \
        if "coral_wrapped" in bundles else None
    venvs = dict(v.split("=", 1) for v in args.venv) or {"litert": sys.executable}
    record = {"bundles": {}}
    for kind, bundle in bundles.items():
        video = photos if kind == "coral_wrapped" else shapes
        record["bundles"][kind] = {"video": video.name,
                                   **{name: run_frames(py, bundle, video) for name, py in venvs.items()}}
    (args.out / "x86.json").write_text(json.dumps(record, indent=1))
    print(json.dumps({kind: len(r[next(iter(venvs))]) for kind, r in record["bundles"].items()}))


if __name__ == "__main__":
    main()
