"""The run loop: frame source -> capture thread -> engine -> decision -> events, review, status.

:func:`run` is ``edgecnn run BUNDLE`` as a Python function, configured by a
:class:`~edgecnn.devices.options.RunOptions` (or keyword arguments of the same names). It returns a
summary when the source ends (replay, or ``exit_on_source_end``), after ``max_frames`` /
``duration_s``, or on SIGTERM or SIGINT. Status events (``degraded``, ``source_lost``,
``bundle_rejected``...) go to the same event stream as the per-frame events.
"""

import logging
import signal
import threading
import time

from edgecnn.devices.capture import Capture
from edgecnn.devices.engine import Engine, release_memory
from edgecnn.devices.events import EventWriter, frame_event
from edgecnn.devices.notify import Notifier
from edgecnn.devices.options import RunOptions
from edgecnn.devices.sources import open_source, source_kind
from edgecnn.devices.status_http import Stats
from edgecnn.errors import DeviceError

log = logging.getLogger("edgecnn.devices.app")


def gui_available() -> bool:
    """True when this OpenCV build can open windows (opencv-python-headless cannot)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() != "NONE"
    return True


def _check_show():
    if not gui_available():
        raise DeviceError("--show needs an OpenCV build with GUI support, and this one is headless "
                          "(opencv-python-headless has no windows). Install `opencv-python` instead of "
                          "`opencv-python-headless` in this venv (and run on a desktop session), or use "
                          "--http PORT to watch the status from a browser.")


def _overlay(image, event):
    import cv2

    text = f"{event['label']} {event['score']:.2f} ({event['latency_ms']:.0f} ms)"
    out = image.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 28), (0, 0, 0), -1)
    colour = (0, 200, 255) if event["label"] == "unknown" else (80, 255, 80)
    cv2.putText(out, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 1, cv2.LINE_AA)
    return out


def run(bundle_dir, source, options: RunOptions = None, **overrides) -> dict:
    """Classify frames from ``source`` with the bundle until stopped; return a summary dict.

    Args:
        bundle_dir: the bundle folder (sha256 checked before anything runs).
        source: camera index, video file, RTSP/HTTP URL, image folder, or ``picamera2``; or a callable
            returning a source object (``read()``, ``release()``, ``live``) for embedding.
        options: a :class:`RunOptions` (default: its defaults).
        **overrides: RunOptions fields by name, e.g. ``run(bundle, "0", events="e.jsonl", max_frames=100)``.
    """
    opts = RunOptions.of(options, **overrides)
    if opts.show:
        _check_show()
    loop = _Loop(bundle_dir, source, opts)
    try:
        loop.start()
        loop.classify_until_stopped()
    finally:
        summary = loop.close()
    return summary


def _mode(mode: str, source) -> str:
    """``auto``: replay for files and folders, live for cameras, streams and callables."""
    if mode != "auto":
        return mode
    return "replay" if not callable(source) and source_kind(source) in ("file", "folder") else "live"


class _Loop:
    """One run's parts. Built in order (events, engine, source, capture, review, status server, bundle
    watcher), each failing clearly before any thread starts; what was built is closed again then."""

    def __init__(self, bundle_dir, source, opts: RunOptions):
        self.bundle_dir, self.source, self.opts = bundle_dir, source, opts
        self.mode = _mode(opts.mode, source)
        self.stop = opts.stop_event or threading.Event()
        self.stats = Stats()
        self.writer = EventWriter(opts.events, max_bytes=int(opts.events_max_mb * 1024 * 1024),
                                  backups=opts.events_backups, stream=opts.event_stream,
                                  on_trouble=self.stats.status_event)
        self.stats.extra["event_log"] = self.writer.stats  # live: disk_full and the events dropped on the status page
        self.engine = self.capture = self.review = self.server = self.watcher = None
        self.frames = self.errors = 0
        self.ended_by = "stop"  # SIGTERM/SIGINT, stop_event, or q in the --show window
        self._previous_handlers = {}
        first = []  # the source opened here, handed to the capture thread's first open
        try:
            self.engine = self.load_engine()
            open_ = source if callable(source) else lambda: open_source(source)
            first.append(open_())  # a wrong path fails here, clearly, before any thread starts
            self.capture = Capture(lambda: first.pop() if first else open_(), mode=self.mode, stall_s=opts.stall_s,
                                   repeat_limit=opts.repeat_limit, exit_on_end=opts.exit_on_source_end,
                                   on_event=self.emit_status,
                                   prepare=lambda image: self.engine.prepare(image),  # whichever engine is current
                                   max_fps=opts.max_fps)
            self._open_outputs()  # a bad --review-dir or --http fails here
        except BaseException:
            for unused in first:
                unused.release()
            if self.engine is not None:
                self.engine.close()
            self.writer.close()
            raise
        if opts.watch_bundle:
            from edgecnn.devices.hotswap import BundleWatcher

            self.watcher = BundleWatcher(bundle_dir, self.load_engine, self.emit_status, opts.watch_interval_s,
                                         opts.backend, opts.threads, loaded=self.engine.bundle_dir)
        self.notifier = Notifier()

    def load_engine(self, folder=None) -> Engine:
        """The engine of ``folder`` (default: the folder BUNDLE names now, a symlink resolved)."""
        from edgecnn.devices.hotswap import resolve

        o = self.opts
        return Engine(folder or resolve(self.bundle_dir), o.backend, o.threads, edgetpu=o.edgetpu, on_event=self.emit_status,
                      tpu_retry_s=o.tpu_retry_s, invoke_limit_s=o.invoke_limit_s)

    def emit_status(self, event):
        event = {"event": event["event"], "time": round(time.time(), 3), **event}
        self.stats.status_event(event)
        self.writer.write(event)

    def _open_outputs(self):
        if self.opts.review_dir:
            from edgecnn.devices.review import ReviewStore

            self.review = ReviewStore(self.opts.review_dir, self.opts.review_quota_mb)
        if self.opts.http_port is not None:
            from edgecnn.devices.status_http import StatusServer

            self.server = StatusServer(self.stats, self.opts.http_port, self.opts.http_host)

    def start(self):
        """Signal handlers, the ``started`` event, the capture thread, and READY to systemd."""
        if self.opts.install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous_handlers[sig] = signal.signal(sig, lambda signum, _frame: self.stop.set())
        self.stats.extra["engine"] = self.engine.describe()
        self.stats.extra["capture"] = self.capture.stats  # live counters: frames, dropped, reconnects, stalls
        http = {"http": self.server.url} if self.server else {}
        self.stats.extra.update(http)
        self.emit_status({"event": "started", **self.engine.describe(),
                          "source": getattr(self.source, "__name__", str(self.source)), "mode": self.mode, **http})
        self.capture.start()
        self.notifier.ready()

    def classify_until_stopped(self):
        started = time.monotonic()
        while not self.stop.is_set():
            if self._limit_reached(started):
                self.ended_by = "limit"
                return
            self._swap_if_ready()
            self.engine.maybe_retry_tpu()
            frame = self.capture.get(timeout=0.2)
            if frame is not None:
                self._classify(frame)
            elif self.capture.finished:
                self.ended_by = "source_end"
                return

    def _limit_reached(self, started) -> bool:
        o = self.opts
        return (o.max_frames is not None and self.frames >= o.max_frames) or \
            (o.duration_s is not None and time.monotonic() - started >= o.duration_s)

    def _swap_if_ready(self):
        new = self.watcher.take() if self.watcher is not None else None
        if new is not None:
            self.engine.close()
            self.engine = new  # the capture thread now prepares frames for the new engine
            release_memory()
            self.stats.extra["engine"] = self.engine.describe()
            self.stats.bundle_swapped()
            self.emit_status({"event": "bundle_swapped", **self.engine.describe()})

    def _classify(self, frame):
        """One frame: decision, event, status, systemd watchdog, review, window."""
        t0 = time.perf_counter()
        try:
            label, score, decision = self.engine.classify(frame.image, frame.prepared)
        except (RuntimeError, ValueError) as exc:
            self.errors += 1
            self.emit_status({"event": "error", "frame": frame.id, "error": str(exc).strip().splitlines()[0]})
            return
        latency_ms = (time.perf_counter() - t0) * 1000.0
        event = frame_event(frame.id, label, score, latency_ms, self.engine.decided_by(decision), decision.reason,
                            captured=frame.time, device=self.engine.primary.device)
        self.writer.write(event)
        self.stats.frame(event)
        self.frames += 1
        self.notifier.frame()
        if self.review is not None and decision.reason is not None:
            self.review.save(frame.image, event)
        if self.opts.show:
            import cv2

            cv2.imshow("edgecnn", _overlay(frame.image, event))
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                self.stop.set()

    def close(self) -> dict:
        """Stop every thread, restore the signal handlers, close everything; return the summary."""
        self.notifier.stopping()
        self.capture.stop()
        if self.watcher is not None:
            self.watcher.close()
        if self.server is not None:
            self.server.close()
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        if self.opts.show:
            import cv2

            cv2.destroyAllWindows()
        summary = self._summary()
        self.engine.close()
        self.writer.close()
        return summary

    def _summary(self) -> dict:
        summary = self.stats.snapshot()
        summary.update({"capture": dict(self.capture.stats), "errors": self.errors, "engine": self.engine.describe(),
                        "ended_by": self.ended_by})
        if self.review is not None:
            summary["review"] = self.review.stats()
        if self.watcher is not None:
            summary["bundle_swaps"], summary["bundle_rejections"] = self.watcher.swaps, self.watcher.rejections
        return summary
