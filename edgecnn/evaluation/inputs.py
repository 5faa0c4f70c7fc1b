"""What an evaluation reads: the images (a run's split or a DATA folder), the bundles, and every
model's probabilities on them (the float Keras model, each bundle's .tflite, its Edge TPU twin).

Images are decoded and resized once, with the bundle's resize method, and fed to every model;
``.tflite`` files run through the board's own interpreter adapters (:mod:`edgecnn.devices.backends`).
"""

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from edgecnn.bundle.model import ModelSpec
from edgecnn.errors import BundleError, DataError, DeviceError, RunError
from edgecnn.run import preprocessing

FLOAT = "float"


def tell(progress, msg):
    """Pass ``msg`` to the ``progress`` callback, when there is one."""
    if progress:
        progress(msg)


def folder_samples(data_dir, labels: Sequence[str]):
    """``(samples, skipped)`` of a DATA folder in class-folder layout (``DATA/<class>/*.jpg``), scanned.

    Class folders must carry the run's label names; a folder with another name is refused.
    """
    from edgecnn.data.dataset import Sample
    from edgecnn.data.folders import class_folders, files_in, relative, scan_files

    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"DATA '{root}' is not a folder. Pass a folder with one sub-folder per class "
                        f"({', '.join(labels)}).")
    index = {name: i for i, name in enumerate(labels)}
    dirs = class_folders(root)
    unknown = [d.name for d in dirs if d.name not in index]
    if unknown or not dirs:
        raise DataError(f"DATA '{root}' has class folders {[d.name for d in dirs]}, but the model's classes are "
                        f"{list(labels)}. Use one sub-folder per class, named as the model's labels.")
    files = [(index[d.name], path) for d in dirs for path in files_in(d)]
    samples, skipped = [], []
    for (label, path), (result, digest) in zip(files, scan_files([path for _, path in files])):
        if result.ok:
            samples.append(Sample(path.resolve(), label, digest))
        else:
            skipped.append({"path": relative(path, root), "reason": result.reason})
    if not samples:
        raise DataError(f"DATA '{root}' holds no usable images.")
    return samples, skipped


def eval_images(run: dict, size, resize: str, data=None, split: Optional[str] = None) -> dict:
    """The held-out images: ``{"x", "y", "files", "root", "source", "notes"}``."""
    from edgecnn.converters.representative import run_samples
    from edgecnn.data.pixels import load_images

    notes = []
    if data is not None:
        samples, skipped = folder_samples(data, run["labels"])
        root = Path(data).resolve()
        source = {"kind": "data", "path": str(root)}
        if skipped:
            notes.append(f"{len(skipped)} unusable file(s) in DATA skipped")
    else:
        splits = run.get("data", {}).get("splits", {})
        if split is None:
            split = "test" if splits.get("test") else "val"
            if split == "val":
                notes.append("the run has no test split: evaluating on its val split, which also chose the "
                             "training epochs; pass DATA for an untouched set")
        if not splits.get(split):
            raise RunError(f"run '{run.get('run_dir')}' recorded no '{split}' images. Pass DATA, a folder with one "
                           "sub-folder per class.")
        samples = run_samples(run, split)
        root = Path(run.get("data", {}).get("root", ".")).resolve()
        source = {"kind": "run", "split": split, "path": run.get("run_dir")}
    x, y = load_images(samples, size, resize)
    return {"x": x, "y": y, "files": [Path(s.path) for s in samples], "root": root, "source": source,
            "notes": notes}


def tflite_predictor(model_file: Path, delegates=None):
    """``predict(x_uint8)``: dequantized outputs of a .tflite file on resized uint8 images (as the board
    computes them), through one interpreter built once."""
    from edgecnn.converters.tflite import predict_tflite
    from edgecnn.devices.backends import make_interpreter

    interp, _ = make_interpreter(model_file, backend="auto", delegates=delegates)
    return lambda x: predict_tflite(interp, x)


def tflite_probs(model_file: Path, x: np.ndarray, delegates=None) -> np.ndarray:
    """Dequantized outputs of a .tflite file on resized uint8 images (as the board computes them)."""
    return tflite_predictor(model_file, delegates)(x)


def edgetpu_delegate():
    """The libedgetpu delegate when an Edge TPU is attached, else ``(None, why)``."""
    from edgecnn.devices.backends import get_backend
    from edgecnn.devices.edgetpu import load_edgetpu_delegate

    try:
        return load_edgetpu_delegate(get_backend("auto")), None
    except DeviceError as exc:
        return None, str(exc)


def load_bundles(bundle_dirs: Sequence, labels: Sequence[str]) -> List[dict]:
    """Verify each bundle (sha256) and check it classifies the run's labels in the same order."""
    from edgecnn.bundle.manifest import verify_bundle

    out = []
    for bundle in bundle_dirs:
        manifest = verify_bundle(bundle)
        if list(manifest["labels"]) != list(labels):
            raise BundleError(f"bundle '{bundle}' has labels {manifest['labels']}, but the run has {list(labels)}. "
                              "Evaluate a bundle converted from this run (`edgecnn convert RUN_DIR`).")
        out.append({"dir": Path(bundle), "manifest": manifest})
    return out


def model_names(bundles: List[dict]) -> List[str]:
    """Display names of bundles: ``int8`` for one, else the folder names (made unique)."""
    if len(bundles) == 1:
        return [bundles[0]["manifest"]["model"].get("quantization", "int8") or "quantized"]
    names = []
    for b in bundles:
        name = b["dir"].name or str(b["dir"])
        names.append(name if name not in names and name != FLOAT else f"{name}_{len(names)}")
    return names


def collect_probs(bundle_dirs: Sequence, run_dir, data=None, split: Optional[str] = None, progress=None) -> dict:
    """Run every model on the same images. Returns images, labels and ``probs`` (name -> N×C)."""
    from edgecnn.bundle.manifest import model_path
    from edgecnn.models.classifier import keras_probs
    from edgecnn.run import load_run_model
    from edgecnn.run import load_run

    run = load_run(run_dir)
    labels = list(run["labels"])
    bundles = load_bundles(bundle_dirs, labels)
    first = ModelSpec.from_manifest(bundles[0]["manifest"])
    size = first.input_size or preprocessing(run)["input_size"]
    resize = first.resize
    images = eval_images(run, size, resize, data, split)
    src = images["source"]
    where = f"the {src['split']} split of {src['path']}" if src["kind"] == "run" else src["path"]
    tell(progress, f"{len(images['y'])} images from {where}")
    model = load_run_model(run)
    probs = {FLOAT: keras_probs(model, images["x"])}
    names = model_names(bundles)
    delegate, tpu_note = None, None
    if any(model_path(b["dir"], b["manifest"], edgetpu=True) for b in bundles):
        delegate, tpu_note = edgetpu_delegate()
    for name, b in zip(names, bundles):
        probs[name] = tflite_probs(model_path(b["dir"], b["manifest"]), images["x"])
        tpu_file = model_path(b["dir"], b["manifest"], edgetpu=True)
        if tpu_file is not None and delegate is not None:
            probs[f"{name}_edgetpu"] = tflite_probs(tpu_file, images["x"], delegates=[delegate])
    if tpu_note and any(model_path(b["dir"], b["manifest"], edgetpu=True) for b in bundles):
        images["notes"].append(f"Edge TPU model not run: {tpu_note}")
    if len(bundles) > 1:
        from edgecnn.evaluation.compare import ensemble_probs

        probs["ensemble"] = ensemble_probs([probs[n] for n in names])
    return {"run": run, "labels": labels, "bundles": bundles, "names": names, "model": model, "probs": probs,
            **images}


