"""`edgecnn finetune --workers ... --worker-index N`: two real worker processes on 127.0.0.1 ports.

TensorFlow's MultiWorkerMirroredStrategy over gRPC, each worker on its own CPU, the micro conv base
of tests/train_helpers.py at 32 px on the demo data. Worker 1 runs in a mount namespace where the
folder holding RUN_DIR is read-only (``unshare -m`` + a read-only bind mount, as root): any write
it tried there would fail the run, so "only the chief writes RUN_DIR" is checked, not assumed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from train_helpers import finetune_flags

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # four TensorFlow processes timed against deadlines

EDGECNN = str(Path(sys.executable).with_name("edgecnn"))
OPTIONS = dict(epochs=6, fine_tune_epochs=5, batch_size=16, lr=3e-3, fine_tune_lr=1e-3, patience=10, seed=0,
               augment="none")
# A dead peer is found by the strategy's health check (30 s interval, 3 tries of 10 s) or, at the
# latest, by the collective timeout (edgecnn.train.distribute.COLLECTIVE_TIMEOUT_S, 300 s).
SURVIVOR_BOUND_S = 420


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from train_helpers import save_micro_base

    return save_micro_base(tmp_path_factory.mktemp("mw_base") / "base.keras", "mw_base")


def _ports(n=2):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ",".join(f"127.0.0.1:{p}" for p in ports)


def _readonly_prefix(folder: Path):
    """A command prefix that runs a program with ``folder`` read-only, or None when this system cannot."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return None
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && ! touch "$0/.w"',
                            str(folder)], capture_output=True)
    return None if probe.returncode else ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"',
                                          str(folder)]


def _env(tmp):
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                EDGECNN_CACHE_DIR=str(tmp / "pixels"))


def _cmd(data, out, base, *extra):
    return [EDGECNN, "finetune", str(data), "--out", str(out), "--base", str(base), "--json",
            *finetune_flags(OPTIONS), *extra]


def _start_pair(data, out, base, tmp, workers):
    """Worker 0 (the chief) as is, worker 1 with RUN_DIR's folder read-only where this system allows."""
    ro = _readonly_prefix(out.parent) or []
    procs = []
    for index in (0, 1):
        cmd = (ro if index else []) + _cmd(data, out, base, "--workers", workers, "--worker-index", str(index))
        procs.append(subprocess.Popen(cmd, env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True))
    return procs, bool(ro)


def _result(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def single(demo_data, base, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mw_single")
    return _result(subprocess.Popen(_cmd(demo_data, tmp / "run", base), env=_env(tmp), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True))


def test_two_workers_train_one_run_and_only_the_chief_writes_it(demo_data, base, single, tmp_path):
    out = tmp_path / "runs" / "run"
    out.parent.mkdir()
    workers = _ports()
    procs, readonly = _start_pair(demo_data, out, base, tmp_path, workers)
    chief, other = [_result(p) for p in procs]
    assert chief["status"] == "trained" and other["status"] == "worker"
    run = json.loads((out / "run.json").read_text())
    strategy = run["strategy"]
    assert strategy["name"] == "MultiWorkerMirroredStrategy" and strategy["replicas"] == 2
    assert strategy["phases"] == {n: {"name": "MultiWorkerMirroredStrategy", "replicas": 2} for n in ("1", "2")}
    assert strategy["cluster"] == {"type": "worker", "index": 0, "cluster": {"worker": workers.split(",")}}
    assert run["arguments"]["strategy"] == "multiworker"
    # The finished RUN_DIR is what one worker writes: no worker scratch, no .progress, nothing half-written.
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in Path(single["run_dir"]).iterdir())
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]
    # Same seed, same global batch: val accuracy within a few points of one worker, and above chance.
    one, two = single["metrics"]["val"]["accuracy"], chief["metrics"]["val"]["accuracy"]
    assert abs(one - two) <= 0.05, (one, two)
    assert two > 1 / len(chief["labels"]) + 0.05, two
    assert other["metrics"]["val"] == chief["metrics"]["val"]  # the replicas hold the same weights
    if not readonly:
        pytest.skip("worker 1 could not run with RUN_DIR read-only here (needs root and unshare), so that it "
                    "wrote nothing there was not checked; the rest passed")


def test_a_killed_worker_fails_the_survivor_and_both_resume(demo_data, base, tmp_path):
    out = tmp_path / "runs" / "run"
    out.parent.mkdir()
    workers = _ports()
    procs, _ = _start_pair(demo_data, out, base, tmp_path, workers)
    checkpoint = out / ".progress" / "phase2" / "backup" / "chief" / "checkpoint"  # the chief's, per epoch
    deadline = time.monotonic() + 600
    while not checkpoint.is_file() and time.monotonic() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.1)
    assert checkpoint.is_file(), "no phase-2 checkpoint: " + "".join(p.communicate()[1][-1500:] for p in procs)
    os.killpg(procs[1].pid, signal.SIGKILL)  # worker 1, in the middle of the next epoch
    killed_at = time.monotonic()
    procs[1].wait()
    _, err = procs[0].communicate(timeout=SURVIVOR_BOUND_S)
    waited = time.monotonic() - killed_at
    assert procs[0].returncode == 2, err[-3000:]
    assert f"Error: a worker of the cluster ({workers.replace(',', ', ')}) stopped answering (" in err, err[-2000:]
    assert "Start every worker again with the same command: the run resumes from its last checkpoint." in err
    assert waited < SURVIVOR_BOUND_S
    assert not (out / "run.json").exists()

    procs, _ = _start_pair(demo_data, out, base, tmp_path, _ports())  # new ports: the same cluster, restarted
    chief, other = [_result(p) for p in procs]
    assert other["status"] == "worker"
    resumed = json.loads((out / "run.json").read_text())["resumed"]
    assert resumed["phase1_skipped"] is True and resumed["phase2_resumed_at_epoch"] >= 2, resumed
    assert chief["resumed"] == resumed
    history = [line.split(",")[:2] for line in (out / "history.csv").read_text().splitlines()[1:]]
    assert [int(e) for p, e in history if p == "2"] == list(range(1, OPTIONS["fine_tune_epochs"] + 1))
