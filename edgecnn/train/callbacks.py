"""The epoch tracker: validation metrics, model selection, early stopping and resumable state.

One callback does all of it, because the pieces share state that must survive a kill: the best
value so far, its epoch and weights, the patience counter and the history. A snapshot of that
state is written (atomically) after every epoch, before keras' BackupAndRestore checkpoint, so a
resumed fit starting at epoch ``e`` finds the snapshot of epoch ``e - 1``.
"""

import json
import math
from pathlib import Path

import numpy as np

from edgecnn import atomic
from edgecnn.metrics import classification_report
from edgecnn.tf import keras
from edgecnn.train.distribute import is_chief, save_weights

TRACKER_FILE = "tracker.json"


def val_metrics(probs, y, labels) -> dict:
    """val_loss (cross-entropy), val_accuracy, val_balanced_accuracy and val_macro_f1."""
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y)
    report = classification_report(y, probs.argmax(axis=1), labels)
    p_true = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return {"val_loss": float(-np.log(p_true).mean()), "val_accuracy": report["accuracy"],
            "val_balanced_accuracy": report["balanced_accuracy"], "val_macro_f1": report["macro_f1"]}


class EpochTracker(keras.callbacks.Callback):
    """Computes validation metrics with edgecnn.metrics, follows ``select_by`` (ties go to the lower
    val_loss), stops after ``patience`` epochs without improvement and restores the best weights.

    Args:
        predict_val: ``() -> probabilities`` on the validation split with the current weights.
        y_val, labels: validation labels (indices) and class names.
        select_by: ``accuracy``, ``balanced_accuracy`` or ``macro_f1``.
        patience: epochs without improvement before stopping.
        state_dir: folder for the snapshots and best weights of this phase, or None to keep the state in
            memory only (phase 1: it takes seconds on cached features, so a killed one just reruns).
        phase: 1 or 2 (written in the history rows).
        log: ``str -> None`` for progress messages.
    """

    def __init__(self, predict_val, y_val, labels, select_by, patience, state_dir, phase, log=print, strategy=None):
        super().__init__()
        self.strategy = strategy
        self.predict_val, self.y_val, self.labels = predict_val, np.asarray(y_val), list(labels)
        self.monitor = f"val_{select_by}"
        self.patience, self.phase, self.log = patience, phase, log
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.best, self.best_loss, self.best_epoch, self.wait = -math.inf, math.inf, None, 0
        self.history, self.resumed_at = [], None
        self._best_weights, self._started = None, False

    # -- persistence -------------------------------------------------------------------------
    def _snapshots(self) -> dict:
        if self.state_dir is None:
            return {}
        path = self.state_dir / TRACKER_FILE
        return json.loads(path.read_text(encoding="utf-8"))["snapshots"] if path.is_file() else {}

    def _best_file(self, epoch) -> Path:
        return self.state_dir / f"best-{epoch:04d}.h5"

    def _save(self, epoch):
        if not self._writer():
            return
        snaps = self._snapshots()
        snaps[str(epoch)] = {"best": self.best, "best_loss": self.best_loss, "best_epoch": self.best_epoch,
                             "wait": self.wait, "history": self.history}
        keep = {k: snaps[k] for k in sorted(snaps, key=int)[-2:]}
        atomic.write_json(self.state_dir / TRACKER_FILE, {"snapshots": keep})
        wanted = {self._best_file(s["best_epoch"]).name for s in keep.values() if s["best_epoch"] is not None}
        for f in self.state_dir.glob("best-*.h5"):
            if f.name not in wanted:
                f.unlink()

    def _restore(self, epoch) -> bool:
        snap = self._snapshots().get(str(epoch))
        if snap is None:
            return False
        self.best, self.best_loss = snap["best"], snap["best_loss"]
        self.best_epoch, self.wait, self.history = snap["best_epoch"], snap["wait"], snap["history"]
        return True

    # -- keras hooks -------------------------------------------------------------------------
    def _writer(self) -> bool:
        return self.state_dir is not None and (self.strategy is None or is_chief(self.strategy))

    def on_train_begin(self, logs=None):
        if self._writer():
            self.state_dir.mkdir(parents=True, exist_ok=True)

    def on_epoch_begin(self, epoch, logs=None):
        if self._started:
            return
        self._started = True
        if epoch > 0:
            self.resumed_at = epoch
            found = self._restore(epoch - 1)
            self.log(f"Phase {self.phase}: resuming at epoch {epoch + 1} from the checkpoint in "
                     f"{self.state_dir.parent}" + ("" if found else " (no tracker snapshot; selection restarts)"))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs.update(val_metrics(self.predict_val(), self.y_val, self.labels))
        row = {"phase": self.phase, "epoch": epoch + 1}
        row.update({k: float(v) for k, v in logs.items()})
        row["lr"] = float(keras.backend.get_value(self.model.optimizer.learning_rate))
        self.history.append(row)
        value, loss = logs[self.monitor], logs["val_loss"]
        if value > self.best or (value == self.best and loss < self.best_loss):
            self.best, self.best_loss, self.best_epoch, self.wait = value, loss, epoch, 0
            self._best_weights = self.model.get_weights()
            if self.state_dir is not None:
                save_weights(self.model, self._best_file(epoch), self.strategy)
        else:
            self.wait += 1
        self._save(epoch)
        if self.wait >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if not self._started:  # the checkpoint was already at the last epoch: nothing ran
            snaps = self._snapshots()
            if snaps:
                self._restore(int(max(snaps, key=int)))
                self.resumed_at = int(max(snaps, key=int)) + 1
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)
        elif self.state_dir is not None and self.best_epoch is not None and self._best_file(self.best_epoch).is_file():
            self.model.load_weights(str(self._best_file(self.best_epoch)))

    def summary(self) -> dict:
        """Best value, its epoch (1-based), epochs run and where it resumed, for run.json."""
        return {"select_by": self.monitor, "best": None if self.best_epoch is None else self.best,
                "best_epoch": None if self.best_epoch is None else self.best_epoch + 1,
                "epochs_run": len(self.history),
                "resumed_at_epoch": None if self.resumed_at is None else self.resumed_at + 1}
