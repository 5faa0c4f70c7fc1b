"""Robustness building blocks: camera-like corruptions and accuracy under them. numpy + OpenCV.

``corrupt`` applies one corruption at a severity from 1 (mild) to 5 (severe) to a batch of uint8
RGB images, deterministically for a seed, keeping shape, dtype and the 0-255 range.
``robustness_report`` runs any number of models (``predict(x_uint8) -> probabilities``, e.g. the
float Keras model and the int8 TFLite interpreter) on the SAME corrupted images and says, in plain
words, what each model is fragile to and how quantization changes that. No TensorFlow here.
"""

import io
import math
from typing import Callable, Dict, Optional, Sequence

import numpy as np

KINDS = ("gaussian_noise", "motion_blur", "defocus_blur", "brightness", "contrast", "exposure", "jpeg",
         "rotation", "occlusion")
SEVERITIES = (1, 2, 3, 4, 5)

# Per kind, the parameter at severities 1..5. Blur sizes and occlusions are fractions of the image side
# so a 64 px and a 224 px input see the same corruption.
_PARAMS = {
    "gaussian_noise": (4.0, 8.0, 14.0, 22.0, 32.0),  # noise std in pixel units
    "motion_blur": (0.03, 0.05, 0.08, 0.11, 0.15),  # kernel length / image side
    "defocus_blur": (0.012, 0.02, 0.03, 0.045, 0.06),  # disk radius / image side
    "brightness": (15.0, 30.0, 50.0, 70.0, 95.0),  # added to every pixel
    "contrast": (0.75, 0.6, 0.45, 0.3, 0.2),  # factor around the image mean
    "exposure": (0.6, 0.4, 0.25, 0.15, 0.08),  # gain in linear light (under-exposure)
    "jpeg": (60, 40, 25, 15, 8),  # JPEG quality
    "rotation": (3.0, 6.0, 10.0, 15.0, 20.0),  # degrees, random sign
    "occlusion": (0.04, 0.08, 0.14, 0.2, 0.3),  # share of the image area hidden
}
_DESCRIPTIONS = {
    "gaussian_noise": "sensor noise",
    "motion_blur": "motion blur",
    "defocus_blur": "out-of-focus blur",
    "brightness": "over-bright images",
    "contrast": "low contrast",
    "exposure": "under-exposure (dark images)",
    "jpeg": "JPEG compression",
    "rotation": "small rotations",
    "occlusion": "partial occlusion",
}


def _check(kind: str, severity: int) -> None:
    if kind not in _PARAMS:
        raise ValueError(f"unknown corruption '{kind}'; use one of {', '.join(KINDS)}")
    if int(severity) not in SEVERITIES or int(severity) != severity:
        raise ValueError(f"severity {severity} must be an integer from 1 (mild) to 5 (severe)")


def _line_kernel(length: int, angle: float) -> np.ndarray:
    import cv2

    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2.0
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1,
             cv2.LINE_AA)
    return k / k.sum()


