"""Capture: latest-frame dropping, replay order, stall detection and reconnect with backoff.

There is no camera on the CI machine: a fake capture object stands in for one (it fails, hangs,
repeats frames and recovers on command), which exercises the same code paths as cv2.VideoCapture.
"""

import threading
import time

import numpy as np
import pytest

from edgecnn.devices.capture import Capture
from edgecnn.devices.sources import FolderSource, open_source, source_kind
from edgecnn.errors import DeviceError

pytestmark = pytest.mark.device


class FakeCamera:
    """A live source producing numbered frames at ``fps``; ``script`` decides what each read does."""

    live = True

    def __init__(self, fps=200.0, fail_after=None, hang_after=None, repeat_after=None):
        self.fps, self.fail_after, self.hang_after, self.repeat_after = fps, fail_after, hang_after, repeat_after
        self.count = 0
        self.released = False

    def read(self):
        time.sleep(1.0 / self.fps)
        self.count += 1
        if self.fail_after is not None and self.count > self.fail_after:
            return None
        if self.hang_after is not None and self.count > self.hang_after:
            time.sleep(3600)  # a driver that never returns (the thread is a daemon)
        value = self.count if self.repeat_after is None else min(self.count, self.repeat_after)
        return np.full((8, 8, 3), value % 256, dtype=np.uint8)

    def release(self):
        self.released = True


def _wait(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_live_mode_keeps_only_the_latest_frame_and_counts_drops():
    cap = Capture(lambda: FakeCamera(fps=500), mode="live", stall_s=2).start()
    try:
        taken = []
        for _ in range(5):
            frame = cap.get(timeout=1)
            taken.append(frame.id)
            time.sleep(0.05)  # inference slower than the camera
            assert time.time() - frame.time < 0.5
        assert cap.stats["dropped"] > 10
        assert taken == sorted(taken) and taken[-1] - taken[0] > 5  # stale frames were skipped, not queued
    finally:
        cap.stop()


def test_camera_that_fails_then_recovers_is_reopened_with_backoff():
    opened, events = [], []

    def opener():
        opened.append(time.monotonic())
        if len(opened) in (2, 3):
            raise DeviceError("camera unplugged")  # the first two reopen attempts fail
        return FakeCamera(fail_after=5)

    cap = Capture(opener, mode="live", stall_s=2, backoff_s=0.05, backoff_max_s=1, on_event=events.append).start()
    try:
        assert _wait(lambda: cap.stats["reconnects"] >= 3 and any(e["event"] == "source_reopened" for e in events))
        frame = cap.get(timeout=1)
        assert frame is not None  # frames flow again
    finally:
        cap.stop()
    lost = [e for e in events if e["event"] == "source_lost"]
    assert lost[0]["reason"] == "read failed" and "camera unplugged" in lost[1]["reason"]
    assert lost[1]["retry_in_s"] == pytest.approx(2 * lost[0]["retry_in_s"])  # exponential backoff
    assert opened[2] - opened[1] >= 0.09


def test_a_hung_read_is_detected_as_a_stall_and_abandoned():
    cameras, events = [], []

    def opener():
        cameras.append(FakeCamera(hang_after=3 if not cameras else None))
        return cameras[-1]

    cap = Capture(opener, mode="live", stall_s=0.2, backoff_s=0.01, on_event=events.append).start()
    try:
        assert _wait(lambda: cap.stats["stalls"] >= 1 and len(cameras) >= 2)
        assert _wait(lambda: cap.get(timeout=0.5) is not None)
    finally:
        cap.stop()
    assert any("no new frame" in e.get("reason", "") for e in events)


def test_the_same_frame_repeated_counts_as_a_stall():
    events = []
    cap = Capture(lambda: FakeCamera(repeat_after=2), mode="live", stall_s=5, repeat_limit=10, backoff_s=0.01,
                  on_event=events.append).start()
    try:
        # wait for the event itself: the reader counts the repeat before the supervisor reports it,
        # so stopping as soon as the count moves could stop the supervisor before it speaks
        assert _wait(lambda: any("same frame" in e.get("reason", "") for e in list(events)))
    finally:
        cap.stop()
    assert cap.stats["repeats"] >= 1
    lost = [e for e in events if e["event"] == "source_lost"]
    assert lost[0]["reason"] == "same frame 11 times"  # repeat_limit=10 repeats after the first frame


def test_exit_on_source_end_finishes_instead_of_reopening():
    cap = Capture(lambda: FakeCamera(fail_after=3), mode="live", exit_on_end=True).start()
    frames = []
    assert _wait(lambda: frames.append(cap.get(timeout=0.05)) or cap.finished)
    assert any(f is not None for f in frames)
    cap.stop()
    assert cap.stats["reconnects"] == 0


def test_replay_mode_hands_over_every_frame_in_order(colour_folder):
    cap = Capture(lambda: FolderSource(colour_folder), mode="replay").start()
    ids = []
    while not cap.finished:
        frame = cap.get(timeout=1)
        if frame is not None:
            ids.append(frame.id)
            time.sleep(0.01)  # slow consumer: nothing is dropped in replay
    cap.stop()
    assert ids == list(range(6)) and cap.stats["dropped"] == 0


def test_source_kinds_and_clear_errors(tmp_path, colour_folder):
    assert source_kind(0) == "camera" and source_kind("2") == "camera"
    assert source_kind("rtsp://cam/stream") == "url" and source_kind("http://x/y.mjpg") == "url"
    assert source_kind(colour_folder) == "folder" and source_kind("clip.mp4") == "file"
    assert source_kind("picamera2:640x480") == "picamera2"
    with pytest.raises(DeviceError, match="does not exist"):
        open_source(str(tmp_path / "missing.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DeviceError, match="holds no images"):
        open_source(str(tmp_path / "empty"))
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(DeviceError, match="python3-picamera2"):
            open_source("picamera2")


def test_folder_source_is_sorted_and_skips_unreadable_files(colour_folder):
    (colour_folder / "002b.png").write_bytes(b"not a png")
    source = FolderSource(colour_folder)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert len(frames) == 6 and source.skipped == ["002b.png"]
    assert [p.name for p in source.files][:4] == ["000.png", "001.png", "002.png", "002b.png"]
    assert int(np.argmax(frames[2][..., ::-1].reshape(-1, 3).mean(0))) == 2  # 002.png is the blue one
