"""Unit tests of the search's pure parts: the space, the Pareto front, the pruning rule (no TensorFlow)."""

import json
from types import SimpleNamespace

import pytest

from edgecnn.search import pareto
from edgecnn.search.pruning import should_prune
from edgecnn.search.space import SpaceError, available_bases, build_space, read_space_file, suggest, weights_file


def rec(n, acc, lat, size, feasible=True, state="COMPLETE", **kw):
    return dict(number=n, int8_acc=acc, latency_ms=lat, size_kb=size, feasible=feasible, state=state, params={}, **kw)


def test_front_keeps_only_feasible_non_dominated():
    records = [rec(0, 0.9, 10, 500), rec(1, 0.8, 5, 300), rec(2, 0.7, 12, 600),  # 2 is dominated by 0
               rec(3, 0.99, 50, 900, feasible=False), rec(4, 0.95, 8, 400, state="PRUNED")]
    front = pareto.front(records)
    assert [r["number"] for r in front] == [0, 1]
    assert pareto.best(records)["number"] == 0


def test_rejected_trials_are_never_winners():
    records = [rec(0, 0.0, 1, 1, feasible=False, rejected="estimated size 900 KB > 700 KB"), rec(1, 0.5, 9, 9)]
    assert pareto.best(records)["number"] == 1


def _t(number, head_acc, base, lat, size, feasible=True):
    return SimpleNamespace(number=number, user_attrs={"head_acc": head_acc, "base": base, "latency_ms": lat,
                                                      "size_kb": size, "feasible": feasible})


def test_pruning_rule_is_pareto_safe():
    finished = [_t(0, 0.9, "a", 10.0, 500.0)]
    # Same base, 0.3 below: dominated at the same checkpoint -> pruned.
    assert should_prune(0.6, "a", None, None, finished, 0.1) == 0
    # Within the margin: kept.
    assert should_prune(0.85, "a", None, None, finished, 0.1) is None
    # Another base that is faster than the better trial: it may be on the front -> kept.
    assert should_prune(0.5, "b", 5.0, 300.0, finished, 0.1) is None
    # Another base that is slower and bigger than a clearly better trial: pruned.
    assert should_prune(0.5, "b", 20.0, 900.0, finished, 0.1) == 0
    # Infeasible trials never prune others.
    assert should_prune(0.1, "a", None, None, [_t(0, 0.9, "a", 10.0, 500.0, feasible=False)], 0.1) is None


def test_space_from_weights_folder(tmp_path):
    (tmp_path / "mobilenet_v1_0.25_128_imagenet_notop.h5").write_bytes(b"x")
    (tmp_path / "mobilenet_v2_1.0_224_imagenet_notop.h5").write_bytes(b"x")
    assert available_bases(str(tmp_path)) == ["mobilenet_v1:0.25:128", "mobilenet_v2:1:224"]
    assert weights_file(tmp_path, "mobilenet_v2", 1.0, 224).name == "mobilenet_v2_1.0_224_imagenet_notop.h5"
    space = build_space(str(tmp_path), {"backbone": ["mobilenet_v1"], "unfreeze_top": [0]})
    assert space["bases"] == ["mobilenet_v1:0.25:128"]


def test_space_filters_that_leave_nothing(tmp_path):
    (tmp_path / "mobilenet_v1_0.25_128_imagenet_notop.h5").write_bytes(b"x")
    with pytest.raises(SpaceError, match="no base left"):
        build_space(str(tmp_path), {"input_size": [224]})


