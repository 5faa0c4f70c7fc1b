"""RUN_DIR: what `edgecnn finetune` (and prune, qat) write, and how later steps read it.

Layout::

    RUN_DIR/model.keras          the flat classifier; raw RGB pixels (0-255, float) in, softmax out
    RUN_DIR/labels.txt           class names in output order
    RUN_DIR/run.json             arguments, versions, seed, model config, split file lists, timings
    RUN_DIR/history.csv          per-epoch metrics of both phases
    RUN_DIR/metrics.json         val and test metrics (accuracy, balanced accuracy, per class, confusion)
    RUN_DIR/confusion_matrix.png

``run.json`` keys read by later steps: ``labels``, ``model`` (``backbone``, ``alpha``,
``input_size``, ``rescale``...), ``preprocess`` (``input_size`` [H, W], ``resize``,
``color_order``), ``data`` (``root`` and ``splits``: split name -> list of
``{"path": relative to root, "label": class name, "sha256": ...}``), ``seed``, ``parent``.
"""

import json
from pathlib import Path

from edgecnn.errors import RunError

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
LABELS_FILE = "labels.txt"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"


def load_run(run_dir) -> dict:
    """Read ``run.json`` of a finished run and check its model is there.

    Returns:
        The run.json dict, with ``run_dir`` (absolute) and ``model_path`` added.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"RUN_DIR '{run_dir}' does not exist. Create it with `edgecnn finetune DATA_DIR --out "
                       f"{run_dir}`.")
    model = run_dir / MODEL_FILE
    meta = run_dir / RUN_FILE
    if not model.is_file() or not meta.is_file():
        missing = MODEL_FILE if not model.is_file() else RUN_FILE
        raise RunError(f"RUN_DIR '{run_dir}' has no {missing}: it is not a finished run. Run `edgecnn finetune` "
                       "into it (an interrupted run resumes with the same command).")
    try:
        run = json.loads(meta.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise RunError(f"'{meta}' is not valid JSON ({exc}). Re-run `edgecnn finetune`.") from None
    run["run_dir"] = str(run_dir.resolve())
    run["model_path"] = str(model.resolve())
    return run


def preprocessing(run: dict) -> dict:
    """How the run's images were prepared: ``input_size`` ((H, W), or None), ``resize`` and ``color_order``,
    with the bundle's defaults (:mod:`edgecnn.bundle.model`) for keys an older run.json lacks."""
    from edgecnn.bundle.model import DEFAULT_COLOR_ORDER, DEFAULT_RESIZE

    pre = run.get("preprocess") or {}
    size = pre.get("input_size")
    return {"input_size": tuple(int(v) for v in size) if size else None,
            "resize": pre.get("resize", DEFAULT_RESIZE), "color_order": pre.get("color_order", DEFAULT_COLOR_ORDER)}


def split_samples(run: dict, split: str):
    """Return ``[(absolute Path, label index)]`` of a recorded split (train, val or test)."""
    data = run.get("data", {})
    root = Path(data.get("root", "."))
    labels = run["labels"]
    entries = data.get("splits", {}).get(split)
    if entries is None:
        raise RunError(f"run '{run.get('run_dir')}' recorded no '{split}' split. Pass the images to use "
                       "explicitly (a DATA folder).")
    index = {name: i for i, name in enumerate(labels)}
    return [(root / e["path"], index[e["label"]]) for e in entries]


def load_run_model(run: dict):
    """Load ``run["model_path"]`` (from :func:`load_run`) without running code from the file
    (:mod:`edgecnn.models.safe_load`); a QAT run's inside the scope that knows its quantize wrappers."""
    from edgecnn.models.classifier import load_classifier

    if run.get("qat"):
        from edgecnn.models.quantized import quantize_scope

        with quantize_scope():
            return load_classifier(run["model_path"])
    return load_classifier(run["model_path"])
