"""The remedy ladder of ``edgecnn convert --int8 --max-drop PP [--max-flips PCT]``.

Rungs, simplest first; each attempt's figures are printed as it is measured:

1. Full-integer post-training quantization after bias correction of the int8 weight rounding
   (:mod:`edgecnn.converters.bias_correction`): what plain ``convert --int8`` writes (plain PTQ
   for a QAT run or with ``--no-bias-correction``).
2. The other of the two (plain PTQ, or bias-corrected).
3. The worst layers kept in float (ranked by :mod:`edgecnn.converters.debugger`; 1, 2, 4, 8
   layers, then tails of the graph; with ``edgetpu`` only tails, since a float layer mid-graph
   splits the Edge TPU graph). One whose float weights would make it larger than the float16
   model is skipped unconverted: float16 would beat it.
4. Quantization-aware training (:func:`edgecnn.compress.qat.train_qat`) when the run has a train split. A
   QAT model whose int8 val accuracy is below plain PTQ's is recorded ``worse_than_ptq`` and never
   chosen, and the ladder skips QAT on a run where it already failed (``RUN_DIR/.cache``).
5. float16 weights (never for the Edge TPU, which runs integer models only).

The ladder stops at the first model within both criteria (:mod:`edgecnn.converters.criteria`).
A later rung replaces the one kept so far only when it is better beyond the noise: on the
same images (val, mirrored val, every train image and its mirror image: labels are not needed to
count flips) it must agree with the float model on significantly more images (a paired McNemar
bound) and lose no more val accuracy. One image either way is noise on a val split of a few dozen
(issue 13: ``ptq_float_4`` won on 76 selection images and lost 2.6 pp on 77 others), so a tie keeps
the earlier, simpler model, and the ladder never ends on a model that is not significantly closer
to the float model than the bias-corrected int8 it started from.
"""

from typing import Callable, List, Optional

import numpy as np

from edgecnn.converters import criteria
from edgecnn.converters.criteria import DEFAULT_MAX_FLIPS_PCT
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


def remedy_convert(model, representative: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                   max_drop: Optional[float], max_flips: Optional[float] = DEFAULT_MAX_FLIPS_PCT, io: str = "uint8",
                   edgetpu: bool = False, qat: Optional[Callable] = None, bias_correction: bool = True,
                   float_probs: Optional[np.ndarray] = None, debug_images: Optional[np.ndarray] = None,
                   fidelity_x: Optional[np.ndarray] = None, qat_skip: Optional[str] = None,
                   log: Callable = lambda msg: None) -> dict:
    """Climb the ladder for ``model``; keep the first model within both criteria, or the best one.

    Args:
        model: the float Keras classifier (raw pixels in).
        representative: calibration images from the train split.
        val_x, val_y: labelled validation images (uint8, model size): the accuracy drop is measured here.
        max_drop: the allowed top-1 accuracy drop in pp (None: not checked).
        max_flips: the allowed percentage of images whose top-1 differs from the float model's (None: not
            checked).
        io: I/O type of the int8 model (uint8, int8, float32).
        edgetpu: keep float layers only at the tail of the graph; no float16.
        qat: optional ``qat(model) -> keras model`` (quantization-aware fine-tuned copy).
        bias_correction: the first rung is bias-corrected PTQ (else plain PTQ).
        float_probs: the float model's outputs on ``val_x`` when already computed.
        debug_images: images the per-layer errors are measured on (default: 32 calibration images).
        fidelity_x: unlabeled images on which flips are also counted (default: ``representative`` and
            the mirrored val images; an empty array counts flips on val only).
        qat_skip: a reason to skip the QAT rung (it already failed on this run).
        log: a callable taking progress lines.

    Returns:
        ``{"content": bytes, "chosen": name, "quantization": "int8"|"float16", "within": bool,
        "float_accuracy", "attempts": [...], "worst_layers"}``; each attempt: ``name``, ``method``,
        ``quantization``, ``float_layers``, ``bytes``, ``accuracy``, ``drop_pp``, ``flips``,
        ``flip_pct`` and ``flip_images`` (top-1 changes against the float model on val and
        ``fidelity_x``), ``within``, ``chosen``, optionally ``error``, ``skipped`` or ``worse_than_ptq``.
    """
    if len(val_y) == 0:
        raise ConversionError("--max-drop measures the drop on validation images; the run has none.")
    ladder = _Ladder(model, representative, val_x, val_y, max_drop, max_flips, io, float_probs, fidelity_x, log)
    _ptq_rungs(ladder, bias_correction)
    if ladder.done():
        return ladder.result()
    worst = _float_layer_rungs(ladder, debug_images, edgetpu)
    if not ladder.done():
        _qat_rung(ladder, qat, qat_skip)
    if not ladder.done():
        _float16_rung(ladder, edgetpu)
    return ladder.result(worst)


