"""TFLite metadata read on the board (issue 21): standard library only (the board venv has no flatbuffers
package and no schema module), from Coral's real models in ../shared, and ``bundle wrap`` taking the
labels and normalization from it."""

import json
import subprocess
import sys

import pytest
from board_helpers import edgecnn_cmd

from edgecnn.bundle.tflite_metadata import read_metadata, read_model_metadata
from edgecnn.devices.wrap import read_labels
from edgecnn.errors import BundleError

pytestmark = pytest.mark.device

MODEL = "mobilenet_v1_0.25_128_quant"


@pytest.mark.parametrize("suffix", ["", "_edgetpu"])
def test_coral_metadata_reads_on_the_board(coral_dir, suffix):
    meta = read_model_metadata(coral_dir / f"{MODEL}{suffix}.tflite")
    assert meta.labels == tuple(read_labels(coral_dir / "imagenet_labels.txt"))
    assert meta.labels_file == "imagenet_labels.txt" and meta.normalization() == (127.5, 127.5)
    assert (meta.name, meta.color_space, meta.min_parser_version) == ("ImageClassifier", "RGB", "1.0.0")
    proc = subprocess.run([sys.executable, "-c", "import sys, edgecnn.bundle.tflite_metadata; "
                           "print([m for m in ('flatbuffers', 'tensorflow', 'numpy') if m in sys.modules])"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_wrap_on_the_board_needs_no_labels_for_a_model_with_metadata(coral_dir, tmp_path):
    proc = subprocess.run(edgecnn_cmd("bundle", "wrap", coral_dir / f"{MODEL}.tflite", "--out", tmp_path / "b",
                                      "--image", coral_dir / "bird.bmp", "--json"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["labels"] == 1001 and (result["model"]["input_mean"], result["model"]["input_std"]) == (127.5, 127.5)
    proc = subprocess.run(edgecnn_cmd("run", tmp_path / "b", "--self-test"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_damaged_metadata_is_a_clear_error(coral_dir, tmp_path):
    content = (coral_dir / f"{MODEL}.tflite").read_bytes()
    with pytest.raises(BundleError, match="is not a ModelMetadata flatbuffer"):
        read_metadata(content.replace(b"M001", b"XXXX", 1))
    cut = content[:content.index(b"PK\x03\x04")]  # the appended label file cut off
    meta = read_metadata(cut)
    assert meta.labels is None and meta.labels_file == "imagenet_labels.txt" and meta.normalization() == (127.5, 127.5)
    model = tmp_path / "cut.tflite"
    model.write_bytes(cut)
    proc = subprocess.run(edgecnn_cmd("bundle", "wrap", model, "--out", tmp_path / "w"), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"Error: model '{model}' names the label file 'imagenet_labels.txt' in its TFLite metadata but does not pack "
        "it, so its labels are unknown: give them with --labels FILE (one class name per line, in output order).")
    with pytest.raises(BundleError, match="not a TFLite flatbuffer"):
        read_metadata(b"\0" * 16, "'x.tflite'")
