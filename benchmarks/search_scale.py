"""Search scale-out: do two `edgecnn search` workers sharing one PostgreSQL study finish more trials?

One run, side by side: 1 worker, then 2 workers, each `edgecnn search` process limited to one thread
(TF_NUM_INTRAOP_THREADS=1, TF_NUM_INTEROP_THREADS=1, OMP_NUM_THREADS=1, --threads 1) and, where
`taskset` is there, pinned to its own CPU (worker i on CPU i), each with its
own SEARCH_DIR, all on a fresh database of a throwaway PostgreSQL 15 on 127.0.0.1 (tests/pg_helpers.py),
the same small space (MobileNet v1 0.25 at 96 px, random weights, generated demo data, target host),
budget and wall-clock limit. At the limit the workers are killed (SIGKILL); a trial counts when it
finished (COMPLETE or PRUNED) within the limit.

* ``throughput_ratio``: trials_2_workers / trials_1_worker.
* ``lost_trials``: trial numbers missing from the study, plus trials FAILED with an error (an
  ``excess`` trial, asked for when the budget was already taken, is not lost; trials cut off RUNNING
  by the kill at the limit are reported as ``cut_at_limit``).
* ``duplicate_trials``: trial numbers that appear more than once.

Prints progress on stderr and one JSON object as the last line of stdout. Goal on a 2-core machine:
throughput_ratio >= 1.5, lost_trials == 0, duplicate_trials == 0.

    python benchmarks/search_scale.py [--seconds 240] [--out DIR]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SPACE = {"bases": ["mobilenet_v1:0.25:96"], "unfreeze_top": [0, 6], "epochs": 3, "fine_tune_epochs": 1,
         "augment": ["none"], "balance": ["none", "weights"]}
BUDGET = ["--max-latency-ms", "200", "--max-size-kb", "700"]
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_workers(n, data, root, url, seconds):
    """``n`` workers on study ``url`` for ``seconds``; the study's figures after they are killed."""
    edgecnn = str(Path(sys.executable).with_name("edgecnn"))
    space = root / "space.json"
    space.write_text(json.dumps(SPACE))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **ONE_THREAD)
    procs = []
    started = time.time()
    pin = shutil.which("taskset")
    for i in range(n):
        cmd = ([pin, "-c", str(i % (os.cpu_count() or 1))] if pin else []) + [
               edgecnn, "search", str(data), "--target", "host", "--threads", "1", *BUDGET, "--trials", "100000",
               "--out", str(root / f"worker{n}-{i}"), "--space", str(space), "--weights", "none", "--no-probe",
               "--study", url, "--seed", str(i + 1), "--quiet"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(root / f"w{n}-{i}.log", "w"),
                                      start_new_session=True))
    deadline = started + seconds
    while time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(1)
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    crashed = [i for i, p in enumerate(procs) if p.returncode not in (-signal.SIGKILL,)]
    if crashed:
        raise SystemExit(f"worker(s) {crashed} of {n} stopped early: see {root}/w{n}-*.log")
    return figures(url, started, deadline)


def figures(url, started, deadline) -> dict:
    from edgecnn.search import storage as storage_mod

    optuna = storage_mod.load_optuna()
    study = optuna.load_study(study_name="edgecnn-search", storage=storage_mod.open_storage(url))
    trials = study.get_trials(deepcopy=False)
    numbers = Counter(t.number for t in trials)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED") and t.datetime_complete is not None
                and started <= t.datetime_complete.timestamp() <= deadline]
    failed = [t for t in trials if t.state.name == "FAIL" and not t.user_attrs.get("excess")]
    missing = set(range(max(numbers, default=-1) + 1)) - set(numbers)
    return {"finished": len(finished), "lost": len(missing) + len(failed),
            "duplicates": sum(c - 1 for c in numbers.values() if c > 1),
            "cut_at_limit": sum(1 for t in trials if t.state.name == "RUNNING"),
            "workers": sorted({t.user_attrs.get("worker") for t in finished})}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=240.0, help="wall-clock limit of each configuration")
    ap.add_argument("--out", type=Path, help="working folder (default: a temporary one)")
    a = ap.parse_args()
    from edgecnn.data.synth import make_demo_dataset
    from pg_helpers import PostgresServer, PostgresUnavailable

    root = a.out or Path(tempfile.mkdtemp(prefix="search-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    data = make_demo_dataset(root / "data", per_class=60, size=96, seed=0)
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        raise SystemExit(f"PostgreSQL is needed: {exc}")
    try:
        results = {}
        for n in (1, 2):
            log(f"{n} worker(s) for {a.seconds:g} s on one PostgreSQL study...")
            results[n] = run_workers(n, data, root, server.new_database(), a.seconds)
            log(f"  {results[n]}")
    finally:
        server.stop()
    one, two = results[1]["finished"], results[2]["finished"]
    print(json.dumps({
        "trials_1_worker": one, "trials_2_workers": two,
        "throughput_ratio": round(two / one, 3) if one else None,
        "lost_trials": results[1]["lost"] + results[2]["lost"],
        "duplicate_trials": results[1]["duplicates"] + results[2]["duplicates"],
        "cut_at_limit": {"1_worker": results[1]["cut_at_limit"], "2_workers": results[2]["cut_at_limit"]},
        "workers_with_trials": {"1_worker": len(results[1]["workers"]), "2_workers": len(results[2]["workers"])},
        "seconds_each": a.seconds, "cpus": os.cpu_count(), "threads_per_worker": 1,
        "pinned": bool(shutil.which("taskset")), "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
