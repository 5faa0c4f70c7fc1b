"""``edgecnn search``: the library function behind the command (DESIGN rule 4).

SEARCH_DIR layout::

    SEARCH_DIR/study.db              the Optuna study (default storage; --study URL for another)
    SEARCH_DIR/cache/                decoded images per input size, base features per base
    SEARCH_DIR/trials/NNNN/          model.tflite and trial.json of each trial that got that far
    SEARCH_DIR/trials.json           every trial's figures, the settings, the Pareto front
    SEARCH_DIR/pareto.png            int8 accuracy vs latency, the front, the budget
    SEARCH_DIR/report.html           the plot and the table of every trial
    SEARCH_DIR/export/run, bundle    with --export: the chosen configuration fine-tuned in full
"""

import os
import socket
import time
from pathlib import Path
from typing import Callable, Optional, Union

from edgecnn import atomic
from edgecnn.errors import EdgecnnError
from edgecnn.search import pareto, space as space_mod, storage as storage_mod, study as study_mod
from edgecnn.search.targets import make_target

TRIALS_FILE = "trials.json"
PLOT_FILE = "pareto.png"
REPORT_FILE = "report.html"


def _check_budget(max_latency_ms, max_size_kb, trials):
    if max_latency_ms is None or not float(max_latency_ms) > 0:
        raise EdgecnnError(f"--max-latency-ms must be a number > 0, got {max_latency_ms!r}.")
    if max_size_kb is None or not float(max_size_kb) > 0:
        raise EdgecnnError(f"--max-size-kb must be a number > 0, got {max_size_kb!r}.")
    if not isinstance(trials, int) or trials < 0:
        raise EdgecnnError(f"--trials must be an integer >= 0, got {trials!r}.")


