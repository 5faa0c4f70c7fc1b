"""``edgecnn evaluate --robustness``: float and quantized models under camera-like corruptions and FGSM.

Every model sees the SAME corrupted images (one seed) and the same adversarial images: FGSM is
crafted on the float Keras model (the quantized graph has no gradient) and then fed to each bundle,
which measures how far attacks on the workstation model transfer to the board's model.
The arithmetic lives in :mod:`edgecnn.evaluation.robustness` and :mod:`edgecnn.evaluation.adversarial`; this module only
binds the evaluate models to them and writes the plain-language summary.
"""

from typing import Callable, Dict, Optional, Sequence

import numpy as np

from edgecnn.evaluation.robustness import KINDS, SEVERITIES

DEFAULT_EPSILONS = (1.0, 2.0, 4.0, 8.0)  # pixel units out of 255


def predictors(c: dict) -> Dict[str, Callable]:
    """The float model first (the reference), then each bundle's CPU model, by evaluate's names."""
    from edgecnn.bundle.manifest import model_path
    from edgecnn.evaluation.inputs import tflite_predictor
    from edgecnn.models.classifier import keras_probs

    fns = {"float": lambda x: keras_probs(c["model"], x, batch_size=64)}
    for name, b in zip(c["names"], c["bundles"]):
        fns[name] = tflite_predictor(model_path(b["dir"], b["manifest"]))
    return fns


def fgsm_summary(fgsm: dict, reference: str = "float") -> str:
    """One plain sentence per model: accuracy at each epsilon, and how int8 changes it (in pp)."""
    eps, acc = fgsm["epsilons"], fgsm["accuracy"]
    lines = []
    ref = acc[reference]
    below_half = next((e for e, a in zip(eps[1:], ref[1:]) if a <= ref[0] / 2), None)
    steps = ", ".join(f"{a:.1%} at epsilon {e:g}/255" for e, a in zip(eps[1:], ref[1:]))
    lines.append(f"FGSM on '{reference}': {ref[0]:.1%} clean; {steps}"
                 + (f" (below half its clean accuracy from epsilon {below_half:g})." if below_half is not None
                    else "."))
    for name, row in acc.items():
        if name == reference:
            continue
        diff = float(np.mean(np.array(row[1:]) - np.array(ref[1:]))) if len(row) > 1 else 0.0
        how = ("transfer about as well" if abs(diff) < 0.03 else
               ("transfer less (quantization blunts the crafted perturbation)" if diff > 0
                else "hurt it more"))
        lines.append(f"The same adversarial images on '{name}': {row[-1]:.1%} at epsilon {eps[-1]:g}/255 "
                     f"({100 * diff:+.1f} pp vs '{reference}' on average): the attacks {how}.")
    return "\n".join(lines)


def robustness(c: dict, kinds: Optional[Sequence[str]] = None, severities: Optional[Sequence[int]] = None,
               epsilons: Optional[Sequence[float]] = None, seed: int = 0, progress=None) -> dict:
    """Accuracy of the float model and each bundle under corruptions and FGSM, with a summary.

    Args:
        c: what :func:`edgecnn.evaluation.inputs.collect_probs` returned (images, the Keras model, bundles).
        kinds: corruption kinds (default: all of :data:`edgecnn.evaluation.robustness.KINDS`).
        severities: severities 1-5 (default: all).
        epsilons: FGSM steps in pixel units (default 1, 2, 4, 8); an empty list skips FGSM.
        seed: corruption seed.
        progress: a callable taking progress lines, or None.

    Returns:
        ``robustness_report``'s dict plus ``fgsm`` (``{"epsilons", "accuracy"}`` or None) and a
        ``summary`` covering both.
    """
    from edgecnn.evaluation.robustness import robustness_report

    kinds = list(kinds or KINDS)
    severities = list(severities or SEVERITIES)
    epsilons = list(DEFAULT_EPSILONS if epsilons is None else epsilons)
    fns = predictors(c)
    if progress:
        progress(f"robustness: {len(kinds)} corruption(s) x {len(severities)} severities on {len(c['y'])} images, "
                 f"models {', '.join(fns)}")
    report = robustness_report(fns, c["x"], c["y"], kinds=kinds, severities=severities, seed=seed)
    report["fgsm"] = None
    if epsilons:
        from edgecnn.evaluation.adversarial import fgsm_report

        if progress:
            progress(f"robustness: FGSM at epsilon {', '.join(f'{e:g}' for e in epsilons)} (pixel units)")
        others = {n: f for n, f in fns.items() if n != "float"}
        fg = fgsm_report(c["model"], c["x"], c["y"], epsilons=epsilons, predict_fns=others, name="float")
        report["fgsm"] = fg
        report["summary"] += "\n" + fgsm_summary(fg)
    return report
