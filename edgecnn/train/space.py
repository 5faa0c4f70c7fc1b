"""Disk space of a training run: checked before training, and a clear error when the disk fills.

A full disk used to surface as an h5py or TensorFlow ``ResourceExhaustedError`` traceback after
hours of training, leaving half-written checkpoints behind. Here the run first checks that RUN_DIR's
file system can hold what the run will write, and any disk-full failure during the run becomes one
:class:`DiskFullError` naming RUN_DIR and the space needed, after partial files are removed. The
finished phases stay, so the same command resumes once space is freed.
"""

import contextlib
from pathlib import Path

from edgecnn.errors import (DiskFullError, check_free_space, disk_full_message, format_bytes, free_bytes,
                                  is_disk_full, remove_path)

_SMALL_FILES = 2_000_000  # run.json, history, metrics, the confusion PNG, h5 headers: generous
# Weight-sized files a run may hold at its peak, in units of the model's float32 weights:
# phase1.h5, two best-*.h5, phase2.h5, model.keras, and phase 2's checkpoint (weights plus Adam's
# two slots) twice while BackupAndRestore writes the next one beside the last.
_HEAD_ONLY_COPIES = 2
_FINE_TUNE_COPIES = 5 + 2 * 3


def weights_bytes(model) -> int:
    """Bytes of the model's weights as float32."""
    return 4 * sum(int(w.shape.num_elements()) for w in model.weights)


def needed_bytes(model, images: int, feature_dim: int, fine_tune: bool) -> int:
    """What a run writes into RUN_DIR at most, with some room: weights copies, the feature cache, small files."""
    copies = _FINE_TUNE_COPIES if fine_tune else _HEAD_ONLY_COPIES
    return copies * weights_bytes(model) + 4 * images * feature_dim + _SMALL_FILES


def _held(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() else 0


def check_run_space(out, needed: int):
    """Refuse to start when RUN_DIR's file system lacks what the run still has to write.

    What RUN_DIR already holds (a resumed run's progress and cache) counts towards ``needed``.
    """
    out = Path(out)
    check_free_space(out, max(0, needed - _held(out)), "this training run")


def remove_partial_checkpoints(progress):
    """Remove what a failed TensorFlow checkpoint write leaves: ``ckpt-N_temp/`` and ``*.tempstate*``."""
    progress = Path(progress)
    if not progress.is_dir():
        return
    for path in sorted(progress.rglob("*"), reverse=True):
        if (path.is_dir() and path.name.endswith("_temp")) or ".tempstate" in path.name:
            remove_path(path)


def disk_full_error(out, needed: int) -> DiskFullError:
    """The one message of a run whose disk filled up (after the partial files are gone)."""
    out = Path(out)
    need = max(0, needed - _held(out))
    return DiskFullError(f"no space left on the device holding RUN_DIR '{out}': {format_bytes(free_bytes(out))} free "
                         f"there, the run needs about {format_bytes(need)} more. Free some space (or use another "
                         "--out) and run the same command again: the phases already done are kept.")


@contextlib.contextmanager
def disk_full_guard(state):
    """Around a run: a disk-full failure of any writer (ours, h5py, TensorFlow's checkpoints) becomes
    one DiskFullError; the partial checkpoint it left is removed. ``state.needed`` is the run's need
    once the model is built (None before)."""
    try:
        yield
    except Exception as exc:
        if not is_disk_full(exc) or getattr(exc, "up_front", False):
            raise
        remove_partial_checkpoints(state.progress)
        if state.needed is None:
            raise exc if isinstance(exc, DiskFullError) else DiskFullError(disk_full_message(state.out)) from None
        raise disk_full_error(state.out, state.needed) from None
