"""Where training runs: a tf.distribute strategy and the mixed-precision policy."""

import contextlib
import json
import os
import tempfile

from edgecnn.errors import RunError
from edgecnn.tf import keras, tf


def make_strategy(name: str):
    """``auto``: MirroredStrategy over all GPUs when there are several, else the default strategy.
    ``mirrored``: MirroredStrategy over the GPUs, or over the logical CPU devices when there is no
    GPU (tests split the CPU in two). ``multiworker``: MultiWorkerMirroredStrategy from TF_CONFIG.
    """
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multiworker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise RunError("--strategy multiworker needs the TF_CONFIG environment variable (the cluster and "
                           "this worker's task), set on every worker. Use --strategy mirrored for one machine.")
        try:
            json.loads(config)
        except ValueError as exc:
            raise RunError(f"TF_CONFIG is not valid JSON ({exc}).") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise RunError(f"--strategy '{name}' is not one of: auto, mirrored, multiworker.")


def is_chief(strategy) -> bool:
    """Whether this worker writes the RUN_DIR (always true outside MultiWorkerMirroredStrategy)."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def save_weights(model, path, strategy=None):
    """``model.save_weights`` to ``path`` atomically (.h5). Under MultiWorker every worker must save
    (reading synced variables is collective); only the chief's file is kept."""
    from edgecnn import atomic

    if strategy is not None and not is_chief(strategy):
        with tempfile.TemporaryDirectory() as scratch:
            model.save_weights(os.path.join(scratch, "w.h5"))
        return
    with atomic.atomic_path(path) as tmp:
        model.save_weights(str(tmp))


def determinism() -> bool:
    """Turn on TensorFlow's deterministic ops on CPU (same seed, same weights).

    On a GPU some kernels have no deterministic version and the rest are slower, so there it is
    opt-in with ``EDGECNN_DETERMINISTIC=1``. Returns whether it is on.
    """
    if tf.config.list_logical_devices("GPU") and os.environ.get("EDGECNN_DETERMINISTIC") != "1":
        return False
    tf.config.experimental.enable_op_determinism()
    return True


def describe(strategy) -> dict:
    """JSON-safe description for run.json."""
    gpus = tf.config.list_logical_devices("GPU")
    return {"name": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync),
            "device": "gpu" if gpus else "cpu", "gpus": len(gpus)}


@contextlib.contextmanager
def precision(mixed: bool):
    """Use the ``mixed_float16`` policy inside the block (the head's softmax stays float32)."""
    previous = keras.mixed_precision.global_policy()
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