def search(data_dir, out, target: str = "host", max_latency_ms: float = 50.0, max_size_kb: float = 4096.0,
           trials: int = 10, space: Union[None, str, Path, dict] = None, study: Optional[str] = None,
           study_name: str = study_mod.DEFAULT_STUDY_NAME, weights: Optional[str] = "imagenet",
           sampler: str = "nsga2", seed: Optional[int] = None, prune_margin: float = 0.1, heartbeat: int = 30,
           latency_stat: str = "p50", ssh_key: Optional[str] = None, ssh_options=None,
           remote_edgecnn: Optional[str] = None, ssh_timeout: float = 120.0, export: Optional[str] = None,
           export_options: Optional[dict] = None, progress: Optional[Callable[[str], None]] = None,
           probe: bool = True, threads: Optional[int] = None) -> dict:
    """Search fine-tuning configurations for the best int8 model within a latency and size budget.

    Args:
        data_dir: DATA_DIR (class folders, or train/ and val/ splits).
        out: SEARCH_DIR.
        target: ``host``, ``ssh://user@board[:port]`` or a profile name (rpi4, rpi5, coral-usb,
            coral-devboard: an estimate).
        max_latency_ms, max_size_kb: the budget, a hard constraint.
        trials: N, finished trials wanted in the study in total (across restarts and workers).
        space: a --space file (JSON/TOML) or dict narrowing or extending the default space.
        study: an Optuna storage URL; ``sqlite:///SEARCH_DIR/study.db`` by default.
        study_name: the study's name inside the storage.
        weights: ``imagenet`` (local files via $EDGECNN_WEIGHTS_DIR first), ``none``, or a folder.
        sampler: ``nsga2`` (default), ``tpe`` or ``random``; all respect the budget constraints.
        seed: the sampler's seed (None: random per worker; give each worker its own for a
            reproducible search). Trial ``n`` trains with seed ``n`` (plus ``seed`` when given).
        prune_margin: head-phase accuracy gap that prunes a dominated trial (see pruning).
        heartbeat: seconds between heartbeats; a trial silent for 3 heartbeats is stale (FAIL).
        latency_stat: p50, p90, p99 or mean of the measured latencies (budgeted and optimized).
        ssh_key, ssh_options, remote_edgecnn, ssh_timeout: for ``ssh://`` targets.
        export: ``best`` or a trial number: fine-tune that configuration in full and write its bundle.
        export_options: finetune options for the export (e.g. epochs).
        progress: called with one line per event (trial i of N, best so far, time per trial).
        threads: interpreter threads of the latency measurement (host and ssh://; default 1).
        probe: for measured targets, measure each base's untrained int8 model once before the
            search and exclude bases over the latency budget (False: only sizes are screened,
            and a base's latency is known after its first trial).

    Returns:
        A JSON-safe dict: counts, the front, the best trial, file paths, timings.
    """
    t_start = time.time()
    say = progress or (lambda msg: None)
    _check_budget(max_latency_ms, max_size_kb, trials)
    data_dir, out = Path(data_dir), Path(out)
    if not data_dir.is_dir():
        raise EdgecnnError(f"DATA_DIR '{data_dir}' does not exist or is not a folder.")
    overrides = space_mod.read_space_file(space) if isinstance(space, (str, Path)) else (space or {})
    where = f"--space file '{space}'" if isinstance(space, (str, Path)) else "the search space"
    full_space = space_mod.build_space(weights, overrides, where)
    tgt = make_target(target, stat=latency_stat, ssh_key=ssh_key, ssh_options=ssh_options,
                      remote_edgecnn=remote_edgecnn, ssh_timeout=ssh_timeout, threads=threads)
    if hasattr(tgt, "check"):
        tgt.check()
    url = study or storage_mod.default_study_url(out)
    storage = storage_mod.open_storage(url, heartbeat)  # a bad URL fails before any data is scanned

    from edgecnn.search.objective import Pruned, TrialContext, run_trial
    from edgecnn.search.screening import screen_bases
    from edgecnn.search.trial_data import SearchData
    from edgecnn.search.workers import run_workers_loop

    out.mkdir(parents=True, exist_ok=True)
    data = SearchData(data_dir, out / "cache", seed=0)
    ctx = TrialContext(data, tgt, out, max_latency_ms, max_size_kb, weights=weights, prune_margin=prune_margin,
                       seed=seed or 0, probe=probe)
    settings = {"space": full_space, "target": tgt.name, "latency_stat": latency_stat, "threads": threads,
                "max_latency_ms": float(max_latency_ms), "max_size_kb": float(max_size_kb),
                "data": data.digest, "weights": str(weights)}
    sampler_obj = study_mod.make_sampler(sampler, trials, study_mod.worker_seed(seed))
    the_study = study_mod.open_study(storage, study_name, settings, sampler_obj)
    # Bases whose estimate already busts the budget never enter the space (no trial is spent on them).
    # The first worker screens; later workers and resumed searches reuse its verdict.
    screening = the_study.user_attrs.get("screening")
    if screening is None:
        kept, excluded, estimates = screen_bases(full_space["bases"], ctx, say)
        screening = {"kept": kept, "excluded": excluded, "estimates": estimates}
        the_study.set_user_attr("screening", screening)
    if not screening["kept"]:
        raise EdgecnnError("no base fits the budget of "
                           f"{float(max_latency_ms):g} ms / {float(max_size_kb):g} KB on target '{tgt.name}': "
                           + "; ".join(f"{b}: {why}" for b, why in screening["excluded"].items())
                           + ". Raise --max-latency-ms / --max-size-kb or add smaller bases with --space.")
    full_space = dict(full_space, bases=list(screening["kept"]))
    ctx.base_estimates = dict(screening.get("estimates") or {})
    budget = {"max_latency_ms": float(max_latency_ms), "max_size_kb": float(max_size_kb)}
    optuna = storage_mod.load_optuna()
    before = study_mod.counts(the_study)
    if before["finished"]:
        say(f"resuming study '{study_name}': {before['finished']} trials already finished (--trials {trials})")

    def run_one(trial):
        params = space_mod.suggest(trial, full_space)
        trial.set_user_attr("config", params)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        try:
            values = run_trial(trial, params, ctx, study_mod.finished_trials(the_study))
            study_mod.set_trial_constraints(trial, trial.user_attrs["constraints"])
            return values
        except Pruned as exc:
            raise optuna.TrialPruned(str(exc)) from None

    def log(event, trial, **info):
        if event == "failed":
            say(f"trial {trial.number if trial is not None else '?'} failed: {info.get('error')}")
            return
        c = study_mod.counts(the_study)
        a = trial.user_attrs
        if trial.state.name == "PRUNED":
            what = f"pruned after head phase (head acc {a.get('head_acc', 0):.3f}, dominated by trial {a.get('pruned_by')})"
        elif a.get("rejected"):
            what = f"rejected before training: {a['rejected']}"
        else:
            kind = " (estimate)" if a.get("latency_kind") == "estimate" else ""
            what = (f"int8 acc {a.get('int8_acc', 0):.3f}, {a.get('latency_ms', 0):.2f} ms{kind}, "
                    f"{a.get('size_kb', 0):.0f} KB{'' if a.get('feasible') else ' (over budget)'}")
        records = [study_mod.trial_record(t) for t in study_mod.finished_trials(the_study)]
        b = pareto.best(records)
        best_txt = (f"best so far: trial {b['number']} int8 acc {b['int8_acc']:.3f} at {b['latency_ms']:.2f} ms, "
                    f"{b['size_kb']:.0f} KB") if b else "no trial within budget yet"
        say(f"trial {c['finished']} of {trials} (#{trial.number}, {a.get('base')}): {what}; "
            f"{info.get('seconds', 0):.1f} s; {best_txt}")

    counts = run_workers_loop(the_study, trials, run_one, log=log, poll=min(2.0, heartbeat / 2), storage=storage)
    result = write_outputs(the_study, out, budget, settings, url, trials)
    result["counts"] = counts
    result["seconds"] = time.time() - t_start
    if export:
        from edgecnn.search.export import export_trial

        record = _pick(result["records"], export)
        say(f"exporting trial {record['number']} ({record['params'].get('base')}): full fine-tune and int8 bundle")
        result["export"] = export_trial(data_dir, out, record, weights=weights, options=export_options,
                                        progress=say)
    result.pop("records")
    return result


