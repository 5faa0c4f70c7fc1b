"""``edgecnn evaluate``: the float model against its quantized bundle(s) on the same held-out images.

The images are the run's recorded ``test`` split (``val`` with a note when the run has none), or a
DATA folder in class-folder layout. They are decoded and resized once, with the bundle's resize
method, and fed to every model: the float Keras model (raw pixels, the graph rescales itself), each
bundle's ``model.tflite`` through the LiteRT interpreter (scale and zero point read from the file),
and, when an Edge TPU and its delegate are present, each bundle's ``model_edgetpu.tflite``. Several
bundles also give their probability-averaged ensemble.

The comparisons themselves are pure numpy (:mod:`edgecnn.evaluation.compare`); this module only gathers
probabilities, and :mod:`edgecnn.evaluation.report` draws the page.
"""

from typing import Optional, Sequence

from edgecnn.bundle.model import ModelSpec
from edgecnn.errors import DataError
from edgecnn.evaluation.inputs import FLOAT, collect_probs, tell



def evaluate(bundle_dirs: Sequence, run_dir, data=None, groups_csv=None, max_drop: Optional[float] = None,
             max_class_drop: Optional[float] = None, max_flips: Optional[float] = None, debug_layers: bool = False, report=None,
             progress=None, robustness: Optional[dict] = None) -> dict:
    """Compare the float model of ``run_dir`` with each bundle (and their ensemble) and apply the gate.

    Args:
        bundle_dirs: one or more BUNDLE_DIRs converted from this run.
        run_dir: the RUN_DIR holding the float model and its recorded splits.
        data: a DATA folder (class-folder layout) to evaluate on instead of the run's test split.
        groups_csv: a CSV of ``file,group`` rows for per-group figures.
        max_drop: gate on the top-1 accuracy drop (pp) of each model against the float one.
        max_flips: gate on the percentage of images whose top-1 differs from the float model's
            (:mod:`edgecnn.converters.criteria`, the same criterion as ``convert --max-flips``).
        max_class_drop: gate on each class's recall drop and each group's accuracy drop (pp).
        debug_layers: rank layers by quantization error (also done when the gate fails).
        report: path of an HTML report; ``report.json`` is written beside it.
        progress: a callable taking progress lines, or None.
        robustness: None, or the keyword arguments of :func:`edgecnn.evaluation.robustness_run.robustness`
            (``{}`` for the defaults): accuracy under corruptions and FGSM, float vs each bundle.

    Returns:
        A JSON-safe dict: ``data``, ``models`` (per-model metrics), ``vs_float`` (drops, agreement,
        probability difference, per class), ``groups``, ``gate``, ``debug``, ``robustness`` and ``notes``.
    """
    from edgecnn.evaluation.compare import compare_groups, compare_models, gate, read_groups_csv

    c = collect_probs(bundle_dirs, run_dir, data, progress=progress)
    labels, y, probs = c["labels"], c["y"], c["probs"]
    comparison = compare_models(y, probs, labels, reference=FLOAT)
    groups = None
    if groups_csv is not None:
        groups = compare_groups(y, probs, read_groups_csv(groups_csv, c["files"], c["root"]), labels, FLOAT)
    verdict = gate(comparison, max_drop, max_class_drop, groups, max_flips)
    result = {
        "run_dir": c["run"]["run_dir"],
        "bundles": [str(b["dir"]) for b in c["bundles"]],
        "data": {**c["source"], "n": int(len(y))},
        "labels": labels,
        "models": comparison["models"],
        "vs_float": comparison["vs_reference"],
        "groups": groups,
        "gate": verdict,
        "notes": c["notes"],
        "debug": None,
        "robustness": None,
    }
    if robustness is not None:
        from edgecnn.evaluation.robustness_run import robustness as run_robustness

        result["robustness"] = run_robustness(c, progress=progress, **robustness)
    if debug_layers or not verdict["passed"]:
        result["debug"] = layer_debug(c, progress)
    if report is not None:
        from edgecnn.evaluation.report import write_report

        result["report"] = {k: str(v) for k, v in write_report(report, result, y, probs).items()}
    return result


def layer_debug(c: dict, progress=None, top: int = 5) -> dict:
    """``--debug-layers``: rank the float model's layers by int8 error, on calibration images from the
    run's train split (the evaluation images are not used to pick layers)."""
    from edgecnn.converters.representative import draw_from_run
    from edgecnn.converters.debugger import debug_layers
    from edgecnn.data.pixels import load_images

    size = c["x"].shape[1:3]
    resize = ModelSpec.from_manifest(c["bundles"][0]["manifest"]).resize
    try:
        samples, _ = draw_from_run(c["run"], 64)
        rep, _ = load_images(samples, size, resize)
        source = "train split"
    except DataError:
        rep, source = c["x"][:32], "evaluation images (the run recorded no train split)"
    tell(progress, "ranking layers by quantization error (QuantizationDebugger)")
    out = debug_layers(c["model"], rep, rep[:32], top=top)
    out["images"] = source
    return out


