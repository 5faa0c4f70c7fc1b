"""Quantization-aware training (``edgecnn qat``) and loading any run's model.

The flat model is annotated layer by layer (``clone_model`` + ``quantize_annotate_layer`` for the
layers tfmot's 8-bit registry supports); the others (Rescaling, for one) are left out and listed in
the report, never a crash. ``quantize_apply`` then inserts the fake-quant ops. A pruned run uses
``Default8BitPrunePreserveQuantizeScheme`` so the zeros survive. Fine-tuning keeps BatchNorm frozen.

A QAT model holds tfmot quantize wrappers, which Keras can only deserialize inside
``tfmot.quantization.keras.quantize_scope()``; run.json records ``"qat": {...}`` and
:func:`load_run_model` is the one function every later step uses to load a run's model.
"""

import time

from edgecnn.errors import EdgecnnError, RunError
from edgecnn.models import load_classifier


def load_run_model(run: dict):
    """Load ``run["model_path"]`` (from ``rundir.load_run``), inside quantize_scope for a QAT run."""
    if run.get("qat"):
        from edgecnn.tf import tfmot

        with tfmot().quantization.keras.quantize_scope():
            return load_classifier(run["model_path"])
    return load_classifier(run["model_path"])


def annotate(model):
    """Annotate every layer the default 8-bit registry supports; return ``(model, annotated, left_out)``.

    ``left_out`` is ``[{"layer", "type", "reason"}]``: those layers run in float inside the QAT
    graph (the converter still quantizes them in the int8 export).
    """
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_mod,
    )

    from edgecnn.tf import keras, tfmot

    qk = tfmot().quantization.keras
    registry = registry_mod.Default8BitQuantizeRegistry()
    annotated, left_out = [], []

    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        if not registry.supports(layer):
            left_out.append({"layer": layer.name, "type": type(layer).__name__,
                             "reason": "not supported by tfmot's default 8-bit quantize registry"})
            return layer
        try:
            out = qk.quantize_annotate_layer(layer)
        except Exception as exc:  # tfmot raises ValueError/TypeError/RuntimeError for odd layers
            left_out.append({"layer": layer.name, "type": type(layer).__name__, "reason": str(exc).splitlines()[0]})
            return layer
        annotated.append(layer.name)
        return out

    return keras.models.clone_model(model, clone_function=clone), annotated, left_out


def _prune_preserve_scheme():
    """tfmot's Default8BitPrunePreserveQuantizeScheme, with one fix.

    Its registry's ``supports()`` says yes to every layer without trainable weights (Rescaling
    included), and ``get_quantize_config()`` then fails on those the default 8-bit registry does not
    know; quantize_apply asks both for the layer before an annotated one. Here a layer is supported
    only when both registries support it, so such layers stay float as in the plain scheme.
    """
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_mod,
    )

    from edgecnn.tf import tfmot

    base = tfmot().experimental.combine.Default8BitPrunePreserveQuantizeScheme
    default = registry_mod.Default8BitQuantizeRegistry()

    class Scheme(base):
        def get_quantize_registry(self):
            registry = super().get_quantize_registry()
            preserve_supports = registry.supports
            registry.supports = lambda layer: default.supports(layer) and preserve_supports(layer)
            return registry

    return Scheme()


def quantize(model, preserve_sparsity: bool = False):
    """QAT model of a float model: ``(qat_model, report)``."""
    from edgecnn.tf import tfmot

    t = tfmot()
    qk = t.quantization.keras
    annotated_model, annotated, left_out = annotate(model)
    if not annotated:
        raise EdgecnnError("tfmot can annotate none of the model's layers for QAT; convert it with plain "
                           "post-training quantization (`edgecnn convert --int8`) instead.")
    scheme = _prune_preserve_scheme() if preserve_sparsity else None
    with qk.quantize_scope():
        qat = qk.quantize_apply(annotated_model, scheme) if scheme else qk.quantize_apply(annotated_model)
    report = {"annotated": len(annotated), "left_out": left_out,
              "scheme": "Default8BitPrunePreserveQuantizeScheme" if preserve_sparsity else "Default8BitQuantizeScheme"}
    return qat, report


