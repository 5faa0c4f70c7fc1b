"""``edgecnn evaluate``: the float model against its quantized bundle(s) on the same held-out images.

The images are the run's recorded ``test`` split (``val`` with a note when the run has none), or a
DATA folder in class-folder layout. They are decoded and resized once, with the bundle's resize
method, and fed to every model: the float Keras model (raw pixels, the graph rescales itself), each
bundle's ``model.tflite`` through the LiteRT interpreter (scale and zero point read from the file),
and, when an Edge TPU and its delegate are present, each bundle's ``model_edgetpu.tflite``. Several
bundles also give their probability-averaged ensemble.

The comparisons themselves are pure numpy (:mod:`edgecnn.compare`); this module only gathers
probabilities, and :mod:`edgecnn.report_html` draws the page.
"""

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from edgecnn.errors import BundleError, DataError, DeviceError, RunError

FLOAT = "float"


def _log(progress, msg):
    if progress:
        progress(msg)


def folder_samples(data_dir, labels: Sequence[str]):
    """``(samples, skipped)`` of a DATA folder in class-folder layout (``DATA/<class>/*.jpg``), scanned.

    Class folders must carry the run's label names; a folder with another name is refused.
    """
    from edgecnn.bundle import sha256_file
    from edgecnn.data import Sample
    from edgecnn.folders import _class_dirs, _files_in
    from edgecnn.scan import scan_file

    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"DATA '{root}' is not a folder. Pass a folder with one sub-folder per class "
                        f"({', '.join(labels)}).")
    index = {name: i for i, name in enumerate(labels)}
    dirs = _class_dirs(root)
    unknown = [d.name for d in dirs if d.name not in index]
    if unknown or not dirs:
        raise DataError(f"DATA '{root}' has class folders {[d.name for d in dirs]}, but the model's classes are "
                        f"{list(labels)}. Use one sub-folder per class, named as the model's labels.")
    samples, skipped = [], []
    for d in dirs:
        for path in _files_in(d):
            result = scan_file(path)
            if result.ok:
                samples.append(Sample(path.resolve(), index[d.name], sha256_file(path)))
            else:
                skipped.append({"path": path.relative_to(root).as_posix(), "reason": result.reason})
    if not samples:
        raise DataError(f"DATA '{root}' holds no usable images.")
    return samples, skipped


def eval_images(run: dict, size, resize: str, data=None, split: Optional[str] = None) -> dict:
    """The held-out images: ``{"x", "y", "files", "root", "source", "notes"}``."""
    from edgecnn.converters.calibration import run_samples
    from edgecnn.data import load_images

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
    from edgecnn.bundle import verify_bundle

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
    from edgecnn.bundle import model_path
    from edgecnn.models import keras_probs
    from edgecnn.qat import load_run_model
    from edgecnn.rundir import load_run

    run = load_run(run_dir)
    labels = list(run["labels"])
    bundles = load_bundles(bundle_dirs, labels)
    first = bundles[0]["manifest"]["model"]
    size = tuple(first.get("input_size") or run.get("preprocess", {}).get("input_size"))
    resize = first.get("resize") or run.get("preprocess", {}).get("resize", "area")
    images = eval_images(run, size, resize, data, split)
    src = images["source"]
    where = f"the {src['split']} split of {src['path']}" if src["kind"] == "run" else src["path"]
    _log(progress, f"{len(images['y'])} images from {where}")
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
        from edgecnn.compare import ensemble_probs

        probs["ensemble"] = ensemble_probs([probs[n] for n in names])
    return {"run": run, "labels": labels, "bundles": bundles, "names": names, "model": model, "probs": probs,
            **images}


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
        robustness: None, or the keyword arguments of :func:`edgecnn.evaluate_robustness.robustness`
            (``{}`` for the defaults): accuracy under corruptions and FGSM, float vs each bundle.

    Returns:
        A JSON-safe dict: ``data``, ``models`` (per-model metrics), ``vs_float`` (drops, agreement,
        probability difference, per class), ``groups``, ``gate``, ``debug``, ``robustness`` and ``notes``.
    """
    from edgecnn.compare import compare_groups, compare_models, gate, read_groups_csv

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
        from edgecnn.evaluate_robustness import robustness as run_robustness

        result["robustness"] = run_robustness(c, progress=progress, **robustness)
    if debug_layers or not verdict["passed"]:
        result["debug"] = layer_debug(c, progress)
    if report is not None:
        from edgecnn.report_html import write_report

        result["report"] = {k: str(v) for k, v in write_report(report, result, y, probs).items()}
    return result


def layer_debug(c: dict, progress=None, top: int = 5) -> dict:
    """``--debug-layers``: rank the float model's layers by int8 error, on calibration images from the
    run's train split (the evaluation images are not used to pick layers)."""
    from edgecnn.converters.calibration import draw_from_run
    from edgecnn.converters.debugger import debug_layers
    from edgecnn.data import load_images

    size = c["x"].shape[1:3]
    resize = c["bundles"][0]["manifest"]["model"].get("resize", "area")
    try:
        samples, _ = draw_from_run(c["run"], 64)
        rep, _ = load_images(samples, size, resize)
        source = "train split"
    except DataError:
        rep, source = c["x"][:32], "evaluation images (the run recorded no train split)"
    _log(progress, "ranking layers by quantization error (QuantizationDebugger)")
    out = debug_layers(c["model"], rep, rep[:32], top=top)
    out["images"] = source
    return out


