"""Capture in a thread: the latest frame only (live) or every frame in order (replay).

Live mode keeps one slot: a frame not taken before the next arrives is dropped and counted, so
latency stays bounded when inference is slower than the camera. Replay mode (files, folders)
hands over every frame through a small bounded queue, reading ahead while the model runs.

A supervisor thread watches the reader: no new frame for ``stall_s`` seconds, the same frame
``repeat_limit`` times in a row, a failed read or open, or a live source that ended -> the source
is reopened after an exponential backoff (``backoff_s`` doubling up to ``backoff_max_s``). A reader
stuck inside a blocking read is abandoned, not joined. With ``exit_on_end`` the capture finishes
when the source ends or a read fails instead (replay mode always finishes at the end).
"""

import hashlib
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    id: int
    time: float          # time.time() when captured
    image: np.ndarray    # BGR uint8
    prepared: object = None  # what ``prepare(image)`` returned in the capture thread


_END = object()


class Capture:
    """Args:
        opener: ``opener() -> source`` (see :mod:`edgecnn.devices.sources`); called again to reopen.
        mode: ``live`` (drop stale frames) or ``replay`` (every frame, in order).
        on_event: callable receiving ``source_lost`` / ``source_reopened`` / ``source_ended`` events.
        prepare: optional ``prepare(image)`` run in the capture thread (preprocessing ahead of the
            consumer); its result is ``Frame.prepared``.
    """

    def __init__(self, opener, mode="live", stall_s=5.0, repeat_limit=100, backoff_s=0.5, backoff_max_s=30.0,
                 exit_on_end=False, on_event=None, queue_size=4, prepare=None, max_fps=None):
        if mode not in ("live", "replay"):
            raise ValueError(f"unknown capture mode '{mode}'; use live or replay")
        self.opener, self.mode, self.prepare = opener, mode, prepare
        # a recorded video read as a camera delivers it: at most max_fps frames a second, not flat out
        self.min_interval_s = 1.0 / float(max_fps) if max_fps else 0.0
        # a replay reader waits for the consumer, so silence there is not a stall
        self.stall_s = 0.0 if mode == "replay" else float(stall_s or 0.0)
        # a replayed file may hold identical frames on purpose: only live sources can freeze
        self.repeat_limit = int(repeat_limit or 0) if mode == "live" else 0
        self.backoff_s, self.backoff_max_s = float(backoff_s), float(backoff_max_s)
        self.exit_on_end = exit_on_end or mode == "replay"
        self.on_event = on_event or (lambda event: None)
        self.stats = {"frames": 0, "dropped": 0, "reconnects": 0, "stalls": 0, "repeats": 0, "failures": 0,
                      "bad_frames": 0}
        self._cond = threading.Condition()
        self._slot = None
        self._queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._ended = False
        self._end_announced = False
        self._generation = 0
        self._trouble = None          # (generation, reason) reported by a reader
        self._last_frame = time.monotonic()
        self._next_id = 0
        self._flowing = False         # the current reader has delivered a frame
        self._reopening = False
        self._readers = []
        self._supervisor = threading.Thread(target=self._supervise, name="edgecnn-capture", daemon=True)

    # --- consumer side ---------------------------------------------------------------------------
    def start(self):
        self._spawn_reader()
        self._supervisor.start()
        return self

    def get(self, timeout=1.0):
        """The next frame, or None after ``timeout`` seconds or once the source has ended."""
        if self.mode == "replay":
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                return None
            if item is _END:
                self._ended = True
                self._announce_end()
                return None
            return item
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._slot is None and not self._ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            ended = frame is None and self._ended
        if ended:
            self._announce_end()
        return frame

    def _announce_end(self):
        # said by the consumer once it has taken every frame, so `source_ended` follows the last frame's
        # event in the stream (the reader reaches the end while frames still wait in the queue)
        if not self._end_announced:
            self._end_announced = True
            self.on_event({"event": "source_ended", "bad_frames": self.stats["bad_frames"]})

    @property
    def finished(self):
        """True once the source ended (with exit_on_end or in replay) and every frame was taken."""
        if self.mode == "replay":
            return self._ended
        with self._cond:
            return self._ended and self._slot is None

    def stop(self, timeout=2.0):
        """Stop and join the threads (a reader stuck in a blocking read is left behind after ``timeout``).

        Joining matters: a daemon thread still inside OpenCV when Python exits can abort the process.
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._generation += 1  # any reader still running sees it is stale and releases its source
        deadline = time.monotonic() + timeout
        for thread in [self._supervisor] + self._readers[-1:]:  # earlier readers were abandoned as stuck
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    # --- reader threads --------------------------------------------------------------------------
    def _spawn_reader(self):
        self._generation += 1
        self._last_frame = time.monotonic()
        self._flowing = False
        reader = threading.Thread(target=self._read, args=(self._generation,), name="edgecnn-reader", daemon=True)
        self._readers = [t for t in self._readers if t.is_alive()] + [reader]
        reader.start()

    def _report(self, generation, reason):
        with self._cond:
            if generation == self._generation and self._trouble is None:
                self._trouble = (generation, reason)
            self._cond.notify_all()

    def _read(self, generation):
        try:
            source = self.opener()
        except Exception as exc:
            self._report(generation, f"open failed: {exc}")
            return
        previous, repeats, bad_seen = None, 0, 0
        next_read = time.monotonic()
        try:
            while not self._stop.is_set() and generation == self._generation:
                if self.min_interval_s:
                    if self._stop.wait(max(0.0, next_read - time.monotonic())):
                        return
                    next_read = max(next_read + self.min_interval_s, time.monotonic())
                image = source.read()
                if generation != self._generation:
                    return
                bad = getattr(source, "bad_frames", 0)
                if bad > bad_seen:  # skipped undecodable frames or files: counted and said, not fatal
                    self.stats["bad_frames"] += bad - bad_seen
                    bad_seen = bad
                    self.on_event({"event": "bad_frames", "count": self.stats["bad_frames"],
                                   "reason": getattr(source, "last_bad", None)})
                if image is None:
                    live = getattr(source, "live", True)
                    self._report(generation, "ended" if not live else "read failed")
                    return
                if self.repeat_limit:
                    digest = hashlib.blake2b(np.ascontiguousarray(image[::8, ::8]).data, digest_size=16).digest()
                    repeats = repeats + 1 if digest == previous else 0
                    previous = digest
                    if repeats >= self.repeat_limit:
                        self.stats["repeats"] += 1
                        self._report(generation, f"same frame {repeats + 1} times")
                        return
                self._publish(image)
        finally:
            try:
                source.release()
            except Exception:
                pass

    def _publish(self, image):
        frame = Frame(self._next_id, time.time(), image)
        if self.prepare is not None:
            try:
                frame.prepared = self.prepare(image)
            except Exception:  # the consumer prepares it again and reports any error
                frame.prepared = None
        self._next_id += 1
        self.stats["frames"] += 1
        self._last_frame = time.monotonic()
        self._flowing = True
        if self._reopening:
            self._reopening = False
            self.on_event({"event": "source_reopened", "attempt": self.stats["reconnects"]})
        if self.mode == "replay":
            self._put(frame)
            return
        with self._cond:
            if self._slot is not None:
                self.stats["dropped"] += 1
            self._slot = frame
            self._cond.notify_all()

    # --- supervisor ------------------------------------------------------------------------------
    def _put(self, item):
        """Replay: wait for room in the queue (the consumer sets the pace), unless stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _finish(self):
        if self.mode == "replay":  # finished once the consumer takes the end marker, after every frame
            self._put(_END)
            return
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def _supervise(self):
        backoff = self.backoff_s
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait(min(0.05, self.stall_s / 4) if self.stall_s else 0.05)
                trouble, self._trouble = self._trouble, None
            if self._stop.is_set():
                return
            if trouble is None and self.stall_s and time.monotonic() - self._last_frame > self.stall_s:
                self.stats["stalls"] += 1
                trouble = (self._generation, f"no new frame for {self.stall_s:g} s")
            if trouble is None:
                if self._flowing:
                    backoff = self.backoff_s  # frames flow again: the next failure starts short
                continue
            reason = trouble[1]
            if reason in ("ended", "read failed") and self.exit_on_end:
                self._finish()  # the consumer announces source_ended once it has taken every frame
                return
            self._generation += 1  # abandon the current reader, even if it is stuck in read()
            self.stats["failures"] += 1
            self.on_event({"event": "source_lost", "reason": reason, "retry_in_s": round(backoff, 3)})
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.backoff_max_s)
            self.stats["reconnects"] += 1
            self._reopening = True
            self._spawn_reader()
