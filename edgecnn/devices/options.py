"""The options of the run loop (:func:`edgecnn.devices.app.run`, ``edgecnn run``): each default once.

The CLI builds a :class:`RunOptions` from its click options (whose defaults are read from here) and
passes it; Python callers pass one, or keyword arguments that become one. Standard library only.
"""

import threading
from dataclasses import dataclass, fields, replace
from typing import Any, Optional

from edgecnn.errors import DeviceError


@dataclass(frozen=True)
class RunOptions:
    """How ``edgecnn run`` classifies frames.

    Attributes:
        backend, threads: the interpreter (``auto``, ``litert``, ``tflite-runtime``, ``tensorflow``)
            and its thread count (None: the interpreter's own).
        edgetpu: run ``model_edgetpu.tflite`` with libedgetpu; falls back to the CPU model (a
            ``degraded`` event) and retries the TPU every ``tpu_retry_s``.
        mode: ``live`` (keep only the latest frame), ``replay`` (every frame in order) or ``auto``
            (replay for files and folders, live otherwise).
        events: JSON-lines file (rotated at ``events_max_mb``, ``events_backups`` kept); stdout if None.
        review_dir, review_quota_mb: save uncertain frames (JPEG + JSON) within a quota.
        show: display a window with the label (needs an OpenCV with GUI support).
        http_port, http_host: serve the status as JSON there (port 0 picks a free one).
        exit_on_source_end: stop when a live source ends instead of reopening it.
        max_frames, duration_s: stop after this many frames or seconds (None: no limit).
        watch_bundle, watch_interval_s: hot-swap the bundle when it changes, after it passes a self-test.
        stall_s: reopen the source when no new frame came for this long (0: never).
        max_fps: read at most this many frames a second (None: as fast as the source gives them); a
            video file looped with ``mode="live"`` then stands in for a camera without using a whole core.
        repeat_limit: this many identical frames in a row count as a stalled source.
        invoke_limit_s: an invoke longer than this is reported as hung.
        stop_event: a threading.Event that stops the loop (for embedding); SIGTERM/SIGINT also stop it.
        install_signals: stop on SIGTERM/SIGINT (only from the main thread).
        event_stream: where events go when ``events`` is None (default stdout).
    """

    backend: str = "auto"
    threads: Optional[int] = None
    edgetpu: bool = False
    mode: str = "auto"
    events: Any = None
    events_max_mb: float = 10.0
    events_backups: int = 3
    review_dir: Any = None
    review_quota_mb: float = 100.0
    show: bool = False
    http_port: Optional[int] = None
    http_host: str = "127.0.0.1"
    exit_on_source_end: bool = False
    max_frames: Optional[int] = None
    duration_s: Optional[float] = None
    watch_bundle: bool = False
    watch_interval_s: float = 2.0
    stall_s: float = 5.0
    max_fps: Optional[float] = None
    repeat_limit: int = 100
    tpu_retry_s: float = 60.0
    invoke_limit_s: float = 5.0
    # embedding: not command-line options
    stop_event: Optional[threading.Event] = None
    install_signals: bool = True
    event_stream: Any = None

    def __post_init__(self):
        for name in ("duration_s", "max_frames", "max_fps"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise DeviceError(f"{name} is {value}; give a number above 0 (or None for no limit).")

    @classmethod
    def of(cls, options: Optional["RunOptions"] = None, **overrides) -> "RunOptions":
        """``options`` (default: all defaults) with ``overrides`` (keyword arguments of the same names)."""
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown run option(s) {', '.join(unknown)}")
        return replace(options, **overrides) if options is not None else cls(**overrides)
