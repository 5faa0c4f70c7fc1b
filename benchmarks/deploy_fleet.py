"""`edgecnn deploy --parallel 4` against deploying by hand, board after board, on 8 local boards.

    python benchmarks/deploy_fleet.py [--boards 8] [--parallel 4] [--rounds 2] [--apps]

Each board is a real OpenSSH server on 127.0.0.1 (its own port) with its own ROOT, set up by hand
with bundle A (ROOT/bundles/<sha>/, ROOT/current). Each round puts bundle B on every board twice,
resetting the boards to A in between:

- ``sequential``: what a user types for each board in turn: ``scp -r`` the bundle into
  ROOT/bundles/<sha>, ``ssh ... edgecnn run ROOT/bundles/<sha> --self-test --json``, then
  ``ssh ... ln -sfn bundles/<sha> ROOT/current``;
- ``deploy``: ``edgecnn deploy B TARGET... --parallel 4`` (copy through a temporary folder, self-test,
  atomic switch, keep, one line per board).

By hand there is no health check, so by default the boards run no app and deploy runs with
``--health-timeout 0``: both do the same work on the board. ``--apps`` starts `edgecnn run
ROOT/current --watch-bundle` on each board and lets deploy wait for each app to classify with B
(the by-hand side still does not check). The medians over ``--rounds`` are reported; the last line
is one JSON object: ``boards``, ``seconds`` (deploy), ``sequential_seconds``, ``speedup``,
``on_new_bundle``, ``rolled_back``, ``failed``, ``cpu_cores``. Every "board" shares this machine's
CPU, so the boards' own work (the self-test) does not run in parallel beyond its cores, as it would
on a real fleet.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from deploy_helpers import EDGECNN, LocalBoard, hand_install, sha_of, variant, write_video  # noqa: E402
from ssh_helpers import free_port, make_keys  # noqa: E402


def ssh_base(board, key):
    return ["-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR",
            *board.sshd["options"]]


def by_hand(board, bundle, sha, key):
    """The three commands a user types for one board."""
    base = ssh_base(board, key)
    dest = f"{board.sshd['user']}@127.0.0.1"
    subprocess.run(["scp", "-q", "-r", "-P", str(board.sshd["port"]), *base, str(bundle),
                    f"{dest}:{board.root}/bundles/{sha}"], check=True)
    subprocess.run(["ssh", "-p", str(board.sshd["port"]), *base, dest,
                    f"{EDGECNN} run {board.root}/bundles/{sha} --self-test --json"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["ssh", "-p", str(board.sshd["port"]), *base, dest,
                    f"ln -sfn bundles/{sha} {board.root}/current"], check=True)


def reset(boards, sha_a, sha_b):
    for board in boards:
        shutil.rmtree(board.root / "bundles" / sha_b, ignore_errors=True)
        tmp = board.root / ".reset"
        os.symlink(f"bundles/{sha_a}", tmp)
        os.replace(tmp, board.root / "current")
        for name in ("previous", "history.json"):
            (board.root / name).unlink(missing_ok=True)


def on(boards, sha):
    return sum(board.current() == sha for board in boards)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--apps", action="store_true", help="run the app on each board; deploy checks its health")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgecnn-deploy-bench-"))
    boards = []
    try:
        a, b = variant(work / "a", "a"), variant(work / "b", "b")
        sha_a, sha_b = sha_of(a), sha_of(b)
        key = str(make_keys(work / "keys"))
        video = write_video(work / "video.avi") if args.apps else None
        for i in range(args.boards):
            board = LocalBoard(f"board{i}", work / f"board{i}", Path(key))
            hand_install(board.root, a)
            if args.apps:
                board.start_app(video, free_port())
            boards.append(board)
        inventory = work / "fleet.json"
        inventory.write_text(json.dumps({"boards": [bd.inventory_entry() for bd in boards]}))
        seq, dep, last = [], [], {}
        for _ in range(args.rounds):
            reset(boards, sha_a, sha_b)
            t0 = time.perf_counter()
            for board in boards:
                by_hand(board, b, sha_b, key)
            seq.append(time.perf_counter() - t0)
            assert on(boards, sha_b) == len(boards), "the by-hand commands left a board behind"
            reset(boards, sha_a, sha_b)
            cmd = [EDGECNN, "deploy", str(b), "--targets", str(inventory), "--parallel", str(args.parallel),
                   "--remote-edgecnn", EDGECNN, "--ssh-key", key, "--ssh-option", boards[0].sshd["options"][1],
                   "--health-timeout", "120" if args.apps else "0", "--json"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            dep.append(time.perf_counter() - t0)
            last = json.loads(proc.stdout.strip().splitlines()[-1])
            for line in last["lines"]:
                print(line, file=sys.stderr)
        counts = last.get("counts", {})
        result = {"boards": len(boards), "parallel": args.parallel, "apps": args.apps,
                  "seconds": round(statistics.median(dep), 3), "sequential_seconds": round(statistics.median(seq), 3),
                  "speedup": round(statistics.median(seq) / statistics.median(dep), 2),
                  "on_new_bundle": on(boards, sha_b), "rolled_back": counts.get("rolled back", 0),
                  "failed": len(boards) - counts.get("ok", 0) - counts.get("rolled back", 0),
                  "rounds": args.rounds, "cpu_cores": os.cpu_count()}
        print(json.dumps(result))
    finally:
        for board in boards:
            board.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
