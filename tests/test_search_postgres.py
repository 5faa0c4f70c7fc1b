"""Search workers sharing one study in a real PostgreSQL server, as on several machines.

Each worker is an `edgecnn search` process with its own SEARCH_DIR (as on its own machine) and the
same ``--study postgresql://...`` URL, on a throwaway PostgreSQL 15 on 127.0.0.1 (tests/pg_helpers.py;
skips saying why when PostgreSQL cannot be had, fails under EDGECNN_REQUIRE_SHARED=1). The trials are
the tiny ones of tests/test_search.py (MobileNet v1 0.25 at 96 px, random weights, the demo data).
"""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from pg_helpers import wait_for
from test_search import _cmd, _env

pytestmark = pytest.mark.slow  # real worker processes train models

STUDY = "pg-study"


def _worker(data, out, url, trials, seed, *extra):
    cmd = _cmd(data, out, trials, "--study", url, "--study-name", STUDY, "--seed", str(seed), "--no-probe", *extra)
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _study(url):
    from edgecnn.search import storage as storage_mod

    return storage_mod.load_optuna().load_study(study_name=STUDY, storage=storage_mod.open_storage(url))


def _finish(procs, timeout=600):
    errors = [p.communicate(timeout=timeout)[1] for p in procs]
    for p, err in zip(procs, errors):
        assert p.returncode == 0, err[-3000:]


def _check_table(study, trials):
    """Every trial number once, 0..n-1; ``trials`` finished; a FAIL is an excess trial or carries its reason."""
    frozen = study.get_trials(deepcopy=False)
    numbers = [t.number for t in frozen]
    assert sorted(numbers) == list(range(len(numbers))), numbers
    finished = [t for t in frozen if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == trials, [(t.number, t.state.name) for t in frozen]
    assert not [t for t in frozen if t.state.name in ("RUNNING", "WAITING")]
    return frozen, finished


@pytest.fixture(scope="module")
def two_pg_workers(demo_data, postgres, tmp_path_factory):
    """Two workers, 4 trials in total, on one PostgreSQL study (the default 30 s heartbeat)."""
    url = postgres.new_database()
    root = tmp_path_factory.mktemp("pg-search")
    outs = [root / "machine-a", root / "machine-b"]
    procs = [_worker(demo_data, out, url, 4, seed) for out, seed in zip(outs, (1, 2))]
    _finish(procs)
    return url, outs


def test_two_workers_share_one_postgresql_study(two_pg_workers):
    from edgecnn.search import pareto, study as study_mod

    url, outs = two_pg_workers
    frozen, finished = _check_table(_study(url), 4)
    for t in frozen:
        if t.state.name == "FAIL":
            assert t.user_attrs.get("excess"), (t.number, t.user_attrs)
    assert len({t.user_attrs["worker"] for t in finished}) == 2, "both workers ran trials"
    table = {t.number: study_mod.trial_record(t) for t in finished}
    front = [r["number"] for r in pareto.front(list(table.values()))]
    assert front, "at least one trial fits the budget"
    for out in outs:  # each worker's own trials.json: the same trials and front as the study table
        data = json.loads((out / "trials.json").read_text())
        assert data["study"] == url and data["study_name"] == STUDY
        written = {t["number"]: t for t in data["trials"] if t["state"] in ("COMPLETE", "PRUNED")}
        assert sorted(written) == sorted(table)
        for n, rec in table.items():
            assert (written[n]["state"], written[n]["values"], written[n]["params"]) == \
                (rec["state"], rec["values"], rec["params"])
        assert data["front"] == front


def test_every_trial_record_is_complete(two_pg_workers):
    url, outs = two_pg_workers
    _, finished = _check_table(_study(url), 4)
    budget = json.loads((outs[0] / "trials.json").read_text())["budget"]
    for t in finished:
        a = t.user_attrs
        assert a["worker"] and a["config"]["base"] == "mobilenet_v1:0.25:96", a
        if t.state.name == "PRUNED":
            assert a["head_acc"] is not None and "pruned_by" in a, a
            continue
        for key in ("int8_acc", "latency_ms", "size_kb", "feasible", "model", "constraints"):
            assert a.get(key) is not None, (t.number, key, a)
        assert 0.0 <= a["int8_acc"] <= 1.0 and a["latency_ms"] > 0
        assert a["feasible"] == (a["latency_ms"] <= budget["max_latency_ms"] and a["size_kb"] <= budget["max_size_kb"])
        model = Path(a["model"])
        assert model.is_file() and model.stat().st_size / 1024 == pytest.approx(a["size_kb"])
        assert list(t.values) == [a["int8_acc"], a["latency_ms"], a["size_kb"]]


def test_a_worker_killed_mid_trial_is_failed_by_its_heartbeat_and_its_slot_run_again(demo_data, postgres, tmp_path):
    from edgecnn.search import storage as storage_mod

    url = postgres.new_database()
    # A 2 s heartbeat: the killed worker's trial is stale 6 s after its last beat (default 30 s / 90 s).
    procs = [_worker(demo_data, tmp_path / name, url, 3, seed, "--heartbeat", "2")
             for name, seed in (("a", 1), ("b", 2))]
    by_pid = {p.pid: p for p in procs}

    def running_trial():  # a trial inside its objective (it has its config) in a worker still alive
        try:
            study = _study(url)
        except Exception:  # the study is not created yet
            return None
        for t in study.get_trials(deepcopy=False, states=(storage_mod.load_optuna().trial.TrialState.RUNNING,)):
            pid = int(t.user_attrs.get("worker", ":0").rsplit(":", 1)[1])
            if "config" in t.user_attrs and pid in by_pid:
                return t.number, by_pid[pid]
        return None

    number, victim = wait_for(running_trial, 400, "a worker starting a trial")
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    survivor = next(p for p in procs if p is not victim)
    _finish([survivor])
    study = _study(url)
    frozen, finished = _check_table(study, 3)
    killed = study.trials[number]
    assert killed.state.name == "FAIL", killed
    assert killed.number not in {t.number for t in finished}
    # Failed through its heartbeat (it beat: the never-beat path would have written its own error).
    sid = study._study_id
    storage = storage_mod.open_storage(url)
    assert storage_mod.trials_with_heartbeat(storage, [storage.get_trial_id_from_study_id_trial_number(sid, number)])
    assert killed.user_attrs.get("error") != "its worker stopped before the first heartbeat"
    # Its slot was run again: the study still ends with 3 finished trials, after the killed one.
    assert max(t.number for t in finished) > number