def rebuild_for_saving(qat):
    """A QAT model built from its config, with the trained weights: the form ``load_model`` rebuilds.

    A QuantizeWrapper around an already-built layer (ours: loaded from RUN_DIR) tracks some inner
    variables in its own lists too, so ``model.save`` of the trained object writes variable groups
    the loader (which builds the layers from config) does not expect. ``model.weights`` is
    de-duplicated and in the same order for both, so the values transfer one to one.
    """
    from edgecnn.tf import keras, tfmot

    with tfmot().quantization.keras.quantize_scope():
        fresh = keras.models.clone_model(qat)
    fresh.set_weights(qat.get_weights())  # raises on any shape mismatch
    return fresh


def qat_run(run_dir, out, epochs: int = 2, lr: float = 1e-5, batch_size: int = 32, augment: str = "light",
            distill: bool = True, seed: int = 0, verbose: int = 0) -> dict:
    """Quantization-aware fine-tuning of RUN_DIR's model, saved as RUN_DIR ``out`` (``"qat"`` in run.json).

    Returns:
        The QAT report: annotated and left-out layers, scheme, val accuracy before and after.
    """
    from edgecnn import retrain
    from edgecnn.rundir import load_run

    started = time.perf_counter()
    if epochs < 0:
        raise EdgecnnError(f"--epochs {epochs} must be 0 or more.")
    run = load_run(run_dir)
    if run.get("qat"):
        raise RunError(f"'{run_dir}' is already a QAT run (its parent is {run['parent']['run_dir']}). Convert it "
                       "with `edgecnn convert`, or run qat on the float run.")
    model, (train, val, test) = retrain.load_parent(run)
    labels = run["labels"]
    if train is None and epochs:
        raise RunError(f"run '{run_dir}' recorded no train split for QAT fine-tuning.")
    before = retrain.evaluate(model, *val, labels) if val else None
    pruned = bool(run.get("pruning"))
    qat, report = quantize(model, preserve_sparsity=pruned)
    retrain.freeze_batchnorm(qat)
    teacher = load_run_model(run) if distill else None
    history = retrain.fit(qat, train, val, labels, epochs, lr, batch_size, seed, augment, verbose=verbose,
                          phase="qat", teacher=teacher) if epochs else []
    metrics = {"val": retrain.evaluate(qat, *val, labels) if val else None}
    if test is not None:
        metrics["test"] = retrain.evaluate(qat, *test, labels)
    details = dict(report, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment, distill=distill, seed=seed,
                   preserves_sparsity=pruned,
                   val_accuracy_before=before["accuracy"] if before else None,
                   val_accuracy_after=metrics["val"]["accuracy"] if metrics["val"] else None)
    metrics["qat"] = {k: details[k] for k in ("val_accuracy_before", "val_accuracy_after")}
    retrain.write_child(out, rebuild_for_saving(qat), run, "qat", details, history, metrics, started)
    return dict(details, run_dir=str(out))


def format_summary(result: dict) -> str:
    """Human summary of a QAT report."""
    lines = [f"QAT run {result['run_dir']}: {result['annotated']} layers quantization-aware ({result['scheme']})"]
    for entry in result["left_out"]:
        lines.append(f"  left out (float in training, quantized at conversion): {entry['layer']} ({entry['type']}): "
                     f"{entry['reason']}")
    if result["val_accuracy_before"] is not None:
        lines.append(f"Val accuracy (fake-quant Keras model): {result['val_accuracy_before']:.3f} -> "
                     f"{result['val_accuracy_after']:.3f}")
    lines.append(f"Next: edgecnn convert {result['run_dir']} --int8 --out BUNDLE_DIR")
    return "\n".join(lines)
