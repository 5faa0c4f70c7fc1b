"""Read a .tflite file's standard TFLite metadata (labels, normalization, image properties). Standard library only.

The format is the one tflite-support's ``MetadataPopulator`` writes and MediaPipe Tasks, Coral's
examples and Android Studio read: the model's ``metadata`` list holds an entry ``TFLITE_METADATA``
whose buffer is a ``ModelMetadata`` flatbuffer (file identifier ``M001``, tflite-support's
``metadata_schema.fbs``), and the files it names (the label file) are a ZIP archive appended to the
model. The board reads it here with ``struct`` and ``zipfile``: no flatbuffers package, no schema
module, no TensorFlow (DESIGN rule 1). The writer is :mod:`edgecnn.converters.metadata`.
"""

import io
import struct
import zipfile
from dataclasses import dataclass
from typing import Optional, Tuple

from edgecnn.errors import BundleError

METADATA_NAME = b"TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
IMAGE_PROPERTIES, NORMALIZATION_OPTIONS = 2, 1  # ContentProperties and ProcessUnitOptions union tags


class _Table:
    """One flatbuffer table: fields by slot number (the order of the schema's fields, a union taking two)."""

    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_size = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, slot: int) -> int:
        at = 4 + 2 * slot
        offset = struct.unpack_from("<H", self.buf, self.vtable + at)[0] if at < self.vtable_size else 0
        return self.pos + offset if offset else 0

    def scalar(self, slot: int, fmt: str, default=0):
        at = self._field(slot)
        return struct.unpack_from("<" + fmt, self.buf, at)[0] if at else default

    def _target(self, slot: int) -> int:
        at = self._field(slot)
        return at + struct.unpack_from("<I", self.buf, at)[0] if at else 0

    def table(self, slot: int) -> Optional["_Table"]:
        at = self._target(slot)
        return _Table(self.buf, at) if at else None

    def string(self, slot: int) -> Optional[str]:
        at = self._target(slot)
        if not at:
            return None
        length = struct.unpack_from("<I", self.buf, at)[0]
        return self.buf[at + 4:at + 4 + length].decode("utf-8", "replace")

    def _vector(self, slot: int) -> Tuple[int, int]:
        at = self._target(slot)
        return (at + 4, struct.unpack_from("<I", self.buf, at)[0]) if at else (0, 0)

    def tables(self, slot: int) -> list:
        start, count = self._vector(slot)
        return [_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0])
                for p in range(start, start + 4 * count, 4)]

    def numbers(self, slot: int, fmt: str) -> tuple:
        start, count = self._vector(slot)
        return struct.unpack_from(f"<{count}{fmt}", self.buf, start) if count else ()

    def raw(self, slot: int) -> bytes:
        start, count = self._vector(slot)
        return self.buf[start:start + count]


@dataclass(frozen=True)
class TFLiteMetadata:
    """What a model's metadata says; None where it says nothing.

    ``labels`` are the first output's TENSOR_AXIS_LABELS file (the locale-free one first), in output
    order (None when the metadata names no such file, or one the model does not pack: ``labels_file``); ``mean``/``std`` the first input's normalization, per channel as stored (the model's real
    input is ``(pixel - mean) / std``); ``image_size`` is ``(height, width)``; ``score_range`` the
    output's stats ``(min, max)``; ``files`` every file packed in the model.
    """

    name: Optional[str] = None
    version: Optional[str] = None
    description: Optional[str] = None
    author: Optional[str] = None
    min_parser_version: Optional[str] = None
    labels: Optional[Tuple[str, ...]] = None
    labels_file: Optional[str] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    color_space: Optional[str] = None
    image_size: Optional[Tuple[int, int]] = None
    score_range: Optional[Tuple[float, float]] = None
    files: Tuple[str, ...] = ()

    def normalization(self, where="the model") -> Optional[Tuple[float, float]]:
        """``(mean, std)`` as one number each (edgecnn's model section), or None when not stored."""
        if not self.mean or not self.std:
            return None
        if len(set(self.mean)) != 1 or len(set(self.std)) != 1:
            raise BundleError(f"the metadata of {where} normalizes each channel differently (mean {list(self.mean)}, "
                              f"std {list(self.std)}); edgecnn takes one mean and std: give --mean and --std.")
        return float(self.mean[0]), float(self.std[0])


