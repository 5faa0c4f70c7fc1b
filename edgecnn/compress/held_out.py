"""The held-out images a conversion is checked on, and the quick figure it records on them.

``edgecnn convert`` measures float vs converted accuracy on a few hundred of the run's val images
(``metrics`` in the manifest) and takes its golden samples from them, each class in turn;
``edgecnn evaluate`` makes the full comparison.
"""

import numpy as np


def held_out_split(run: dict):
    """``(split name, samples)`` of the images a conversion is checked on: val, else test, else none."""
    from edgecnn.converters.representative import run_samples

    for split in ("val", "test"):
        if run.get("data", {}).get("splits", {}).get(split):
            return split, run_samples(run, split)
    return None, []


def round_robin(samples, count: int):
    """Up to ``count`` samples taking each class in turn (golden samples cover the classes)."""
    by_label = {}
    for s in samples:
        by_label.setdefault(s.label, []).append(s)
    out, k = [], 0
    while len(out) < count and any(k < len(v) for v in by_label.values()):
        out.extend(v[k] for _, v in sorted(by_label.items()) if k < len(v))
        k += 1
    return out[:count]


def quick_accuracy(model, content: bytes, samples, labels, size, resize: str) -> dict:
    """Float vs converted accuracy and agreement on ``samples``: the figure convert prints (evaluate makes the full one)."""
    from edgecnn.converters.tflite import predict_tflite
    from edgecnn.data.pixels import load_images
    from edgecnn.metrics import classification_report

    x, y = load_images(samples, size, resize)
    float_scores = model.predict(x.astype(np.float32), batch_size=32, verbose=0)
    quant_scores = predict_tflite(content, x)
    f_pred, q_pred = float_scores.argmax(1), quant_scores.argmax(1)
    f_rep = classification_report(y, f_pred, labels)
    q_rep = classification_report(y, q_pred, labels)
    return {
        "float": f_rep,
        "quantized": q_rep,
        "float_accuracy": f_rep["accuracy"],
        "quantized_accuracy": q_rep["accuracy"],
        "drop_pp": 100.0 * (f_rep["accuracy"] - q_rep["accuracy"]),
        "top1_agreement": float(np.mean(f_pred == q_pred)),
        "max_abs_score_diff": float(np.abs(float_scores - quant_scores).max()),
        "mean_abs_score_diff": float(np.abs(float_scores - quant_scores).mean()),
    }
