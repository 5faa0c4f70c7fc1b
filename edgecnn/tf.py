"""The one place that selects Keras 2 (tf_keras) before TensorFlow is imported (DESIGN rule 3).

tensorflow-model-optimization does not support Keras 3, so every workstation module gets
TensorFlow and Keras from here::

    from edgecnn.tf import tf, keras

It also keeps TensorFlow's log noise off the console (the oneDNN banner, CUDA stub lines and the
cuInit error on machines without a GPU, tf.data's ``use_unbounded_threadpool`` lines, Python-side
``WARNING:tensorflow`` retracing notices): the import runs under
:func:`edgecnn.native_log.quiet_native_stderr`, and C++ logging after it is limited to fatal
errors. ``edgecnn --verbose`` (``EDGECNN_VERBOSE=1``) keeps all of it.

Importing this module is heavy; the CLI imports it inside the commands that need it.
"""

import os

from edgecnn.native_log import quiet_native_stderr, verbose

os.environ["TF_USE_LEGACY_KERAS"] = "1"
if not verbose():
    # Read by TensorFlow's C++ logging once absl is initialised (during the import below).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgecnn.errors import require  # noqa: E402

with quiet_native_stderr():
    tf = require("tensorflow", "train-cpu")
    keras = require("tf_keras", "train-cpu")

if not verbose():
    import logging  # noqa: E402

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def tfmot():
    """Return ``tensorflow_model_optimization`` (imported on first use: it is slow to import)."""
    with quiet_native_stderr():
        return require("tensorflow_model_optimization", "train-cpu")


__all__ = ["tf", "keras", "tfmot"]
