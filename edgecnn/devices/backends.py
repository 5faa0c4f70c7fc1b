"""Interpreter backends and pycoral-style adapters (numpy helpers that take the interpreter).

Backends, in the order ``auto`` tries them: ``litert`` (``ai_edge_litert.interpreter``),
``tflite-runtime`` (``tflite_runtime.interpreter``) and ``tensorflow`` (``tf.lite``, a last
resort, imported only when nothing else is installed or when asked for by name).

Loading a model file that is not a valid flatbuffer can crash the interpreter process
(tflite-runtime 2.14 segfaults on a truncated model), so :func:`probe_model` loads it once in a
child process first and turns a crash into a clear :class:`~edgecnn.errors.DeviceError`.
"""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgecnn.bundle.model import DEFAULT_RESIZE
from edgecnn.devices.preprocess import to_input_tensor
from edgecnn.errors import DeviceError, MissingDependencyError
from edgecnn.native_log import quiet_native_stderr

BACKENDS = ("litert", "tflite-runtime", "tensorflow")
_MODULES = {"litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}


class Backend:
    """An interpreter module: ``name``, ``Interpreter`` class and ``load_delegate`` function."""

    def __init__(self, name, interpreter_cls, load_delegate):
        self.name = name
        self.Interpreter = interpreter_cls
        self.load_delegate = load_delegate

    def __repr__(self):
        return f"Backend({self.name!r})"


def _import_backend(name: str) -> Backend:
    if name == "tensorflow":
        tf = importlib.import_module("tensorflow")  # last resort only: the board never needs it
        return Backend(name, tf.lite.Interpreter, tf.lite.experimental.load_delegate)
    module = importlib.import_module(_MODULES[name])
    return Backend(name, module.Interpreter, module.load_delegate)


def get_backend(name: str = "auto") -> Backend:
    """Import an interpreter backend by name, or the first installed one for ``auto``."""
    if name not in ("auto",) + BACKENDS:
        raise DeviceError(f"unknown backend '{name}'; use auto, {', '.join(BACKENDS)}")
    names = BACKENDS if name == "auto" else (name,)
    errors = []
    for candidate in names:
        try:
            return _import_backend(candidate)
        except ImportError as exc:
            errors.append(f"{candidate}: {exc}")
    raise MissingDependencyError(
        f"no TFLite interpreter for backend '{name}' ({'; '.join(errors)}). Install one: "
        "pip install 'edgecnn[device]' (LiteRT) or 'edgecnn[device-tflite]' (tflite-runtime)")


def check_model_file(path) -> Path:
    """Cheap checks before an interpreter sees the file: exists, non-trivial, TFLite identifier."""
    path = Path(path)
    if not path.is_file():
        raise DeviceError(f"model file '{path}' does not exist. Check the bundle folder or the path.")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise DeviceError(f"'{path}' is not a TFLite model (no TFL3 identifier): the file is corrupt or "
                          "truncated. Copy it again or rebuild it with `edgecnn convert`.")
    return path


def make_interpreter(model_path, backend="auto", threads=None, delegates=None):
    """Load ``model_path`` on ``backend`` (a name or a :class:`Backend`) and allocate its tensors.

    Only give it files that passed :func:`probe_model` or a bundle's sha256 check: a truncated
    file can crash tflite-runtime.

    Returns:
        ``(interpreter, backend)``. Load errors become a DeviceError naming the file.
    """
    path = check_model_file(model_path)
    # Load from bytes, not model_path: a path is memory-mapped, and a bundle copied over in place
    # (see --watch-bundle) would change the running model under the interpreter's feet.
    return load_interpreter(path.read_bytes(), backend, threads, delegates, name=f"model '{path}'")


def load_interpreter(content: bytes, backend="auto", threads=None, delegates=None, name="the model"):
    """An interpreter for the .tflite ``content`` on ``backend``, tensors allocated (the workstation's
    loader too: converted models are bytes in memory).

    Returns:
        ``(interpreter, backend)``. Load errors become a DeviceError naming ``name``.
    """
    be = backend if isinstance(backend, Backend) else get_backend(backend)
    try:
        interpreter = be.Interpreter(model_content=bytes(content), num_threads=threads,
                                     experimental_delegates=list(delegates) if delegates else None)
        with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate on fd 2
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("it was compiled for the Edge TPU: run it with the libedgetpu delegate, or use the CPU model"
                if "edgetpu-custom-op" in str(exc) else
                "the file is corrupt, truncated, or needs a custom op this interpreter lacks")
        raise DeviceError(f"cannot load {name} with {be.name}: {msg} ({hint}).") from None
    return interpreter, be


def probe_model(model_path, backend="auto", threads=None, timeout=60.0) -> dict:
    """Load and invoke ``model_path`` once in a child process; a crash there cannot kill the caller.

    Returns the child's JSON report (``input``/``output`` details); raises DeviceError otherwise.
    """
    path = check_model_file(model_path)
    cmd = [sys.executable, "-m", "edgecnn.devices.backends", str(path), "--backend",
           backend if isinstance(backend, str) else backend.name]
    if threads:
        cmd += ["--threads", str(threads)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"model '{path}' hung the interpreter for {timeout:.0f} s while loading.") from None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    if lines:
        raise DeviceError(json.loads(lines[-1]).get("error", "model probe failed"))
    why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
    raise DeviceError(f"model '{path}' crashed the interpreter while loading ({why}): the file is corrupt or "
                      f"truncated. Copy it again or rebuild it with `edgecnn convert`.")


# --- adapters (pycoral style: numpy-only functions of the interpreter) ---------------------------

def input_details(interpreter, key=None, index=0):
    """The input tensor's details dict, or one of its entries (``shape``, ``dtype``, ``quantization``)."""
    details = interpreter.get_input_details()[index]
    return details[key] if key else details


def output_details(interpreter, key=None, index=0):
    details = interpreter.get_output_details()[index]
    return details[key] if key else details


def input_size(interpreter):
    """``(height, width)`` of the 1×H×W×C input."""
    _, height, width, _ = input_details(interpreter, "shape")
    return int(height), int(width)


def input_quantization(interpreter):
    """``(dtype, scale, zero_point)`` of the input, read from the model (DESIGN rule 6)."""
    details = input_details(interpreter)
    scale, zero_point = details["quantization"]
    return np.dtype(details["dtype"]), float(scale), int(zero_point)


def set_input(interpreter, data: np.ndarray):
    """Copy a 1×H×W×C tensor (already of the input dtype) into the interpreter."""
    interpreter.set_tensor(input_details(interpreter, "index"), data)


def output_tensor(interpreter, index=0) -> np.ndarray:
    """The raw output tensor (a copy), batch dimension dropped."""
    return np.array(interpreter.get_tensor(output_details(interpreter, "index", index))[0])


def output_scores(interpreter, index=0) -> np.ndarray:
    """The output as float32, dequantized with the model's scale and zero point when it is integer."""
    from edgecnn.devices.decision import dequantize

    raw = output_tensor(interpreter, index)
    scale, zero_point = output_details(interpreter, "quantization", index)
    if np.issubdtype(raw.dtype, np.integer) and scale:
        return dequantize(raw, scale, zero_point)
    return raw.astype(np.float32)


def predict(interpreter, images, resize: str = DEFAULT_RESIZE, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """Dequantized output scores (N×classes float32) of RGB ``images``, one invoke each.

    Each input tensor is built by :func:`~edgecnn.devices.preprocess.to_input_tensor` with the dtype,
    scale and zero point read from the model (DESIGN rule 6), as the board builds it; the workstation's
    accuracy figures (``convert``, ``evaluate``, the remedy ladder) come from this loop.
    """
    size = input_size(interpreter)
    dtype, scale, zero_point = input_quantization(interpreter)
    scores = []
    for image in images:
        set_input(interpreter, to_input_tensor(image, size, resize, dtype, scale, zero_point, mean, std))
        interpreter.invoke()
        scores.append(output_scores(interpreter))
    return np.stack(scores) if scores else np.zeros((0, int(output_details(interpreter, "shape")[-1])), np.float32)


def describe(interpreter) -> dict:
    """Input and output facts as plain JSON (used by probes, wrap and benchmark)."""
    dtype, scale, zero_point = input_quantization(interpreter)
    out = output_details(interpreter)
    return {
        "input": {"shape": [int(v) for v in input_details(interpreter, "shape")], "dtype": dtype.name,
                  "scale": scale, "zero_point": zero_point},
        "output": {"shape": [int(v) for v in out["shape"]], "dtype": np.dtype(out["dtype"]).name,
                   "scale": float(out["quantization"][0]), "zero_point": int(out["quantization"][1])},
    }


def _probe_main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Load and invoke a .tflite once; print JSON.")
    parser.add_argument("model")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        interpreter, be = make_interpreter(args.model, args.backend, args.threads)
        details = input_details(interpreter)
        set_input(interpreter, np.zeros(details["shape"], dtype=details["dtype"]))
        try:
            interpreter.invoke()
        except (RuntimeError, ValueError) as exc:
            raise DeviceError(f"model '{args.model}' fails at invoke on {be.name}: "
                              f"{str(exc).strip().splitlines()[0]}") from None
        report = describe(interpreter)
        report["backend"] = be.name
        print(json.dumps(report))
        return 0
    except Exception as exc:  # report every failure as JSON for the parent
        print(json.dumps({"error": str(exc)}))
        return 1


if __name__ == "__main__":
    sys.exit(_probe_main())
