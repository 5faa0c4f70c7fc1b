"""Event records and the JSON-lines writer (stdout, or a file rotated at a size bound).

Every frame yields one ``frame`` event; status changes (``degraded``, ``source_lost``, ``hung``,
``bundle_swapped``...) are events too, with an ``event`` key naming them.

A full disk must not stop a board from classifying (under systemd's restart a crash is a loop with
no classification at all). When a write fails the writer cuts the file back to its last whole line,
frees room by deleting its own oldest rotated files, and if that is not enough drops events,
counting them, with one ``disk_full`` warning on stderr and in :attr:`EventWriter.stats` (the
status endpoint shows it). It tries again every ``retry_s`` and, once a write succeeds, says how
many events were lost (an ``events_resumed`` event) and carries on.
"""

import errno
import json
import os
import sys
import threading
import time
from pathlib import Path

from edgecnn.errors import DeviceError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # EFBIG: a file size limit (ulimit -f)
PENDING_MAX = 256 * 1024  # bytes of events kept in memory while the disk is full (the newest)
# status events that count as the board's last error (status page, `edgecnn fleet status`)
TROUBLE = ("error", "bundle_rejected", "degraded", "hung", "disk_full", "source_lost", "write_error")


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
    it live); a file at most every ``flush_s`` seconds, and on close. ``on_trouble(event)`` receives
    ``disk_full`` / ``events_resumed`` status events (the run loop counts them for the status page).

    Why not ``logging.handlers.RotatingFileHandler`` (issue 14; tried on Python 3.11 against what
    tests/device/test_outputs.py and test_field_disk_full.py check):

    - with ``backupCount=0`` it never rotates, so the file grows past ``maxBytes`` (1000 -> 3190 bytes
      in the probe); here it starts again from empty;
    - it writes through a buffered text stream: a write that fails part-way (ENOSPC, or EFBIG under
      ``ulimit -f``) leaves a cut line in the file while the disk stays full, keeps the rest in the
      buffer, and ``close()`` raises OSError; here the file is cut back to its last whole line at once
      (``os.ftruncate`` to the size of the whole lines, which the stream does not track);
    - a failed write goes to ``Handler.handleError`` (a "--- Logging error ---" traceback on stderr, the
      errno dropped), while here it is one ``disk_full`` / ``write_error`` warning, counted drops, a
      bounded queue retried every ``retry_s``, and an ``events_resumed`` line;
    - it flushes every record (here at most every ``flush_s``: fewer writes to an SD card), and it
      cannot delete its own oldest rotated files to make room before dropping events.

    Fixing these means overriding ``_open``, ``emit``, ``handleError`` and ``doRollover``, leaving only
    ``shouldRollover``'s size comparison from the standard library, so the rotation stays here.
    """

    def __init__(self, path=None, max_bytes=10 * 1024 * 1024, backups=3, stream=None, flush_s=0.2, retry_s=1.0,
                 on_trouble=None):
        self.path = Path(path) if path else None
        self.max_bytes, self.backups = int(max_bytes), int(backups)
        self._lock = threading.Lock()
        self._stream = stream
        self._fd = None
        self._size = 0            # bytes of whole lines in the current file
        self._pending = []        # encoded lines not yet written
        self._pending_bytes = 0
        self.flush_s, self._flushed = float(flush_s), 0.0
        self.retry_s, self._retry_at = float(retry_s), 0.0
        self.on_trouble = on_trouble or (lambda event: None)
        self.stats = {"state": "ok", "written": 0, "dropped": 0, "error": None}
        if self.path:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._open()
            except OSError as exc:
                if exc.errno not in DISK_FULL:
                    raise DeviceError(f"cannot write --events file '{self.path}' ({exc.strerror or exc}). Give a "
                                      "path in a folder this user can write.") from None
                self._trouble(exc)  # a full disk at start: classify anyway, write once there is room

    def _open(self):
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size

    def write(self, event: dict):
        line = json.dumps(event, default=_default) + "\n"
        with self._lock:
            if self.path is None:
                self._write_stream(line)
                return
            self._pending.append(line.encode("utf-8"))
            self._pending_bytes += len(self._pending[-1])
            now = time.monotonic()
            if self.stats["state"] != "ok":
                self._bound_pending()
                if now >= self._retry_at:
                    self._flush()
            elif now - self._flushed >= self.flush_s:  # a file is flushed at most every flush_s
                self._flush()
                self._flushed = now

    def _write_stream(self, line):
        stream = self._stream or sys.stdout
        try:
            stream.write(line)
            stream.flush()
            self.stats["written"] += 1
        except OSError as exc:  # stdout redirected to a full disk, or a closed pipe: classifying goes on
            self.stats["dropped"] += 1
            if self.stats["state"] == "ok":
                self._trouble(exc)

    def _bound_pending(self):
        while self._pending_bytes > PENDING_MAX and len(self._pending) > 1:
            self._pending_bytes -= len(self._pending.pop(0))
            self.stats["dropped"] += 1

    def _flush(self):
        """Write the pending lines (rotating at the size bound); on a failure keep the file whole."""
        if not self._pending:
            return
        try:
            if self._fd is None:
                self._open()
            if self.stats["state"] != "ok":  # the first line after a failure says what was lost
                self._write_line(json.dumps({"event": "events_resumed", "time": round(time.time(), 3),
                                             "dropped": self.stats["dropped"], "after": self.stats["error"]}) + "\n")
                self._resumed()
            while self._pending:
                self._write_line(self._pending[0])
                self._pending_bytes -= len(self._pending.pop(0))
                self.stats["written"] += 1
        except OSError as exc:
            self._cut_back()
            if exc.errno in DISK_FULL and self._free_backups():
                return self._flush()  # our own old events made room for the new ones
            self._trouble(exc)
            self._bound_pending()

    def _write_line(self, line):
        line = line if isinstance(line, bytes) else line.encode("utf-8")
        if self._size + len(line) > self.max_bytes and self._size > 0:
            self._rotate()
        _write_all(self._fd, line)
        self._size += len(line)

    def _resumed(self):
        dropped = self.stats["dropped"]
        self.stats.update(state="ok", error=None)
        print(f"edgecnn run: writing events to '{self.path}' again ({dropped} events dropped in all)", file=sys.stderr,
              flush=True)
        self.on_trouble({"event": "events_resumed", "dropped": dropped})

    def _cut_back(self):
        # a partly written line would make the file invalid JSON lines: truncating needs no space
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass

    def _free_backups(self) -> bool:
        """Delete the oldest rotated file; True if one was deleted."""
        for i in range(self.backups, 0, -1):
            old = self.path.with_name(f"{self.path.name}.{i}")
            if old.exists():
                try:
                    old.unlink()
                    return True
                except OSError:
                    return False
        return False

    def _trouble(self, exc):
        self._retry_at = time.monotonic() + self.retry_s
        first = self.stats["state"] == "ok"
        state = "disk_full" if exc.errno in DISK_FULL else "write_error"
        self.stats.update(state=state, error=f"{state}: {exc.strerror or exc}")
        if first:
            where = f"'{self.path}'" if self.path else "the event stream"
            print(f"edgecnn run: warning: {state}: cannot write events to {where} ({exc.strerror or exc}); "
                  "classifying goes on, events are dropped (and counted) until it can write again",
                  file=sys.stderr, flush=True)
            self.on_trouble({"event": state, "error": exc.strerror or str(exc), "events": str(self.path or "stream")})

    def _rotate(self):
        os.close(self._fd)
        self._fd = None
        for i in range(self.backups, 0, -1):
            src = self.path if i == 1 else self.path.with_name(f"{self.path.name}.{i - 1}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i}"))
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = 0

    def close(self):
        """Write what is pending (once more, if the disk has room again) and close; never raises."""
        with self._lock:
            if self.path is not None:
                self._retry_at = 0.0
                self._flush()
                self.stats["dropped"] += len(self._pending)
                self._pending, self._pending_bytes = [], 0
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _write_all(fd, data: bytes):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
