"""The Optuna study: storage, resume, several workers on one study, the search loop.

The study lives in an Optuna RDB storage: ``sqlite:///SEARCH_DIR/study.db`` by default, or any URL
Optuna accepts (``postgresql://user:pass@host/db``, ``mysql+pymysql://...``), so workers on several
machines share one study. Each worker runs the same loop:

* stale trials (a killed worker's RUNNING trials, found by their missed heartbeats) are marked FAIL,
  and so are RUNNING trials that never recorded a heartbeat (see :class:`SilentTrials`);
* finished trials (COMPLETE or PRUNED) count toward ``--trials N``: a killed and restarted search
  continues the same study (``load_if_exists``) and stops at N in total;
* a trial is only run when fewer than N trials are finished or running; when a trial's number
  shows that N others were already finished or running before it (two workers asked at once), it
  is marked FAIL as ``excess`` and not run, so the total is exactly N;
* failed trials do not count: their slot is run again (a worker stops after 3 failures in a row).

The space, target and budget are stored in the study; resuming with different ones is refused.
"""

import math
import time
from pathlib import Path
from typing import Callable, Optional

from edgecnn.errors import EdgecnnError

DIRECTIONS = ["maximize", "minimize", "minimize"]  # int8 accuracy, latency ms, size KB
OBJECTIVES = ("int8_acc", "latency_ms", "size_kb")
DEFAULT_STUDY_NAME = "edgecnn-search"
MAX_CONSECUTIVE_FAILURES = 3


class StudyError(EdgecnnError):
    """The study storage cannot be opened or does not match this search."""


class ExcessTrial(Exception):
    """A trial asked for after N trials were already finished or running (marked FAIL, not run)."""


def _optuna():
    from edgecnn.errors import require

    import warnings

    optuna = require("optuna", "search")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are reported by the loop itself
    return optuna


def default_study_url(search_dir) -> str:
    return f"sqlite:///{Path(search_dir).resolve() / 'study.db'}"


def _rdb_storage(optuna, url, engine_kwargs, heartbeat):
    for attempt in range(6):
        try:
            return optuna.storages.RDBStorage(str(url), engine_kwargs=engine_kwargs,
                                              heartbeat_interval=int(heartbeat), grace_period=int(heartbeat) * 3)
        except ImportError:
            raise
        except Exception as exc:
            # Two workers creating the tables of a new database at once: one loses the race; retry.
            text = str(exc).lower()
            if attempt < 5 and ("already exists" in text or "locked" in text or "unique constraint" in text):
                time.sleep(0.3 * (attempt + 1))
                continue
            raise
    raise AssertionError("unreachable")


def open_storage(url: str, heartbeat: int = 30):
    """An RDBStorage with heartbeats (stale RUNNING trials of killed workers become FAIL).

    Raises:
        StudyError: naming the URL and the fix, for a malformed URL, a missing driver or a
            database that cannot be reached.
    """
    optuna = _optuna()
    fix = ("Use sqlite:///PATH/study.db, postgresql://USER:PASS@HOST/DB or mysql+pymysql://USER:PASS@HOST/DB "
           "(any SQLAlchemy URL Optuna supports).")
    if "://" not in str(url):
        raise StudyError(f"--study '{url}' is not a database URL. {fix}")
    engine_kwargs = {}
    if str(url).startswith("sqlite"):
        path = str(url).split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}
    try:
        return _rdb_storage(optuna, url, engine_kwargs, heartbeat)
    except ImportError as exc:
        raise StudyError(f"--study '{_safe(url)}' needs a database driver that is not installed ({exc}). Install it "
                         "(for example pip install psycopg2-binary or pymysql) or use a sqlite:/// URL.") from None
    except Exception as exc:  # sqlalchemy ArgumentError, OperationalError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].replace(str(url), _safe(url))
        raise StudyError(f"cannot open study storage '{_safe(url)}': {first}. {fix}") from None


