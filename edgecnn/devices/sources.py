"""Frame sources: a camera index, a video file, an RTSP/HTTP URL, an image folder, or picamera2.

Every source has ``read() -> BGR uint8 frame or None`` (None: ended or failed), ``release()``,
``live`` (frames arrive in real time and may be dropped), ``name``, and ``bad_frames`` with
``last_bad``: how many frames or files were skipped because they could not (or must not) be
decoded, and why the last one was. A field video with one corrupt frame plays on past it; only a
run of ``MAX_BAD_RUN`` undecodable frames in a row ends it.
"""

import os
from pathlib import Path

from edgecnn.devices.imageio import opencv_path, read_image
from edgecnn.errors import DeviceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
MAX_BAD_RUN = 25  # undecodable frames in a row after which a video file is taken as ended


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

    def __init__(self, spec, kind, max_bad_run=MAX_BAD_RUN):
        import cv2

        self.name, self.kind = str(spec), kind
        self.live = kind in ("camera", "url")
        self.bad_frames, self.last_bad, self.max_bad_run = 0, None, int(max_bad_run)
        self._fd = None
        target = int(spec) if kind == "camera" else str(spec)
        if kind == "file":
            if not Path(target).is_file():
                raise DeviceError(f"video file '{target}' does not exist.")
            target, self._fd = opencv_path(target)
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self.release()
            hint = {"camera": "is a camera connected, and is the user in the 'video' group?",
                    "url": "is the stream reachable from this board?",
                    "file": "is it a video OpenCV can decode?"}[kind]
            raise DeviceError(f"cannot open {kind} source '{spec}': {hint}")

    def read(self):
        failed = 0
        while True:
            ok, frame = self._cap.read()
            if ok and frame is not None:
                self._count_bad(failed, decoded=True)
                return frame
            failed += 1
            # a camera or stream that fails is reopened by the capture; a file may hold a corrupt frame
            if self.kind != "file" or self._at_end():
                return None
            if failed >= self.max_bad_run:
                self._count_bad(failed, decoded=False)
                self.last_bad += f"; {failed} in a row: the rest of the file is not read"
                return None

    def _count_bad(self, failed, decoded):
        if failed:
            import cv2

            # frame numbers from 0, in the file: decoded frames before the run plus those skipped earlier
            first = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) - int(decoded) + self.bad_frames
            self.bad_frames += failed
            which = f"frame {first}" if failed == 1 else f"frames {first}-{first + failed - 1}"
            self.last_bad = f"{which} of '{self.name}' cannot be decoded: skipped"

    def _at_end(self):
        import cv2

        # OpenCV's position counts decoded frames only, so the frames skipped so far are added back
        total = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)  # 0 or less when the container does not say
        return total > 0 and self._cap.get(cv2.CAP_PROP_POS_FRAMES) + self.bad_frames >= total

    def release(self):
        if getattr(self, "_cap", None) is not None:
            self._cap.release()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class FolderSource:
    """Images of a folder in sorted name order (replays), or one image file; unreadable files and
    decompression bombs are skipped and counted (:func:`edgecnn.devices.imageio.read_image`)."""

    live = False
    kind = "folder"

    def __init__(self, folder):
        self.name = str(folder)
        if Path(folder).is_file():  # one photo: decoded here, with the pixel cap, not by VideoCapture
            self.files = [Path(folder)]
        else:
            self.files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise DeviceError(f"folder '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        self._next = 0
        self.skipped = []
        self.bad_frames, self.last_bad = 0, None

    def read(self):
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            try:
                return read_image(path)
            except DeviceError as exc:
                self.skipped.append(path.name)
                self.bad_frames, self.last_bad = self.bad_frames + 1, str(exc)
        return None

    def release(self):
        self._next = len(self.files)


class Picamera2Source:
    """The Raspberry Pi camera through picamera2 (optional import). Spec: ``picamera2[:WxH]``."""

    live = True
    kind = "picamera2"

    def __init__(self, spec="picamera2"):
        self.name = str(spec)
        width, height = 640, 480
        if ":" in self.name:
            try:
                width, height = (int(v) for v in self.name.split(":", 1)[1].lower().split("x"))
            except ValueError:
                raise DeviceError(f"source '{self.name}' is not picamera2[:WIDTHxHEIGHT] (for example "
                                  "picamera2:640x480).") from None
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise DeviceError("source 'picamera2' needs the picamera2 package: on Raspberry Pi OS "
                              "`sudo apt install python3-picamera2` (and create the venv with "
                              "--system-site-packages).") from None
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
    if kind == "folder" or (kind == "file" and Path(str(spec)).suffix.lower() in IMAGE_SUFFIXES
                            and Path(str(spec)).is_file()):
        return FolderSource(spec)
    if kind == "picamera2":
        return Picamera2Source(spec)
    return OpenCVSource(spec, kind)
