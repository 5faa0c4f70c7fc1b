"""Quantization-aware training (``edgecnn qat``) and loading any run's model.

The fake-quant graph is built by :mod:`edgecnn.compress.qat_graph` (the whole graph annotated so
Conv/Depthwise + BatchNorm + ReLU fold as the converter folds them, per-channel depthwise kernels,
activation ranges from the float model's statistics): before any training it already scores what
plain post-training quantization scores. Training is short, at a low learning rate, BatchNorm
frozen, distilled from the float model, and keeps the epoch (0 included) with the best val accuracy
of the fake-quant model, which is the int8 model's up to rounding. Then the QAT model is converted
to int8 and compared with the parent's plain PTQ int8 model on the same val images: a QAT run
that ends worse says so (``worse_than_ptq``; the CLI exits 1) and the remedy ladder never picks it.

A pruned run uses ``Default8BitPrunePreserveQuantizeScheme`` so the zeros survive. A QAT model
holds tfmot quantize wrappers, which Keras can only deserialize inside ``quantize_scope``; run.json
records ``"qat": {...}`` and :func:`edgecnn.run.load_run_model` (the one function every later step
uses to load a run's model) reads it inside :func:`edgecnn.models.quantized.quantize_scope`.
"""

import time

import numpy as np

from edgecnn.errors import EdgecnnError, RunError
from edgecnn.models.quantized import quantize_scope
from edgecnn.run import preprocessing

DEFAULT_EPOCHS = 3
DEFAULT_LR = 1e-5
DEFAULT_PATIENCE = 2
DEFAULT_CALIBRATION_SIZE = 100  # as convert's: the PTQ baseline is the model convert would write


def quantize(model, preserve_sparsity: bool = False):
    """QAT model of a float model (not trained, ranges not set): ``(qat_model, report)``."""
    from edgecnn.compress import qat_graph
    from edgecnn.models.classifier import copy_model
    from edgecnn.tf import tfmot

    annotated_model, annotated, left_out = qat_graph.annotate(copy_model(model))  # tfmot wraps what it gets
    if not annotated:
        raise EdgecnnError("tfmot can annotate none of the model's layers for QAT; convert it with plain "
                           "post-training quantization (`edgecnn convert --int8`) instead.")
    with quantize_scope():
        qat = tfmot().quantization.keras.quantize_apply(annotated_model, qat_graph.scheme(preserve_sparsity))
    report = {"annotated": len(annotated), "left_out": left_out,
              "scheme": "Default8BitPrunePreserveQuantizeScheme" if preserve_sparsity else "Default8BitQuantizeScheme"}
    return qat, report


def _accuracy(probs, y) -> float:
    from edgecnn.devices.decision import top1

    return float(np.mean(top1(probs) == np.asarray(y))) if len(y) else 0.0


def train_qat(model, train, val, labels, representative: np.ndarray, epochs: int = DEFAULT_EPOCHS,
              lr: float = DEFAULT_LR, batch_size: int = 32, augment: str = "light", distill: bool = True,
              seed: int = 0, patience: int = DEFAULT_PATIENCE, preserve_sparsity: bool = False, verbose: int = 0,
              log=lambda msg: None):
    """Quantization-aware fine-tuning of the float ``model``: ``(qat_model, report)``.

    ``train`` and ``val`` are ``(x uint8, y)`` (val may be None: then the last epoch is kept);
    ``representative`` are the calibration images the activation ranges start from.
    """
    from edgecnn.compress import retrain
    from edgecnn.models.classifier import keras_probs
    from edgecnn.compress.qat_graph import bias_safe_kernel_ranges, init_ranges
    from edgecnn.tf import keras

    qat, report = quantize(model, preserve_sparsity)
    # Frozen before the range pass, which runs in training mode: a BatchNorm in training mode would
    # fold one batch's statistics into its moving averages.
    retrain.freeze_batchnorm(qat)
    report["ranges_from_float"] = init_ranges(qat, model, representative)
    report["bias_safe_channels"] = bias_safe_kernel_ranges(qat)
    best = {"epoch": 0, "accuracy": _accuracy(keras_probs(qat, val[0]), val[1]) if val else None}
    best_weights = qat.get_weights()
    if val is not None:
        log(f"QAT epoch 0 (ranges from float statistics): val accuracy {best['accuracy']:.4f}")

    class KeepBest(keras.callbacks.Callback):
        """Early stopping on the fake-quant model's val accuracy; only a strict gain replaces the best,
        so the earlier (closer to plain PTQ) weights win a tie."""

        def on_epoch_end(self, epoch, logs=None):
            nonlocal best_weights
            bias_safe_kernel_ranges(qat)  # training reset the kernel ranges to the weights'
            if val is None:
                return
            accuracy = _accuracy(keras_probs(qat, val[0]), val[1])
            log(f"QAT epoch {epoch + 1}: val accuracy {accuracy:.4f}")
            if accuracy > best["accuracy"]:
                best.update(epoch=epoch + 1, accuracy=accuracy)
                best_weights = qat.get_weights()
            elif epoch + 1 - best["epoch"] >= patience:
                self.model.stop_training = True

    teacher = model if distill else None
    history = retrain.fit(qat, train, val, labels, epochs, lr, batch_size, seed, augment, callbacks=[KeepBest()],
                          verbose=verbose, phase="qat", teacher=teacher) if epochs and train is not None else []
    if val is not None:
        qat.set_weights(best_weights)
    report.update(best_epoch=best["epoch"] if val is not None else len(history), history=history)
    return qat, report


