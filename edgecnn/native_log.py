"""Native (C++) log lines of TensorFlow, its converter and the TFLite interpreter, kept off the console.

TensorFlow's C++ core writes to file descriptor 2 itself, some of it before absl's logging is
initialised, where ``TF_CPP_MIN_LOG_LEVEL`` cannot filter it: the oneDNN banner and the CUDA stub
lines at import, the converter's ``fully_quantize: 0, inference_type: 6, ...`` and LiteRT's
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` at the first ``allocate_tensors()``.
None of it is something a user can act on. :func:`quiet_native_stderr` points fd 2 at a temporary
file around such a call and then writes back every line that is not one of these known notices,
so real errors still reach the user::

    from edgecnn.native_log import quiet_native_stderr
    with quiet_native_stderr():
        interpreter.allocate_tensors()

``edgecnn --verbose`` (environment ``EDGECNN_VERBOSE=1``) turns the filter off. Standard library
only: the board's interpreter code uses it too (DESIGN rule 1).
"""

import contextlib
import os
import re
import sys
import tempfile
import threading

VERBOSE_ENV = "EDGECNN_VERBOSE"

# absl's C++ log prefix: severity letter, MMDD, time, thread id, file.cc:line]
_ABSL = r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+\.cc:\d+\] "
NOISE = re.compile("|".join([
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IW]\d{4} [\d:.]+\s+\d+ [\w.]+\.cc:\d+\] ",  # C++ info and warnings: oneDNN, CUDA stubs, MLIR passes
    _ABSL + r"failed call to cuInit",  # no GPU on this machine: expected on CPU-only hosts
    _ABSL + r"NodeDef mentions attribute use_unbounded_threadpool",  # tf.data graph from a newer op set
    r"^fully_quantize: \d+, inference_type: \d+",  # the TFLite converter's quantizer settings
    r"^INFO: Created TensorFlow Lite XNNPACK delegate",  # LiteRT applied its default CPU delegate
    r"^INFO: Initialized TensorFlow Lite runtime",
]))

_lock = threading.Lock()
_depth = 0


def verbose() -> bool:
    """True when the user asked for TensorFlow's own log lines (``edgecnn --verbose``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def is_noise(line: str) -> bool:
    """True for a known, harmless native log line (see :data:`NOISE`)."""
    return bool(NOISE.match(line))


def replay(text: str, stream) -> None:
    """Write the lines of ``text`` that are not noise to ``stream``."""
    kept = [line for line in text.splitlines(keepends=True) if line.strip() and not is_noise(line)]
    if kept:
        stream.write("".join(kept))
        stream.flush()


@contextlib.contextmanager
def quiet_native_stderr():
    """Capture fd 2 for the duration of the block, then replay its non-noise lines to stderr.

    Nested uses capture once (the outermost). Python's own writes to ``sys.stderr`` in the block go
    through fd 2 as well and are replayed, in order, when the block ends (also on an exception).
    """
    global _depth
    if verbose():
        yield
        return
    with _lock:
        _depth += 1
        outermost = _depth == 1
    if not outermost:
        try:
            yield
        finally:
            with _lock:
                _depth -= 1
        return
    sys.stderr.flush()
    saved = os.dup(2)
    capture = tempfile.TemporaryFile(mode="w+b")
    os.dup2(capture.fileno(), 2)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):  # pragma: no cover - a closed stderr
            pass
        os.dup2(saved, 2)
        os.close(saved)
        with _lock:
            _depth -= 1
        capture.seek(0)
        replay(capture.read().decode("utf-8", "replace"), sys.stderr)
        capture.close()