class _Ladder:
    """The ladder's state: the float model's reference outputs, every attempt, and the model kept so far."""

    def __init__(self, model, representative, val_x, val_y, max_drop, max_flips, io, float_probs, fidelity_x, log):
        from edgecnn.models.classifier import keras_probs

        self.model, self.representative, self.val_x, self.val_y = model, representative, val_x, val_y
        self.max_drop, self.max_flips, self.io, self.log = max_drop, max_flips, io, log
        float_probs = keras_probs(model, val_x) if float_probs is None else float_probs
        self.float_acc = _accuracy(float_probs, val_y)
        if fidelity_x is None:  # mirrored val images: unseen views as hard as val itself
            fidelity_x = np.concatenate([np.asarray(representative), np.asarray(val_x)[:, :, ::-1]])
        self.fidelity_x = fidelity_x
        self.reference = np.concatenate([float_probs, keras_probs(model, fidelity_x)]) if len(fidelity_x) \
            else float_probs
        self.attempts, self.contents, self.masks, self.best = [], {}, {}, None
        self._float16 = None

    def int8(self, model) -> bytes:
        """``model`` as full-integer PTQ (with the ladder's calibration images and I/O type)."""
        from edgecnn.converters.tflite import convert_model

        return convert_model(model, "int8", self.representative, io=self.io)

    def float16_bytes(self) -> bytes:
        """The float16 model, converted once, when first needed."""
        from edgecnn.converters.tflite import convert_model

        if self._float16 is None:
            self._float16 = convert_model(self.model, "float16")
        return self._float16

    def limits(self) -> str:
        return (f"limits --max-drop {'-' if self.max_drop is None else self.max_drop}, "
                f"--max-flips {'-' if self.max_flips is None else self.max_flips}")

    def measure(self, name, method, content, float_layers=(), quantization="int8") -> dict:
        """Run ``content`` on val and the fidelity images; record (and print) the attempt's figures."""
        from edgecnn.converters.tflite import predict_tflite

        probs = predict_tflite(content, self.val_x)
        outputs = np.concatenate([probs, predict_tflite(content, self.fidelity_x)]) if len(self.fidelity_x) else probs
        acc = _accuracy(probs, self.val_y)
        mask = criteria.flipped(self.reference, outputs)
        attempt = {"name": name, "method": method, "quantization": quantization, "float_layers": list(float_layers),
                   "bytes": len(content), "accuracy": acc, "drop_pp": criteria.drop_pp(self.float_acc, acc),
                   "flips": int(mask.sum()), "flip_pct": round(100.0 * float(mask.mean()), 4),
                   "flip_images": int(mask.size)}
        attempt["within"] = not criteria.failures(name, attempt["drop_pp"], attempt["flip_pct"], self.max_drop,
                                                  self.max_flips)
        self.attempts.append(attempt)
        self.contents[name], self.masks[name] = content, mask
        self.log(f"{name}: top-1 {acc:.4f} on {len(self.val_y)} val images (drop {attempt['drop_pp']:.2f} pp), top-1 "
                 f"changed on {attempt['flips']} of {mask.size} images ({attempt['flip_pct']:.2f}%), {len(content)} "
                 f"bytes: {'within' if attempt['within'] else 'over'} ({self.limits()})")
        return attempt

    def consider(self, attempt):
        """Keep ``attempt`` if it is the first, or better than the kept one beyond the noise."""
        current = self.best
        if attempt.get("worse_than_ptq") or attempt["name"] not in self.contents:
            return
        if current is None or (attempt["drop_pp"] <= current["drop_pp"] and
                               criteria.better_beyond_noise(self.masks[attempt["name"]], self.masks[current["name"]])):
            self.best = attempt

    def done(self) -> bool:
        return self.best is not None and self.best["within"]

    def result(self, worst=None) -> dict:
        return _result(self.attempts, self.contents, self.best, self.float_acc, worst)


def _ptq_rungs(ladder: _Ladder, bias_correction: bool):
    """Rungs 1 and 2: bias-corrected and plain PTQ, in the order ``bias_correction`` says."""
    from edgecnn.converters.bias_correction import bias_correct

    first = [("ptq_bias_corrected", "full-integer PTQ after bias correction of the int8 weight rounding",
              lambda: ladder.int8(bias_correct(ladder.model, ladder.representative)[0])),
             ("ptq", "full-integer post-training quantization", lambda: ladder.int8(ladder.model))]
    if not bias_correction:
        first.reverse()
    for name, method, make in first:
        ladder.consider(ladder.measure(name, method, make()))
        if ladder.done():
            return