def int8_comparison(model, qat, representative, val, io: str = "uint8") -> dict:
    """Val top-1 of the parent's plain PTQ int8 model and of the QAT model's int8 export."""
    from edgecnn.converters.tflite import convert_model, predict_tflite

    ptq = _accuracy(predict_tflite(convert_model(model, "int8", representative, io=io), val[0]), val[1])
    content = convert_model(qat, "int8", representative, io=io)
    qat_acc = _accuracy(predict_tflite(content, val[0]), val[1])
    return {"ptq_int8_accuracy": ptq, "qat_int8_accuracy": qat_acc, "worse_than_ptq": bool(qat_acc < ptq),
            "content": content}


def rebuild_for_saving(qat):
    """A QAT model built from its config, with the trained weights: the form ``load_model`` rebuilds.

    A QuantizeWrapper around an already-built layer (ours: loaded from RUN_DIR) tracks some inner
    variables in its own lists too, so ``model.save`` of the trained object writes variable groups
    the loader (which builds the layers from config) does not expect. ``model.weights`` is
    de-duplicated and in the same order for both, so the values transfer one to one.
    """
    from edgecnn.tf import keras

    with quantize_scope():
        fresh = keras.models.clone_model(qat)
    fresh.set_weights(qat.get_weights())  # raises on any shape mismatch
    return fresh


def qat_run(run_dir, out, epochs: int = DEFAULT_EPOCHS, lr: float = DEFAULT_LR, batch_size: int = 32,
            augment: str = "light", distill: bool = True, seed: int = 0, patience: int = DEFAULT_PATIENCE,
            calibration_size: int = DEFAULT_CALIBRATION_SIZE, verbose: int = 0, progress=None) -> dict:
    """Quantization-aware fine-tuning of RUN_DIR's model, saved as RUN_DIR ``out`` (``"qat"`` in run.json).

    The run is written even when it ends worse than plain PTQ (``worse_than_ptq`` true), so it can
    be inspected; the CLI then exits 1 and ``convert --max-drop`` never picks such a model.

    Returns:
        The QAT report: annotated and left-out layers, scheme, best epoch, val accuracy of the float,
        fake-quant, PTQ int8 and QAT int8 models, ``worse_than_ptq``.
    """
    from edgecnn.compress import retrain
    from edgecnn.converters.representative import draw_from_run
    from edgecnn.data.pixels import load_images
    from edgecnn.run import load_run

    started = time.perf_counter()
    if epochs < 0:
        raise EdgecnnError(f"--epochs {epochs} must be 0 or more.")
    run = load_run(run_dir)
    if run.get("qat"):
        raise RunError(f"'{run_dir}' is already a QAT run (its parent is {run['parent']['run_dir']}). Convert it "
                       "with `edgecnn convert`, or run qat on the float run.")
    model, (train, val, test) = retrain.load_parent(run)
    labels = run["labels"]
    if train is None:
        raise RunError(f"run '{run_dir}' recorded no train split: QAT needs its images for the activation "
                       "ranges and for fine-tuning.")
    pre = preprocessing(run)
    samples, _ = draw_from_run(run, calibration_size)
    representative, _ = load_images(samples, pre["input_size"], pre["resize"])
    before = retrain.evaluate(model, *val, labels) if val else None
    pruned = bool(run.get("pruning"))
    qat, report = train_qat(model, train, val, labels, representative, epochs, lr, batch_size, augment, distill,
                            seed, patience, preserve_sparsity=pruned, verbose=verbose,
                            log=progress or (lambda msg: None))
    history = report.pop("history")
    metrics = {"val": retrain.evaluate(qat, *val, labels) if val else None}
    if test is not None:
        metrics["test"] = retrain.evaluate(qat, *test, labels)
    details = dict(report, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment, distill=distill, seed=seed,
                   patience=patience, preserves_sparsity=pruned, calibration_images=len(representative),
                   val_accuracy_before=before["accuracy"] if before else None,
                   val_accuracy_after=metrics["val"]["accuracy"] if metrics["val"] else None,
                   ptq_int8_accuracy=None, qat_int8_accuracy=None, worse_than_ptq=False)
    if val is not None:
        comparison = int8_comparison(model, qat, representative, val)
        comparison.pop("content")
        details.update(comparison)
    metrics["qat"] = {k: details[k] for k in ("val_accuracy_before", "val_accuracy_after", "ptq_int8_accuracy",
                                              "qat_int8_accuracy", "worse_than_ptq")}
    retrain.write_child(out, rebuild_for_saving(qat), run, "qat", details, history, metrics, started)
    return dict(details, run_dir=str(out))


def format_summary(result: dict) -> str:
    """Human summary of a QAT report."""
    lines = [f"QAT run {result['run_dir']}: {result['annotated']} layers quantization-aware ({result['scheme']}), "
             f"{result['ranges_from_float']} activation ranges from float statistics"]
    for entry in result["left_out"]:
        lines.append(f"  left out (float in training, quantized at conversion): {entry['layer']} ({entry['type']}): "
                     f"{entry['reason']}")
    if result["val_accuracy_before"] is not None:
        lines.append(f"Val accuracy: float {result['val_accuracy_before']:.4f}, fake-quant "
                     f"{result['val_accuracy_after']:.4f} (epoch {result['best_epoch']} of {result['epochs']} kept)")
        lines.append(f"Val accuracy int8: plain PTQ {result['ptq_int8_accuracy']:.4f}, QAT "
                     f"{result['qat_int8_accuracy']:.4f}")
    if result["worse_than_ptq"]:
        lines.append(f"QAT IS WORSE THAN PLAIN PTQ: {result['qat_int8_accuracy']:.4f} < "
                     f"{result['ptq_int8_accuracy']:.4f} int8 val accuracy. Do not ship this run: convert the parent "
                     "run instead (`edgecnn convert PARENT --int8`).")
    else:
        lines.append(f"Next: edgecnn convert {result['run_dir']} --int8 --out BUNDLE_DIR")
    return "\n".join(lines)
