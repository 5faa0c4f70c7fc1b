"""The Optuna study of a search: its objectives, sampler, settings check, and trials as records.

The storage is :mod:`.storage`; the loop every worker runs is :mod:`.workers`. The space, target
and budget are stored in the study; resuming with different ones is refused.
"""

import math
from typing import Optional

from edgecnn.search.storage import StudyError, load_optuna

DIRECTIONS = ["maximize", "minimize", "minimize"]  # int8 accuracy, latency ms, size KB
OBJECTIVES = ("int8_acc", "latency_ms", "size_kb")
DEFAULT_STUDY_NAME = "edgecnn-search"


def _constraints_attr(trial):
    return trial.user_attrs.get("constraints", [0.0, 0.0])


def make_sampler(kind: str, trials: int, seed: Optional[int]):
    optuna = load_optuna()
    # Optuna >= 5: trials carry their constraints (set_trial_constraints); older ones read the user attr.
    constraints_func = None if hasattr(optuna.trial.Trial, "set_constraint") else _constraints_attr
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
    optuna = load_optuna()
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
    """Trials by state; ``finished`` (COMPLETE or PRUNED) is what counts toward ``--trials``."""
    S = load_optuna().trial.TrialState
    named = {S.COMPLETE: "complete", S.PRUNED: "pruned", S.RUNNING: "running", S.WAITING: "waiting"}
    out = {"complete": 0, "pruned": 0, "running": 0, "failed": 0, "excess": 0, "waiting": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state in named:
            out[named[t.state]] += 1
        elif t.user_attrs.get("excess"):
            out["excess"] += 1
        else:
            out["failed"] += 1
    out["finished"] = out["complete"] + out["pruned"]
    return out


def finished_trials(study):
    return study.get_trials(deepcopy=False, states=(load_optuna().trial.TrialState.COMPLETE,))


def trial_record(t) -> dict:
    """One trial as JSON: number, state, params, the three objectives and every user attribute."""
    rec = {"number": t.number, "state": t.state.name, "params": dict(t.params),
           "values": list(t.values) if t.values else None,
           "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
           "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None}
    rec.update({k: v for k, v in t.user_attrs.items()})
    for k in OBJECTIVES:
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
