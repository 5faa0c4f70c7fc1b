"""Where training runs: a tf.distribute strategy and the mixed-precision policy."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from edgecnn.errors import RunError
from edgecnn.tf import keras, tf
from edgecnn.train import cluster

# A collective (a gradient all-reduce) waiting this long for a peer fails instead of hanging. Peers
# wait for each other legitimately only for seconds (the chief writing a checkpoint or the feature
# cache); a dead peer is usually found sooner by the strategy's own health check (every 30 s).
COLLECTIVE_TIMEOUT_S = 300


def make_strategy(name: str):
    """``auto``: MirroredStrategy over all GPUs when there are several, else the default strategy.
    ``mirrored``: MirroredStrategy over the GPUs, or over the logical CPU devices when there is no
    GPU (tests split the CPU in two). ``multiworker``: MultiWorkerMirroredStrategy from TF_CONFIG.
    """
    if name == "multiworker":
        # First, before anything lists devices: the strategy configures the collective ops, which
        # TensorFlow only allows before its runtime starts.
        if cluster.task() is None:
            raise RunError("--strategy multiworker needs the TF_CONFIG environment variable (the cluster and "
                           "this worker's task), set on every worker, or --workers HOST:PORT,HOST:PORT "
                           "--worker-index N. Use --strategy mirrored for one machine.")
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT_S)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
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


def strategy_name(strategy) -> str:
    """The strategy's public name (TensorFlow's MultiWorkerMirroredStrategy class is CollectiveAllReduceStrategy)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__


def describe(strategy) -> dict:
    """JSON-safe description for run.json; under MultiWorker the cluster too (workers, this task)."""
    gpus = tf.config.list_logical_devices("GPU")
    info = {"name": strategy_name(strategy), "replicas": int(strategy.num_replicas_in_sync),
            "device": "gpu" if gpus else "cpu", "gpus": len(gpus)}
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        info["cluster"] = cluster.task()
    return info


@contextlib.contextmanager
def backup_dir(strategy, folder):
    """The folder keras' BackupAndRestore is given: ``folder`` on the chief. Another worker writes nothing
    in RUN_DIR: it gets a scratch copy of the chief's checkpoint (to restore the same epoch) and its
    own writes stay there."""
    if folder is None or is_chief(strategy):
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="edgecnn-worker-backup-") as scratch:
        local = Path(scratch) / "backup"
        if Path(folder).is_dir():
            shutil.copytree(folder, local, ignore=shutil.ignore_patterns("workertemp_*"))
        yield local


@contextlib.contextmanager
def peers_watched(strategy):
    """A peer of a MultiWorker cluster that died (its collectives aborted or timed out) becomes one RunError."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.FailedPreconditionError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        peers = ", ".join(w for ws in cluster.task()["cluster"].values() for w in ws)
        raise RunError(f"a worker of the cluster ({peers}) stopped answering ({first}). Start "
                       "every worker again with the same command: the run resumes from its last checkpoint.") from None


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
