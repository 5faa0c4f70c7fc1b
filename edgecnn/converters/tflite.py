"""Keras model -> .tflite bytes, verification of the result, and running it with the LiteRT interpreter.

Modes: ``int8`` (full integer, calibrated on a representative set of raw pixels), ``float16``
(float16 weights), ``dynamic`` (int8 weights, float activations) and ``float32``.
The representative data are raw RGB pixels as float32 0-255: the graph rescales itself (DESIGN
rule 5), so a uint8 input tensor gets scale 1 and zero point 0 and the board feeds pixels unchanged.
"""

from typing import Iterable, Optional

import numpy as np

from edgecnn.converters.flatbuffer import TFLiteModel, float_ops, read_tflite
from edgecnn.errors import ConversionError, require

MODES = ("int8", "float16", "dynamic", "float32")
IO_TYPES = ("uint8", "int8", "float32")


def static_input_size(model):
    """``(height, width)`` of a Keras model's single RGB input; refuses dynamic sizes."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[3] != 3:
        raise ConversionError(f"the model's input shape is {shape}; edgecnn converts models with one "
                              "N×H×W×3 RGB input.")
    if shape[1] is None or shape[2] is None:
        raise ConversionError(f"the model's input shape {shape} has a dynamic height or width. TFLite "
                              "integer models and the Edge TPU need a fixed size: rebuild the model with a fixed "
                              "input, e.g. keras.Input(shape=(224, 224, 3)).")
    return int(shape[1]), int(shape[2])


def with_full_range(images: np.ndarray) -> np.ndarray:
    """Representative pixels with one 0 and one 255 added to the first image.

    The input tensor's quantization comes from the range seen in calibration; pinning it to 0-255
    makes the uint8 input's scale exactly 1 (zero point 0), so raw pixels are the input. Changing
    two pixels of one image does not move any other layer's range measurably.
    """
    out = np.array(images, dtype=np.float32, copy=True)
    out[0].reshape(-1)[0] = 0.0
    out[0].reshape(-1)[-1] = 255.0
    return out


def make_converter(model, mode: str = "int8", representative: Optional[np.ndarray] = None, io: str = "uint8"):
    """The TFLiteConverter :func:`convert_model` runs (also used by the quantization debugger).

    Args: as :func:`convert_model`.
    """
    from edgecnn.tf import tf

    if mode not in MODES:
        raise ConversionError(f"unknown quantization mode '{mode}'; use one of {', '.join(MODES)}.")
    if io not in IO_TYPES:
        raise ConversionError(f"unknown --io '{io}'; use one of {', '.join(IO_TYPES)}.")
    height, width = static_input_size(model)
    # A concrete function with batch 1 gives the interpreter a static 1×H×W×3 input.
    spec = tf.TensorSpec([1, height, width, 3], tf.float32, name="image")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if representative is None or len(representative) == 0:
            raise ConversionError("int8 conversion needs a representative set (calibration images).")
        data = with_full_range(representative)

        def gen():
            for image in data:
                yield [image[None]]

        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io != "float32":
            converter.inference_input_type = getattr(tf, io)
            converter.inference_output_type = getattr(tf, io)
    return converter


def convert_model(model, mode: str = "int8", representative: Optional[np.ndarray] = None,
                  io: str = "uint8") -> bytes:
    """Convert a Keras classifier (raw 0-255 pixels in) to .tflite bytes.

    Args:
        model: the Keras model (a pruned-and-stripped or a QAT model converts the same way).
        mode: one of :data:`MODES`.
        representative: N×H×W×3 uint8 or float pixels (required for ``int8``).
        io: input and output type of an ``int8`` model: ``uint8``, ``int8`` or ``float32``.
            Other modes keep float32 I/O.
    """
    from edgecnn.native_log import quiet_native_stderr

    converter = make_converter(model, mode, representative, io)
    try:
        with quiet_native_stderr():  # the converter prints its quantizer settings to fd 2
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError, RuntimeError, ValueError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"TFLite conversion ({mode}) failed: {first}") from None


def verify_tflite(content: bytes, mode: str, io: str, input_size) -> dict:
    """Check a converted model against what was asked; raise ConversionError on any mismatch.

    For ``int8``: every op computes in integers (no float tensor outside the QUANTIZE/DEQUANTIZE
    at the float32 I/O boundary) -- the guard against an export that says "quantized" but is still
    float; the I/O dtypes are ``io``; a uint8/int8 input has scale 1 (raw pixels). For every mode:
    one static 1×H×W×3 input of ``input_size``.

    Returns:
        A report: op counts, input and output dtype, scale and zero point.
    """
    fb = read_tflite(content)
    inp, out = fb.input, fb.output
    expected_shape = (1, int(input_size[0]), int(input_size[1]), 3)
    if len(fb.inputs) != 1 or len(fb.outputs) != 1:
        raise ConversionError(f"the converted model has {len(fb.inputs)} inputs and {len(fb.outputs)} outputs; "
                              "expected one of each.")
    if tuple(inp.shape) != expected_shape or inp.dynamic:
        raise ConversionError(f"the converted model's input is {list(inp.shape_signature)}, expected "
                              f"{list(expected_shape)} (static).")
    want_io = io if mode == "int8" else "float32"
    for role, tensor in (("input", inp), ("output", out)):
        if tensor.dtype != want_io:
            raise ConversionError(f"the converted model's {role} is {tensor.dtype}, expected {want_io} for "
                                  f"--{mode} with --io {io}.")
    if mode == "int8":
        bad = float_ops(fb, allow_boundary=(io == "float32"))
        if bad:
            names = ", ".join(sorted({op.name for op in bad}))
            raise ConversionError(f"the int8 export still computes in float: {len(bad)} op(s) with float tensors "
                                  f"({names}, first at op {bad[0].index}). The converter fell back to float for "
                                  "them; the model cannot run on integer-only hardware.")
        if io != "float32":
            zero = 0 if io == "uint8" else -128
            if not inp.scale or abs(inp.scale[0] - 1.0) > 1e-6 or inp.zero_point[0] != zero:
                raise ConversionError(f"the int8 model's input quantization is scale {inp.scale} zero point "
                                      f"{inp.zero_point}, expected scale 1 and zero point {zero} (raw pixels).")
    return describe(fb)


def describe(fb: TFLiteModel) -> dict:
    """A JSON-safe summary of a parsed model: I/O contract and op counts."""
    from edgecnn.converters.flatbuffer import op_counts

    def io(t):
        return {"shape": list(t.shape), "dtype": t.dtype, "scale": t.scale[0] if t.scale else 0.0,
                "zero_point": t.zero_point[0] if t.zero_point else 0}

    return {"input": io(fb.input), "output": io(fb.output), "ops": op_counts(fb), "num_ops": len(fb.ops)}


def make_interpreter(content: bytes, num_threads: Optional[int] = None):
    """A LiteRT interpreter for ``content`` with tensors allocated: the board's loader
    (:func:`edgecnn.devices.backends.load_interpreter`) on the workstation's interpreter."""
    from edgecnn.devices.backends import load_interpreter

    require("ai_edge_litert.interpreter", "train-cpu")  # the workstation's extra, named when LiteRT is missing
    return load_interpreter(content, "litert", num_threads, name="the converted model")[0]


def predict_tflite(content_or_interp, images: Iterable[np.ndarray], num_threads: Optional[int] = None) -> np.ndarray:
    """Dequantized output scores (N×classes float32) of a .tflite model on resized uint8 RGB images.

    The board's predict loop (:func:`edgecnn.devices.backends.predict`: inputs built by
    ``devices.preprocess.to_input_tensor`` with the model's scale and zero point, DESIGN rule 6).
    """
    from edgecnn.devices.backends import predict

    interp = content_or_interp
    if isinstance(interp, (bytes, bytearray)):
        interp = make_interpreter(bytes(interp), num_threads)
    return predict(interp, images)


def output_atol(content: bytes) -> float:
    """Tolerance for golden scores: two output quantization steps, or 1e-3 for float outputs."""
    out = read_tflite(content).output
    if out.dtype in ("uint8", "int8") and out.scale:
        return 2.0 * out.scale[0]
    return 1e-3
