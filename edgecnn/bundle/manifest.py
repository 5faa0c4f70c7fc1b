"""The bundle: the one artifact that travels to the board (DESIGN.md, "The bundle manifest").

Standard library only (numpy is imported lazily for golden samples): the board reads this module
and never imports TensorFlow (DESIGN rule 1).

Layout of BUNDLE_DIR::

    model.tflite            the quantized (or float) model
    model_edgetpu.tflite    optional, compiled by edgetpu_compiler
    fallback*.tflite        optional fallback models for uncertain frames
    labels.txt              one class name per line, in output order
    golden/NNN.npy          raw model inputs (uint8 pixels at the model's size)
    golden/NNN.png          optional source image of a golden sample (lossless)
    edgecnn.json            the manifest

The ``model`` section: ``tflite`` (file name), ``edgetpu`` (file name or null), ``fallbacks`` (list of
file names, same labels), ``quantization`` (int8|float16|dynamic|float32), ``input_size`` [H, W],
``input_dtype``, ``output_dtype``, ``resize`` (bilinear|area|nearest), ``color_order`` ("RGB"),
``input_mean`` and ``input_std`` (the model's real input is ``(pixel - mean) / std``: 0 and 1 for
edgecnn models, whose graph rescales itself). Quantization scale and zero point are never stored
here: they are read from the .tflite file (DESIGN rule 6).

Each ``golden`` sample: ``{"input": "golden/000.npy", "source": "golden/000.png", "scores": [...],
"atol": float}``. ``input`` is the H×W×3 uint8 RGB image already resized to the model's size (what
``devices.preprocess.resize_rgb`` returns); ``source`` is an optional lossless image of any size
whose OpenCV decode, converted to RGB and resized with the manifest's method, must equal ``input``
exactly; ``scores`` are the dequantized output probabilities the converted model gave on the
workstation; ``atol`` is the tolerance (about two output quantization steps for integer outputs, so
kernels of another interpreter build still pass).

The manifest's ``files`` maps every file's relative path to its sha256 and size; a bundle whose
files do not match is refused (BundleError), so the previous bundle stays in use.
"""

import datetime as _dt
import hashlib
import json
import shutil
from pathlib import Path

from edgecnn import __version__
from edgecnn.atomic import _json_default, atomic_dir, write_json
from edgecnn.bundle.model import MODEL, ModelSpec
from edgecnn.bundle.schema import SCHEMA_VERSION, check_manifest, is_int  # noqa: F401
from edgecnn.errors import BundleError

MANIFEST = "edgecnn.json"
LABELS = "labels.txt"
REQUIRED_KEYS = ("schema_version", "edgecnn_version", "created_at", "model", "labels", "decision", "files")


def sha256_file(path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_decision(num_classes: int) -> dict:
    """The decision section before `edgecnn evaluate` calibrates it: plain argmax, no fallback."""
    return {
        "temperature": 1.0,
        "thresholds": [0.0] * num_classes,  # per class, in label order; 0 accepts every top-1
        "margin": 0.0,                      # minimum top-1 minus top-2 probability
        "smoothing": {"method": "none", "window": 1, "alpha": 0.5, "k": 1},
        "fallback_action": "unknown",       # what to report when still uncertain after fallbacks
    }


def make_manifest(labels, model: dict, decision=None, metrics=None, calibration=None, golden=None,
                  source=None, **extra) -> dict:
    """Assemble a manifest dict (``files`` is filled in by :func:`write_bundle`).

    Args:
        labels: class names in output order.
        model: the model section, a :class:`~edgecnn.bundle.model.ModelSpec` (a dict is read through
            it, so its missing keys take the one set of defaults).
        decision: the decision section; :func:`default_decision` when None.
        metrics: accuracy figures and the data they were measured on.
        calibration: the calibration set used (name, files, hashes).
        golden: list of golden samples ``{"input": "golden/000.npy", "scores": [...], "atol": ...}``.
        source: where the model came from (RUN_DIR, run hash).
        **extra: other top-level sections (for example ``attempts`` of the remedy loop).
    """
    labels = list(labels)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "edgecnn_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": _model_spec(model).to_section(),
        "labels": labels,
        "decision": decision or default_decision(len(labels)),
        "metrics": metrics or {},
        "calibration": calibration,
        "golden": golden or [],
        "source": source or {},
        "files": {},
    }
    manifest.update(extra)
    return manifest


def _model_spec(model) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else ModelSpec.from_manifest({"model": model})


