"""The one place that selects Keras 2 (tf_keras) before TensorFlow is imported (DESIGN rule 3).

tensorflow-model-optimization does not support Keras 3, so every workstation module gets
TensorFlow and Keras from here::

    from edgecnn.tf import tf, keras

Importing this module is heavy; the CLI imports it inside the commands that need it.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep oneDNN/CUDA banners off the console

from edgecnn.errors import require  # noqa: E402

tf = require("tensorflow", "train-cpu")
keras = require("tf_keras", "train-cpu")


def tfmot():
    """Return ``tensorflow_model_optimization`` (imported on first use: it is slow to import)."""
    return require("tensorflow_model_optimization", "train-cpu")


__all__ = ["tf", "keras", "tfmot"]
