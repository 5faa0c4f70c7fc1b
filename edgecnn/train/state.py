"""Resume bookkeeping of a RUN_DIR (standard library only).

While a run trains, RUN_DIR holds only hidden folders:

    RUN_DIR/.progress/state.json        the recorded arguments and which phases are done
    RUN_DIR/.progress/phase1.h5        the full model's weights after the head phase (phase 1 done)
    RUN_DIR/.progress/phase2/           keras BackupAndRestore checkpoint + epoch tracker state
    RUN_DIR/.cache/features-*.npz       cached base features, keyed by model and file hashes

The finished artifacts replace the folder in one step at the end (see ``artifacts``), keeping
``.cache`` so a later ``--overwrite`` run with the same base skips feature extraction. Under
``--overwrite`` the previous run's files stay beside ``.progress`` until then.
"""

import json
import os
import shutil
from pathlib import Path

from edgecnn import atomic
from edgecnn.errors import RunError
from edgecnn.run import MODEL_FILE, RUN_FILE
from edgecnn.train.cluster import is_chief_task, task
from edgecnn.train.options import diff_args
from edgecnn.train.space import remove_partial_checkpoints
from edgecnn.errors import creating

PROGRESS_DIR = ".progress"
CACHE_DIR = ".cache"
STATE_FILE = "state.json"


class RunState:
    """``RUN_DIR/.progress/state.json``: the arguments and what each phase left behind."""

    def __init__(self, out: Path, args: dict, status: str, data: dict = None, writer: bool = True):
        self.out = Path(out)
        self.args = args
        self.status = status  # "new", "resume" or "complete"
        self.data = data or {"arguments": args, "phases": {}}
        self.writer = writer  # False on MultiWorker workers other than the chief: they only read RUN_DIR
        self.needed = None  # bytes the run writes into RUN_DIR at most, once the model is built (space.py)

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


def _chief(args: dict) -> bool:
    # Under MultiWorker the workers share RUN_DIR, maybe across machines where a process id means
    # nothing: only the chief (TF_CONFIG's chief, else worker 0) writes or cleans it up.
    if args.get("strategy") != "multiworker":
        return True
    try:
        return is_chief_task(task())
    except RunError:
        return False  # make_strategy reports the bad TF_CONFIG


def _resumable(data: dict) -> bool:
    # Only a finished phase leaves something to resume (phase 2's checkpoints come after phase 1).
    # A run that failed before (a weights download, a bad --base) must not block the next attempt.
    return bool(data.get("phases"))


def _complete(out: Path, args: dict, data_sha: str) -> bool:
    """Whether ``out`` holds a finished run made with ``args`` on the same data (RunError when it differs)."""
    if not ((out / RUN_FILE).is_file() and (out / MODEL_FILE).is_file()):
        return False
    old = _read_json(out / RUN_FILE)
    _differs(out, old.get("arguments", {}), args, finished=True)
    _same_data(out, old.get("data_sha"), data_sha)
    return True


def _progress(out: Path, args: dict, data_sha: str, overwrite: bool):
    """The recorded state of an unfinished run to resume with ``args``, or None.

    Progress made with other arguments or data is refused, or under ``overwrite`` dropped.
    """
    state_file = out / PROGRESS_DIR / STATE_FILE
    if not state_file.is_file():
        return None
    try:
        data = _read_json(state_file)
        if not _resumable(data):
            return None
        _differs(out, data.get("arguments", {}), args, finished=False)
        _same_data(out, data.get("data_sha"), data_sha)
        return data
    except RunError:
        if overwrite:
            return None
        raise


def _refuse_foreign(out: Path):
    others = sorted(e.name for e in out.iterdir() if e.name not in (CACHE_DIR, PROGRESS_DIR))
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise RunError(f"--out '{out}' is not empty ({shown}) and is not an edgecnn run. Choose a new or "
                       "empty folder, or pass --overwrite to replace its contents.")


def prepare(out, args: dict, data_sha: str, overwrite: bool = False) -> RunState:
    """Decide what to do with RUN_DIR ``out``: start, resume, or report it complete.

    ``data_sha`` fingerprints the dataset splits (file hashes included): a run resumes only on the
    same images. With ``overwrite`` nothing is deleted here: the new run trains beside what ``out``
    holds (in ``out/.progress``) and replaces it only when it is complete (``artifacts``), so a
    new run that fails or is killed leaves the previous one whole; the same command resumes it.

    Raises:
        RunError: ``out`` holds a run with other arguments or data, or files that are not a run.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out '{out}' is a file, not a folder. Choose a folder for the RUN_DIR.")
    chief = _chief(args)
    if chief:
        with creating(out):
            out.mkdir(parents=True, exist_ok=True)
        # half-written files of a killed or failed attempt (.progress/*.h5, checkpoints)
        atomic.clean_folder(out)
        remove_partial_checkpoints(out / PROGRESS_DIR)
    if not overwrite and _complete(out, args, data_sha):
        return RunState(out, args, "complete", writer=chief)
    data = _progress(out, args, data_sha, overwrite)
    if data is not None:
        return RunState(out, args, "resume", data, writer=chief)
    if chief and not overwrite:
        _refuse_foreign(out)
    if chief and (out / PROGRESS_DIR).exists():
        shutil.rmtree(out / PROGRESS_DIR)  # nothing to resume (or --overwrite with other arguments)
    state = RunState(out, args, "new", {"arguments": args, "data_sha": data_sha, "phases": {}}, writer=chief)
    state.save()
    return state
