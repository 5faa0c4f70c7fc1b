"""Uncertain frames saved for later labelling: JPEG plus a JSON sidecar, within a disk quota.

Oldest pairs are deleted first once the folder passes its quota. A full disk or any write error
is logged and counted, never fatal: the run loop must keep going.
"""

import json
import logging
import os
from pathlib import Path

from edgecnn.atomic import write_bytes, write_text
from edgecnn.errors import DeviceError

log = logging.getLogger("edgecnn.devices.review")


class ReviewStore:
    def __init__(self, folder, quota_mb=100.0, jpeg_quality=90):
        self.folder = Path(folder)
        self.quota_bytes = int(float(quota_mb) * 1024 * 1024)
        self.jpeg_quality = int(jpeg_quality)
        self.saved = self.deleted = self.errors = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._entries = self._scan()   # [(stem, bytes)] oldest first
        except OSError as exc:
            raise DeviceError(f"cannot use --review-dir '{self.folder}' ({exc.strerror or exc}). Give a folder this "
                              "user can create and write.") from None
        self._bytes = sum(size for _, size in self._entries)

    def _scan(self):
        sizes = {}
        for path in self.folder.iterdir():
            if path.suffix in (".jpg", ".json") and not path.name.startswith("."):
                sizes[path.stem] = sizes.get(path.stem, 0) + path.stat().st_size
        return sorted(sizes.items())

    def save(self, frame_bgr, event: dict):
        """Save one frame and its event; returns the JPEG path, or None when it could not."""
        import cv2

        stem = f"{int(event.get('time', 0) * 1000):015d}_{int(event.get('frame', 0)):09d}"
        try:
            ok, jpeg = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise OSError("cv2.imencode failed")
            sidecar = json.dumps(event, default=str, indent=1) + "\n"
            size = len(jpeg) + len(sidecar.encode())
            self._make_room(size)
            write_bytes(self.folder / f"{stem}.jpg", jpeg.tobytes())
            write_text(self.folder / f"{stem}.json", sidecar)
        except OSError as exc:
            self.errors += 1
            log.warning("review: cannot save frame %s in %s (%s); carrying on", event.get("frame"), self.folder, exc)
            return None
        self._entries.append((stem, size))
        self._bytes += size
        self.saved += 1
        return self.folder / f"{stem}.jpg"

    def _make_room(self, size):
        while self._entries and self._bytes + size > self.quota_bytes:
            stem, old = self._entries.pop(0)
            for suffix in (".jpg", ".json"):
                try:
                    os.unlink(self.folder / f"{stem}{suffix}")
                except FileNotFoundError:
                    pass
            self._bytes -= old
            self.deleted += 1

    def stats(self) -> dict:
        return {"saved": self.saved, "deleted": self.deleted, "errors": self.errors, "bytes": self._bytes,
                "quota_bytes": self.quota_bytes}
