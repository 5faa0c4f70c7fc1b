"""The demo's last step: `edgecnn evaluate` with the gate, a report, and calibrated confidence.

``edgecnn demo`` (helper B's step list in :mod:`edgecnn.demo`) appends :func:`evaluate_step` after
``convert``::

    from edgecnn.evaluate_demo_step import evaluate_step
    result = evaluate_step(run_dir, bundle_dir, out_dir)   # raises nothing on a failed gate
    if not result["passed"]: ...                           # the demo reports it and exits 1

It writes ``OUT/evaluate/report.html`` and ``report.json`` (with the robustness section), fits the
bundle's temperature and per-class thresholds (``decision`` section) for ``target_precision`` on the
val split, and returns a short summary for the demo's console.
"""

from pathlib import Path

DEMO_MAX_DROP = 5.0  # pp: the demo's gate; a user's CI usually sets 1 or less
DEMO_TARGET_PRECISION = 0.9
DEMO_SEVERITIES = [1, 3, 5]  # every corruption at three severities keeps the demo short


def evaluate_step(run_dir, bundle_dir, out_dir, max_drop: float = DEMO_MAX_DROP, max_class_drop=None,
                  target_precision: float = DEMO_TARGET_PRECISION, progress=None) -> dict:
    """Evaluate float vs int8 on the run's held-out split, write the report, calibrate the bundle.

    Returns:
        ``{"passed", "failures", "float_accuracy", "int8_accuracy", "drop_pp", "report",
        "temperature", "thresholds", "ece_before", "ece_after", "robustness", "summary"}``;
        ``robustness`` is the plain-language summary of ``evaluate --robustness`` (corruptions and
        FGSM, float vs int8).
    """
    from edgecnn.evaluate import calibrate_bundle, evaluate

    report = Path(out_dir) / "evaluate" / "report.html"
    result = evaluate([bundle_dir], run_dir, max_drop=max_drop, max_class_drop=max_class_drop, report=report,
                      progress=progress, robustness={"severities": DEMO_SEVERITIES, "epsilons": [2.0, 8.0]})
    quantized = next(iter(result["vs_float"]))
    cal = calibrate_bundle(bundle_dir, run_dir, target_precision=target_precision, progress=progress)
    held = cal.get("held_out") or cal["fit"]
    out = {
        "passed": result["gate"]["passed"],
        "failures": result["gate"]["failures"],
        "float_accuracy": result["models"]["float"]["accuracy"],
        "int8_accuracy": result["models"][quantized]["accuracy"],
        "drop_pp": result["vs_float"][quantized]["accuracy_drop_pp"],
        "report": str(report),
        "temperature": cal["temperature"],
        "thresholds": cal["thresholds"],
        "ece_before": held["ece_before"],
        "ece_after": held["ece_after"],
        "robustness": result["robustness"]["summary"],
    }
    out["summary"] = (f"evaluate: float {out['float_accuracy']:.3f}, int8 {out['int8_accuracy']:.3f} "
                      f"(drop {out['drop_pp']:.2f} pp, gate --max-drop {max_drop:g}: "
                      f"{'passed' if out['passed'] else 'FAILED'}); temperature {out['temperature']:.2f}, "
                      f"ECE {out['ece_before']:.3f} -> {out['ece_after']:.3f}; report {report}\n"
                      f"robustness:\n" + "\n".join(f"  {line}" for line in out["robustness"].splitlines()))
    return out
