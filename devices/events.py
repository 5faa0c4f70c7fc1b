"""Event records and the JSON-lines writer (stdout, or a file rotated at a size bound).

Every frame yields one ``frame`` event; status changes (``degraded``, ``source_lost``, ``hung``,
``bundle_swapped``...) are events too, with an ``event`` key naming them.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path


def frame_event(frame_id, label, score, latency_ms, model, reason=None, captured=None, **extra) -> dict:
    """The record of one frame: time, frame id, label (or ``unknown``), score, latency, who decided."""
    event = {"event": "frame", "time": round(time.time(), 3), "frame": int(frame_id), "label": label,
             "score": round(float(score), 4), "latency_ms": round(float(latency_ms), 2), "model": model,
             "fallback_reason": reason}
    if captured is not None:
        event["age_ms"] = round((time.time() - captured) * 1000.0, 2)
    event.update(extra)
    return event


class EventWriter:
    """Write events as JSON lines to ``path`` (rotated to ``path.1`` ... ``path.N``) or to stdout.

    The file never grows past ``max_bytes`` and at most ``backups`` old files are kept, so the
    total stays under ``(backups + 1) * max_bytes``. A stream is flushed at every line (pipes read
    it live); a file at most every ``flush_s`` seconds, and on close.
    """

    def __init__(self, path=None, max_bytes=10 * 1024 * 1024, backups=3, stream=None, flush_s=0.2):
        self.path = Path(path) if path else None
        self.max_bytes, self.backups = int(max_bytes), int(backups)
        self._lock = threading.Lock()
        self._stream = stream
        self._fh = None
        self.flush_s, self._flushed = float(flush_s), 0.0
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, event: dict):
        line = json.dumps(event, default=_default) + "\n"
        with self._lock:
            if self._fh is None:
                stream = self._stream or sys.stdout
                stream.write(line)
                stream.flush()
                return
            if self._fh.tell() + len(line) > self.max_bytes and self._fh.tell() > 0:
                self._rotate()
            self._fh.write(line)
            now = time.monotonic()
            if now - self._flushed >= self.flush_s:  # a file is flushed at most every flush_s
                self._fh.flush()
                self._flushed = now

    def _rotate(self):
        self._fh.close()
        for i in range(self.backups, 0, -1):
            src = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i}"))
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")

    def close(self):
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def _default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
