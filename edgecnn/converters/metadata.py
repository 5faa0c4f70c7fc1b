"""Write standard TFLite metadata into a .tflite: labels, normalization, image properties, score type.

The format is tflite-support's (``metadata_schema.fbs``, min parser version 1.0.0): what MediaPipe
Tasks' ImageClassifier, Coral's examples and Android Studio read. It is written here with the
``flatbuffers`` package and LiteRT's model schema (``ai_edge_litert.schema_py_generated``), not with
tflite-support, whose wheel pins ``protobuf<4`` against TensorFlow 2.21's ``protobuf>=6.31``: the
same bytes come out of a dozen tables built by hand. As ``MetadataPopulator`` does, the model is
unpacked and packed again with a ``TFLITE_METADATA`` entry whose buffer is the ``ModelMetadata``
flatbuffer, and the label file is a ZIP archive (stored, not compressed) appended to the model.
Operators, tensors and buffers are carried over unchanged (an Edge TPU model's custom op and its
compiled code too), so metadata changes no output. The reader is :mod:`edgecnn.bundle.tflite_metadata`.
"""

import io
import zipfile
from dataclasses import dataclass
from typing import Optional, Sequence

from edgecnn.bundle.tflite_metadata import METADATA_IDENTIFIER, METADATA_NAME
from edgecnn.errors import ConversionError, require

LABELS_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.0.0"  # tensor-level process units, associated files, image properties: all 1.0.0
BUFFER_ALIGNMENT = 16  # schema.fbs: Buffer.data is force_align 16, which the generated Python code ignores


@dataclass(frozen=True)
class About:
    """The words and numbers written: ``mean``/``std`` say the model's real input is ``(pixel - mean) / std``."""

    labels: Sequence[str]
    name: str = "edgecnn image classifier"
    description: str = ""
    version: str = ""
    author: str = "edgecnn"
    mean: float = 0.0
    std: float = 1.0
    color_order: str = "RGB"


def _schema():
    return require("ai_edge_litert.schema_py_generated", "train-cpu"), require("flatbuffers", "train-cpu")


def _vector(b, offsets):
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _floats(b, values):
    b.StartVector(4, len(values), 4)
    for value in reversed(values):
        b.PrependFloat32(float(value))
    return b.EndVector()


def _table(b, fields: int, slots: Sequence[tuple]):
    """A table of ``fields`` slots; ``slots`` are ``(slot, kind, value)`` with kind offset, uint8 or uint32."""
    b.StartObject(fields)
    for slot, kind, value in slots:
        if kind == "offset":
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "uint8":
            b.PrependUint8Slot(slot, value, 0)
        else:
            b.PrependUint32Slot(slot, value, 0)
    return b.EndObject()


def _stats(b, low, high):
    hi, lo = _floats(b, [high]), _floats(b, [low])
    return _table(b, 2, [(0, "offset", hi), (1, "offset", lo)])


def _input_tensor(b, about: About, size, dtype: str):
    height, width = size
    rgb = about.color_order == "RGB"
    described = (f"Input image to be classified: {height}x{width} pixels, three channels "
                 f"({'red, green, blue' if rgb else 'blue, green, red'}), each pixel value 0 to 255; the model "
                 f"sees (pixel - {about.mean:g}) / {about.std:g}.")
    name, desc = b.CreateString("image"), b.CreateString(described)
    image_size = _table(b, 2, [(0, "uint32", width), (1, "uint32", height)])
    props = _table(b, 2, [(0, "uint8", 1 if rgb else 0), (1, "offset", image_size)])  # ColorSpaceType RGB / UNKNOWN
    content = _table(b, 3, [(0, "uint8", 2), (1, "offset", props)])  # ContentProperties.ImageProperties
    norm = _table(b, 2, [(0, "offset", _floats(b, [about.mean])), (1, "offset", _floats(b, [about.std]))])
    unit = _table(b, 2, [(0, "uint8", 1), (1, "offset", norm)])  # ProcessUnitOptions.NormalizationOptions
    units = _vector(b, [unit])
    low, high = ((0.0, 255.0) if dtype in ("uint8", "int8") else
                 ((0.0 - about.mean) / about.std, (255.0 - about.mean) / about.std))
    stats = _stats(b, low, high)
    return _table(b, 7, [(0, "offset", name), (1, "offset", desc), (3, "offset", content), (4, "offset", units),
                         (5, "offset", stats)])


def _output_tensor(b, about: About, dtype: str):
    name = b.CreateString("probability")
    quantized = "" if dtype == "float32" else f", {dtype}: dequantize with the tensor's scale and zero point"
    desc = b.CreateString(f"Probabilities of the {len(about.labels)} labels respectively (softmax scores{quantized}).")
    feature = _table(b, 0, [])
    content = _table(b, 3, [(0, "uint8", 1), (1, "offset", feature)])  # ContentProperties.FeatureProperties
    low, high = (0.0, 255.0) if dtype == "uint8" else (-128.0, 127.0) if dtype == "int8" else (0.0, 1.0)
    stats = _stats(b, low, high)
    file_name, file_desc = b.CreateString(LABELS_FILE), b.CreateString("Labels for the categories the model can classify.")
    labels = _table(b, 5, [(0, "offset", file_name), (1, "offset", file_desc), (2, "uint8", 2)])  # TENSOR_AXIS_LABELS
    files = _vector(b, [labels])
    return _table(b, 7, [(0, "offset", name), (1, "offset", desc), (3, "offset", content), (5, "offset", stats),
                         (6, "offset", files)])


