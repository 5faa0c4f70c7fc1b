"""edgecnn search: budget, resume after a kill, two workers on one study, CLI error texts.

The searches are real (tiny MobileNet v1 bases with random weights on the generated demo data), run
as `edgecnn search` subprocesses so a kill and two concurrent workers are what a user would do.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

EDGECNN = str(Path(sys.executable).with_name("edgecnn"))
# A small space: two widths of MobileNet v1 at 96 px (random weights: no download, no ../shared).
# At 700 KB the 0.5 width busts the size budget and is rejected before training.
SPACE = {"bases": ["mobilenet_v1:0.25:96", "mobilenet_v1:0.5:96"], "unfreeze_top": [0, 6], "epochs": 3,
         "fine_tune_epochs": 1, "augment": ["none"], "balance": ["none", "weights"]}
BUDGET = ["--max-latency-ms", "200", "--max-size-kb", "700"]


def _cmd(data, out, trials, *extra, target="host"):
    space = Path(out).parent / "space.json"
    space.write_text(json.dumps(SPACE))
    return [EDGECNN, "search", str(data), "--target", target, *BUDGET, "--trials", str(trials), "--out", str(out),
            "--space", str(space), "--weights", "none", "--quiet", *extra]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("EDGECNN_WEIGHTS_DIR", None)
    return env


def _states(db: Path):
    with sqlite3.connect(db) as con:
        return con.execute("select number, state from trials order by number").fetchall()


def _finished(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return sum(1 for _, s in _states(db) if s in ("COMPLETE", "PRUNED"))
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def two_workers(demo_data, tmp_path_factory):
    """Two `edgecnn search` processes on one sqlite study, 3 trials in total (no latency probe: the
    size screen is enough here, and the resume test covers the probe)."""
    out = tmp_path_factory.mktemp("search2") / "s"
    procs = [subprocess.Popen(_cmd(demo_data, out, 3, "--seed", str(seed), "--no-probe"), env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (so, se) in zip(procs, results):
        assert p.returncode == 0, se[-2000:]
    return out


def test_two_workers_share_one_study(two_workers):
    states = _states(two_workers / "study.db")
    numbers = [n for n, _ in states]
    assert len(numbers) == len(set(numbers))
    finished = [n for n, s in states if s in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3, states
    assert all(s in ("COMPLETE", "PRUNED", "FAIL") for _, s in states), states
    workers = {t["worker"] for t in json.loads((two_workers / "trials.json").read_text())["trials"] if "worker" in t}
    assert len(workers) == 2, workers
    # FAIL here may only be an 'excess' trial (asked for when N were already running), never an error.
    data = json.loads((two_workers / "trials.json").read_text())
    for t in data["trials"]:
        if t["state"] == "FAIL":
            assert t.get("excess"), t
        assert "error" not in t, t


def test_budget_is_respected(two_workers):
    data = json.loads((two_workers / "trials.json").read_text())
    budget = data["budget"]
    by_number = {t["number"]: t for t in data["trials"]}
    assert data["front"], "at least one trial fits the budget"
    for n in data["front"] + [data["best"]["number"]]:
        t = by_number[n]
        assert t["latency_ms"] <= budget["max_latency_ms"] and t["size_kb"] <= budget["max_size_kb"], t
        assert Path(t["model"]).is_file()
        assert t["size_kb"] == pytest.approx(Path(t["model"]).stat().st_size / 1024)
    # The 0.5 width busts the size budget: screened out before the search, no trial spent on it.
    assert data["excluded_bases"]["mobilenet_v1:0.5:96"].startswith("estimated size"), data["excluded_bases"]
    assert not [t for t in data["trials"] if t.get("config", {}).get("base") == "mobilenet_v1:0.5:96"]
    assert (two_workers / "pareto.png").stat().st_size > 1000
    assert "Pareto front" in (two_workers / "report.html").read_text()


def test_resume_after_a_killed_search(demo_data, tmp_path):
    out = tmp_path / "s"
    db = out / "study.db"
    # A 1 s heartbeat: the killed worker's trial is stale after 3 s (the default is 30 s / 90 s).
    # Target rpi4: latency is the profile's estimate (no measuring, and the estimate path is covered).
    proc = subprocess.Popen(_cmd(demo_data, out, 2, "--heartbeat", "1", target="rpi4"), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 150
    while _finished(db) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
    assert _finished(db) >= 1, "the first search finished no trial before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _finished(db)
    assert before < 2, "killed too late to test a resume"
    done = subprocess.run(_cmd(demo_data, out, 2, "--heartbeat", "1", "--json", target="rpi4"), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["counts"]["finished"] == 2
    states = _states(db)
    assert sum(1 for _, s in states if s in ("COMPLETE", "PRUNED")) == 2
    data = json.loads((out / "trials.json").read_text())
    assert data["latency_kind"] == "estimate"
    assert data["base_estimates"]["mobilenet_v1:0.25:96"]["latency_kind"] == "estimate"
    for t in data["trials"]:
        if t["state"] == "COMPLETE":
            assert t["latency_kind"] == "estimate" and t["latency_detail"]["profile"] == "rpi4", t
    assert not any(s == "RUNNING" for _, s in states), "a killed worker's trial must not stay RUNNING"


# ---------------------------------------------------------------- CLI error texts (no training)

def _run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_bad_space_file(demo_data, tmp_path):
    bad = tmp_path / "space.json"
    bad.write_text("{not json")
    r = _run(["search", str(demo_data), "--max-latency-ms", "10", "--max-size-kb", "100", "--out",
              str(tmp_path / "s"), "--space", str(bad)])
    assert r.exit_code == 2
    assert r.output.startswith(f"Error: --space file '{bad}' is not valid JSON (Expecting property name enclosed "
                               "in double quotes: line 1 column 2 (char 1)).")


def test_space_file_with_unknown_key(demo_data, tmp_path):
    bad = tmp_path / "space.toml"
    bad.write_text('backbones = ["mobilenet_v1"]\n')
    r = _run(["search", str(demo_data), "--max-latency-ms", "10", "--max-size-kb", "100", "--out",
              str(tmp_path / "s"), "--space", str(bad)])
    assert r.exit_code == 2
    assert r.output.startswith(f"Error: --space file '{bad}' has unknown key(s) backbones; known keys: bases, "
                               "backbone, alpha, input_size,")


def test_bad_study_url(demo_data, tmp_path):
    r = _run(["search", str(demo_data), "--max-latency-ms", "10", "--max-size-kb", "100", "--out",
              str(tmp_path / "s"), "--weights", "none", "--study", "not-a-url"])
    assert r.exit_code == 2
    assert r.output == ("Error: --study 'not-a-url' is not a database URL. Use sqlite:///PATH/study.db, "
                        "postgresql://USER:PASS@HOST/DB or mysql+pymysql://USER:PASS@HOST/DB (any SQLAlchemy URL "
                        "Optuna supports).\n")


def test_study_url_with_unknown_dialect(demo_data, tmp_path):
    r = _run(["search", str(demo_data), "--max-latency-ms", "10", "--max-size-kb", "100", "--out",
              str(tmp_path / "s"), "--weights", "none", "--study", "nosuchdb://u:secret@h/db"])
    assert r.exit_code == 2
    assert r.output.startswith("Error: cannot open study storage 'nosuchdb://u:***@h/db': ")
    assert "secret" not in r.output


def test_unreachable_board(demo_data, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _run(["search", str(demo_data), "--target", f"ssh://nobody@127.0.0.1:{port}", "--max-latency-ms", "10",
              "--max-size-kb", "100", "--out", str(tmp_path / "s"), "--weights", "none", "--ssh-timeout", "20"])
    assert r.exit_code == 2
    assert r.output.startswith(f"Error: board 'ssh://nobody@127.0.0.1:{port}' is unreachable over SSH (")
    assert r.output.endswith(f"Check that it is on and that `ssh -p {port} nobody@127.0.0.1` logs in without a "
                             "password prompt (BatchMode), or pass --ssh-key.\n")
    assert not (tmp_path / "s").exists(), "nothing is written before the board is reached"


def test_unknown_target(demo_data, tmp_path):
    r = _run(["search", str(demo_data), "--target", "rpi9", "--max-latency-ms", "10", "--max-size-kb", "100",
              "--out", str(tmp_path / "s"), "--weights", "none"])
    assert r.exit_code == 2
    assert r.output == ("Error: unknown --target 'rpi9'. Use host, ssh://user@board[:port], or a profile: "
                        "coral-devboard, coral-usb, rpi4, rpi5.\n")
