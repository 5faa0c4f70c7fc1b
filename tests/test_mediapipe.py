"""MediaPipe Tasks runs an edgecnn bundle's model.tflite as it is (issue 21).

MediaPipe 1.2.2 lives in its own venv, ``.venv-mediapipe`` (``make mediapipe-venv``; ``make test``
creates it): it needs opencv-contrib-python, which cannot share a venv with the workstation's
opencv-python-headless (both install ``cv2``). Its ImageClassifier reads the labels and normalization
from the model's metadata alone; on 60 real hymenoptera val photos it must give the top-1 and the label
strings of ``edgecnn run``, and scores within one step of the int8 output (a float16 model: within
1e-4, its normalization read from the metadata too). Both sides get the same
pixels: the photos resized to the model's input by edgecnn's resize (MediaPipe's own resize is then
the identity), so the comparison is of the model file and its metadata, not of two resize kernels.
The test skips, saying why, when the venv cannot be created (as the Chromium and sshd tests do).
"""

import json
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bundle.manifest import sha256_file, verify_bundle
from edgecnn.compress.convert import convert_run
from edgecnn.converters.export import RUN_FILE, export_bundle
from edgecnn.devices import backends

pytestmark = pytest.mark.slow  # trains the hymenoptera run (make test-fast leaves it out)

ROOT = Path(__file__).resolve().parents[1]
MEDIAPIPE_PY = ROOT / ".venv-mediapipe" / "bin" / "python"
SCRIPT = Path(__file__).resolve().parent / "mediapipe_venv" / "classify.py"  # not "mediapipe/": tests/ is on sys.path
PER_CLASS = 30


@pytest.fixture(scope="module")
def mediapipe_python() -> Path:
    if not MEDIAPIPE_PY.exists():
        pytest.skip(f"needs MediaPipe's venv {MEDIAPIPE_PY.parent.parent}: `make mediapipe-venv` creates it "
                    "(pip install mediapipe==1.2.2; `make test` does it first)")
    proc = subprocess.run([str(MEDIAPIPE_PY), "-c", "import mediapipe; print(mediapipe.__version__)"],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"MediaPipe does not import in {MEDIAPIPE_PY}: {proc.stderr.strip().splitlines()[-1:]}")
    return MEDIAPIPE_PY


