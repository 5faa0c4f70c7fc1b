"""The demo's evaluation step: calibrated confidence, then `edgecnn evaluate` with the gate and a report.

``edgecnn demo`` (its step list in :mod:`edgecnn.demo.trip`) calls :func:`evaluate_step` after ``convert``::

    from edgecnn.demo.evaluate_step import evaluate_step
    result = evaluate_step(run_dir, bundle_dir, out_dir)   # raises nothing on a failed gate
    if result["failures"]: ...                             # the demo names them and exits 1

First the bundle's softmax temperature and per-class thresholds (``decision`` section) are fitted
on the val split for ``target_precision``; the temperature is kept only when it makes ECE better on
images the fit never saw (:func:`calibrate`, which is ``edgecnn calibrate``). Then the float model and the int8 bundle are
compared on the test split, with robustness, and ``OUT/evaluate/report.html`` and ``report.json``
are written (the report shows the calibration that was kept).
"""

from pathlib import Path

DEMO_MAX_DROP = 5.0  # pp: the demo's gate (6 of its 120 test images); a user's CI usually sets 1 or less
DEMO_TARGET_PRECISION = 0.9
DEMO_SEVERITIES = [1, 3, 5]  # every corruption at three severities keeps the demo short
DEMO_EPSILONS = [2.0, 8.0]


def calibrate(bundle_dir, run_dir, target_precision: float = DEMO_TARGET_PRECISION, progress=None) -> dict:
    """``edgecnn calibrate``'s library call: the temperature is fitted on val and kept only when it
    lowers ECE on images the fit never saw; the per-class thresholds are written either way.

    Returns :func:`edgecnn.evaluation.calibrate.calibrate_bundle`'s result plus ``summary`` (one line).
    """
    from edgecnn.evaluation.calibrate import calibrate_bundle

    cal = calibrate_bundle(bundle_dir, run_dir, target_precision=target_precision, write=True, progress=progress)
    cv, held = cal["cross_validated"], cal.get("held_out")
    judged = f"{cv['folds']}-fold cross-validated on {cv['n']} val images {cv['ece_before']:.3f} -> {cv['ece_after']:.3f}"
    if held:
        judged += f", on {held['n']} test images {held['ece_before']:.3f} -> {held['ece_after']:.3f}"
    thresholds = (f"per-class thresholds for {target_precision:.0%} precision written (below them the board says "
                  "'unknown')")
    if cal["kept_previous"]:
        cal["summary"] = f"confidence: {cal['note']}; {thresholds}"
    else:
        cal["summary"] = (f"confidence: temperature {cal['temperature']:.2f} lowers ECE on images its fit never saw "
                          f"({judged}): written to the bundle; {thresholds}")
    return cal


def evaluate_step(run_dir, bundle_dir, out_dir, max_drop: float = DEMO_MAX_DROP, max_class_drop=None,
                  target_precision: float = DEMO_TARGET_PRECISION, progress=None) -> dict:
    """Calibrate the bundle, evaluate float vs int8 on the run's test split, write the report.

    Returns:
        ``{"passed", "failures", "float_accuracy", "int8_accuracy", "drop_pp", "n", "report",
        "calibration", "robustness", "evaluate", "summary"}``; ``robustness`` is the plain-language
        summary of ``evaluate --robustness`` (corruptions and FGSM, float vs int8); ``evaluate`` the
        full result of :func:`edgecnn.evaluation.evaluate.evaluate`.
    """
    from edgecnn.evaluation.evaluate import evaluate

    cal = calibrate(bundle_dir, run_dir, target_precision, progress)
    report = Path(out_dir) / "evaluate" / "report.html"
    result = evaluate([bundle_dir], run_dir, max_drop=max_drop, max_class_drop=max_class_drop, report=report,
                      progress=progress, robustness={"severities": DEMO_SEVERITIES, "epsilons": DEMO_EPSILONS})
    quantized = next(iter(result["vs_float"]))
    out = {
        "passed": result["gate"]["passed"],
        "failures": list(result["gate"]["failures"]),
        "float_accuracy": result["models"]["float"]["accuracy"],
        "int8_accuracy": result["models"][quantized]["accuracy"],
        "drop_pp": result["vs_float"][quantized]["accuracy_drop_pp"],
        "n": result["data"]["n"],
        "report": str(report),
        "calibration": cal,
        "robustness": result["robustness"]["summary"],
        "evaluate": result,
    }
    flips = round(out["drop_pp"] * out["n"] / 100)
    out["summary"] = (f"evaluate: {out['n']} test images: float {out['float_accuracy']:.3f}, int8 "
                      f"{out['int8_accuracy']:.3f} (drop {out['drop_pp']:.2f} pp = {flips} image"
                      f"{'' if abs(flips) == 1 else 's'}; gate --max-drop {max_drop:g}: "
                      f"{'passed' if out['passed'] else 'FAILED'}); report {report}\n"
                      f"{cal['summary']}\n"
                      f"robustness:\n" + "\n".join(f"  {line}" for line in out["robustness"].splitlines()))
    return out