def _disk_kernel(radius: float) -> np.ndarray:
    r = int(math.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    k = ((xx ** 2 + yy ** 2) <= radius ** 2 + 0.5).astype(np.float32)
    return k / k.sum()


def _one(img: np.ndarray, kind: str, p, rng, severity: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    side = min(h, w)
    f = img.astype(np.float32)
    if kind == "gaussian_noise":
        out = f + rng.normal(0.0, p, f.shape).astype(np.float32)
    elif kind == "motion_blur":
        length = max(2 * severity + 1, int(round(p * side)) | 1)  # longer at every severity
        out = cv2.filter2D(f, -1, _line_kernel(length, rng.uniform(0, math.pi)), borderType=cv2.BORDER_REFLECT)
    elif kind == "defocus_blur":
        out = cv2.filter2D(f, -1, _disk_kernel(max(1.0, p * side)), borderType=cv2.BORDER_REFLECT)
    elif kind == "brightness":
        out = f + p
    elif kind == "contrast":
        mean = f.mean(axis=(0, 1), keepdims=True)
        out = (f - mean) * p + mean
    elif kind == "exposure":
        linear = (f / 255.0) ** 2.2 * p
        out = 255.0 * np.power(linear, 1 / 2.2)
    elif kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(p)])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32)
    elif kind == "rotation":
        angle = p * (1 if rng.random() < 0.5 else -1)
        m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
        out = cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    elif kind == "occlusion":
        aspect = rng.uniform(0.5, 2.0)
        oh = int(round(min(h, math.sqrt(p * h * w / aspect))))
        ow = int(round(min(w, p * h * w / max(oh, 1))))
        y0 = int(rng.integers(0, h - oh + 1))
        x0 = int(rng.integers(0, w - ow + 1))
        out = f.copy()
        out[y0:y0 + oh, x0:x0 + ow] = rng.uniform(0, 255, 3).astype(np.float32)
    else:  # pragma: no cover (checked before)
        raise ValueError(kind)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def corrupt(images: np.ndarray, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """Apply corruption ``kind`` at ``severity`` (1-5) to uint8 RGB images.

    Args:
        images: N x H x W x 3 (or H x W x 3) uint8 RGB.
        kind: one of ``KINDS``.
        severity: 1 (mild) to 5 (severe).
        seed: the same seed gives the same output.

    Returns:
        A new uint8 array of the same shape.
    """
    _check(kind, severity)
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"corrupt() takes uint8 images (0-255), got {images.dtype}")
    single = images.ndim == 3
    batch = images[None] if single else images
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"corrupt() takes N x H x W x 3 or H x W x 3 images, got shape {images.shape}")
    rng = np.random.default_rng([int(seed), KINDS.index(kind), int(severity)])
    p = _PARAMS[kind][int(severity) - 1]
    out = np.stack([_one(img, kind, p, rng, int(severity)) for img in batch]) if len(batch) else batch.copy()
    return out[0] if single else out


def _accuracy(predict: Callable, x: np.ndarray, y: np.ndarray) -> float:
    probs = np.asarray(predict(x))
    return float(np.mean(np.argmax(probs, axis=-1) == y)) if len(y) else float("nan")


def robustness_report(predict_fns: Dict[str, Callable], x: np.ndarray, y: np.ndarray,
                      kinds: Optional[Sequence[str]] = None, severities: Sequence[int] = SEVERITIES,
                      seed: int = 0) -> dict:
    """Accuracy of every model under every corruption and severity, with a plain-language summary.

    Args:
        predict_fns: model name -> ``predict(x_uint8) -> probabilities (N x classes)``. The first one is
            the reference the others are compared with (put the float model first, int8 second).
        x: N x H x W x 3 uint8 images at the models' input size.
        y: N integer labels.
        kinds: corruptions (default: all of ``KINDS``).
        severities: severities to run (default 1-5).
        seed: corruption seed; every model sees the same corrupted images.

    Returns:
        ``{"models", "kinds", "severities", "n", "clean": {model: acc}, "accuracy": {model: {kind:
        {severity: acc}}}, "mean_corrupted": {model: acc}, "fragile_to": {model: [{kind, drop, ...}]},
        "quantization": [{model, kind, severity, delta}], "summary": text}``.
    """
    if not predict_fns:
        raise ValueError("robustness_report needs at least one model in predict_fns")
    x = np.asarray(x)
    y = np.asarray(y).astype(np.int64)
    kinds = list(kinds or KINDS)
    severities = [int(s) for s in severities]
    for kind in kinds:
        for s in severities:
            _check(kind, s)
    names = list(predict_fns)
    clean = {m: _accuracy(fn, x, y) for m, fn in predict_fns.items()}
    acc = {m: {k: {} for k in kinds} for m in names}
    for kind in kinds:
        for s in severities:
            xc = corrupt(x, kind, s, seed)
            for m, fn in predict_fns.items():
                acc[m][kind][s] = _accuracy(fn, xc, y)
    mean_corrupted = {m: float(np.mean([acc[m][k][s] for k in kinds for s in severities])) for m in names}
    fragile = {}
    for m in names:
        rows = []
        for k in kinds:
            worst_s = min(severities, key=lambda s: acc[m][k][s])
            rows.append({"kind": k, "mean_drop": round(clean[m] - float(np.mean(list(acc[m][k].values()))), 4),
                         "worst_severity": worst_s, "worst_accuracy": acc[m][k][worst_s],
                         "worst_drop": round(clean[m] - acc[m][k][worst_s], 4)})
        fragile[m] = sorted(rows, key=lambda r: -r["mean_drop"])
    ref = names[0]
    quant = []
    for m in names[1:]:
        for k in kinds:
            for s in severities:
                quant.append({"model": m, "kind": k, "severity": s,
                              "delta": round(acc[m][k][s] - acc[ref][k][s], 4)})
    report = {"models": names, "kinds": kinds, "severities": severities, "n": int(len(y)), "seed": seed,
              "clean": clean, "accuracy": acc, "mean_corrupted": mean_corrupted, "fragile_to": fragile,
              "quantization": quant}
    report["summary"] = summarize(report)
    return report


