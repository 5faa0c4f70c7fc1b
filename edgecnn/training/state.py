"""Resume bookkeeping of a RUN_DIR (standard library only).

While a run trains, RUN_DIR holds only hidden folders:

    RUN_DIR/.progress/state.json        the recorded arguments and which phases are done
    RUN_DIR/.progress/phase1.h5        the full model's weights after the head phase (phase 1 done)
    RUN_DIR/.progress/phase2/           keras BackupAndRestore checkpoint + epoch tracker state
    RUN_DIR/.cache/features-*.npz       cached base features, keyed by model and file hashes

The finished artifacts replace the folder in one step at the end (see ``artifacts``), keeping
``.cache`` so a later ``--overwrite`` run with the same base skips feature extraction.
"""

import json
import shutil
from pathlib import Path

from edgecnn import atomic
from edgecnn.errors import RunError
from edgecnn.rundir import MODEL_FILE, RUN_FILE
from edgecnn.training.options import diff_args

PROGRESS_DIR = ".progress"
CACHE_DIR = ".cache"
STATE_FILE = "state.json"


class RunState:
    """``RUN_DIR/.progress/state.json``: the arguments and what each phase left behind."""

    def __init__(self, out: Path, args: dict, status: str, data: dict = None):
        self.out = Path(out)
        self.args = args
        self.status = status  # "new", "resume" or "complete"
        self.data = data or {"arguments": args, "phases": {}}
        self.writer = True  # False on MultiWorker workers other than the chief

    @property
    def progress(self) -> Path:
        return self.out / PROGRESS_DIR

    @property
    def cache(self) -> Path:
        return self.out / CACHE_DIR

    def phase(self, n: int) -> dict:
        """What phase ``n`` recorded when it finished, or {} when it has not."""
        return self.data["phases"].get(str(n), {})

    def finish_phase(self, n: int, **info):
        self.data["phases"][str(n)] = dict(info, done=True)
        self.save()

    def save(self):
        if self.writer:
            atomic.write_json(self.progress / STATE_FILE, self.data)


def _differs(out, old_args, args, finished):
    diffs = diff_args(old_args, args)
    if diffs:
        what = "holds a finished run made" if finished else "holds an unfinished run started"
        raise RunError(f"RUN_DIR '{out}' {what} with different arguments: {', '.join(diffs)}. "
                       "Use a new --out, or pass --overwrite to replace it.")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read '{path}' ({exc}). Pass --overwrite to start the run again.") from None


def _same_data(out, old_sha, data_sha):
    if old_sha is not None and old_sha != data_sha:
        raise RunError(f"RUN_DIR '{out}' was made from other images: the files or splits of DATA_DIR changed "
                       "since. Use a new --out, or pass --overwrite to replace it.")


def prepare(out, args: dict, data_sha: str, overwrite: bool = False) -> RunState:
    """Decide what to do with RUN_DIR ``out``: start, resume, or report it complete.

    ``data_sha`` fingerprints the dataset splits (file hashes included): a run resumes only on the
    same images.

    Raises:
        RunError: ``out`` holds a run with other arguments or data, or files that are not a run.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out '{out}' is a file, not a folder. Choose a folder for the RUN_DIR.")
    if overwrite and out.is_dir():
        for entry in out.iterdir():
            if entry.name == CACHE_DIR:
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if (out / RUN_FILE).is_file() and (out / MODEL_FILE).is_file():
        old = _read_json(out / RUN_FILE)
        _differs(out, old.get("arguments", {}), args, finished=True)
        _same_data(out, old.get("data_sha"), data_sha)
        return RunState(out, args, "complete")
    state_file = out / PROGRESS_DIR / STATE_FILE
    if state_file.is_file():
        data = _read_json(state_file)
        _differs(out, data.get("arguments", {}), args, finished=False)
        _same_data(out, data.get("data_sha"), data_sha)
        return RunState(out, args, "resume", data)
    others = sorted(e.name for e in out.iterdir() if e.name not in (CACHE_DIR, PROGRESS_DIR))
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise RunError(f"--out '{out}' is not empty ({shown}) and is not an edgecnn run. Choose a new or "
                       "empty folder, or pass --overwrite to delete its contents.")
    if (out / PROGRESS_DIR).exists():
        shutil.rmtree(out / PROGRESS_DIR)  # progress without a state file: nothing to resume
    state = RunState(out, args, "new", {"arguments": args, "data_sha": data_sha, "phases": {}})
    state.save()
    return state
