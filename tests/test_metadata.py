"""Standard TFLite metadata (issue 21): convert writes it into every model of a bundle (int8, float16, the
fallback, the Edge TPU twin), it changes no output, ``bundle wrap`` reads it, ``bundle export`` lays the
model out for MediaPipe, Picamera2 and Coral. MediaPipe itself runs in tests/test_mediapipe.py."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.bundle.manifest import load_golden, sha256_file, verify_bundle
from edgecnn.bundle.tflite_metadata import read_metadata, read_model_metadata
from edgecnn.cli import cli
from edgecnn.compress.convert import convert_run
from edgecnn.converters.export import export_bundle
from edgecnn.converters.metadata import About, with_metadata, without_metadata
from edgecnn.devices import backends
from edgecnn.devices.selftest import self_test
from edgecnn.devices.wrap import wrap_tflite
from edgecnn.errors import BundleError, ConversionError


@pytest.fixture(scope="module")
def bundles(mini_run, tmp_path_factory):
    """``{"float16": bundle, "int8": bundle with the float16 one as its fallback}`` of the session's mini run."""
    root = tmp_path_factory.mktemp("metadata")
    f16 = root / "f16"
    convert_run(mini_run, f16, mode="float16", eval_size=0, golden=3)
    int8 = root / "int8"
    convert_run(mini_run, int8, mode="int8", io="uint8", calibration_size=16, eval_size=0, golden=3, fallbacks=[f16])
    return {"float16": f16, "int8": int8}


@pytest.mark.parametrize("mode, score_range, input_range", [("int8", (0.0, 255.0), (0.0, 255.0)),
                                                          ("float16", (0.0, 1.0), (0.0, 255.0))])
def test_convert_writes_metadata_that_reads_back(bundles, mode, score_range, input_range):
    manifest = verify_bundle(bundles[mode])  # the sha256 in the manifest is the file's with metadata
    model = bundles[mode] / "model.tflite"
    assert manifest["files"]["model.tflite"]["sha256"] == sha256_file(model)
    meta = read_model_metadata(model)
    assert meta.labels == tuple(manifest["labels"]) and meta.labels_file == "labels.txt"
    assert meta.files == ("labels.txt",)
    assert (meta.mean, meta.std, meta.normalization()) == ((0.0,), (1.0,), (0.0, 1.0))  # the graph rescales itself
    assert (meta.color_space, meta.image_size) == ("RGB", (32, 32))
    assert meta.score_range == score_range and meta.min_parser_version == "1.0.0"
    assert meta.name == "edgecnn mini classifier" and f"edgecnn convert ({mode})" in meta.description
    assert meta.version == "sha256:" + sha256_file(manifest["source"]["run_dir"] + "/model.keras")[:16]


def test_the_fallback_model_carries_metadata_too(bundles, tmp_path):
    manifest = verify_bundle(bundles["int8"])
    fallback = bundles["int8"] / manifest["model"]["fallbacks"][0]
    meta = read_model_metadata(fallback)
    assert meta.labels == tuple(manifest["labels"]) and meta.normalization() == (0.0, 1.0)
    # its own bundle's metadata already said so: the fallback is that bundle's model byte for byte
    assert fallback.read_bytes() == (bundles["float16"] / "model.tflite").read_bytes()
    bare_model = tmp_path / "bare.tflite"  # a fallback bundle whose model has no metadata gets it written
    bare_model.write_bytes(without_metadata(fallback.read_bytes()))
    bare = wrap_tflite(bare_model, manifest["labels"], tmp_path / "bare")
    out = tmp_path / "b"
    convert_run(manifest["source"]["run_dir"], out, mode="float32", eval_size=0, golden=0, fallbacks=[bare])
    meta = read_model_metadata(out / "fallback_0.tflite")
    assert meta.labels == tuple(manifest["labels"]) and meta.name.endswith("(fallback)")



@pytest.mark.parametrize("mode", ["int8", "float16"])
def test_metadata_changes_no_output(bundles, mode):
    manifest = verify_bundle(bundles[mode])
    content = (bundles[mode] / "model.tflite").read_bytes()
    bare = without_metadata(content)
    assert read_metadata(bare) is None and len(bare) < len(content)
    with_meta, _ = backends.load_interpreter(content, "litert")
    plain, _ = backends.load_interpreter(bare, "litert")
    inputs = [array for _, array in load_golden(bundles[mode], manifest)]
    assert len(inputs) == 3
    with_scores = backends.predict(with_meta, inputs, manifest["model"]["resize"])
    plain_scores = backends.predict(plain, inputs, manifest["model"]["resize"])
    np.testing.assert_array_equal(with_scores, plain_scores)
    report = self_test(bundles[mode], "litert")  # the golden scores were computed before metadata was written
    assert report["ok"], report["errors"]


def test_writing_again_replaces_the_metadata_and_keeps_the_graph(bundles):
    from ai_edge_litert import schema_py_generated as schema

    content = (bundles["int8"] / "model.tflite").read_bytes()
    labels = [f"class {i}" for i in range(4)]
    again = with_metadata(content, About(labels, name="renamed", mean=127.5, std=127.5))
    meta = read_metadata(again)
    assert (meta.labels, meta.name, meta.normalization()) == (tuple(labels), "renamed", (127.5, 127.5))
    old, new = schema.ModelT.InitFromPackedBuf(bytearray(content)), schema.ModelT.InitFromPackedBuf(bytearray(again))
    assert [m.name for m in new.metadata].count(b"TFLITE_METADATA") == 1
    assert len(new.buffers) == len(old.buffers)  # the old metadata buffer was reused, not left beside the new one
    for index in {t.buffer for t in old.subgraphs[0].tensors}:
        a, b = old.buffers[index].data, new.buffers[index].data
        assert (a is None and b is None) or bytes(a) == bytes(b)