def _float_layer_rungs(ladder: _Ladder, debug_images, edgetpu: bool):
    """Rung 3: the worst layers kept in float, until one is within. Returns the worst layers."""
    from edgecnn.converters.debugger import LayerDebugger

    model, representative = ladder.model, ladder.representative
    # These rungs start from the uncorrected model: a correction made for a layer's rounded
    # weights is wrong once that layer runs in float (a crushed layer's correction is large).
    dbg = LayerDebugger(model, representative, debug_images if debug_images is not None else representative[:32])
    layers = dbg.layer_errors()
    worst = dbg.worst_layers(max(FLOAT_LAYER_STEPS))
    ladder.log("worst layers: " + ", ".join(f"{w['layer']} ({w['relative_rmse']:.3f})" for w in worst[:4]))
    int8_bytes = min(a["bytes"] for a in ladder.attempts if "bytes" in a)
    for kind, denylist in candidate_denylists(layers, worst, edgetpu):
        name = f"ptq_{kind}"
        names = [layer["layer"] for layer in denylist]
        # float32 weights take 3 more bytes each than int8 ones
        estimate = int8_bytes + 3 * sum(_params(model, n) for n in set(names))
        if not edgetpu and estimate > len(ladder.float16_bytes()):
            ladder.attempts.append({"name": name, "method": "selective quantization", "within": False,
                                    "float_layers": names,
                                    "skipped": f"about {estimate} bytes, larger than the float16 model "
                                               f"({len(ladder.float16_bytes())} bytes)"})
            ladder.log(f"{name}: skipped, larger than the float16 model")
            continue
        try:
            content = dbg.quantize([layer["node"] for layer in denylist], io_type=ladder.io)
        except ConversionError as exc:
            ladder.attempts.append({"name": name, "method": "selective quantization", "error": str(exc),
                                    "within": False})
            continue
        ladder.consider(ladder.measure(name, "selective quantization (QuantizationDebugger denylisted_nodes)",
                                       content, names))
        if ladder.done():
            break
    return worst


def _qat_rung(ladder: _Ladder, qat: Optional[Callable], qat_skip: Optional[str]):
    """Rung 4: quantization-aware training; never chosen when its int8 val accuracy is below plain PTQ's."""
    if qat is None or qat_skip:
        ladder.attempts.append({"name": "qat", "method": "quantization-aware training", "within": False,
                                "skipped": qat_skip or "no QAT trainer for this run (it needs the run's train split)"})
        return
    ptq_accuracy = next(a["accuracy"] for a in ladder.attempts if a["name"] == "ptq")
    try:
        ladder.log("qat: quantization-aware training (ranges from float statistics, BatchNorm folded and frozen)")
        attempt = ladder.measure("qat", "quantization-aware training", ladder.int8(qat(ladder.model)))
        attempt["worse_than_ptq"] = attempt["accuracy"] < ptq_accuracy
        if attempt["worse_than_ptq"]:
            attempt["within"] = False
            ladder.log(f"qat: WORSE than plain PTQ on val ({attempt['accuracy']:.4f} < {ptq_accuracy:.4f}): "
                       "never chosen")
        ladder.consider(attempt)
    except Exception as exc:  # QAT is a late rung: record why it failed and keep the best so far
        ladder.attempts.append({"name": "qat", "method": "quantization-aware training", "within": False,
                                "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})


def _float16_rung(ladder: _Ladder, edgetpu: bool):
    """Rung 5: float16 weights (never for the Edge TPU, which runs integer models only)."""
    if edgetpu:
        ladder.attempts.append({"name": "float16", "method": "float16 weights", "within": False,
                                "skipped": "the Edge TPU runs integer models only"})
    else:
        ladder.consider(ladder.measure("float16", "float16 weights (no integer model was within the limits)",
                                       ladder.float16_bytes(), quantization="float16"))


def _params(model, layer_name: str) -> int:
    try:
        return int(model.get_layer(layer_name).count_params())
    except ValueError:  # a TFLite node without a Keras layer of that name
        return 0


def _result(attempts, contents, best, float_acc, worst=None) -> dict:
    for a in attempts:
        a["chosen"] = a is best
    return {"content": contents[best["name"]], "chosen": best["name"], "within": bool(best["within"]),
            "quantization": best.get("quantization", "int8"),
            "float_accuracy": float_acc, "attempts": attempts,
            "worst_layers": [{"layer": w["layer"], "node": w["node"], "relative_rmse": w["relative_rmse"]}
                             for w in (worst or [])]}
