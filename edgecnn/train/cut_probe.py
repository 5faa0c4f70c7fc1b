"""Where to cut the base, by measurement: one pass of the base gives pooled features at every cut point,
a linear probe per cut scores them on val, and ``auto`` takes the smallest cut near the best.

The pass is one Keras model with an output per candidate (:func:`edgecnn.models.cuts.cut_points`):
each image runs through the base once, however many cuts are probed. Its features are what the
truncated classifier's pool layer gives (the same layers, the same rescaling, then global average
pooling), and are cached like phase 1's (``RUN_DIR/.cache`` for ``finetune --cut-at auto``).

The probe per cut is :func:`edgecnn.train.linear_head.probe_accuracy`: a multinomial logistic
regression on standardised features (seeded, fitted on train, scored on val), fitted in a fraction of a second and without the noise of a few SGD epochs, so the
cuts are compared on their features alone.
"""

import time

import numpy as np

from edgecnn.train.linear_head import probe_accuracy
from edgecnn.train.options import DEFAULTS

DEFAULT_MAX_DROP = DEFAULTS["cut_max_drop"]  # pp of val accuracy below the best cut `auto` gives up for a smaller model
INT8_BYTES_PER_WEIGHT = 1  # the size estimate: int8 weights; int32 biases and the graph are in the ~overhead


def probe_model(found):
    """A Keras model from raw pixels to ``[pooled features at each cut]`` and the cut names, shallow first."""
    from edgecnn.models.cuts import cut_points
    from edgecnn.tf import keras

    base = found.model
    names = cut_points(base, found.cut_pattern)
    inputs = keras.Input(shape=(found.size, found.size, 3), name="image")
    x = inputs
    if found.rescale is not None:
        x = keras.layers.Rescaling(found.rescale[0], offset=found.rescale[1])(x)
    multi = keras.Model(base.input, [base.get_layer(n).output for n in names])
    outs = multi(x)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    pooled = [keras.layers.GlobalAveragePooling2D()(o) if len(o.shape) == 4 else o for o in outs]
    return keras.Model(inputs, pooled, name="cut_probe"), names


def cut_params(found, names) -> list:
    """Parameters of the base kept by each cut (everything up to and including it)."""
    from edgecnn.models.cuts import truncate

    return [int(truncate(found.model, n).count_params()) for n in names]


def features_at_cuts(model, names, images: dict, batch_size: int) -> dict:
    """``{split: [features at cut 0, cut 1, ...]}`` in one pass of the base over all splits."""
    from edgecnn.train.pipeline import eval_dataset_of

    splits = [s for s, x in images.items() if len(x)]
    outs = model.predict(eval_dataset_of([images[s] for s in splits], batch_size), verbose=0)
    outs = outs if isinstance(outs, list) else [outs]
    bounds = np.cumsum([0] + [len(images[s]) for s in splits])
    return {s: [np.asarray(o[bounds[i]:bounds[i + 1]], np.float32) for o in outs] for i, s in enumerate(splits)}


def choose(rows: list, max_drop: float) -> dict:
    """The smallest cut (fewest parameters) whose val accuracy is within ``max_drop`` pp of the best."""
    best = max(r["val_accuracy"] for r in rows)
    within = [r for r in rows if r["val_accuracy"] >= best - max_drop / 100.0 - 1e-12]
    return min(within, key=lambda r: (r["params"], -r["val_accuracy"]))