def test_metadata_refuses_labels_that_do_not_fit(bundles):
    content = (bundles["int8"] / "model.tflite").read_bytes()
    with pytest.raises(ConversionError, match="the model has 4 outputs but 3 labels were given"):
        with_metadata(content, About(["a", "b", "c"]))
    with pytest.raises(ConversionError, match="not a TFLite flatbuffer"):
        with_metadata(b"\0" * 64, About(["a"]))


def test_wrap_reads_labels_and_normalization_from_the_metadata(bundles, tmp_path):
    manifest = verify_bundle(wrap_tflite(bundles["int8"] / "model.tflite", None, tmp_path / "w"))
    assert manifest["labels"] == verify_bundle(bundles["int8"])["labels"]
    assert (manifest["model"]["input_mean"], manifest["model"]["input_std"]) == (0.0, 1.0)
    assert manifest["source"]["from_metadata"] == ["labels", "normalization"]
    given = verify_bundle(wrap_tflite(bundles["int8"] / "model.tflite", ["w", "x", "y", "z"], tmp_path / "g"))
    assert given["labels"] == ["w", "x", "y", "z"] and given["source"]["from_metadata"] == ["normalization"]


def test_a_model_without_metadata_still_wraps_runs_and_exports(bundles, tmp_path):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(without_metadata((bundles["int8"] / "model.tflite").read_bytes()))
    res = CliRunner().invoke(cli, ["bundle", "wrap", str(bare), "--out", str(tmp_path / "none")])
    assert res.exit_code == 2
    assert res.output == (f"Error: model '{bare}' has no TFLite metadata, so its labels are unknown: give them with "
                          "--labels FILE (one class name per line, in output order).\n")
    labels = verify_bundle(bundles["int8"])["labels"]
    bundle = wrap_tflite(bare, labels, tmp_path / "w")
    manifest = verify_bundle(bundle)
    assert manifest["source"]["from_metadata"] == [] and read_model_metadata(bundle / "model.tflite") is None
    assert self_test(bundle, "litert")["ok"]
    result = export_bundle(bundle, "mediapipe", tmp_path / "mp")  # export writes the metadata the model lacked
    meta = read_model_metadata(tmp_path / "mp" / "model.tflite")
    assert meta.labels == tuple(labels) and meta.normalization() == (0.0, 1.0)
    assert result["files"] == ["RUN.txt", "model.tflite"]


def test_export_formats(bundles, tmp_path):
    manifest = verify_bundle(bundles["int8"])
    res = CliRunner().invoke(cli, ["bundle", "export", str(bundles["int8"]), "--format", "coral", "--out",
                                   str(tmp_path / "coral"), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["files"] == ["RUN.txt", "labels.txt", "model.tflite"]  # no Edge TPU twin: said so
    assert "has no model_edgetpu.tflite" in result["messages"][0]
    assert (tmp_path / "coral" / "labels.txt").read_text().splitlines() == \
        [f"{i} {label}" for i, label in enumerate(manifest["labels"])]
    assert result["command"].endswith("--model model.tflite --labels labels.txt --input photo.jpg "
                                      "--input_mean 0 --input_std 1")
    # the bundle's model already says what the manifest says: exported byte for byte
    assert sha256_file(tmp_path / "coral" / "model.tflite") == manifest["files"]["model.tflite"]["sha256"]
    export_bundle(bundles["int8"], "picamera2", tmp_path / "pc")
    golden = [s for s in manifest["golden"]]
    proc = subprocess.run([sys.executable, "classify.py", "--image"] + [str(bundles["int8"] / s["source"]) for s in golden],
                          cwd=tmp_path / "pc", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [label for _, label, _ in lines] == [manifest["labels"][int(np.argmax(s["scores"]))] for s in golden]
    assert (tmp_path / "pc" / "RUN.txt").read_text() == "python3 classify.py --model model.tflite --labels labels.txt\n"


def test_export_refuses_a_tampered_bundle_and_an_unknown_format(bundles, tmp_path):
    with pytest.raises(BundleError, match="unknown export format 'onnx'"):
        export_bundle(bundles["int8"], "onnx", tmp_path / "x")
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundles["float16"], copy)
    with open(copy / "model.tflite", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(BundleError, match="model.tflite"):
        export_bundle(copy, "mediapipe", tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_the_board_reads_metadata_without_flatbuffers_or_tensorflow(bundles):
    code = ("import sys; from edgecnn.bundle.tflite_metadata import read_model_metadata; import edgecnn.devices.wrap; "
            f"m = read_model_metadata({str(bundles['int8'] / 'model.tflite')!r}); "
            "print(len(m.labels), sorted(k for k in ('flatbuffers', 'tensorflow', 'mediapipe', 'ai_edge_litert.schema_py_generated') "
            "if k in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "4 []"