def build_metadata(about: About, size, input_dtype: str, output_dtype: str) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier M001) of a single-input image classifier."""
    _, flatbuffers = _schema()
    b = flatbuffers.Builder(1024)
    inputs, outputs = _vector(b, [_input_tensor(b, about, size, input_dtype)]), _vector(b, [_output_tensor(b, about, output_dtype)])
    graph = _table(b, 10, [(2, "offset", inputs), (3, "offset", outputs)])
    graphs = _vector(b, [graph])
    strings = {slot: b.CreateString(text) for slot, text in
               ((0, about.name), (1, about.description), (2, about.version), (4, about.author),
                (7, MIN_PARSER_VERSION)) if text}
    root = _table(b, 8, [(3, "offset", graphs)] + [(slot, "offset", s) for slot, s in strings.items()])
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _aligned_buffer_class(schema):
    class AlignedBuffer(schema.BufferT):
        """A BufferT packed with its data 16-byte aligned, as the TFLite converter writes it."""

        def Pack(self, builder):
            data = None
            if self.data is not None and len(self.data):
                raw = self.data.tobytes() if hasattr(self.data, "tobytes") else bytes(self.data)
                builder.StartVector(1, len(raw), BUFFER_ALIGNMENT)
                builder.head = builder.head - len(raw)
                builder.Bytes[builder.head:builder.head + len(raw)] = raw
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBuffer


def _repack(content: bytes, metadata: Optional[bytes]) -> bytes:
    """The model's flatbuffer with its TFLITE_METADATA replaced by ``metadata`` (dropped when None)."""
    schema, flatbuffers = _schema()
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ConversionError("the model is not a TFLite flatbuffer (no TFL3 identifier); metadata cannot be written.")
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    aligned = _aligned_buffer_class(schema)
    buffers = []
    for buffer in model.buffers or []:
        copy = aligned()
        copy.data, copy.offset, copy.size = buffer.data, buffer.offset, buffer.size
        buffers.append(copy)
    if any(b.offset > 1 for b in buffers):
        raise ConversionError("the model keeps its weights outside the flatbuffer (over 2 GB); edgecnn cannot add "
                              "metadata to it.")
    entries = [m for m in (model.metadata or []) if (m.name or b"") not in (METADATA_NAME, METADATA_NAME.decode())]
    stale = sorted({m.buffer for m in (model.metadata or []) if m not in entries})
    for index in stale:  # emptied, not removed: the tensors' buffer indices stay as they are
        buffers[index].data = None
    if metadata is not None:
        entry = schema.MetadataT()
        entry.name = METADATA_NAME.decode()
        entry.buffer = stale[0] if stale else len(buffers)  # as MetadataPopulator: the old entry's buffer is reused
        if not stale:
            buffers.append(aligned())
        buffers[entry.buffer].data, buffers[entry.buffer].offset, buffers[entry.buffer].size = metadata, 0, 0
        entries.append(entry)
    model.buffers, model.metadata = buffers, entries or None
    b = flatbuffers.Builder(len(content) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _append_files(model: bytes, files: dict) -> bytes:
    """``model`` + a ZIP of ``files``, appended the way MetadataPopulator appends (ZipFile mode "a" on the model:
    offsets count from the start of the file), stored uncompressed: readers map the files in place."""
    stream = io.BytesIO(model)
    stream.seek(0, io.SEEK_END)
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)  # same bytes every run
    return stream.getvalue()


def with_metadata(content: bytes, about: About) -> bytes:
    """``content`` (a .tflite's bytes) with metadata and its label file; an old TFLITE_METADATA is replaced.

    The input size and the I/O dtypes are read from the model itself (DESIGN rule 6).
    """
    from edgecnn.converters.flatbuffer import read_tflite

    model = read_tflite(content)
    shape, classes = model.input.shape, model.output.shape[-1] if model.output.shape else 0
    if len(shape) != 4 or shape[-1] != 3:
        raise ConversionError(f"the model's input shape is {list(shape)}, not [1, height, width, 3]: image "
                              "classifier metadata describes an RGB image input.")
    if classes != len(about.labels):
        raise ConversionError(f"the model has {classes} outputs but {len(about.labels)} labels were given for its "
                              "metadata; give one label per output, in output order.")
    metadata = build_metadata(about, (int(shape[1]), int(shape[2])), model.input.dtype, model.output.dtype)
    labels = "".join(f"{label}\n" for label in about.labels).encode("utf-8")
    return _append_files(_repack(content, metadata), {LABELS_FILE: labels})


def ensure_metadata(content: bytes, about: About, where="the model") -> bytes:
    """``content`` itself when its metadata already gives ``about``'s labels and normalization (a fallback
    from another bundle, a Coral model: copied byte for byte), else :func:`with_metadata`."""
    from edgecnn.bundle.tflite_metadata import read_metadata

    meta = read_metadata(content, where)
    if meta is not None and list(meta.labels or ()) == list(about.labels) and \
            meta.normalization(where) == (about.mean, about.std):
        return content
    return with_metadata(content, about)


def without_metadata(content: bytes) -> bytes:
    """``content`` with no TFLITE_METADATA and no appended files (what ``edgetpu_compiler`` leaves)."""
    return _repack(content, None)
