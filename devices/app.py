"""The run loop: frame source -> capture thread -> engine -> decision -> events, review, status.

:func:`run` is ``edgecnn run BUNDLE`` as a Python function. It returns a summary when the source
ends (replay, or ``exit_on_source_end``), after ``max_frames`` / ``duration_s``, or on SIGTERM or
SIGINT. Status events (``degraded``, ``source_lost``, ``bundle_rejected``...) go to the same
event stream as the per-frame events.
"""

import logging
import signal
import threading
import time

from edgecnn.devices.capture import Capture
from edgecnn.devices.engine import Engine, release_memory
from edgecnn.devices.events import EventWriter, frame_event
from edgecnn.devices.notify import Notifier
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


def run(bundle_dir, source, backend="auto", threads=None, edgetpu=False, mode="auto", events=None,
        events_max_mb=10.0, events_backups=3, review_dir=None, review_quota_mb=100.0, show=False,
        http_port=None, http_host="127.0.0.1", exit_on_source_end=False, max_frames=None, duration_s=None,
        watch_bundle=False, watch_interval_s=2.0, stall_s=5.0, repeat_limit=100, tpu_retry_s=60.0,
        invoke_limit_s=5.0, stop_event=None, install_signals=True, event_stream=None) -> dict:
    """Classify frames from ``source`` with the bundle until stopped; return a summary dict.

    Args:
        bundle_dir: the bundle folder (sha256 checked before anything runs).
        source: camera index, video file, RTSP/HTTP URL, image folder, or ``picamera2``; or a callable
            returning a source object (``read()``, ``release()``, ``live``) for embedding.
        mode: ``live`` (keep only the latest frame), ``replay`` (every frame in order) or ``auto``
            (replay for files and folders, live otherwise).
        events: JSON-lines file (rotated at ``events_max_mb``, ``events_backups`` kept); stdout if None.
        review_dir, review_quota_mb: save uncertain frames (JPEG + JSON) within a quota.
        show: display a window with the label (needs an OpenCV with GUI support).
        http_port: serve the status as JSON on ``http_host:http_port`` (0 picks a free port).
        watch_bundle: hot-swap the bundle when it changes, after it passes a self-test.
        stop_event: a threading.Event that stops the loop (for embedding); SIGTERM/SIGINT also stop it.
    """
    if show:
        _check_show()
    for name, value in (("duration_s", duration_s), ("max_frames", max_frames)):
        if value is not None and not value > 0:
            raise DeviceError(f"{name} is {value}; give a number above 0 (or None for no limit).")
    if mode == "auto":
        mode = "replay" if not callable(source) and source_kind(source) in ("file", "folder") else "live"
    stop = stop_event or threading.Event()
    stats = Stats()
    writer = EventWriter(events, max_bytes=int(events_max_mb * 1024 * 1024), backups=events_backups,
                         stream=event_stream, on_trouble=stats.status_event)
    stats.extra["event_log"] = writer.stats  # live: disk_full and the events dropped show on the status page

    def emit_status(event):
        event = {"event": event["event"], "time": round(time.time(), 3), **event}
        stats.status_event(event)
        writer.write(event)

    def load_engine():
        return Engine(bundle_dir, backend, threads, edgetpu=edgetpu, on_event=emit_status,
                      tpu_retry_s=tpu_retry_s, invoke_limit_s=invoke_limit_s)

    engine = load_engine()
    open_ = source if callable(source) else lambda: open_source(source)
    try:
        first = [open_()]  # a wrong path fails here, clearly, before any thread starts
    except BaseException:
        engine.close()
        writer.close()
        raise

    def opener():
        return first.pop() if first else open_()

    current = [engine]  # the capture thread preprocesses for whichever engine is current
    capture = Capture(opener, mode=mode, stall_s=stall_s, repeat_limit=repeat_limit,
                      exit_on_end=exit_on_source_end, on_event=emit_status,
                      prepare=lambda image: current[0].prepare(image))
    review = server = watcher = None
    try:  # a bad --review-dir or --http fails here, clearly, before any thread starts
        if review_dir:
            from edgecnn.devices.review import ReviewStore

            review = ReviewStore(review_dir, review_quota_mb)
        if http_port is not None:
            from edgecnn.devices.status_http import StatusServer

            server = StatusServer(stats, http_port, http_host)
    except BaseException:
        for source in first:
            source.release()
        engine.close()
        writer.close()
        raise
    if watch_bundle:
        from edgecnn.devices.hotswap import BundleWatcher

        watcher = BundleWatcher(bundle_dir, load_engine, emit_status, watch_interval_s, backend, threads)
    notifier = Notifier()
    previous_handlers = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous_handlers[sig] = signal.signal(sig, lambda signum, _frame: stop.set())

    stats.extra["engine"] = engine.describe()
    stats.extra["capture"] = capture.stats  # live counters: frames, dropped, reconnects, stalls
    if server is not None:
        stats.extra["http"] = server.url
    emit_status({"event": "started", **engine.describe(), "source": getattr(source, "__name__", str(source)),
                 "mode": mode, **({"http": server.url} if server else {})})
    capture.start()
    notifier.ready()
    started = time.monotonic()
    frames = errors = 0
    ended_by = "stop"  # SIGTERM/SIGINT, stop_event, or q in the --show window
    try:
        while not stop.is_set():
            if (max_frames is not None and frames >= max_frames) or \
                    (duration_s is not None and time.monotonic() - started >= duration_s):
                ended_by = "limit"
                break
            if watcher is not None:
                new = watcher.take()
                if new is not None:
                    engine.close()
                    engine = current[0] = new
                    release_memory()
                    stats.extra["engine"] = engine.describe()
                    emit_status({"event": "bundle_swapped", **engine.describe()})
            engine.maybe_retry_tpu()
            frame = capture.get(timeout=0.2)
            if frame is None:
                if capture.finished:
                    ended_by = "source_end"
                    break
                continue
            t0 = time.perf_counter()
            try:
                label, score, decision = engine.classify(frame.image, frame.prepared)
            except (RuntimeError, ValueError) as exc:
                errors += 1
                emit_status({"event": "error", "frame": frame.id, "error": str(exc).strip().splitlines()[0]})
                continue
            latency_ms = (time.perf_counter() - t0) * 1000.0
            event = frame_event(frame.id, label, score, latency_ms, engine.decided_by(decision), decision.reason,
                                captured=frame.time, device=engine.primary.device)
            writer.write(event)
            stats.frame(event)
            frames += 1
            notifier.frame()
            if review is not None and decision.reason is not None:
                review.save(frame.image, event)
            if show:
                import cv2

                cv2.imshow("edgecnn", _overlay(frame.image, event))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    stop.set()
    finally:
        notifier.stopping()
        capture.stop()
        if watcher is not None:
            watcher.close()
        if server is not None:
            server.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        if show:
            import cv2

            cv2.destroyAllWindows()
        summary = stats.snapshot()
        summary.update({"capture": dict(capture.stats), "errors": errors, "engine": engine.describe(),
                        "ended_by": ended_by})
        if review is not None:
            summary["review"] = review.stats()
        if watcher is not None:
            summary["bundle_swaps"], summary["bundle_rejections"] = watcher.swaps, watcher.rejections
        engine.close()
        writer.close()
    return summary
