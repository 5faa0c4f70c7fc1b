"""``--watch-bundle``: replace the running bundle only with one that loads and passes its self-test.

A watcher thread polls the bundle folder's files (name, size, mtime). When they change and then
stay unchanged for one more poll (a copy has settled), it runs the self-test in a child process
(a corrupt model can crash only that child), then loads the new engine in this process. Only a
fully loaded engine is handed to the run loop, which swaps it in between two frames; on any
failure a ``bundle_rejected`` event is emitted and the old bundle keeps running.
"""

import os
import threading
from pathlib import Path

from edgecnn.devices.selftest import self_test_subprocess


def bundle_signature(bundle_dir):
    """A cheap fingerprint of a folder's files; None when it does not exist."""
    bundle_dir = Path(bundle_dir)
    try:
        stat = bundle_dir.stat()
        entries = []
        for root, _, files in os.walk(bundle_dir):
            for name in files:
                st = os.stat(os.path.join(root, name))
                entries.append((os.path.relpath(os.path.join(root, name), bundle_dir), st.st_size, st.st_mtime_ns))
    except OSError:
        return None
    return stat.st_ino, tuple(sorted(entries))


class BundleWatcher:
    """Args:
        bundle_dir: the folder to watch.
        load: ``load() -> engine`` building the new engine (raises on failure).
        on_event: receives ``bundle_changed``, ``bundle_rejected`` and ``bundle_ready`` events.
    """

    def __init__(self, bundle_dir, load, on_event, interval_s=2.0, backend="auto", threads=None):
        self.bundle_dir, self.load, self.on_event = Path(bundle_dir), load, on_event
        self.interval_s, self.backend, self.threads = float(interval_s), backend, threads
        self.swaps = self.rejections = 0
        self._accepted = bundle_signature(bundle_dir)
        self._seen = self._accepted
        self._pending = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="edgecnn-bundle-watch", daemon=True)
        self._thread.start()

    def take(self):
        """The new engine if one is ready (once), else None."""
        with self._lock:
            engine, self._pending = self._pending, None
        if engine is not None:
            self.swaps += 1
        return engine

    def _watch(self):
        while not self._stop.wait(self.interval_s):
            signature = bundle_signature(self.bundle_dir)
            settled = signature == self._seen
            self._seen = signature
            if signature is None or signature == self._accepted or not settled:
                continue
            self._accepted = signature  # judged once; a later change is judged again
            self.on_event({"event": "bundle_changed", "bundle": str(self.bundle_dir)})
            report = self_test_subprocess(self.bundle_dir, self.backend, self.threads)
            if not report.get("ok"):
                self._reject("; ".join(report.get("errors") or ["self-test failed"]))
                continue
            try:
                engine = self.load()
            except Exception as exc:
                self._reject(str(exc))
                continue
            with self._lock:
                old, self._pending = self._pending, engine
            if old is not None:
                old.close()
            self.on_event({"event": "bundle_ready", "bundle": str(self.bundle_dir)})

    def _reject(self, reason):
        self.rejections += 1
        self.on_event({"event": "bundle_rejected", "bundle": str(self.bundle_dir), "reason": reason,
                       "keeping": "the running bundle"})

    def close(self, timeout=5.0):
        self._stop.set()
        self._thread.join(timeout)