@pytest.fixture(scope="module")
def bundle(mediapipe_python, hymenoptera_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mediapipe") / "bundle"
    convert_run(hymenoptera_run, out, mode="int8", io="uint8", calibration_size=32, eval_size=0, golden=2)
    return out


@pytest.fixture(scope="module")
def photos(bundle, hymenoptera, tmp_path_factory) -> list:
    """PER_CLASS val photos of each class, resized to the model's input as the board resizes them, as PNG."""
    import cv2

    from edgecnn.data.scan import load_image_rgb
    from edgecnn.devices.preprocess import resize_rgb

    model = verify_bundle(bundle)["model"]
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for label in ("ants", "bees"):
        for src in sorted((hymenoptera / "val" / label).iterdir())[:PER_CLASS]:
            dest = folder / f"{label}_{src.stem}.png"
            rgb = resize_rgb(load_image_rgb(src), model["input_size"], model["resize"])
            cv2.imwrite(str(dest), np.ascontiguousarray(rgb[..., ::-1]))
            paths.append(dest)
    return sorted(paths)


def _mediapipe(python, model, images) -> dict:
    proc = subprocess.run([str(python), str(SCRIPT), str(model)] + [str(p) for p in images], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _edgecnn_run_labels(bundle, folder, tmp_path) -> list:
    """The label of each frame as ``edgecnn run`` reports it (a folder source replays in sorted name order)."""
    from cli_helpers import edgecnn

    events = tmp_path / "events.jsonl"
    proc = edgecnn("run", bundle, "--source", folder, "--events", events, "--backend", "litert", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    frames = [json.loads(line) for line in events.read_text().splitlines()]
    return [e["label"] for e in frames if e.get("event") == "frame"]


def test_mediapipe_classifies_the_bundle_model_as_edgecnn_does(mediapipe_python, bundle, photos, tmp_path):
    manifest = verify_bundle(bundle)
    model = bundle / "model.tflite"
    result = _mediapipe(mediapipe_python, model, photos)
    assert result["mediapipe"] == "1.2.2"
    assert sha256_file(model) == manifest["files"]["model.tflite"]["sha256"]  # used as it is, not rewritten
    interpreter, _ = backends.make_interpreter(model, "litert")
    ours = backends.predict(interpreter, [_rgb(p) for p in photos], manifest["model"]["resize"])
    step = float(backends.output_details(interpreter, "quantization")[0])
    assert 0 < step < 0.01  # uint8 output
    labels = manifest["labels"]
    run_labels = _edgecnn_run_labels(bundle, photos[0].parent, tmp_path)
    assert len(run_labels) == len(photos) == 2 * PER_CLASS
    compared, worst = 0, 0.0
    for path, scores, run_label in zip(photos, ours, run_labels):
        categories = result["results"][str(path)]
        theirs = np.zeros(len(labels), np.float32)
        for index, name, score in categories:
            assert name == labels[index]  # MediaPipe's label strings come from the metadata's label file
            theirs[index] = score
        np.testing.assert_allclose(theirs, scores, rtol=0, atol=step + 1e-6)
        worst = max(worst, float(np.abs(theirs - scores).max()))
        top2 = np.sort(scores)[-2:]
        if top2[1] - top2[0] > step + 1e-6:  # not a tie within one output step: the top-1 must agree
            compared += 1
            assert categories[0][1] == labels[int(np.argmax(scores))] == run_label, path.name
    print(f"mediapipe vs edgecnn: {compared} of {len(photos)} photos compared on top-1 (others tie within one step), "
          f"largest score difference {worst:.6f} (output step {step:.6f})")
    assert compared >= 50


def test_mediapipe_reads_a_float16_models_normalization(mediapipe_python, bundle, photos, tmp_path):
    """A float input: MediaPipe feeds (pixel - mean) / std from the metadata (0 and 1: the graph rescales)."""
    out = tmp_path / "f16"
    convert_run(verify_bundle(bundle)["source"]["run_dir"], out, mode="float16", eval_size=0, golden=0)
    manifest = verify_bundle(out)
    picked = photos[::3]
    result = _mediapipe(mediapipe_python, out / "model.tflite", picked)
    interpreter, _ = backends.make_interpreter(out / "model.tflite", "litert")
    ours = backends.predict(interpreter, [_rgb(p) for p in picked], manifest["model"]["resize"])
    for path, scores in zip(picked, ours):
        categories = result["results"][str(path)]
        theirs = np.zeros(len(scores), np.float32)
        for index, name, score in categories:
            assert name == manifest["labels"][index]
            theirs[index] = score
        np.testing.assert_allclose(theirs, scores, rtol=0, atol=1e-4)  # float kernels: not bit-equal builds
        assert categories[0][0] == int(np.argmax(scores)), path.name


def test_the_readme_command_runs_the_mediapipe_export(mediapipe_python, bundle, photos, tmp_path):
    out = tmp_path / "mp"
    export_bundle(bundle, "mediapipe", out)
    command = (out / RUN_FILE).read_text().strip()
    assert command.startswith("python3 -c ") and command.endswith(" photo.jpg")
    picked = photos[:2] + photos[-2:]
    line = shlex.quote(str(mediapipe_python)) + command[len("python3"):-len("photo.jpg")] + \
        " ".join(shlex.quote(str(p)) for p in picked)
    proc = subprocess.run(["bash", "-c", line], cwd=out, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = verify_bundle(bundle)
    interpreter, _ = backends.make_interpreter(bundle / "model.tflite", "litert")
    want = [manifest["labels"][int(np.argmax(s))]
            for s in backends.predict(interpreter, [_rgb(p) for p in picked], manifest["model"]["resize"])]
    assert proc.stdout.splitlines() == [f"{p} {label}" for p, label in zip(picked, want)]


def _rgb(path):
    from edgecnn.devices.imageio import read_image
    from edgecnn.devices.preprocess import bgr_to_rgb

    return bgr_to_rgb(read_image(path))
