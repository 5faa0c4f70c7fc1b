"""Run statistics and the JSON status endpoint (http.server in a thread, 127.0.0.1 by default)."""

import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from edgecnn.devices.events import TROUBLE
from edgecnn.errors import DeviceError


class Stats:
    """Counters of a run: fps, latency percentiles (last ``window`` frames), labels, fallback reasons."""

    def __init__(self, window=1000):
        self.started = time.monotonic()
        self.frames = 0
        self.labels = collections.Counter()
        self.reasons = collections.Counter()
        self.models = collections.Counter()
        self.events = collections.Counter()
        self.latencies = collections.deque(maxlen=window)
        self.stamps = collections.deque(maxlen=window)
        self.degraded = None
        self.bundle_since = 0  # frames counted before the running bundle was swapped in
        self.last_error = self.rejected = None
        self.extra = {}
        self._lock = threading.Lock()

    def frame(self, event: dict):
        with self._lock:
            self.frames += 1
            self.labels[event["label"]] += 1
            self.models[event["model"]] += 1
            if event.get("fallback_reason"):
                self.reasons[event["fallback_reason"]] += 1
            self.latencies.append(event["latency_ms"])
            self.stamps.append(time.monotonic())

    def status_event(self, event: dict):
        with self._lock:
            self.events[event["event"]] += 1
            if event["event"] == "degraded":
                self.degraded = event.get("reason")
            elif event["event"] == "recovered":
                self.degraded = None
            if event["event"] in TROUBLE:
                self.last_error = {"event": event["event"], "time": event.get("time"),
                                   "reason": event.get("reason") or event.get("error") or event.get("message")}
            if event["event"] == "bundle_rejected":
                self.rejected = {**self.last_error, "sha256": event.get("sha256")}

    def bundle_swapped(self):
        """Count the frames of the bundle swapped in from now (``frames_on_bundle``)."""
        with self._lock:
            self.bundle_since, self.rejected = self.frames, None

    def snapshot(self) -> dict:
        with self._lock:
            lat = np.asarray(self.latencies, dtype=np.float64)
            stamps = list(self.stamps)
            elapsed = time.monotonic() - self.started
            recent_fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] \
                else 0.0
            out = {
                "uptime_s": round(elapsed, 3),
                "frames": self.frames,
                "fps": round(recent_fps, 2),
                "fps_overall": round(self.frames / elapsed, 2) if elapsed > 0 else 0.0,
                "latency_ms": {f"p{q}": round(float(np.percentile(lat, q)), 3) if lat.size else None
                               for q in (50, 90, 99)},
                "labels": dict(self.labels),
                "fallback_reasons": dict(self.reasons),
                "models": dict(self.models),
                "events": dict(self.events),
                "degraded": self.degraded,
                "frames_on_bundle": self.frames - self.bundle_since,
                "last_error": self.last_error,
                "rejected": self.rejected,
            }
            out.update(self.extra)
            return out


class StatusServer:
    """``GET /`` or ``/status`` returns ``stats.snapshot()`` as JSON. ``port=0`` picks a free port."""

    def __init__(self, stats: Stats, port: int, host: str = "127.0.0.1"):
        snapshot = stats.snapshot

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] not in ("/", "/status", "/status.json"):
                    self.send_error(404, "use /status")
                    return
                body = json.dumps(snapshot()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep stdout for events
                pass

        try:
            self.server = ThreadingHTTPServer((host, int(port)), Handler)
        except OSError as exc:  # port in use, an address not on this board, a name that does not resolve
            why = exc.strerror or str(exc)
            raise DeviceError(f"cannot serve the status on {host}:{port} ({why}). Choose a free --http PORT (0 picks "
                              "one) and an --http-host of this board (127.0.0.1, or 0.0.0.0 for every "
                              "address).") from None
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="edgecnn-http", daemon=True)
        self._thread.start()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/status"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
