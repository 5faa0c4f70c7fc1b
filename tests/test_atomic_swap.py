"""Atomic writes keep their promises: usual modes, no gap in a folder swap, leftovers of killed
writers cleaned on the next write (a real `edgecnn convert` killed with SIGKILL)."""

import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from edgecnn import atomic
from cli_helpers import EDGECNN
from train_helpers import ROOT

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_artifacts_get_the_usual_modes_not_mkstemps(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_json(tmp_path / "a.json", {"a": 1})
        with atomic.atomic_path(tmp_path / "m.keras") as tmp:
            tmp.write_bytes(b"x")
        with atomic.atomic_dir(tmp_path / "bundle") as tmp:
            atomic.write_text(tmp / "labels.txt", "a\n")
            (tmp / "golden").mkdir()
        assert _mode(tmp_path / "a.json") == 0o644
        assert _mode(tmp_path / "m.keras") == 0o644
        assert _mode(tmp_path / "bundle") == 0o755
        assert _mode(tmp_path / "bundle" / "labels.txt") == 0o644
        os.umask(0o027)  # a stricter umask is respected, not widened
        atomic.write_json(tmp_path / "b.json", {"b": 1})
        with atomic.atomic_dir(tmp_path / "bundle2") as tmp:
            pass
        assert _mode(tmp_path / "b.json") == 0o640
        assert _mode(tmp_path / "bundle2") == 0o750
    finally:
        os.umask(old)


def test_a_bundle_written_by_convert_is_readable_by_others(mini_run, tmp_path):
    from edgecnn.compress.convert import convert_run

    old = os.umask(0o022)
    try:
        out = convert_run(mini_run, tmp_path / "bundle", calibration_size=16, eval_size=0, golden=1)["bundle"]
    finally:
        os.umask(old)
    assert _mode(out) == 0o755
    for path in [p for p in tmp_path.joinpath("bundle").rglob("*")]:
        assert _mode(path) == (0o755 if path.is_dir() else 0o644), path


def test_the_swap_never_leaves_the_folder_missing(tmp_path, monkeypatch):
    """After every rename the swap makes, the bundle path still names a complete bundle."""
    target = tmp_path / "bundle"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "edgecnn.json").write_text("0")
    gaps = []
    real_replace, real_rename = os.replace, os.rename

    def watched(func):
        def call(src, dst, *args, **kwargs):
            func(src, dst, *args, **kwargs)
            if not (target / "edgecnn.json").is_file():
                gaps.append((str(src), str(dst)))
        return call

    monkeypatch.setattr(os, "replace", watched(real_replace))
    monkeypatch.setattr(os, "rename", watched(real_rename))
    seen_missing = []
    stop = threading.Event()

    def observe():  # a board polling the folder, as --watch-bundle does
        while not stop.is_set():
            if not (target / "edgecnn.json").is_file():
                seen_missing.append(time.monotonic())

    observer = threading.Thread(target=observe)
    observer.start()
    try:
        for i in range(1, 60):
            with atomic.atomic_dir(target) as tmp:
                (tmp / "edgecnn.json").write_text(str(i))
    finally:
        stop.set()
        observer.join(30)
    assert gaps == [] and seen_missing == []
    assert (target / "edgecnn.json").read_text() == "59"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_without_exchange_the_two_renames_still_end_complete(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "exchange", lambda a, b: False)  # a file system that cannot exchange
    target = tmp_path / "bundle"
    for i in range(3):
        with atomic.atomic_dir(target) as tmp:
            (tmp / "f").write_text(str(i))
    assert (target / "f").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_leftovers_of_dead_writers_go_and_those_of_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)  # that process has exited
    target = tmp_path / "bundle"
    leftovers = [f".bundle.{pid}.k2j4h5g6.tmp", f".bundle.old.{pid}", ".bundle.a1b2c3d4.tmp"]
    for name in leftovers:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.tflite").write_bytes(b"half")
    live = tmp_path / f".bundle.{os.getppid()}.q1w2e3r4.tmp"  # a writer still at work
    live.mkdir()
    unrelated = [tmp_path / ".bundle2.123.abc.tmp", tmp_path / "bundle.tmp"]
    for path in unrelated:
        path.mkdir()
    with atomic.atomic_dir(target) as tmp:
        (tmp / "f").write_text("1")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["bundle", live.name] + [p.name for p in unrelated])


_PAUSE_IN_THE_WRITE = """
import sys
from pathlib import Path
import edgecnn.bundle.manifest as bundle
real = bundle.sha256_file
def paused(path):
    if ".tmp" in str(path):  # hashing the files of the temporary bundle: the write is half done
        Path(sys.argv[1]).write_text("inside")
        import time
        while True:
            time.sleep(1)
    return real(path)
bundle.sha256_file = paused
from edgecnn.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_convert_killed_mid_write_keeps_the_old_bundle_and_the_next_write_cleans_up(mini_run, tmp_path):
    bundle = tmp_path / "bundle"
    args = ["convert", str(mini_run), "--out", str(bundle), "--calibration-size", "16", "-q"]
    first = subprocess.run(EDGECNN + args, cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    manifest = (bundle / "edgecnn.json").read_bytes()

    marker = tmp_path / "inside"
    proc = subprocess.Popen([sys.executable, "-c", _PAUSE_IN_THE_WRITE, str(marker)] + args, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while proc.poll() is None and not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no write seen"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle."))
    assert left and all(name.endswith(".tmp") for name in left)  # what kill -9 leaves behind
    assert (bundle / "edgecnn.json").read_bytes() == manifest  # the old bundle is untouched

    again = subprocess.run(EDGECNN + args, cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "inside"]
    verify = subprocess.run(EDGECNN + ["bundle", "verify", str(bundle)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2(RENAME_EXCHANGE) is Linux only")
def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    assert atomic.exchange(a, b)
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"