def _safe(url: str) -> str:
    """The URL with any password masked, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(str(url))
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return str(url)


def make_sampler(kind: str, trials: int, seed: Optional[int]):
    optuna = _optuna()

    def constraints_func(trial):
        return trial.user_attrs.get("constraints", [0.0, 0.0])

    if hasattr(optuna.trial.Trial, "set_constraint"):
        constraints_func = None  # Optuna >= 5: trials carry their constraints (set_trial_constraints)

    if kind == "nsga2":
        # Small searches need a small population, or every trial is a random first generation.
        population = max(4, min(50, trials // 2))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed, constraints_func=constraints_func)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints_func,
                                          n_startup_trials=max(2, min(10, trials // 3)))
    if kind == "random":  # ignores constraints; the budget still decides feasibility and the front
        return optuna.samplers.RandomSampler(seed=seed)
    raise StudyError(f"--sampler '{kind}' is not one of: nsga2, tpe, random.")


def open_study(storage, name: str, settings: dict, sampler):
    """Create or load the study; check a loaded study was made with the same ``settings``."""
    optuna = _optuna()
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=DIRECTIONS, sampler=sampler,
                                    load_if_exists=True)
    except ValueError as exc:
        raise StudyError(f"study '{name}' exists with other objectives ({exc}). Use a new --study-name.") from None
    old = study.user_attrs.get("settings")
    if old is None:
        study.set_user_attr("settings", settings)
    else:
        diffs = [f"{k} (study: {old.get(k)!r}, now: {settings.get(k)!r})" for k in settings
                 if old.get(k) != settings.get(k)]
        if diffs:
            raise StudyError(f"study '{name}' was started with other settings: {'; '.join(diffs)}. Resume it with "
                             "the same ones, or start a new study (--study-name NAME or another --out).")
    return study


def counts(study) -> dict:
    optuna = _optuna()
    S = optuna.trial.TrialState
    out = {"complete": 0, "pruned": 0, "running": 0, "failed": 0, "excess": 0, "waiting": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state == S.COMPLETE:
            out["complete"] += 1
        elif t.state == S.PRUNED:
            out["pruned"] += 1
        elif t.state == S.RUNNING:
            out["running"] += 1
        elif t.state == S.WAITING:
            out["waiting"] += 1
        elif t.user_attrs.get("excess"):
            out["excess"] += 1
        else:
            out["failed"] += 1
    out["finished"] = out["complete"] + out["pruned"]
    return out


def finished_trials(study):
    optuna = _optuna()
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


class SilentTrials:
    """Marks FAIL the RUNNING trials that never recorded a heartbeat, once silent for the grace period.

    Optuna's ``fail_stale_trials`` skips a trial without any heartbeat. A worker killed between
    creating its trial and its heartbeat thread's first beat (milliseconds) leaves that trial RUNNING
    for ever, and every worker then waits for it to finish. A live trial beats within milliseconds
    of its creation, so one that this worker has seen silent for the whole grace period is dead. The
    time is this worker's own clock: the trial's ``datetime_start`` was written by another machine's.
    """

    def __init__(self, study, storage):
        self.study, self.storage = study, storage
        interval = getattr(storage, "heartbeat_interval", None)
        self.grace_s = (getattr(storage, "grace_period", None) or 2 * interval) if interval else None
        self.study_id = storage.get_study_id_from_name(study.study_name) if interval else None
        self.first_seen = {}  # trial id -> time.monotonic() when first seen silent

    def _silent_ids(self) -> set:
        from sqlalchemy import text

        query = text("SELECT trial_id FROM trials WHERE study_id = :study AND state = 'RUNNING' "
                     "AND trial_id NOT IN (SELECT trial_id FROM trial_heartbeats)")
        with self.storage.engine.connect() as con:
            return {row[0] for row in con.execute(query, {"study": self.study_id})}

    def fail_dead(self) -> int:
        """Fail the trials silent since at least the grace period; returns how many."""
        if self.grace_s is None:
            return 0
        optuna = _optuna()
        now = time.monotonic()
        self.first_seen = {i: self.first_seen.get(i, now) for i in self._silent_ids()}
        failed = 0
        for trial_id, since in list(self.first_seen.items()):
            if now - since < self.grace_s:
                continue
            try:
                self.storage.set_trial_user_attr(trial_id, "error", "its worker stopped before the first heartbeat")
                self.storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
                failed += 1
            except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
                pass  # it finished meanwhile (or another worker failed it first)
            del self.first_seen[trial_id]
        return failed


def run_workers_loop(study, n_trials: int, run_one: Callable, log: Callable = print, poll: float = 2.0,
                     storage=None):
    """Run trials of ``study`` until ``n_trials`` are finished in total (this and other workers).

    Args:
        run_one: ``run_one(trial) -> values`` (may raise ``optuna.TrialPruned``).
        log: progress messages: ``log(event, **info)``.
        storage: the study's storage (from :func:`open_storage`), to find trials that never beat.
    """
    optuna = _optuna()
    S = optuna.trial.TrialState
    consecutive_failures, last_error = 0, None
    silent = SilentTrials(study, storage) if storage is not None else None

    def objective(trial):
        before = study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED, S.RUNNING))
        ahead = sum(1 for t in before if t.number < trial.number)
        if ahead >= n_trials:
            trial.set_user_attr("excess", True)
            raise ExcessTrial(f"trial {trial.number}: {ahead} trials were already finished or running")
        try:
            return run_one(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise

    while True:
        optuna.storages.fail_stale_trials(study)
        if silent is not None and silent.fail_dead():
            log("failed", trial=None, error="a RUNNING trial never recorded a heartbeat: its worker was stopped")
        c = counts(study)
        if c["finished"] >= n_trials:
            return c
        if c["finished"] + c["running"] >= n_trials:
            time.sleep(poll)  # others are on the last trials; wait for them to finish or go stale
            continue
        t0 = time.time()
        done = []
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False,
                           callbacks=[lambda _study, frozen: done.append(frozen)])
        except (ValueError, RuntimeError) as exc:
            # Another worker marked this trial stale (its heartbeats were late): Optuna refuses the
            # result. The slot is counted as failed and run again; this worker goes on.
            if "finished" not in str(exc) and "Cannot tell" not in str(exc):
                raise
            log("failed", trial=None, error=f"the trial was marked stale by another worker ({exc})")
            continue
        if not done:
            continue
        trial = done[-1]
        if trial.state == S.FAIL and not trial.user_attrs.get("excess"):
            consecutive_failures += 1
            last_error = trial.user_attrs.get("error", "unknown error")
            log("failed", trial=trial, error=last_error)
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                raise StudyError(f"{consecutive_failures} trials failed in a row; the last one: {last_error}")
        elif trial.state in (S.COMPLETE, S.PRUNED):
            consecutive_failures = 0
            log("finished", trial=trial, seconds=time.time() - t0, counts=counts(study))


def trial_record(t) -> dict:
    """One trial as JSON: number, state, params, the three objectives and every user attribute."""
    rec = {"number": t.number, "state": t.state.name, "params": dict(t.params),
           "values": list(t.values) if t.values else None,
           "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
           "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None}
    rec.update({k: v for k, v in t.user_attrs.items()})
    for k in ("int8_acc", "latency_ms", "size_kb"):
        v = rec.get(k)
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            rec[k] = None
    return rec


def set_trial_constraints(trial, values):
    """Give the sampler the budget constraints (<= 0 is feasible) the Optuna 5 way, or as a user attr."""
    trial.set_user_attr("constraints", [float(v) for v in values])
    if hasattr(trial, "set_constraint"):
        trial.set_constraint("latency_over_budget_ms", float(values[0]))
        trial.set_constraint("size_over_budget_kb", float(values[1]))


def worker_seed(seed: Optional[int]) -> Optional[int]:
    """The sampler's seed: ``--seed`` as given (reproducible; give each worker its own), or None:
    random, so that workers started together without seeds do not propose the same configurations."""
    return None if seed is None else int(seed)
