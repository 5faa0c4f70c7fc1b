"""A full disk under `edgecnn run --events`: the run keeps classifying, says `disk_full` on stderr and on
the status endpoint, keeps the file whole JSON lines, and writes again once there is room.

The disk is a real 1 MB tmpfs (needs root to mount; the tests skip, saying so, where mount fails).
The camera is a fake (no camera on CI); everything else is real: interpreter, writer, HTTP status.
"""

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from board_helpers import ASSETS, ColourCamera, edgecnn_cmd

pytestmark = pytest.mark.device


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a 1 MB tmpfs here ({proc.stderr.strip() or 'mount failed'}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk):
    """Fill the disk to the last byte; returns the filler file (delete it to make room)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]  # every line whole JSON


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout=300.0):  # for a CPU 20 times slower; returns at the event
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_a_full_disk_drops_events_and_resumes_when_space_returns(small_disk, capfd):
    from edgecnn.devices.app import run

    filler = fill(small_disk)
    events = small_disk / "events.jsonl"
    port = _free_port()
    stop, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.update(run(
        ASSETS / "tiny_bundle", lambda: ColourCamera(seeds=5), mode="live", events=events, http_port=port,
        stop_event=stop,
        install_signals=False)))
    thread.start()

    def status():
        try:
            return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5).read())
        except OSError:
            return None

    try:
        full = _wait(lambda: (s := status()) and s["event_log"]["state"] == "disk_full" and s["frames"] > 20 and s)
        assert full["events"]["disk_full"] == 1
        # still classifying; the newest 256 KB of events wait in memory, older ones are dropped and counted
        later = _wait(lambda: (s := status()) and s["event_log"]["dropped"] > 0 and s, timeout=300)
        assert later["event_log"]["state"] == "disk_full" and later["frames"] > full["frames"]
        filler.unlink()  # space returns
        # the writer leaves the disk_full state, then counts the events_resumed line: wait for both
        back = _wait(lambda: (s := status()) and s["event_log"]["state"] == "ok" and "events_resumed" in s["events"]
                     and s)
        assert back["events"]["events_resumed"] == 1
        _wait(lambda: sum(e["event"] == "frame" for e in _lines(events)) > 20)
    finally:
        stop.set()
        thread.join(30)
    records = _lines(events)
    resumed = [e for e in records if e["event"] == "events_resumed"]
    assert len(resumed) == 1 and resumed[0]["dropped"] > 0 and "disk_full" in resumed[0]["after"]
    assert records.index(resumed[0]) == 0  # nothing could be written before it
    frames = [e["frame"] for e in records if e["event"] == "frame"]
    assert frames == sorted(frames) and frames[-1] >= result["frames"] - 1
    assert result["event_log"]["dropped"] == resumed[0]["dropped"]
    err = capfd.readouterr().err
    assert "warning: disk_full: cannot write events to" in err and "again (" in err and "Traceback" not in err


def test_the_cli_on_a_full_disk_classifies_to_the_end_and_exits_0(small_disk, colour_folder):
    # before: OSError [Errno 28] traceback, exit 1, no summary, the last line cut off
    fill(small_disk)
    events = small_disk / "events.jsonl"
    proc = subprocess.run(edgecnn_cmd("run", ASSETS / "tiny_bundle", "--source", colour_folder, "--events", events),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "warning: disk_full" in proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]  # with --events the summary goes to stdout
    assert summary.startswith("6 frames in") and "events dropped" in summary
    assert not events.exists() or all(_lines(events))


def test_a_disk_that_fills_during_the_run_keeps_the_file_whole(small_disk):
    from edgecnn.devices.events import EventWriter, frame_event

    events = small_disk / "events.jsonl"
    writer = EventWriter(events, max_bytes=10 * 1024 * 1024, backups=0, flush_s=0.0)
    writer.write(frame_event(0, "red", 0.9, 1.0, "model.tflite"))
    fill(small_disk)  # the next lines find no room; a partial line must not stay behind
    for i in range(1, 200):
        writer.write(frame_event(i, "red", 0.9, 1.0, "model.tflite", padding="x" * 300))
    writer.close()
    records = _lines(events)
    assert records[0]["frame"] == 0 and writer.stats["state"] == "disk_full"
    assert writer.stats["dropped"] + writer.stats["written"] == 200


def test_rotated_files_make_room_before_events_are_dropped(small_disk):
    from edgecnn.devices.events import EventWriter, frame_event

    events = small_disk / "events.jsonl"
    writer = EventWriter(events, max_bytes=300 * 1024, backups=5, flush_s=0.0)
    for i in range(20000):  # ~2.4 MB of events through a 1 MB disk
        writer.write(frame_event(i, "red", 0.9, 1.0, "model.tflite"))
    writer.close()
    assert writer.stats["dropped"] == 0, writer.stats  # the oldest rotated files went instead
    assert _lines(events)[-1]["frame"] == 19999
    assert sum(p.stat().st_size for p in small_disk.iterdir()) <= 1024 * 1024


def test_an_unwritable_events_path_is_an_error(tmp_path, colour_folder):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run(edgecnn_cmd("run", ASSETS / "tiny_bundle", "--source", colour_folder, "--events",
                                      blocker / "events.jsonl"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Error: cannot write --events file" in proc.stderr
    assert os.path.isfile(blocker)