def probe(found, images: dict, y: dict, num_classes: int, batch_size: int = 32, seed: int = 0,
          max_drop: float = DEFAULT_MAX_DROP, cached=None) -> dict:
    """Measure every cut of ``found`` (a :class:`edgecnn.models.classifier.LoadedBase`).

    Args:
        images, y: ``{"train": uint8 images, "val": ...}`` and their labels.
        cached: ``compute -> (features, hit)`` to keep the pass's features (``edgecnn.train.features.cached``
            with a key), or None to compute them.

    Returns:
        ``{"cuts": [{"index", "cut_at", "channels", "params", "int8_kb_est", "val_accuracy"}], "auto": row,
        "best_val_accuracy", "max_drop_pp", "features_cached", "seconds"}``; the last row is the whole
        base; ``seconds`` is the pass and the fits, the model's building left out.
    """
    model, names = probe_model(found)
    started = time.perf_counter()

    def compute():
        feats = features_at_cuts(model, names, {s: images[s] for s in ("train", "val")}, batch_size)
        return {f"{s}_{k}": f for s, per in feats.items() for k, f in enumerate(per)}

    flat, hit = cached(compute) if cached else (compute(), False)
    params = cut_params(found, names)
    rows = []
    for k, name in enumerate(names):
        channels = int(flat[f"train_{k}"].shape[-1])
        head = channels * num_classes + num_classes
        acc = probe_accuracy(flat[f"train_{k}"], y["train"], flat[f"val_{k}"], y["val"], num_classes, seed)
        rows.append({"index": k, "cut_at": name, "channels": channels, "params": params[k] + head,
                     "int8_kb_est": round((params[k] + head) * INT8_BYTES_PER_WEIGHT / 1024, 1),
                     "val_accuracy": acc})
    auto = choose(rows, max_drop)
    return {"cuts": rows, "auto": auto, "best_val_accuracy": max(r["val_accuracy"] for r in rows),
            "max_drop_pp": max_drop, "features_cached": hit, "seconds": round(time.perf_counter() - started, 3)}


def probe_key(found, resize: str, splits: dict) -> str:
    """The cache key of a probe pass: finetune's feature key, for the whole base and all its cuts."""
    from edgecnn.train import features

    config = {"backbone": found.name, "alpha": found.alpha, "input_size": found.size,
              "rescale": list(found.rescale) if found.rescale is not None else None, "pool_layer": "cut_probe"}
    return features.cache_key(config, features.weights_digest(found.model), resize, splits, False)


def probe_run(job) -> dict:
    """``finetune --cut-at auto``: probe the run's base on its train and val images (features cached in
    RUN_DIR/.cache), log the table, and return the probe's result."""
    from edgecnn.models.classifier import load_base
    from edgecnn.train import features

    a = job.args
    found = load_base(a["backbone"], a["input_size"], a["alpha"], a["weights"], a["base"])
    job.size = found.size
    job.log(f"Probing where to cut {found.what}: one pass of the base, a linear probe per block...")
    splits = {s: job.splits[s] for s in ("train", "val")}
    result = probe(found, {s: job.images(s) for s in splits}, job.y, len(job.labels), a["batch_size"], a["seed"],
                   a["cut_max_drop"],
                   cached=lambda compute: features.cached(job.state.cache, probe_key(found, a["resize"], splits),
                                                          compute))
    job.log(format_table(result))
    return result


def format_table(result: dict) -> str:
    """The probe's table: one line per cut, the ``auto`` choice marked; MACs and latency columns when the
    rows have them (``edgecnn probe-cuts`` adds them)."""
    costs = "latency_ms" in result["cuts"][0]
    lines = [f"{'#':>3}  {'cut at':<34} {'channels':>8} {'params':>10} {'int8 KB~':>9} {'val acc':>8}"
             + (f" {'MMACs':>8} {'ms~':>8}" if costs else "")]
    for r in result["cuts"]:
        mark = "  <- auto" if r["index"] == result["auto"]["index"] else ""
        extra = f" {r['macs'] / 1e6:>8.1f} {r['latency_ms']:>8.2f}" if costs else ""
        lines.append(f"{r['index']:>3}  {r['cut_at']:<34} {r['channels']:>8} {r['params']:>10,} "
                     f"{r['int8_kb_est']:>9.1f} {r['val_accuracy']:>8.3f}{extra}{mark}")
    lines.append(f"auto: the smallest cut within {result['max_drop_pp']:g} pp of the best val accuracy "
                 f"({result['best_val_accuracy']:.3f}): #{result['auto']['index']} {result['auto']['cut_at']}")
    return "\n".join(lines)