def write_bundle(out_dir, files: dict, manifest: dict) -> Path:
    """Write a complete bundle atomically: an existing BUNDLE_DIR is replaced only on success.

    Args:
        out_dir: the bundle folder to create or replace.
        files: relative name -> ``bytes`` or a path to copy (model.tflite, golden/000.npy, ...).
        manifest: from :func:`make_manifest`; ``files`` and labels.txt are written here.

    Returns:
        The bundle path.
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for name, content in files.items():
            dest = tmp / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, (bytes, bytearray)):
                dest.write_bytes(content)
            else:
                shutil.copyfile(content, dest)
        (tmp / LABELS).write_text("".join(f"{label}\n" for label in manifest["labels"]), encoding="utf-8")
        manifest = dict(manifest)
        manifest["files"] = _hash_files(tmp)
        check_manifest(_as_json(manifest), out_dir / MANIFEST)  # a bundle the board would refuse is never written
        write_json(tmp / MANIFEST, manifest)
    return out_dir


def _as_json(manifest: dict) -> dict:
    """The manifest as the board will read it (numpy numbers become plain ones, as write_json writes them)."""
    return json.loads(json.dumps(manifest, default=_json_default))


def _hash_files(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST and not path.name.startswith("."):
            rel = path.relative_to(folder).as_posix()
            out[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def load_manifest(bundle_dir) -> dict:
    """Read and check ``edgecnn.json`` (schema only; :func:`verify_bundle` checks the files)."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle '{bundle_dir}' is not a folder. Create one with `edgecnn convert RUN_DIR --out "
                          f"{bundle_dir}`.")
    if not path.is_file():
        raise BundleError(f"'{bundle_dir}' has no {MANIFEST}; it is not an edgecnn bundle. Create one with "
                          "`edgecnn convert`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"'{path}' is not valid JSON ({exc}). Re-run `edgecnn convert` to rebuild the "
                          "bundle.") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"'{path}' holds {type(manifest).__name__} JSON, not an object: it is not an edgecnn "
                          "manifest. Re-run `edgecnn convert` to rebuild the bundle.")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"'{path}' lacks {', '.join(missing)}. Re-run `edgecnn convert` to rebuild the bundle.")
    if is_int(manifest["schema_version"]) and manifest["schema_version"] > SCHEMA_VERSION:
        raise BundleError(f"'{path}' has schema_version {manifest['schema_version']}, newer than this edgecnn "
                          f"reads ({SCHEMA_VERSION}). Upgrade edgecnn on this machine.")
    check_manifest(manifest, path)
    return manifest


def verify_bundle(bundle_dir) -> dict:
    """Check every listed file's sha256; return the manifest or raise a BundleError naming the file."""
    bundle_dir = Path(bundle_dir)
    manifest = load_manifest(bundle_dir)  # every named path is inside the bundle and listed in files
    root = bundle_dir.resolve()
    for rel, info in manifest["files"].items():
        path = bundle_dir / rel
        if not path.is_file():
            raise BundleError(f"bundle '{bundle_dir}' is missing '{rel}'. Copy the whole bundle folder again.")
        if not path.resolve().is_relative_to(root):  # a symbolic link pointing out of the bundle
            raise BundleError(f"'{path}' is a link to '{path.resolve()}', outside the bundle: refused. Copy the "
                              "bundle with real files (cp -rL) instead of links.")
        actual = sha256_file(path)
        if actual != info["sha256"]:
            raise BundleError(f"'{path}' does not match its sha256 in {MANIFEST} (expected {info['sha256'][:12]}…, "
                              f"got {actual[:12]}…): the file is corrupt or was changed. Copy the bundle again.")
    return manifest


def update_manifest(bundle_dir, **sections) -> dict:
    """Replace top-level sections of an existing bundle's manifest atomically (e.g. ``decision``)."""
    manifest = load_manifest(bundle_dir)
    manifest.update(sections)
    check_manifest(_as_json(manifest), Path(bundle_dir) / MANIFEST)
    write_json(Path(bundle_dir) / MANIFEST, manifest)
    return manifest


def model_path(bundle_dir, manifest: dict, edgetpu: bool = False) -> Path:
    """Path of the bundle's CPU model, or of its Edge TPU model when ``edgetpu`` (None if absent)."""
    key = "edgetpu" if edgetpu else "tflite"
    name = manifest["model"].get(key) or (None if edgetpu else MODEL)
    return Path(bundle_dir) / name if name else None


def load_golden(bundle_dir, manifest: dict):
    """Yield ``(sample_dict, input_array)`` for each golden sample (needs numpy)."""
    import numpy as np

    for sample in manifest.get("golden", []):
        path = Path(bundle_dir) / sample["input"]
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # not a .npy file, a pickle, a truncated array
            raise BundleError(f"golden input '{sample['input']}' of bundle '{bundle_dir}' is not a NumPy .npy "
                              f"array ({str(exc).splitlines()[0][:80]}). Rebuild the bundle.") from None
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
            raise BundleError(f"golden input '{sample['input']}' of bundle '{bundle_dir}' is {array.dtype} "
                              f"{array.shape}, not an H x W x 3 uint8 image. Rebuild the bundle.")
        yield sample, array
