"""The remedy loop of ``edgecnn convert --int8 --max-drop D``.

1. Plain full-integer post-training quantization (PTQ), as ``convert --int8 --no-bias-correction``.
2. The same after bias correction of the int8 weight rounding (:mod:`edgecnn.converters.bias_correction`):
   same size, still integer-only (Edge TPU too).
3. If neither is within D (see below): rank layers with the quantization debugger
   (:mod:`edgecnn.converters.debugger`) and retry with the worst layers kept in float (1, 2, 4, 8
   layers; with ``edgetpu`` only tails of the graph, since a float layer mid-graph splits the Edge
   TPU graph in two and sends the rest to the CPU).
4. If still over D and a QAT trainer is given (the run has a train split): a quantization-aware
   trained model, converted to full integer.
5. If no integer model is within D, or only one larger than the float16 model (many float layers),
   and not for the Edge TPU, which runs integer models only: float16 weights, half the float32 size.
   On hymenoptera the flips come from int8 weight rounding itself (int16 activations and
   dynamic-range models flip the same images), so only finer weights stay within a tight D; the
   manifest then says ``quantization: float16``.

"Within D" asks two things: the top-1 drop on the labeled val images is at most D, and the model
disagrees with the float model's top-1 on at most D percent of the val images, their mirror images and
the calibration (for ``convert``: all train) images. On a
val split of a few dozen images a model can flip one image each way and show no drop; flips are
what a larger test set turns into a drop, and counting them needs no labels, so unlabeled images
make the estimate tighter (hymenoptera, MobileNetV2: plain PTQ showed 0.0 pp and no flip on 76
selection plus 100 calibration images, and still lost one of 77 test images).

The smallest model within D is kept (when none is, the one with the smallest drop, preferring
fewer float layers), and every attempt is returned for the manifest's ``attempts`` section.

QAT learns its activation ranges by a moving average (tfmot, decay 0.999), so on a small train
split (hundreds of images, a few epochs) its ranges barely leave their initial values and the QAT
model is far worse than PTQ (hymenoptera: MobileNetV2 0.46 top-1 after 2 epochs). It stays the last
resort and is kept only when it measures better.
"""

from typing import Callable, List, Optional

import numpy as np

from edgecnn.devices.decision import top1
from edgecnn.errors import ConversionError

FLOAT_LAYER_STEPS = (1, 2, 4, 8)


def _accuracy(probs, y) -> float:
    return float((top1(probs) == np.asarray(y)).mean()) if len(y) else 0.0


def candidate_denylists(layers: List[dict], worst: List[dict], edgetpu: bool,
                        steps=FLOAT_LAYER_STEPS) -> List[tuple]:
    """Sets of layers to keep in float, in the order they are tried: ``[(name, layers), ...]``.

    Without ``edgetpu``: the k worst layers for k in ``steps`` (``float_k``), then the tails of the
    graph from the two worst layers (``float_tail_n``: a float layer's output is quantized again for
    the next int8 op, so an error that comes from a wide activation range is only cured by keeping
    the rest of the graph float). With ``edgetpu``: only tails, from each of the worst layers,
    shortest first.
    """
    out = []
    if not edgetpu:
        for k in steps:
            if k <= len(worst) and (not out or len(out[-1][1]) < k):
                out.append((f"float_{k}", worst[:k]))
    starts = sorted({w["index"] for w in worst[:len(steps) if edgetpu else 2]}, reverse=True)
    for start in starts:
        tail = [layer for layer in layers if layer["index"] >= start]
        if all({x["index"] for x in tail} != {x["index"] for x in c} for _, c in out):
            out.append((f"float_tail_{len(tail)}", tail))
    return out


