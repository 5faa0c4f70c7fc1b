"""Frame sources: a camera index, a video file, an RTSP/HTTP URL, an image folder, or picamera2.

Every source has ``read() -> BGR uint8 frame or None`` (None: ended or failed), ``release()``,
``live`` (frames arrive in real time and may be dropped) and ``name``.
"""

import os
from pathlib import Path

from edgecnn.errors import DeviceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


def source_kind(spec) -> str:
    """``camera``, ``url``, ``folder``, ``file`` or ``picamera2`` for a source string or int."""
    text = str(spec)
    if text.isdigit():
        return "camera"
    if text.lower().startswith("picamera2"):
        return "picamera2"
    if text.lower().startswith(URL_SCHEMES):
        return "url"
    if os.path.isdir(text):
        return "folder"
    return "file"


class OpenCVSource:
    """cv2.VideoCapture on a camera index, a file or a URL."""

    def __init__(self, spec, kind):
        import cv2

        self.name, self.kind = str(spec), kind
        self.live = kind in ("camera", "url")
        target = int(spec) if kind == "camera" else str(spec)
        if kind == "file" and not Path(target).is_file():
            raise DeviceError(f"video file '{target}' does not exist.")
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            hint = {"camera": "is a camera connected, and is the user in the 'video' group?",
                    "url": "is the stream reachable from this board?",
                    "file": "is it a video OpenCV can decode?"}[kind]
            raise DeviceError(f"cannot open {kind} source '{spec}': {hint}")

    def read(self):
        ok, frame = self._cap.read()
        return frame if ok and frame is not None else None

    def release(self):
        self._cap.release()


class FolderSource:
    """Images of a folder in sorted name order (replays); unreadable files are skipped."""

    live = False
    kind = "folder"

    def __init__(self, folder):
        self.name = str(folder)
        self.files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise DeviceError(f"folder '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        self._next = 0
        self.skipped = []

    def read(self):
        import cv2

        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                return frame
            self.skipped.append(path.name)
        return None

    def release(self):
        self._next = len(self.files)


class Picamera2Source:
    """The Raspberry Pi camera through picamera2 (optional import). Spec: ``picamera2[:WxH]``."""

    live = True
    kind = "picamera2"

    def __init__(self, spec="picamera2"):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise DeviceError("source 'picamera2' needs the picamera2 package: on Raspberry Pi OS "
                              "`sudo apt install python3-picamera2` (and create the venv with "
                              "--system-site-packages).") from None
        self.name = str(spec)
        width, height = 640, 480
        if ":" in self.name:
            width, height = (int(v) for v in self.name.split(":", 1)[1].lower().split("x"))
        self._cam = Picamera2()
        # picamera2's "RGB888" is stored [B, G, R] per pixel: OpenCV's BGR layout, like the other sources.
        self._cam.configure(self._cam.create_video_configuration(main={"size": (width, height),
                                                                       "format": "RGB888"}))
        self._cam.start()

    def read(self):
        return self._cam.capture_array()

    def release(self):
        self._cam.stop()
        self._cam.close()


def open_source(spec):
    """Open a frame source from a CLI string (or int); raises DeviceError when it cannot."""
    kind = source_kind(spec)
    if kind == "folder":
        return FolderSource(spec)
    if kind == "picamera2":
        return Picamera2Source(spec)
    return OpenCVSource(spec, kind)
