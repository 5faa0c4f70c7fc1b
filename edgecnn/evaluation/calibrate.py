"""``edgecnn calibrate``: confidence calibration of a bundle (a temperature and per-class thresholds),
fitted on the run's val split and judged on images the fit never saw. The math is
:mod:`edgecnn.evaluation.confidence`; this module feeds it a bundle and records the result.
"""

from typing import Optional

from edgecnn.bundle.model import ModelSpec
from edgecnn.errors import DataError
from edgecnn.evaluation.inputs import tell, eval_images, load_bundles, tflite_probs
from edgecnn.run import preprocessing


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
    from edgecnn.evaluation import confidence as cal
    from edgecnn.bundle.manifest import model_path, update_manifest
    from edgecnn.metrics import expected_calibration_error
    from edgecnn.run import load_run

    if target_precision is not None and coverage is not None:
        raise DataError("pass --target-precision or --coverage, not both: thresholds are chosen for one goal.")
    for name, value in (("--target-precision", target_precision), ("--coverage", coverage)):
        if value is not None and not 0.0 < value <= 1.0:
            raise DataError(f"{name} must be in (0, 1], got {value}.")
    run = load_run(run_dir)
    labels = list(run["labels"])
    bundle = load_bundles([bundle_dir], labels)[0]
    spec = ModelSpec.from_manifest(bundle["manifest"])
    size, resize = spec.input_size or preprocessing(run)["input_size"], spec.resize
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

    tell(progress, f"fitting the temperature on {len(val_y)} val images ({folds}-fold cross-validation to judge it)")
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
