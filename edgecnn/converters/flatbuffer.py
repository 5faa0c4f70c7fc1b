"""Read a .tflite file's operators and tensors from its flatbuffer, without running it.

One reader serves the int8 verification (are all ops integer?) and the Edge TPU checker (which ops,
in which order, with which tensor types and shapes). It uses the schema module that ships with
``ai-edge-litert`` (``ai_edge_litert.schema_py_generated``, generated from LiteRT's schema.fbs) and
the ``flatbuffers`` package; no interpreter is built, so models with custom ops that cannot run here
(the ``edgetpu-custom-op``) are read as well as any other.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from edgecnn.errors import ConversionError, require

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"


@dataclass
class TensorInfo:
    index: int
    name: str
    dtype: str                    # "float32", "int8", "uint8", "int32", ...
    shape: Tuple[int, ...]
    shape_signature: Tuple[int, ...]  # -1 marks a dynamic dimension
    constant: bool                # holds data in the file (weights, biases, shape operands)
    scale: List[float] = field(default_factory=list)
    zero_point: List[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= max(int(d), 1)
        return n

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape_signature)


@dataclass
class OpInfo:
    index: int
    name: str                     # builtin name (CONV_2D) or the custom code (edgetpu-custom-op)
    custom: bool
    inputs: List[int]
    outputs: List[int]


@dataclass
class TFLiteModel:
    tensors: List[TensorInfo]
    ops: List[OpInfo]
    inputs: List[int]
    outputs: List[int]
    num_subgraphs: int

    def tensor(self, index: int) -> TensorInfo:
        return self.tensors[index]

    @property
    def input(self) -> TensorInfo:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> TensorInfo:
        return self.tensors[self.outputs[0]]

    def op_tensors(self, op: OpInfo) -> List[TensorInfo]:
        return [self.tensors[i] for i in list(op.inputs) + list(op.outputs) if i >= 0]


def _names(cls) -> dict:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def read_tflite(source) -> TFLiteModel:
    """Parse a .tflite model (bytes or a path) into its main subgraph's ops and tensors."""
    schema = require("ai_edge_litert.schema_py_generated", "train-cpu")
    if isinstance(source, (bytes, bytearray)):
        buf, where = bytes(source), "the model"
    else:
        where = f"'{source}'"
        try:
            buf = Path(source).read_bytes()
        except OSError as exc:
            raise ConversionError(f"cannot read {where}: {exc}") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ConversionError(f"{where} is not a TFLite flatbuffer (no TFL3 identifier).")
    try:
        model = schema.Model.GetRootAs(buf, 0)
        op_names = _names(schema.BuiltinOperator)
        type_names = {k: v.lower() for k, v in _names(schema.TensorType).items()}
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            custom = oc.CustomCode()
            if code == schema.BuiltinOperator.CUSTOM:
                codes.append(((custom or b"").decode("utf-8", "replace"), True))
            else:
                codes.append((op_names.get(code, f"BUILTIN_{code}"), False))
        graph = model.Subgraphs(0)
        tensors = []
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            sig = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else shape
            buffer = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
            constant = bool(buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0))
            q = t.Quantization()
            scale = [float(s) for s in q.ScaleAsNumpy()] if q is not None and q.ScaleLength() else []
            zp = [int(z) for z in q.ZeroPointAsNumpy()] if q is not None and q.ZeroPointLength() else []
            tensors.append(TensorInfo(i, (t.Name() or b"").decode("utf-8", "replace"),
                                      type_names.get(t.Type(), str(t.Type())), shape, sig, constant, scale, zp))
        ops = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            name, custom = codes[op.OpcodeIndex()]
            ops.append(OpInfo(i, name, custom, [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else [],
                              [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []))
        inputs = [int(x) for x in graph.InputsAsNumpy()]
        outputs = [int(x) for x in graph.OutputsAsNumpy()]
    except ConversionError:
        raise
    except Exception as exc:  # a truncated or foreign flatbuffer raises anything from struct to IndexError
        raise ConversionError(f"cannot parse {where} as a TFLite model ({type(exc).__name__}: {exc}).") from None
    return TFLiteModel(tensors, ops, inputs, outputs, model.SubgraphsLength())


def op_counts(model: TFLiteModel) -> dict:
    """``{op name: count}`` in first-appearance order."""
    counts = {}
    for op in model.ops:
        counts[op.name] = counts.get(op.name, 0) + 1
    return counts


def float_ops(model: TFLiteModel, allow_boundary: bool = False) -> List[OpInfo]:
    """Ops that compute in floating point (any float input or output tensor).

    With ``allow_boundary``, a QUANTIZE fed by a graph input and a DEQUANTIZE feeding a graph output
    are allowed: that is how a full-integer model with float32 I/O looks.
    """
    found = []
    for op in model.ops:
        if allow_boundary:
            if op.name == "QUANTIZE" and all(i in model.inputs for i in op.inputs):
                continue
            if op.name == "DEQUANTIZE" and all(o in model.outputs for o in op.outputs):
                continue
        if any(t.dtype.startswith("float") for t in model.op_tensors(op)):
            found.append(op)
    return found


def first_op(model: TFLiteModel, name: str) -> Optional[OpInfo]:
    return next((op for op in model.ops if op.name == name), None)
