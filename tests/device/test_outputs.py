"""Outputs: JSON-lines events with rotation, the review folder's quota, the status endpoint, sd_notify."""

import errno
import json
import os
import socket
import urllib.request

import numpy as np
import pytest
from board_helpers import colour_frame

from edgecnn.devices.events import EventWriter, frame_event
from edgecnn.devices.notify import Notifier, sd_notify
from edgecnn.devices.review import ReviewStore
from edgecnn.devices.status_http import Stats, StatusServer

pytestmark = pytest.mark.device


def test_frame_event_has_every_field():
    event = frame_event(7, "red", 0.91234, 3.456, "model.tflite", None, captured=None)
    assert set(event) >= {"event", "time", "frame", "label", "score", "latency_ms", "model", "fallback_reason"}
    assert (event["frame"], event["label"], event["score"], event["latency_ms"]) == (7, "red", 0.9123, 3.46)


def test_event_file_rotates_and_stays_bounded(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path, max_bytes=2000, backups=2)
    for i in range(200):
        writer.write(frame_event(i, "red", 0.5, 1.0, "model.tflite"))
    writer.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert all(f.stat().st_size <= 2000 for f in files)
    last = [json.loads(line) for line in path.read_text().splitlines()]
    assert last[-1]["frame"] == 199 and all(e["event"] == "frame" for e in last)


def test_events_to_a_stream():
    import io

    buf = io.StringIO()
    EventWriter(stream=buf).write({"event": "x", "value": np.float32(1.5)})
    assert json.loads(buf.getvalue()) == {"event": "x", "value": 1.5}


def test_review_quota_deletes_oldest_first(tmp_path):
    store = ReviewStore(tmp_path / "review", quota_mb=0.02)  # ~20 KB
    rng = np.random.default_rng(0)
    for i in range(12):
        noisy = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)  # ~5 KB as JPEG
        assert store.save(noisy, {"time": 1000.0 + i, "frame": i, "label": "unknown"}) is not None
    files = sorted(p.name for p in (tmp_path / "review").iterdir())
    total = sum(p.stat().st_size for p in (tmp_path / "review").iterdir())
    assert total <= 0.02 * 1024 * 1024 and store.deleted > 0
    kept_frames = sorted(int(name.split("_")[1].split(".")[0]) for name in files if name.endswith(".json"))
    assert kept_frames == list(range(12 - len(kept_frames), 12))  # the newest survive
    assert all(name.replace(".jpg", ".json") in files for name in files if name.endswith(".jpg"))
    sidecar = json.loads((tmp_path / "review" / files[-1]).read_text())
    assert sidecar["frame"] == 11
    # a new store on the same folder knows what is there
    assert ReviewStore(tmp_path / "review", quota_mb=0.02).stats()["bytes"] == store.stats()["bytes"]


def test_review_full_disk_is_logged_never_fatal(tmp_path, monkeypatch, caplog):
    import edgecnn.devices.review as review

    store = ReviewStore(tmp_path / "review", quota_mb=10)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(review, "write_bytes", full)
    with caplog.at_level("WARNING"):
        assert store.save(colour_frame(0), {"time": 1.0, "frame": 3}) is None
    assert store.errors == 1 and "No space left" in caplog.text


def test_status_endpoint_serves_json_on_localhost():
    stats = Stats()
    for i, label in enumerate(["red", "red", "unknown"]):
        stats.frame(frame_event(i, label, 0.9, 2.0 + i, "model.tflite", "below_threshold" if label == "unknown" else None))
    stats.status_event({"event": "degraded", "reason": "no TPU"})
    server = StatusServer(stats, 0)
    try:
        assert server.host == "127.0.0.1"
        status = json.loads(urllib.request.urlopen(server.url, timeout=5).read())
    finally:
        server.close()
    assert status["frames"] == 3 and status["labels"] == {"red": 2, "unknown": 1}
    assert status["fallback_reasons"] == {"below_threshold": 1} and status["degraded"] == "no TPU"
    assert status["latency_ms"]["p50"] == pytest.approx(3.0) and "fps" in status


def test_sd_notify_sends_datagrams_to_a_real_unix_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(2)
        assert sd_notify("READY=1", path)
        assert sock.recv(1024) == b"READY=1"
        notifier = Notifier(sock_path=path, watchdog_usec=2_000_000)  # WatchdogSec=2: ping every 1 s
        assert notifier.ready()
        assert sock.recv(1024).startswith(b"READY=1\nSTATUS=")
        assert notifier.frame(now=100.0) is True
        assert sock.recv(1024) == b"WATCHDOG=1"
        assert notifier.frame(now=100.5) is False   # too soon
        assert notifier.frame(now=101.1) is True    # frames still flowing: ping again
        assert sock.recv(1024) == b"WATCHDOG=1"
        assert notifier.pings == 2


def test_sd_notify_without_systemd_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
    assert Notifier().frame() is False and not Notifier().enabled
    monkeypatch.setenv("NOTIFY_SOCKET", os.devnull)
    assert sd_notify("READY=1") is False  # a wrong socket is not fatal either


def test_app_notifies_systemd_only_while_frames_flow(tmp_path, monkeypatch, colour_folder):
    from board_helpers import ASSETS

    from edgecnn.devices.app import run

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(0.5)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        monkeypatch.setenv("WATCHDOG_USEC", "2")  # ping at every frame
        run(ASSETS / "tiny_bundle", str(colour_folder), events=tmp_path / "e.jsonl", install_signals=False)
        messages = []
        try:
            while True:
                messages.append(sock.recv(1024).decode())
        except socket.timeout:
            pass
    assert messages[0].startswith("READY=1") and messages[-1] == "STOPPING=1"
    assert messages.count("WATCHDOG=1") == 6  # one per frame here, none before READY or after the last frame


def test_systemd_unit_restarts_on_failure_with_a_watchdog():
    from pathlib import Path

    import edgecnn.devices

    unit = (Path(edgecnn.devices.__file__).parent / "systemd" / "edgecnn.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify" and settings["Restart"] == "on-failure"
    assert int(settings["WatchdogSec"]) > 0 and settings["ExecStart"].split()[1] == "run"
