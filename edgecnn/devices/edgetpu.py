"""The Edge TPU: the libedgetpu delegate, CPU fallback, and a watchdog for hung invokes.

Without a TPU, ``load_delegate('libedgetpu.so.1')`` raises OSError (tflite-runtime then prints a
harmless ``Delegate.__del__`` AttributeError, silenced here), and an ``*_edgetpu.tflite`` model on
the CPU raises "Encountered unresolved custom op: edgetpu-custom-op". Either way the caller falls
back to the bundle's CPU model, reports ``degraded``, and retries the TPU every ``retry_s``.
"""

import contextlib
import platform
import sys
import threading
import time

from edgecnn.errors import DeviceError

EDGETPU_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
INSTALL_HINT = ("install the Edge TPU runtime (Debian/Raspberry Pi OS: add Coral's apt repository, then "
                "`sudo apt-get install libedgetpu1-std`; see https://coral.ai/software/#edgetpu-runtime) "
                "and plug in the accelerator")


def edgetpu_library(system: str = None) -> str:
    """The delegate's shared-library name on this platform."""
    system = system or platform.system()
    return EDGETPU_LIBRARIES.get(system, EDGETPU_LIBRARIES["Linux"])


@contextlib.contextmanager
def _quiet_delegate_del():
    # tflite-runtime/LiteRT print "Exception ignored in Delegate.__del__ ... no attribute '_library'"
    # when load_delegate fails; that noise is harmless and only confuses a reader of the logs.
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, AttributeError) and "_library" in str(unraisable.exc_value):
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        import gc

        gc.collect()
        sys.unraisablehook = previous


def load_edgetpu_delegate(backend, device: str = None):
    """Load the libedgetpu delegate with ``backend.load_delegate``; DeviceError when it cannot."""
    library = edgetpu_library()
    options = {"device": device} if device else {}
    error = None
    with _quiet_delegate_del():
        try:
            return backend.load_delegate(library, options)
        except (OSError, ValueError, RuntimeError) as exc:
            error = str(exc)  # raised below, once the failed Delegate is collected inside the quiet block
    raise DeviceError(f"cannot load the Edge TPU delegate '{library}' ({error}); {INSTALL_HINT}.")


class Watchdog:
    """Reports an invoke that runs longer than ``limit_s`` (a hung TPU or driver).

    A C call cannot be interrupted from Python, so the watchdog only reports: ``on_hang(seconds)``
    once per hung call. The systemd watchdog then restarts the service, because pings stop while
    no frame completes (see :mod:`edgecnn.devices.notify`).
    """

    def __init__(self, limit_s: float, on_hang, poll_s: float = None):
        self.limit_s = float(limit_s)
        self.on_hang = on_hang
        self.poll_s = poll_s or max(0.01, self.limit_s / 4)
        self.hangs = 0
        self._started = None
        self._reported = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="edgecnn-watchdog", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def guard(self):
        with self._lock:
            self._started, self._reported = time.monotonic(), False
        try:
            yield
        finally:
            with self._lock:
                self._started = None

    def _watch(self):
        while not self._stop.wait(self.poll_s):
            with self._lock:
                started, reported = self._started, self._reported
                elapsed = time.monotonic() - started if started is not None else 0.0
                hung = started is not None and not reported and elapsed > self.limit_s
                if hung:
                    self._reported = True
                    self.hangs += 1
            if hung:
                self.on_hang(elapsed)

    def close(self):
        self._stop.set()
