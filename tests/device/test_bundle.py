"""The bundle module is board-side: standard library (+ numpy for golden samples), no TensorFlow."""

import json

import numpy as np
import pytest

from edgecnn.bundle import manifest as bundle
from edgecnn.errors import BundleError


def _make(tmp_path, name="b"):
    golden_input = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    import io

    buf = io.BytesIO()
    np.save(buf, golden_input)
    manifest = bundle.make_manifest(
        ["ants", "bees"],
        model={"tflite": "model.tflite", "quantization": "int8", "input_size": [2, 2]},
        golden=[{"input": "golden/000.npy", "scores": [0.25, 0.75], "atol": 0.01}],
    )
    return bundle.write_bundle(tmp_path / name, {"model.tflite": b"TFL3 not a real model",
                                                  "golden/000.npy": buf.getvalue()}, manifest)


def test_write_and_verify_roundtrip(tmp_path):
    out = _make(tmp_path)
    manifest = bundle.verify_bundle(out)
    assert (out / "labels.txt").read_text() == "ants\nbees\n"
    assert set(manifest["files"]) == {"model.tflite", "labels.txt", "golden/000.npy"}
    assert manifest["files"]["model.tflite"]["sha256"] == bundle.sha256_file(out / "model.tflite")
    assert manifest["decision"]["thresholds"] == [0.0, 0.0]
    (sample, arr), = list(bundle.load_golden(out, manifest))
    assert sample["scores"] == [0.25, 0.75] and arr.shape == (2, 2, 3)


def test_tampered_file_is_refused_naming_it(tmp_path):
    out = _make(tmp_path)
    (out / "model.tflite").write_bytes(b"TFL3 changed")
    with pytest.raises(BundleError, match=r"model\.tflite' does not match its sha256"):
        bundle.verify_bundle(out)


def test_missing_file_and_manifest_errors(tmp_path):
    out = _make(tmp_path)
    (out / "golden" / "000.npy").unlink()
    with pytest.raises(BundleError, match="is missing 'golden/000.npy'"):
        bundle.verify_bundle(out)
    with pytest.raises(BundleError, match="has no edgecnn.json"):
        bundle.load_manifest(tmp_path)
    (out / "edgecnn.json").write_text("{not json")
    with pytest.raises(BundleError, match="is not valid JSON"):
        bundle.load_manifest(out)


def test_failed_write_keeps_previous_bundle(tmp_path):
    out = _make(tmp_path)
    before = (out / "edgecnn.json").read_text()
    manifest = bundle.make_manifest(["a", "b"], model={"tflite": "model.tflite"})
    with pytest.raises(FileNotFoundError):
        bundle.write_bundle(out, {"model.tflite": tmp_path / "does-not-exist.tflite"}, manifest)
    assert (out / "edgecnn.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temporary folder left behind


def test_update_manifest_replaces_sections_only(tmp_path):
    out = _make(tmp_path)
    bundle.update_manifest(out, decision={"temperature": 1.7})
    data = json.loads((out / "edgecnn.json").read_text())
    assert data["decision"] == {"temperature": 1.7}
    assert data["labels"] == ["ants", "bees"]
    bundle.verify_bundle(out)  # the manifest itself is not hashed, files still match