def remedy_convert(model, representative: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, max_drop: float,
                   io: str = "uint8", edgetpu: bool = False, qat: Optional[Callable] = None,
                   float_probs: Optional[np.ndarray] = None, debug_images: Optional[np.ndarray] = None,
                   fidelity_x: Optional[np.ndarray] = None,
                   log: Callable = lambda msg: None) -> dict:
    """Convert ``model`` to int8 within ``max_drop`` pp of top-1 on ``(val_x, val_y)`` if it can.

    Args:
        model: the float Keras classifier (raw pixels in).
        representative: calibration images from the train split.
        val_x, val_y: validation images (uint8, model size) and labels the drop is measured on.
        max_drop: the allowed drop in percentage points.
        io: I/O type of the int8 model (uint8, int8, float32).
        edgetpu: keep float layers only at the tail of the graph.
        qat: optional ``qat(model) -> keras model`` (quantization-aware fine-tuned copy); tried last.
        float_probs: the float model's outputs on ``val_x`` when already computed.
        debug_images: images the per-layer errors are measured on (default: 32 calibration images).
        fidelity_x: unlabeled images on which flips against the float model are also counted
            (default: ``representative`` and the mirrored val images; an empty array counts flips on
            val only).
        log: a callable taking progress lines.

    Returns:
        ``{"content": bytes, "chosen": name, "quantization": "int8"|"float16", "within": bool,
        "float_accuracy", "attempts": [...]}``; each attempt: ``name``, ``method``, ``quantization``,
        ``float_layers``, ``bytes``, ``accuracy``, ``drop_pp``, ``agreement`` (top-1 agreement with the
        float model on val), ``flips``, ``flip_pp`` and ``flip_images`` (top-1 changes against the float
        model on val and ``fidelity_x``), ``within``, optionally ``error`` or ``skipped``.
    """
    from edgecnn.converters.tflite import convert_model, predict_tflite
    from edgecnn.models import keras_probs

    if len(val_y) == 0:
        raise ConversionError("--max-drop needs validation images to measure the drop on; the run has none.")
    float_probs = keras_probs(model, val_x) if float_probs is None else float_probs
    float_acc = _accuracy(float_probs, val_y)
    if fidelity_x is None:  # mirrored val images: unseen views as hard as val itself
        fidelity_x = np.concatenate([np.asarray(representative), np.asarray(val_x)[:, :, ::-1]])
    float_top = np.concatenate([top1(float_probs), top1(keras_probs(model, fidelity_x))]) \
        if len(fidelity_x) else top1(float_probs)
    attempts, contents = [], {}

    def measure(name, method, content, float_layers=(), quantization="int8"):
        probs = predict_tflite(content, val_x)
        acc = _accuracy(probs, val_y)
        drop = round((float_acc - acc) * 100.0, 4)
        top = np.concatenate([top1(probs), top1(predict_tflite(content, fidelity_x))]) \
            if len(fidelity_x) else top1(probs)
        flips = int(np.sum(top != float_top))
        flip_pp = round(100.0 * flips / len(top), 4)
        attempt = {"name": name, "method": method, "quantization": quantization, "float_layers": list(float_layers),
                   "bytes": len(content), "accuracy": acc, "drop_pp": drop,
                   "agreement": float(np.mean(top1(probs) == top1(float_probs))),
                   "flips": flips, "flip_pp": flip_pp, "flip_images": len(top),
                   "within": drop <= max_drop and flip_pp <= max_drop}
        attempts.append(attempt)
        contents[name] = content
        log(f"{name}: top-1 {acc:.4f} (drop {drop:.2f} pp, {flips} of {len(top)} top-1 flipped, {len(content)} bytes)"
            f"{' within' if attempt['within'] else ' over'} --max-drop {max_drop:g}")
        return attempt

    f16 = []

    def float16() -> bytes:  # converted once, when first needed
        if not f16:
            f16.append(convert_model(model, "float16"))
        return f16[0]

    if measure("ptq", "full-integer post-training quantization",
               convert_model(model, "int8", representative, io=io))["within"]:
        return _result(attempts, contents, float_acc)

    from edgecnn.converters.bias_correction import bias_correct
    from edgecnn.converters.debugger import LayerDebugger

    corrected, _ = bias_correct(model, representative)
    if measure("ptq_bias_corrected", "full-integer PTQ after bias correction of the int8 weight rounding",
               convert_model(corrected, "int8", representative, io=io))["within"]:
        return _result(attempts, contents, float_acc)
    # The float-layer rungs start from the uncorrected model: a correction made for a layer's rounded
    # weights is wrong once that layer runs in float (a crushed layer's correction is large).
    dbg = LayerDebugger(model, representative,
                        debug_images if debug_images is not None else representative[:32])
    layers = dbg.layer_errors()
    worst = dbg.worst_layers(max(FLOAT_LAYER_STEPS))
    log("worst layers: " + ", ".join(f"{w['layer']} ({w['relative_rmse']:.3f})" for w in worst[:4]))
    for kind, denylist in candidate_denylists(layers, worst, edgetpu):
        name = f"ptq_{kind}"
        try:
            content = dbg.quantize([layer["node"] for layer in denylist], io_type=io)
        except ConversionError as exc:
            attempts.append({"name": name, "method": "selective quantization", "error": str(exc), "within": False})
            continue
        attempt = measure(name, "selective quantization (QuantizationDebugger denylisted_nodes)", content,
                          [layer["layer"] for layer in denylist])
        if attempt["within"]:
            if edgetpu or attempt["bytes"] <= len(float16()):
                return _result(attempts, contents, float_acc, worst)
            break  # within, but larger than the float16 model: that one is smaller, measure it below

    if any(a["within"] for a in attempts):
        pass  # QAT is slow and rarely within when selective quantization was not; skip it
    elif qat is None:
        attempts.append({"name": "qat", "method": "quantization-aware training", "within": False,
                         "skipped": "no QAT trainer for this run (it needs the run's train split)"})
    else:
        try:
            measure("qat", "quantization-aware training", convert_model(qat(model), "int8", representative, io=io))
        except Exception as exc:  # QAT is a last resort: record why it failed and keep the best so far
            attempts.append({"name": "qat", "method": "quantization-aware training", "within": False,
                             "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
    if edgetpu:
        attempts.append({"name": "float16", "method": "float16 weights", "within": False,
                         "skipped": "the Edge TPU runs integer models only"})
    elif not any(a["within"] and a["bytes"] <= len(float16()) for a in attempts):
        measure("float16", "float16 weights (no smaller integer model was within --max-drop)", float16(),
                quantization="float16")
    return _result(attempts, contents, float_acc, worst)


def _result(attempts, contents, float_acc, worst=None) -> dict:
    done = [a for a in attempts if a["name"] in contents]
    within = [a for a in done if a["within"]]
    # Within D: the smallest file. None within: the smallest drop, then the fewest float layers
    # (integer-only hardware runs those on the CPU), then the smallest file.
    best = min(within, key=lambda a: a["bytes"]) if within else \
        min(done, key=lambda a: (a["drop_pp"], a["flip_pp"], len(a["float_layers"]), a["bytes"]))
    for a in attempts:
        a["chosen"] = a is best
    return {"content": contents[best["name"]], "chosen": best["name"], "within": bool(within),
            "quantization": best.get("quantization", "int8"),
            "float_accuracy": float_acc, "attempts": attempts,
            "worst_layers": [{"layer": w["layer"], "node": w["node"], "relative_rmse": w["relative_rmse"]}
                             for w in (worst or [])]}


def qat_trainer(train_x: np.ndarray, train_y: np.ndarray, epochs: int = 2, learning_rate: float = 1e-5,
                batch_size: int = 16, seed: int = 0) -> Callable:
    """A ``qat(model)`` for :func:`remedy_convert`: tfmot quantization-aware fine-tuning on train images.

    The model is annotated as ``edgecnn qat`` does (:func:`edgecnn.qat.quantize`: every layer tfmot
    supports); batch-norm layers stay frozen in inference mode, as in fine-tuning. The model given is
    copied, never changed.
    """
    def train(model):
        from edgecnn.models import copy_model
        from edgecnn.qat import quantize
        from edgecnn.tf import keras, tf

        tf.random.set_seed(seed)
        base = copy_model(model)  # tfmot wraps the layers it is given: work on a copy
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        qat_model, _ = quantize(base)
        qat_model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
        qat_model.fit(np.asarray(train_x, dtype=np.float32), train_y, epochs=epochs, batch_size=batch_size,
                      verbose=0, shuffle=True)
        return qat_model

    return train


def remedy_for_run(run: dict, model, representative: np.ndarray, size, resize: str, max_drop: float,
                   io: str = "uint8", edgetpu: bool = False, log: Callable = lambda msg: None) -> dict:
    """:func:`remedy_convert` for ``edgecnn convert RUN_DIR --int8 --max-drop D``.

    The drop is measured on the run's val split; QAT is tried last when the run recorded a train
    split (and is not already a QAT run). Returns :func:`remedy_convert`'s result plus
    ``float_layers`` (of the chosen model) and ``messages`` for the user.
    """
    from edgecnn.converters.calibration import run_samples
    from edgecnn.data import load_images

    val = run_samples(run, "val")
    if not val:
        raise ConversionError(f"--max-drop measures the drop on the run's val split, and run '{run.get('run_dir')}' "
                              "recorded none. Convert without --max-drop, then check with `edgecnn evaluate`.")
    val_x, val_y = load_images(val, size, resize)
    train = run_samples(run, "train")
    train_xy = load_images(train, size, resize) if train else None
    qat = None
    if train and not run.get("qat"):
        def qat(m):
            return qat_trainer(*train_xy)(m)

    # flips are counted on val, mirrored val and every train image (the labels are not needed)
    fidelity = np.concatenate([val_x[:, :, ::-1]] + ([train_xy[0]] if train_xy else [np.asarray(representative)]))
    result = remedy_convert(model, representative, val_x, val_y, max_drop, io=io, edgetpu=edgetpu, qat=qat, log=log,
                            fidelity_x=fidelity)
    chosen = next(a for a in result["attempts"] if a.get("chosen"))
    result["float_layers"] = chosen.get("float_layers", [])
    verdict = "within" if result["within"] else "NOT within (kept the smallest drop)"
    result["messages"] = [f"--max-drop {max_drop:g}: chose '{result['chosen']}' ({chosen['drop_pp']:.2f} pp on "
                          f"{len(val_y)} val images, top-1 changed on {chosen['flips']} of {chosen['flip_images']} "
                          f"val, mirrored val and train images, {verdict}) after {len(result['attempts'])} attempt(s)"]
    if result["float_layers"]:
        result["messages"].append("kept in float: " + ", ".join(result["float_layers"]))
    if result["quantization"] != "int8":
        result["messages"].append(f"no integer model was within --max-drop {max_drop:g}: the bundle holds a "
                                  f"{result['quantization']} model (float32 I/O; not for integer-only hardware)")
    return result
