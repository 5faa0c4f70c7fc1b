"""--workers/--worker-index and TF_CONFIG (edgecnn/train/cluster.py): no TensorFlow, no training."""

import json

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.errors import RunError
from edgecnn.train import cluster


def test_tf_config_from_workers():
    assert cluster.tf_config("10.0.0.5:23456, 10.0.0.6:23456", 1) == {
        "cluster": {"worker": ["10.0.0.5:23456", "10.0.0.6:23456"]}, "task": {"type": "worker", "index": 1}}


@pytest.mark.parametrize("spec, index, message", [
    ("10.0.0.5:1", 0, "--workers '10.0.0.5:1' names 1 worker(s); a cluster needs at least two HOST:PORT entries"),
    ("a:1,b", 0, "--workers entry 'b' is not HOST:PORT (for example 10.0.0.5:12345)."),
    ("a:1,b:99999", 0, "--workers entry 'b:99999' is not HOST:PORT"),
    ("a:1,a:1", 0, "--workers 'a:1,a:1' names a HOST:PORT twice; each worker needs its own."),
    ("a:1,b:2", 2, "--worker-index 2 is not between 0 and 1 (one per --workers entry)."),
])
def test_bad_workers_are_refused(spec, index, message):
    with pytest.raises(RunError) as err:
        cluster.tf_config(spec, index)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_the_chief_is_tensorflows(monkeypatch, config, chief):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert cluster.is_chief_task(cluster.task()) is chief


def test_configure_sets_tf_config_and_the_strategy(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    options = cluster.configure({"strategy": "auto", "seed": 3}, "a:1,b:2", 1)
    assert options == {"strategy": "multiworker", "seed": 3}
    assert cluster.task() == {"type": "worker", "index": 1, "cluster": {"worker": ["a:1", "b:2"]}}
    with pytest.raises(RunError, match="--workers trains with --strategy multiworker, not 'mirrored'."):
        cluster.configure({"strategy": "mirrored"}, "a:1,b:2", 0)


def test_unreadable_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{nope")
    with pytest.raises(RunError, match="TF_CONFIG is not valid JSON with a cluster and a task"):
        cluster.task()


def test_cli_workers_without_an_index(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    r = CliRunner().invoke(cli, ["finetune", str(tmp_path), "--out", str(tmp_path / "run"), "--workers",
                                 "127.0.0.1:1,127.0.0.1:2"], catch_exceptions=False)
    assert r.exit_code == 2
    assert r.output == ("Error: --workers needs --worker-index N: this machine's place in the list (0 on the "
                        "chief).\n")
    assert not (tmp_path / "run").exists()