def test_toml_space_file(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text('bases = ["mobilenet_v1:0.25:128"]\nunfreeze_top = [0, 10]\nlr = {low = 1e-3, high = 1e-2}\n'
                 'epochs = 4\n')
    space = build_space("none", read_space_file(f))
    assert space["epochs"] == 4 and space["lr"] == {"low": 1e-3, "high": 1e-2}


@pytest.mark.parametrize("content, message", [
    ('{"bases": ["resnet:1:224"]}', "is not BACKBONE:ALPHA:SIZE"),
    ('{"augment": ["wild"]}', "'augment' in .* has \\['wild'\\]"),
    ('{"lr": {"low": 1, "high": 0.1}}', "needs 0 < low <= high"),
    ('{"epochs": -1}', "must be an integer >= 0"),
    ('[1, 2]', "must hold an object"),
])
def test_bad_space_values(tmp_path, content, message):
    f = tmp_path / "space.json"
    f.write_text(content)
    with pytest.raises(SpaceError, match=message):
        build_space("none", read_space_file(f), f"--space file '{f}'")


def test_suggest_with_a_fixed_trial():
    import optuna

    space = build_space("none", {"bases": ["mobilenet_v1:0.25:96"], "unfreeze_top": [0, 10]})
    params = suggest(optuna.trial.FixedTrial({"base": "mobilenet_v1:0.25:96", "unfreeze_top": 0, "lr": 1e-3,
                                              "balance": "none"}), space)
    assert params["unfreeze_top"] == 0 and params["augment"] == "none" and params["fine_tune_lr"] is None
    assert params["alpha"] == 0.25 and params["input_size"] == 96


def test_missing_space_file(tmp_path):
    with pytest.raises(SpaceError, match="does not exist"):
        read_space_file(tmp_path / "nope.json")
    assert json.loads(json.dumps(build_space("none"))) == build_space("none")  # the study stores it as JSON


# Optuna warns that heartbeats are meant for Study.optimize: study.ask() is used here on purpose
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_that_never_beat_is_failed_and_the_search_goes_on(study_url):
    """A worker killed between creating its trial and the first heartbeat leaves a RUNNING trial that
    Optuna's fail_stale_trials never fails (it has no heartbeat): a resumed search waited for it for
    ever. ``study.ask()`` makes exactly that trial (RUNNING, no heartbeat thread). The same on SQLite and
    PostgreSQL: the handling uses no dialect of its own."""
    import threading
    import time

    from edgecnn.search import storage as storage_mod, study as study_mod, workers

    storage = storage_mod.open_storage(study_url, heartbeat=1)
    study = study_mod.open_study(storage, "s", {"space": 1}, study_mod.make_sampler("random", 2, 0))
    done = study.ask()
    study.tell(done, [0.9, 1.0, 100.0])
    dead = study.ask()  # the killed worker's trial

    silent = workers.SilentTrials(study, storage)
    assert silent.grace_s == 3 and silent.fail_dead() == 0  # first seen now: not yet
    assert study_mod.counts(study)["running"] == 1

    events = []
    loop = threading.Thread(target=lambda: events.append(workers.run_workers_loop(
        study, 2, lambda trial: (0.8, 2.0, 200.0), log=lambda event, **info: events.append((event, info)),
        poll=0.2, storage=storage)), daemon=True)
    started = time.monotonic()
    loop.start()
    loop.join(30)
    assert not loop.is_alive(), "the search waited for a trial that can never finish"
    assert time.monotonic() - started >= 3 - 0.5  # the grace period was respected
    counts = events[-1]
    assert counts["finished"] == 2 and counts["running"] == 0 and counts["failed"] == 1
    frozen = study.trials[dead.number]
    assert frozen.state.name == "FAIL" and frozen.user_attrs["error"] == "its worker stopped before the first heartbeat"
    assert ("failed", {"trial": None, "error": "a RUNNING trial never recorded a heartbeat: its worker was stopped"}) \
        in events


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_the_optuna_table_read_directly_is_still_there(study_url):
    """storage.trials_with_heartbeat reads Optuna's heartbeat table with SQL (no public API tells whether
    a trial ever beat). A fresh storage of the installed Optuna must have that table and its columns,
    and the query must tell a trial that beat from one that did not: this fails when Optuna's schema
    changes, before a search waits for ever on a dead trial."""
    import sqlalchemy

    from edgecnn.search import storage as storage_mod, study as study_mod

    storage = storage_mod.open_storage(study_url, heartbeat=1)
    columns = {c["name"] for c in sqlalchemy.inspect(storage.engine).get_columns(storage_mod.HEARTBEAT_TABLE)}
    assert set(storage_mod.HEARTBEAT_COLUMNS) <= columns, columns
    study = study_mod.open_study(storage, "s", {"space": 1}, study_mod.make_sampler("random", 2, 0))
    study_id = storage.get_study_id_from_name("s")
    beat, silent = (storage.get_trial_id_from_study_id_trial_number(study_id, study.ask().number) for _ in range(2))
    storage.record_heartbeat(beat)
    assert storage_mod.trials_with_heartbeat(storage, [beat, silent]) == {beat}
    assert storage_mod.trials_with_heartbeat(storage, []) == set()


def test_an_unreachable_database_server_is_named_with_the_fix():
    import socket

    from edgecnn.search import storage as storage_mod

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(storage_mod.StudyError) as err:
        storage_mod.open_storage(f"postgresql://edgecnn:secret@127.0.0.1:{port}/study")
    message = str(err.value)
    assert message.startswith(f"cannot open study storage 'postgresql://edgecnn:***@127.0.0.1:{port}/study': "
                              "(psycopg.OperationalError) connection failed:")
    assert message.endswith("Check that the database server is running and reachable from this machine, that the "
                            "database exists (for PostgreSQL: createdb DB) and that the user may log in.")
    assert "secret" not in message
