"""edgecnn qat: annotation with a report of what was left out, loading through one function,
int8 conversion of a QAT run, and sparsity preserved on a pruned run."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import cli


@pytest.fixture(scope="session")
def qat_run_dir(mini_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("qat") / "run"
    res = CliRunner().invoke(cli, ["qat", str(mini_run), "--out", str(out), "--epochs", "1", "--lr", "1e-4",
                                   "--augment", "none", "--json"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_qat_report_and_run(qat_run_dir, mini_run):
    from edgecnn.qat import load_run_model
    from edgecnn.rundir import load_run

    out, report = qat_run_dir
    left = {e["layer"]: e["type"] for e in report["left_out"]}
    assert left["rescale"] == "Rescaling"            # tfmot cannot annotate it: reported, not a crash
    assert report["annotated"] >= 8 and report["scheme"] == "Default8BitQuantizeScheme"
    run = load_run(out)
    assert run["qat"]["annotated"] == report["annotated"] and run["parent"]["run_dir"] == str(mini_run.resolve())
    model = load_run_model(run)                       # inside quantize_scope, safe_mode on
    assert any(type(layer).__name__.startswith("QuantizeWrapper") for layer in model.layers)
    assert abs(report["val_accuracy_after"] - report["val_accuracy_before"]) <= 0.1


def test_qat_model_converts_to_int8(qat_run_dir, tmp_path):
    from edgecnn.bundle import verify_bundle
    from edgecnn.converters.bundle_writer import convert_run

    out, _ = qat_run_dir
    result = convert_run(out, tmp_path / "b", calibration_size=16, eval_size=None, golden=1)
    manifest = verify_bundle(tmp_path / "b")
    assert manifest["source"]["qat"] is True and manifest["model"]["input_dtype"] == "uint8"
    # The fake-quant Keras model and its int8 export agree on the held-out images.
    assert result["metrics"]["top1_agreement"] >= 0.93


def test_qat_on_a_pruned_run_keeps_the_zeros(mini_run, tmp_path):
    from edgecnn.converters.tflite import convert_model, make_interpreter
    from edgecnn.prune import prune_run
    from edgecnn.qat import load_run_model, qat_run
    from edgecnn.rundir import load_run

    prune_run(mini_run, tmp_path / "p", sparsity=0.5, epochs=1, lr=1e-3, augment="none")
    report = qat_run(tmp_path / "p", tmp_path / "q", epochs=1, lr=1e-3, augment="none")
    assert report["scheme"] == "Default8BitPrunePreserveQuantizeScheme" and report["preserves_sparsity"]
    # The zeros are kept by the quantizer's mask: the int8 kernel of pw2 (32x1x1x16, Conv2D+BN, whose
    # kernel tfmot fake-quantizes) is still half zeros. (tfmot gives a Conv2D with bias followed by a
    # ReLU, like conv3, a NoOp config: its kernel is only quantized at conversion.)
    x = np.zeros((4, 32, 32, 3), np.uint8)
    interp = make_interpreter(convert_model(load_run_model(load_run(tmp_path / "q")), "int8", x))
    kernels = [interp.get_tensor(d["index"]) for d in interp.get_tensor_details()
               if tuple(d["shape"]) == (32, 1, 1, 16) and d["dtype"] == np.int8]
    assert len(kernels) == 1 and np.mean(kernels[0] == 0) >= 0.49


def test_qat_refuses_a_qat_run(qat_run_dir, tmp_path):
    out, _ = qat_run_dir
    res = CliRunner().invoke(cli, ["qat", str(out), "--out", str(tmp_path / "again")])
    assert res.exit_code == 2
    assert res.stderr.startswith(f"Error: '{out}' is already a QAT run")
