"""Quantization-aware training (``edgecnn qat``) and loading any run's model.

A QAT model holds tfmot quantize wrappers, which Keras can only deserialize inside
``tfmot.quantization.keras.quantize_scope()``; run.json records ``"qat": {...}`` and
:func:`load_run_model` is the one function every later step uses to load a run's model.
"""

from edgecnn.models import load_classifier


def load_run_model(run: dict):
    """Load ``run["model_path"]`` (from ``rundir.load_run``), inside quantize_scope for a QAT run."""
    if run.get("qat"):
        from edgecnn.tf import tfmot

        with tfmot().quantization.keras.quantize_scope():
            return load_classifier(run["model_path"])
    return load_classifier(run["model_path"])
