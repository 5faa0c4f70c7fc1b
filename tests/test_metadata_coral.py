"""TFLite metadata on Coral's real models (../shared/models/coral, issue 21): the Edge TPU write-back on the
compiled ``*_edgetpu.tflite`` twins (the compiler drops metadata; edgetpu_compiler itself cannot be
installed here), and a wrapped Coral model whose own metadata (tflite-support's) gives its labels."""

import numpy as np
import pytest

from edgecnn.bundle.manifest import sha256_file, verify_bundle
from edgecnn.bundle.tflite_metadata import read_metadata
from edgecnn.converters.export import export_bundle
from edgecnn.converters.flatbuffer import EDGETPU_CUSTOM_OP
from edgecnn.converters.metadata import About, with_metadata, without_metadata
from edgecnn.devices import backends
from edgecnn.devices.imageio import read_image
from edgecnn.devices.preprocess import bgr_to_rgb
from edgecnn.devices.selftest import self_test
from edgecnn.devices.wrap import read_labels, wrap_tflite

TWINS = ["mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant"]


def _graph(content: bytes) -> dict:
    """Everything of a model but its metadata: op codes, ops with their custom options, tensors, buffers."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    graph = model.Subgraphs(0)
    codes = [(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).CustomCode())
             for i in range(model.OperatorCodesLength())]
    ops = [(op.OpcodeIndex(), op.InputsAsNumpy().tolist(), op.OutputsAsNumpy().tolist(),
            op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b"")
           for op in (graph.Operators(i) for i in range(graph.OperatorsLength()))]
    tensors = [(t.Name(), t.Type(), t.ShapeAsNumpy().tolist(), t.Buffer(),
                model.Buffers(t.Buffer()).DataAsNumpy().tobytes() if model.Buffers(t.Buffer()).DataLength() else b"")
               for t in (graph.Tensors(i) for i in range(graph.TensorsLength()))]
    return {"codes": codes, "ops": ops, "tensors": tensors, "io": (graph.InputsAsNumpy().tolist(),
                                                                   graph.OutputsAsNumpy().tolist())}


@pytest.mark.parametrize("name", TWINS)
def test_metadata_written_back_into_a_compiled_edgetpu_model(coral_dir, name):
    twin = (coral_dir / f"{name}_edgetpu.tflite").read_bytes()
    compiled = without_metadata(twin)  # what edgetpu_compiler leaves: no TFLITE_METADATA, no label file
    assert read_metadata(compiled) is None
    labels = read_labels(coral_dir / "imagenet_labels.txt")
    written = with_metadata(compiled, About(labels, name=name, mean=127.5, std=127.5))
    meta = read_metadata(written)
    assert meta.labels == tuple(labels) and meta.normalization() == (127.5, 127.5)
    size = int(name.split("_")[3])
    assert (meta.image_size, meta.color_space, meta.score_range) == ((size, size), "RGB", (0.0, 255.0))
    graph = _graph(written)
    assert graph == _graph(twin)  # the custom op, its compiled code and every weight untouched
    custom = [ops for ops in graph["ops"] if graph["codes"][ops[0]][1] == EDGETPU_CUSTOM_OP.encode()]
    assert custom and all(len(ops[3]) > 1000 for ops in custom)  # the Edge TPU executable lives in its options


def test_a_coral_cpu_model_scores_the_same_with_any_metadata(coral_dir):
    content = (coral_dir / "mobilenet_v1_0.25_128_quant.tflite").read_bytes()
    ours = with_metadata(content, About(read_labels(coral_dir / "imagenet_labels.txt"), mean=127.5, std=127.5))
    image = bgr_to_rgb(read_image(coral_dir / "cat.bmp"))
    scores = [backends.predict(backends.load_interpreter(c, "litert")[0], [image], "bilinear", 127.5, 127.5)
              for c in (content, without_metadata(content), ours)]
    np.testing.assert_array_equal(scores[0], scores[1])
    np.testing.assert_array_equal(scores[0], scores[2])


def test_wrap_takes_a_coral_models_labels_and_normalization_from_its_metadata(coral_dir, tmp_path):
    bundle = wrap_tflite(coral_dir / "mobilenet_v1_0.25_128_quant.tflite", None, tmp_path / "b",
                         edgetpu_model=coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
                         images=[coral_dir / "bird.bmp"])
    manifest = verify_bundle(bundle)
    assert manifest["labels"] == read_labels(coral_dir / "imagenet_labels.txt")
    assert (manifest["model"]["input_mean"], manifest["model"]["input_std"]) == (127.5, 127.5)
    assert self_test(bundle, "litert")["ok"]
    result = export_bundle(bundle, "coral", tmp_path / "coral")
    assert result["files"] == ["RUN.txt", "labels.txt", "model.tflite", "model_edgetpu.tflite"]
    # Coral's own metadata already says what the manifest says: both models go out byte for byte
    assert sha256_file(tmp_path / "coral" / "model_edgetpu.tflite") == \
        sha256_file(coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    assert (tmp_path / "coral" / "labels.txt").read_text().splitlines()[:2] == ["0 background", "1 tench, Tinca tinca"]
    assert "--model model_edgetpu.tflite" in result["command"] and "--input_mean 127.5 --input_std 127.5" in \
        result["command"]
