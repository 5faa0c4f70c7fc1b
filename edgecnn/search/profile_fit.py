"""Fitting the latency profiles in ``edgecnn/profiles/`` on published figures (a maintainer's tool).

Each profile's coefficients are fitted by non-negative least squares on relative error over the
published latencies of :mod:`edgecnn.search.published`; MACs are counted on the real Coral files
when ../shared has them, else on the Keras MobileNet variants converted to TFLite (needs TensorFlow).

    python -m edgecnn.search.profile_fit fit [--coral-dir DIR]      # rewrite edgecnn/profiles/*.json
    python -m edgecnn.search.profile_fit count MODEL.tflite         # MACs per op type of one model
"""

import json
import math
from pathlib import Path
from typing import Dict, Optional

from edgecnn.search.estimate import OP_TYPES, PROFILES_DIR, count_tflite, estimate_ms


def fit_coefficients(rows, params=("overhead",) + OP_TYPES[:2]):
    """Least squares on relative error, coefficients kept non-negative.

    Args:
        rows: ``[(counts, published_ms)]``.
        params: ``overhead`` and op types to fit; ``fully_connected`` takes the ``conv`` rate
            (a matmul is a 1x1 convolution, and no published model separates them).

    Returns:
        ``(overhead_ms, {op type: ms per GMAC}, max relative error, per-row details)``.
    """
    import numpy as np
    from scipy.optimize import nnls

    a, b = [], []
    for counts, ms in rows:
        row = []
        for p in params:
            if p == "overhead":
                row.append(1.0)
            elif p == "conv":
                row.append((counts["conv"] + counts["fully_connected"]) / 1e9)
            else:
                row.append(counts[p] / 1e9)
        # Divide each equation by the published figure: relative error is what we state.
        a.append([v / ms for v in row])
        b.append(1.0)
    a, b = np.asarray(a), np.asarray(b)
    scale = np.maximum(np.abs(a).max(axis=0), 1e-12)
    x, _ = nnls(a / scale, b)
    x = x / scale
    coef = dict(zip(params, (float(v) for v in x)))
    overhead = coef.pop("overhead", 0.0)
    coef.setdefault("fully_connected", coef.get("conv", 0.0))
    profile = {"overhead_ms": overhead, "ms_per_gmac": coef}
    details, worst = [], 0.0
    for counts, ms in rows:
        est = estimate_ms(counts, profile)
        rel = abs(est - ms) / ms
        worst = max(worst, rel)
        details.append({"estimate_ms": est, "relative_error": rel})
    return overhead, coef, worst, details


def _variant_counts(backbone: str, alpha: float, size: int, cache: Dict) -> dict:
    """MACs of a published ImageNet MobileNet (1001 classes) built with Keras and converted to TFLite."""
    key = f"{backbone}_{alpha:g}_{size}"
    if key in cache:
        return cache[key]
    import tempfile

    from edgecnn.tf import keras, tf

    app = {"mobilenet_v1": keras.applications.MobileNet, "mobilenet_v2": keras.applications.MobileNetV2}[backbone]
    model = app(input_shape=(size, size, 3), alpha=alpha, weights=None, classes=1001, include_top=True)
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with tempfile.NamedTemporaryFile(suffix=".tflite") as fh:
        fh.write(data)
        fh.flush()
        cache[key] = count_tflite(fh.name)
    return cache[key]


def fit_profiles(coral_dir: Optional[Path] = None, out_dir: Path = PROFILES_DIR) -> Dict[str, dict]:
    """Fit every profile of :mod:`edgecnn.search.published` and write ``profiles/<name>.json``."""
    from edgecnn.atomic import write_json
    from edgecnn.search.published import PROFILES

    cache: Dict[str, dict] = {}
    written = {}
    for name, spec in PROFILES.items():
        rows, fitted = [], []
        for point in spec["points"]:
            coral_file = point.get("coral_file")
            if coral_dir is not None and coral_file and (Path(coral_dir) / coral_file).is_file():
                counts = count_tflite(Path(coral_dir) / coral_file)
                counted_on = f"shared/models/coral/{coral_file}"
            else:
                counts = _variant_counts(point["backbone"], point["alpha"], point["size"], cache)
                counted_on = (f"keras.applications {point['backbone']} alpha={point['alpha']} "
                              f"size={point['size']} (1001 classes) converted to TFLite")
            rows.append((counts, point["ms"]))
            fitted.append({"model": point["model"], "published_ms": point["ms"], "source": point["source"],
                           "note": point.get("note", ""), "macs_counted_on": counted_on,
                           "coral_file": coral_file,
                           "macs": {t: int(counts[t]) for t in OP_TYPES}})
        overhead, coef, worst, details = fit_coefficients(rows, tuple(spec.get("params", ("overhead", "conv",
                                                                                          "depthwise"))))
        for f, d in zip(fitted, details):
            f.update({"estimate_ms": round(d["estimate_ms"], 4), "relative_error": round(d["relative_error"], 4)})
        profile = {
            "name": name,
            "kind": "estimate",
            "description": spec["description"],
            "formula": "latency_ms = overhead_ms + sum(ms_per_gmac[type] * GMACs[type]) for type in "
                       "conv, depthwise, fully_connected",
            "overhead_ms": round(overhead, 6),
            "ms_per_gmac": {k: round(v, 6) for k, v in coef.items()},
            # Stated error: the worst relative error on the fitted models, rounded up to the next 1%.
            "fit_error": math.ceil(worst * 100 + 1e-9) / 100,
            "fit_method": "non-negative least squares on relative error (scipy.optimize.nnls)",
            "caveats": spec.get("caveats", ""),
            "fitted_on": fitted,
        }
        write_json(Path(out_dir) / f"{name}.json", profile)
        written[name] = profile
    return written


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Fit the latency profiles in edgecnn/profiles/.")
    parser.add_argument("command", choices=["fit", "count"])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--coral-dir", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "models"
                                                   / "coral"))
    args = parser.parse_args(argv)
    if args.command == "count":
        print(json.dumps(count_tflite(args.model), indent=2))
        return
    profiles = fit_profiles(Path(args.coral_dir))
    for name, p in profiles.items():
        print(f"{name}: overhead {p['overhead_ms']:.3f} ms, {p['ms_per_gmac']}, fit error {p['fit_error']:.0%}")


if __name__ == "__main__":  # pragma: no cover
    main()
