"""``--watch-bundle``: replace the running bundle only with one that loads and passes its self-test.

A watcher thread polls the bundle folder's files (name, size, mtime). When they change and then
stay unchanged for one more poll (a copy has settled), it runs the self-test in a child process
(a corrupt model can crash only that child), then loads the new engine in this process. Only a
fully loaded engine is handed to the run loop, which swaps it in between two frames; on any
failure a ``bundle_rejected`` event is emitted and the old bundle keeps running.

The folder may be a symlink (``ROOT/current`` of a deployed board, switched by renaming a new link
over it): each poll resolves it, so a switch is a change, and the bundle tested and loaded is the
folder the link named at that poll, even if it is switched again meanwhile.
"""

import os
import threading
from pathlib import Path

from edgecnn.bundle.manifest import MANIFEST, sha256_file
from edgecnn.devices.selftest import self_test_subprocess


def resolve(bundle_dir) -> Path:
    """The folder a symlink names at this moment; any other path as given."""
    bundle_dir = Path(bundle_dir)
    return Path(os.path.realpath(bundle_dir)) if bundle_dir.is_symlink() else bundle_dir


def _sha(bundle_dir):
    try:
        return sha256_file(Path(bundle_dir) / MANIFEST)
    except OSError:
        return None


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
        bundle_dir: the folder (or symlink to one) to watch.
        load: ``load(folder) -> engine`` building the new engine from that folder (raises on failure).
        loaded: the folder the running engine was loaded from (default: what ``bundle_dir`` names now).
        on_event: receives ``bundle_changed``, ``bundle_rejected`` and ``bundle_ready`` events.
    """

    def __init__(self, bundle_dir, load, on_event, interval_s=2.0, backend="auto", threads=None, loaded=None):
        self.bundle_dir, self.load, self.on_event = Path(bundle_dir), load, on_event
        self.interval_s, self.backend, self.threads = float(interval_s), backend, threads
        self.swaps = self.rejections = 0
        self._accepted = bundle_signature(loaded or resolve(bundle_dir))
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
            folder = resolve(self.bundle_dir)
            signature = bundle_signature(folder)
            settled = signature == self._seen
            self._seen = signature
            if signature is None or signature == self._accepted or not settled:
                continue
            self._accepted = signature  # judged once; a later change is judged again
            self.on_event({"event": "bundle_changed", "bundle": str(folder), "sha256": _sha(folder)})
            report = self_test_subprocess(folder, self.backend, self.threads)
            if not report.get("ok"):
                self._reject(folder, "; ".join(report.get("errors") or ["self-test failed"]))
                continue
            try:
                engine = self.load(folder)
            except Exception as exc:
                self._reject(folder, str(exc))
                continue
            with self._lock:
                old, self._pending = self._pending, engine
            if old is not None:
                old.close()
            self.on_event({"event": "bundle_ready", "bundle": str(folder), "sha256": engine.sha256})

    def _reject(self, folder, reason):
        self.rejections += 1
        self.on_event({"event": "bundle_rejected", "bundle": str(folder), "sha256": _sha(folder), "reason": reason,
                       "keeping": "the running bundle"})

    def close(self, timeout=5.0):
        self._stop.set()
        self._thread.join(timeout)
