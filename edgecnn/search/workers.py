"""The loop each search worker runs on the shared study, and the dead trials it fails.

* stale trials (a killed worker's RUNNING trials, found by their missed heartbeats) are marked FAIL,
  and so are RUNNING trials that never recorded a heartbeat (see :class:`SilentTrials`);
* finished trials (COMPLETE or PRUNED) count toward ``--trials N``: a killed and restarted search
  continues the same study (``load_if_exists``) and stops at N in total;
* a trial is only run when fewer than N trials are finished or running; when a trial's number
  shows that N others were already finished or running before it (two workers asked at once), it
  is marked FAIL as ``excess`` and not run, so the total is exactly N;
* failed trials do not count: their slot is run again (a worker stops after 3 failures in a row).
"""

import time
from typing import Callable

from edgecnn.search.storage import StudyError, load_optuna, trials_with_heartbeat
from edgecnn.search.study import counts

MAX_CONSECUTIVE_FAILURES = 3


class ExcessTrial(Exception):
    """A trial asked for after N trials were already finished or running (marked FAIL, not run)."""


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
        """Storage ids of the study's RUNNING trials without a heartbeat."""
        running = self.storage.get_all_trials(self.study_id, deepcopy=False,
                                              states=(load_optuna().trial.TrialState.RUNNING,))
        ids = {self.storage.get_trial_id_from_study_id_trial_number(self.study_id, t.number) for t in running}
        return ids - trials_with_heartbeat(self.storage, ids)

    def fail_dead(self) -> int:
        """Fail the trials silent since at least the grace period; returns how many."""
        if self.grace_s is None:
            return 0
        optuna = load_optuna()
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


def _counted(study, n_trials: int, run_one: Callable):
    """The Optuna objective: ``run_one``, unless ``n_trials`` were finished or running before this one."""
    optuna = load_optuna()
    S = optuna.trial.TrialState

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

    return objective


def _optimize_one(study, objective, log):
    """Run one trial; its frozen record, or None when Optuna refused its result."""
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
        return None
    return done[-1] if done else None


def run_workers_loop(study, n_trials: int, run_one: Callable, log: Callable = print, poll: float = 2.0,
                     storage=None):
    """Run trials of ``study`` until ``n_trials`` are finished in total (this and other workers).

    Args:
        run_one: ``run_one(trial) -> values`` (may raise ``optuna.TrialPruned``).
        log: progress messages: ``log(event, **info)``.
        storage: the study's storage (from :func:`.storage.open_storage`), to find trials that never beat.
    """
    optuna = load_optuna()
    S = optuna.trial.TrialState
    consecutive_failures = 0
    silent = SilentTrials(study, storage) if storage is not None else None
    objective = _counted(study, n_trials, run_one)
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
        trial = _optimize_one(study, objective, log)
        if trial is None:
            continue
        if trial.state == S.FAIL and not trial.user_attrs.get("excess"):
            consecutive_failures += 1
            last_error = trial.user_attrs.get("error", "unknown error")
            log("failed", trial=trial, error=last_error)
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                raise StudyError(f"{consecutive_failures} trials failed in a row; the last one: {last_error}")
        elif trial.state in (S.COMPLETE, S.PRUNED):
            consecutive_failures = 0
            log("finished", trial=trial, seconds=time.time() - t0, counts=counts(study))