def metadata_buffer(content: bytes, where="the model") -> Optional[bytes]:
    """The ``TFLITE_METADATA`` buffer of a .tflite's bytes (None when it has none)."""
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise BundleError(f"{where} is not a TFLite flatbuffer (no TFL3 identifier).")
    try:
        model = _Table(content, struct.unpack_from("<I", content, 0)[0])
        buffers = model.tables(4)
        for entry in model.tables(6):  # Model.metadata: [Metadata{name, buffer}]
            if entry.string(0) == METADATA_NAME.decode():
                buffer = buffers[entry.scalar(1, "I")]
                offset, size = buffer.scalar(1, "Q"), buffer.scalar(2, "Q")
                return content[offset:offset + size] if offset > 1 else buffer.raw(0)  # large models: outside
    except (struct.error, IndexError) as exc:
        raise BundleError(f"cannot parse {where} as a TFLite model ({exc}); is the file complete?") from None
    return None


def packed_files(content: bytes) -> dict:
    """``{name: bytes}`` of the ZIP archive appended to a model ({} when none)."""
    stream = io.BytesIO(content)
    if not zipfile.is_zipfile(stream):
        return {}
    with zipfile.ZipFile(stream) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _labels(tensor: _Table, files: dict) -> tuple:
    candidates = [f for f in tensor.tables(6) if f.scalar(2, "b") == TENSOR_AXIS_LABELS]
    candidates.sort(key=lambda f: bool(f.string(3)))  # the locale-free file first
    if not candidates:
        return None, None
    name = candidates[0].string(0)
    if name not in files:  # named but not packed (the ZIP was cut off): the labels are unknown, not an error here
        return None, name
    text = files[name].decode("utf-8", "replace").splitlines()
    while text and not text[-1].strip():
        text.pop()
    return tuple(line.strip() for line in text), name


def _input_facts(tensor: Optional[_Table]) -> dict:
    facts = {}
    if tensor is None:
        return facts
    content = tensor.table(3)
    if content is not None and content.scalar(0, "B") == IMAGE_PROPERTIES and content.table(1) is not None:
        props = content.table(1)
        facts["color_space"] = COLOR_SPACES.get(props.scalar(0, "b"), "UNKNOWN")
        size = props.table(1)
        if size is not None and size.scalar(0, "I") and size.scalar(1, "I"):
            facts["image_size"] = (size.scalar(1, "I"), size.scalar(0, "I"))
    for unit in tensor.tables(4):
        if unit.scalar(0, "B") == NORMALIZATION_OPTIONS and unit.table(1) is not None:
            facts["mean"], facts["std"] = unit.table(1).numbers(0, "f"), unit.table(1).numbers(1, "f")
    return facts


def read_metadata(content: bytes, where="the model") -> Optional[TFLiteMetadata]:
    """The metadata of a .tflite's bytes, or None when it carries none."""
    buf = metadata_buffer(content, where)
    if buf is None:
        return None
    if len(buf) < 8 or buf[4:8] != METADATA_IDENTIFIER:
        raise BundleError(f"the TFLITE_METADATA of {where} is not a ModelMetadata flatbuffer (no M001 identifier).")
    files = packed_files(content)
    try:
        root = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
        graphs = root.tables(3)
        inputs = graphs[0].tables(2) if graphs else []
        outputs = graphs[0].tables(3) if graphs else []
        labels, labels_file = _labels(outputs[0], files) if outputs else (None, None)
        stats = outputs[0].table(5) if outputs else None
        score_range = None
        if stats is not None and stats.numbers(0, "f") and stats.numbers(1, "f"):
            score_range = (stats.numbers(1, "f")[0], stats.numbers(0, "f")[0])
        return TFLiteMetadata(name=root.string(0), description=root.string(1), version=root.string(2),
                              author=root.string(4), min_parser_version=root.string(7), labels=labels,
                              labels_file=labels_file, score_range=score_range, files=tuple(sorted(files)),
                              **_input_facts(inputs[0] if inputs else None))
    except (struct.error, IndexError) as exc:
        raise BundleError(f"cannot parse the TFLITE_METADATA of {where} ({exc}).") from None


def read_model_metadata(path) -> Optional[TFLiteMetadata]:
    """:func:`read_metadata` of a model file."""
    from pathlib import Path

    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read model '{path}': {exc}") from None
    return read_metadata(content, f"'{path}'")