def calibrate_bundle(bundle_dir, run_dir, target_precision: Optional[float] = None,
                     coverage: Optional[float] = None, write: bool = True, progress=None, folds: int = 5,
                     seed: int = 0) -> dict:
    """Fit the bundle's softmax temperature and per-class thresholds, judge them on held-out images,
    and write them to its manifest when they help.

    The temperature minimises the NLL of the quantized model's (dequantized) probabilities on the
    run's val split; the thresholds, applied to the temperature-scaled top-1 probability, reach
    ``target_precision`` per class or keep ``coverage`` of each predicted class (neither: all 0,
    every top-1 accepted). Figures that judge them are held out: ``folds``-fold cross-validation
    over val (each image scored by a fit on the other folds; ``cross_validated``) and, when the run
    has one, the test split (``held_out``). ``fit`` is on val itself (optimistic: the fit saw it).

    The temperature replaces the bundle's previous one only when the cross-validated ECE (and the
    test ECE, when there is a test split) is lower than the previous temperature's; otherwise the
    previous one is kept (``kept_previous``, ``note``), and without a threshold goal the decision
    section is left as it was (``written`` false; the figures still go to ``metrics.calibration``).
    """
    from edgecnn import calibrate as cal
    from edgecnn.bundle import model_path, update_manifest
    from edgecnn.metrics import expected_calibration_error
    from edgecnn.rundir import load_run

    if target_precision is not None and coverage is not None:
        raise DataError("pass --target-precision or --coverage, not both: thresholds are chosen for one goal.")
    for name, value in (("--target-precision", target_precision), ("--coverage", coverage)):
        if value is not None and not 0.0 < value <= 1.0:
            raise DataError(f"{name} must be in (0, 1], got {value}.")
    run = load_run(run_dir)
    labels = list(run["labels"])
    bundle = load_bundles([bundle_dir], labels)[0]
    spec = bundle["manifest"]["model"]
    size, resize = tuple(spec["input_size"]), spec.get("resize", "area")
    tflite = model_path(bundle["dir"], bundle["manifest"])
    val = eval_images(run, size, resize, split="val")
    val_p, val_y = tflite_probs(tflite, val["x"]), val["y"]
    held_p = held_y = None
    if run.get("data", {}).get("splits", {}).get("test"):
        test = eval_images(run, size, resize, split="test")
        held_p, held_y = tflite_probs(tflite, test["x"]), test["y"]

    def fit_thresholds(scaled, y):
        if target_precision is not None:
            return cal.thresholds_for_precision(scaled, y, target_precision, len(labels))[0]
        if coverage is not None:
            return cal.thresholds_for_coverage(scaled, coverage, len(labels))
        return [0.0] * len(labels)

    _log(progress, f"fitting the temperature on {len(val_y)} val images ({folds}-fold cross-validation to judge it)")
    previous_t = float(bundle["manifest"]["decision"].get("temperature", 1.0))
    temperature = cal.fit_temperature(val_p, val_y)
    crossed = cal.cross_validate(val_p, val_y, cal.fit_temperature, fit_thresholds, folds, seed)
    previous_ece = expected_calibration_error(cal.scaled_probs(val_p, previous_t), val_y)
    better = crossed["ece_after"] < previous_ece
    versus = f"{crossed['ece_after']:.4f} vs {previous_ece:.4f} with the bundle's temperature {previous_t:.3f}"
    note = None
    if not better:
        note = (f"the fitted temperature {temperature:.3f} does not lower the ECE on val, cross-validated "
                f"({versus}): kept the bundle's temperature")
    elif held_p is not None:
        test_after = expected_calibration_error(cal.scaled_probs(held_p, temperature), held_y)
        test_before = expected_calibration_error(cal.scaled_probs(held_p, previous_t), held_y)
        better = test_after <= test_before
        if not better:  # say which held-out images refused it: the two judges can disagree
            note = (f"the fitted temperature {temperature:.3f} lowers the cross-validated ECE on val ({versus}) "
                    f"but not the ECE on the test split ({test_after:.4f} vs {test_before:.4f}): kept the bundle's "
                    "temperature")
    if not better:
        temperature = previous_t
        # the thresholds' held-out figures, with the temperature that stays
        crossed_thresholds = cal.cross_validate(val_p, val_y, lambda p, y: previous_t, fit_thresholds, folds, seed)
        crossed["selective"] = crossed_thresholds["selective"]
    scaled = cal.scaled_probs(val_p, temperature)
    unreached = []
    if target_precision is not None:
        thresholds, unreached = cal.thresholds_for_precision(scaled, val_y, target_precision, len(labels))
    else:
        thresholds = fit_thresholds(scaled, val_y)
    summary = cal.calibration_summary(val_p, val_y, temperature, thresholds, held_p, held_y)
    goal = target_precision is not None or coverage is not None
    summary.update({"target_precision": target_precision, "coverage_target": coverage,
                    "unreached": [labels[i] for i in unreached], "bundle": str(bundle_dir),
                    "cross_validated": crossed, "kept_previous": not better, "previous_temperature": previous_t,
                    "note": note, "written": bool(write and (better or goal))})
    if write:  # the report is recorded either way; the decision only when it changes
        decision = dict(bundle["manifest"]["decision"])
        if summary["written"]:
            decision.update({"temperature": float(temperature), "thresholds": [float(t) for t in thresholds]})
        metrics = dict(bundle["manifest"].get("metrics") or {})
        metrics["calibration"] = {k: summary[k] for k in ("temperature", "target_precision", "coverage_target",
                                                          "kept_previous")}
        metrics["calibration"].update({part: {k: v for k, v in summary[part].items() if k != "risk_coverage"}
                                       for part in ("fit", "held_out", "cross_validated") if part in summary})
        update_manifest(bundle_dir, decision=decision, metrics=metrics)
    return summary