def _pick(records, export):
    if str(export) == "best":
        b = pareto.best(records)
        if b is None:
            raise EdgecnnError("no trial is within the budget, so there is nothing to export. Loosen "
                               "--max-latency-ms / --max-size-kb or run more --trials.")
        return b
    try:
        number = int(export)
    except ValueError:
        raise EdgecnnError(f"--export '{export}' is not 'best' or a trial number.") from None
    for r in records:
        if r["number"] == number:
            if r.get("state") != "COMPLETE" or r.get("rejected"):
                raise EdgecnnError(f"trial {number} did not complete ({r.get('state')}); export 'best' or a "
                                   "completed trial.")
            return r
    raise EdgecnnError(f"--export {number}: the study has no trial {number}.")


def write_outputs(the_study, out, budget, settings, url, trials) -> dict:
    """trials.json, pareto.png and report.html from the study as it stands."""
    out = Path(out)
    records = [study_mod.trial_record(t) for t in the_study.get_trials(deepcopy=False)]
    finished = [r for r in records if r["state"] in ("COMPLETE", "PRUNED")]
    f = pareto.front(finished)
    b = pareto.best(finished)
    kinds = sorted({r.get("latency_kind") for r in finished if r.get("latency_kind")})
    summary = {
        "study": storage_mod.safe_url(url),
        "study_name": the_study.study_name,
        "trials_requested": trials,
        "budget": budget,
        "target": settings.get("target"),
        "latency_kind": kinds[0] if len(kinds) == 1 else kinds,
        "latency_stat": settings.get("latency_stat", "p50"),
        "bases_searched": the_study.user_attrs.get("screening", {}).get("kept", []),
        "excluded_bases": the_study.user_attrs.get("screening", {}).get("excluded", {}),
        "base_estimates": the_study.user_attrs.get("screening", {}).get("estimates", {}),
        "front": [r["number"] for r in f],
        "best": _brief(b) if b else None,
        "space": settings.get("space"),
    }
    atomic.write_json(out / TRIALS_FILE, dict(summary, trials=records))
    pareto.plot(finished, budget, out / PLOT_FILE)
    pareto.html_report(records, budget, out / PLOT_FILE, out / REPORT_FILE,
                       {"target": settings.get("target"), "latency": settings.get("latency_stat", "p50") + (
                           " (ESTIMATE from a board profile)" if summary["latency_kind"] == "estimate" else ""),
                        "budget": f"{budget['max_latency_ms']:g} ms, {budget['max_size_kb']:g} KB",
                        "trials": f"{len(finished)} finished of {trials} requested", "study": summary["study"],
                        "bases searched": ", ".join(summary["bases_searched"]) or "-",
                        "bases left out before the search": "; ".join(
                            f"{b} ({why})" for b, why in summary["excluded_bases"].items()) or "none"})
    summary.pop("space")
    summary.update(front_trials=[_brief(r) for r in f], files={"trials": str(out / TRIALS_FILE),
                                                               "plot": str(out / PLOT_FILE),
                                                               "report": str(out / REPORT_FILE)},
                   records=finished)
    return summary


def _brief(r) -> dict:
    return {"number": r["number"], "params": r.get("config") or r.get("params"), "int8_acc": r.get("int8_acc"),
            "head_acc": r.get("head_acc"), "latency_ms": r.get("latency_ms"), "latency_kind": r.get("latency_kind"),
            "size_kb": r.get("size_kb"), "model": r.get("model")}


def report(out, study: Optional[str] = None, study_name: str = study_mod.DEFAULT_STUDY_NAME) -> dict:
    """Rebuild trials.json / pareto.png / report.html from an existing study (no training)."""
    url = study or storage_mod.default_study_url(out)
    storage = storage_mod.open_storage(url)
    optuna = storage_mod.load_optuna()
    try:
        the_study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise EdgecnnError(f"no study '{study_name}' in '{storage_mod.safe_url(url)}'.") from None
    settings = the_study.user_attrs.get("settings", {})
    budget = {"max_latency_ms": settings.get("max_latency_ms", 0), "max_size_kb": settings.get("max_size_kb", 0)}
    result = write_outputs(the_study, out, budget, settings, url, len(the_study.trials))
    result.pop("records")
    return result
