"""Golden scores that any board can reproduce: reference kernels, and a tolerance measured, not guessed.

Why: the optimized kernels differ between interpreter builds. Measured on Coral's uint8
MobileNet v2 with one photo: LiteRT 2.3's default kernels (XNNPACK, which runs uint8 ops) were
0.031 (8 output steps) from the reference kernels, while tflite-runtime 2.14's default kernels
equal them, as do the two builds' reference kernels (0.0). Scores recorded with the
workstation's optimized kernels and checked within two output steps made a bundle fail its
self-test on a board with the other interpreter, although nothing was wrong with it.

So the golden scores are the reference kernels' (``OpResolverType.BUILTIN_REF``: plain integer
arithmetic, the same in every build and on every CPU), and each sample's tolerance is the larger
of two output quantization steps and ``MARGIN`` times how far this machine's optimized kernels
are from the reference on that sample: what one optimized build does, another may do too.
"""

import sys

import numpy as np

from edgecnn.bundle.model import DEFAULT_RESIZE
from edgecnn.devices import backends
from edgecnn.devices.preprocess import to_input_tensor

MARGIN = 2.0            # another CPU's optimized kernels may stray as far again
STEPS = 2.0             # the floor for integer outputs: two quantization steps
FLOAT_ATOL = 1e-3       # the floor for float outputs (float16 and float32 models)


def _interpreter(content: bytes, backend: str, reference: bool):
    chosen = backends.get_backend(backend)
    kwargs = {}
    if reference:
        resolver = sys.modules[chosen.Interpreter.__module__].OpResolverType
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_REF
    interpreter = chosen.Interpreter(model_content=content, **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def _scores(interpreter, tensor: np.ndarray) -> np.ndarray:
    backends.set_input(interpreter, tensor)
    interpreter.invoke()
    return np.asarray(backends.output_scores(interpreter), dtype=np.float64)


def floor_atol(interpreter) -> float:
    """Two output steps for an integer output, FLOAT_ATOL for a float one."""
    scale = float(backends.output_details(interpreter, "quantization")[0])
    integer = np.dtype(backends.output_details(interpreter, "dtype")).kind in "iu"
    return STEPS * scale if integer and scale else FLOAT_ATOL


def golden_scores(content: bytes, images, mean: float = 0.0, std: float = 1.0, backend: str = "auto"):
    """Reference scores and measured tolerances for golden inputs.

    Args:
        content: the .tflite model.
        images: RGB uint8 images already resized to the model's input size (what the board
            derives from the golden sources).
        mean, std: the model's real input is ``(pixel - mean) / std`` (0 and 1 for edgecnn models).
        backend: the interpreter to use (``auto``: what this machine has).

    Returns:
        ``[(scores, atol)]``, one per image: the reference kernels' dequantized scores and the
        tolerance the board checks them with.
    """
    reference = _interpreter(content, backend, reference=True)
    optimized = _interpreter(content, backend, reference=False)
    floor = floor_atol(reference)
    dtype, scale, zero_point = backends.input_quantization(reference)
    results = []
    for image in images:
        size = tuple(image.shape[:2])
        tensor = to_input_tensor(image, size, DEFAULT_RESIZE, dtype, scale, zero_point, mean, std)
        want = _scores(reference, tensor)
        stray = float(np.abs(_scores(optimized, tensor) - want).max())
        results.append((want, max(floor, MARGIN * stray)))
    return results
