"""Which layers lose accuracy under int8, and int8 models with chosen layers kept in float.

Built on TFLite's QuantizationDebugger (``tf.lite.experimental.QuantizationDebugger``): it
calibrates the model once and instruments the quantized graph with NumericVerify ops, which compare
every quantized layer output with the float op run on the same (dequantized) inputs, so each
layer's own error is measured, not the error it inherits.

The ranking metric is the *channel-relative RMSE*: for each output channel, the RMS of the
quantization error divided by the RMS of the float activation, averaged over channels. The plain
``rmse/scale`` of the TFLite tutorial stays near 0.29 for any layer (rounding error is about a third
of a step), so it misses the usual failure: one outlier channel that stretches the tensor's range
until the other channels drown in one quantization step. The softmax output, quantized with a fixed
1/256 step, is listed but not ranked.

Selective quantization reuses the debugger's calibrated model and ``denylisted_nodes``
(``QuantizationDebugOptions``): the named nodes run in float between DEQUANTIZE and QUANTIZE ops,
everything else in int8, with the same uint8/int8 I/O as a plain full-integer conversion.
"""

import csv
import io
import warnings
from typing import List, Optional, Sequence

import numpy as np

from edgecnn.errors import ConversionError

UNRANKED_OPS = ("SOFTMAX", "LOGISTIC", "DEQUANTIZE", "QUANTIZE")


def channel_relative_rmse(float_t, quant_t, scale, zero_point) -> float:
    """Mean over output channels of RMS(dequantized - float) / RMS(float); dead channels skipped."""
    f = np.asarray(float_t, dtype=np.float32)
    err = (np.asarray(quant_t).astype(np.float32) - np.float32(zero_point)) * np.float32(scale) - f
    c = f.shape[-1] if f.ndim else 1
    f2, e2 = f.reshape(-1, c), err.reshape(-1, c)
    rms_f = np.sqrt((f2 ** 2).mean(axis=0))
    rms_e = np.sqrt((e2 ** 2).mean(axis=0))
    live = rms_f > 1e-3 * max(float(rms_f.max()), 1e-12)
    return float(np.mean(rms_e[live] / rms_f[live])) if live.any() else float("nan")


def _dataset(images):
    data = np.asarray(images, dtype=np.float32)

    def gen():
        for image in data:
            yield [image[None]]

    return gen


class LayerDebugger:
    """Calibrate once; rank layers by quantization error; quantize with layers kept in float.

    Args:
        model: the float Keras classifier (raw 0-255 pixels in).
        representative: calibration images (N×H×W×3 pixels, from the train split).
        debug_images: images the per-layer errors are measured on (a few dozen are plenty);
            the representative set when None.
    """

    def __init__(self, model, representative: np.ndarray, debug_images: Optional[np.ndarray] = None):
        from edgecnn.converters.tflite import make_converter
        from edgecnn.tf import tf

        self._tf = tf
        self._debug_data = _dataset(representative if debug_images is None else debug_images)
        try:
            with warnings.catch_warnings():  # the debugger uses tf.lite.Interpreter, deprecated for LiteRT
                warnings.simplefilter("ignore", UserWarning)
                converter = make_converter(model, "int8", representative, io="float32")
                self.debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                                          debug_dataset=self._debug_data)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConversionError(f"the quantization debugger could not calibrate the model: {first}") from None
        self._layers = None

    @property
    def calibrated_model(self) -> bytes:
        return self.debugger.calibrated_model

    def layer_errors(self) -> List[dict]:
        """Every instrumented layer in graph order: ``{"index", "node", "layer", "op", "relative_rmse",
        "rmse_over_scale", "scale", "ranked"}``. Cached."""
        if self._layers is not None:
            return self._layers
        tf = self._tf
        options = tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"relative_rmse": channel_relative_rmse})
        # The direct comparison needs every intermediate tensor kept, which only the debugger built
        # from a debug model's bytes does (experimental_preserve_all_tensors).
        with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": that is what this is
            warnings.simplefilter("ignore", UserWarning)
            measuring = tf.lite.experimental.QuantizationDebugger(
                quant_debug_model_content=self.debugger.quant_model, debug_dataset=self._debug_data,
                debug_options=options)
            measuring.run()
        buf = io.StringIO()
        measuring.layer_statistics_dump(buf)
        rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
        layers = []
        for row in sorted(rows, key=lambda r: int(r["tensor_idx"])):
            mse, scale = float(row["mean_squared_error"]), float(row["scale"])
            rel = float(row["relative_rmse"])
            layers.append({
                "index": len(layers),
                "node": row["tensor_name"],
                "layer": keras_layer_name(row["tensor_name"]),
                "op": row["op_name"],
                "relative_rmse": rel if np.isfinite(rel) else 0.0,
                "rmse_over_scale": float(np.sqrt(mse) / scale) if scale else 0.0,
                "scale": scale,
                "ranked": row["op_name"] not in UNRANKED_OPS,
            })
        self._layers = layers
        return layers

    def worst_layers(self, top: int = 5) -> List[dict]:
        """The ``top`` ranked layers with the largest channel-relative RMSE, worst first."""
        ranked = [layer for layer in self.layer_errors() if layer["ranked"]]
        return sorted(ranked, key=lambda layer: -layer["relative_rmse"])[:top]

    def quantize(self, denylisted_nodes: Sequence[str] = (), io_type: str = "uint8") -> bytes:
        """Full-integer model bytes with ``denylisted_nodes`` kept in float; I/O of ``io_type``."""
        from tensorflow.lite.python import convert

        tf = self._tf
        io_dtype = getattr(tf, io_type)
        try:
            # As TFLiteConverter does for int8 PTQ: the MLIR quantizer with the I/O type asked for.
            content = convert.mlir_quantize(self.calibrated_model, input_data_type=io_dtype,
                                            output_data_type=io_dtype, denylisted_nodes=list(denylisted_nodes))
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConversionError(f"selective quantization (float: {', '.join(denylisted_nodes) or 'none'}) "
                                  f"failed: {first}") from None
        return bytes(content)


def keras_layer_name(node: str) -> str:
    """Best guess of the Keras layer behind a TFLite node name such as
    ``model/conv_bad/Relu;model/conv_bad/Conv2D`` (-> ``conv_bad``)."""
    first = node.split(";")[0]
    parts = [p for p in first.split("/") if p]
    if len(parts) >= 3:
        return parts[1]
    return parts[0] if parts else node


def debug_layers(model, representative: np.ndarray, debug_images: Optional[np.ndarray] = None,
                 top: int = 5) -> dict:
    """The ``--debug-layers`` report: the worst layers and every layer's error, JSON-safe."""
    dbg = LayerDebugger(model, representative, debug_images)
    worst = dbg.worst_layers(top)
    return {"metric": "channel_relative_rmse", "worst": worst, "layers": dbg.layer_errors(),
            "worst_layer": worst[0]["layer"] if worst else None}