def _pp(delta: float) -> str:
    """A difference of two accuracies (fractions) in percentage points, signed."""
    return f"{100 * delta:+.1f} pp"


def more_fragile(report: dict, model: str, threshold: float = 0.03) -> list:
    """Rows of ``report["quantization"]`` for ``model`` where its gap to the reference model is
    ``threshold`` or more wider than on clean images: what quantization itself made more fragile
    (a model that is 8 pp worse everywhere is less accurate, not more fragile)."""
    ref = report["models"][0]
    clean_gap = report["clean"][model] - report["clean"][ref]
    return [q for q in report["quantization"] if q["model"] == model and q["delta"] - clean_gap <= -threshold]


def summarize(report: dict, drop_threshold: float = 0.1, quant_threshold: float = 0.03) -> str:
    """Plain-language summary of a ``robustness_report``.

    Accuracies are percentages; differences between two accuracies are percentage points (pp).
    A corruption is never called both "robust" and "more fragile" for the same model.
    """
    lines = []
    ref = report["models"][0]
    worse = {m: more_fragile(report, m, quant_threshold) for m in report["models"][1:]}
    for m in report["models"]:
        clean = report["clean"][m]
        fragile = [r for r in report["fragile_to"][m] if r["mean_drop"] >= drop_threshold]
        head = (f"'{m}': clean accuracy {clean:.1%}, {report['mean_corrupted'][m]:.1%} on average under "
                f"{len(report['kinds'])} corruption(s) x {len(report['severities'])} severities.")
        if fragile:
            parts = [f"{_DESCRIPTIONS.get(r['kind'], r['kind'])} ({r['kind']}: {100 * r['mean_drop']:.0f} pp lower "
                     f"on average, {r['worst_accuracy']:.0%} at severity {r['worst_severity']})" for r in fragile[:3]]
            head += " Most fragile to " + "; ".join(parts) + "."
        else:
            head += f" No corruption costs it {100 * drop_threshold:.0f} pp or more on average."
        flagged = {q["kind"] for q in worse.get(m, [])}
        robust = [r["kind"] for r in report["fragile_to"][m] if r["mean_drop"] < quant_threshold
                  and r["kind"] not in flagged]
        if robust:
            head += f" Robust to: {', '.join(robust)}."
        lines.append(head)
    for m in report["models"][1:]:
        clean_delta = _pp(report["clean"][m] - report["clean"][ref])
        if not worse[m]:
            lines.append(f"'{m}' vs '{ref}': clean {clean_delta}; under every corruption the gap stays within "
                         f"{100 * quant_threshold:.0f} pp of that, so quantization did not make it more fragile.")
            continue
        by_kind = {}
        for q in worse[m]:
            by_kind.setdefault(q["kind"], []).append(q)
        parts = []
        for kind, qs in sorted(by_kind.items(), key=lambda kv: min(q["delta"] for q in kv[1])):
            w = min(qs, key=lambda q: q["delta"])
            parts.append(f"{kind} ({_pp(w['delta'])} at severity {w['severity']})")
        lines.append(f"'{m}' vs '{ref}': clean {clean_delta}; quantization made it more fragile (the gap widens by "
                     f"{100 * quant_threshold:.0f} pp or more) under " + ", ".join(parts) + ".")
    return "\n".join(lines)


def plot_robustness(report: dict, title: Optional[str] = None) -> bytes:
    """Accuracy-vs-severity curves (one panel per corruption, one line per model) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = report["kinds"]
    cols = min(3, len(kinds))
    rows = int(math.ceil(len(kinds) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False, sharey=True)
    sev = [0] + list(report["severities"])
    for ax, kind in zip(axes.ravel(), kinds):
        for m in report["models"]:
            ys = [report["clean"][m]] + [report["accuracy"][m][kind][s] for s in report["severities"]]
            ax.plot(sev, ys, marker="o", label=m)
        ax.set_title(kind)
        ax.set_xticks(sev)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(kinds):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    for ax in axes[-1]:
        ax.set_xlabel("severity (0 = clean)")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
