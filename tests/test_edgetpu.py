"""Edge TPU: the static checker on Coral's real models, the compiler log parser, and the compiler paths.

The real edgetpu_compiler cannot be installed here (x86-64 Debian package from Coral's apt
repository, no network): the compiler-present path is tested with a fake `edgetpu_compiler`
script put on PATH, which prints a log in Coral's format and writes a compiled model.
"""

import json
import os
import stat
import sys
import textwrap

import pytest
from click.testing import CliRunner

from edgecnn.bundle.manifest import verify_bundle
from edgecnn.bundle.tflite_metadata import read_model_metadata
from edgecnn.cli import cli
from edgecnn.converters.edgetpu import INSTALL_STEPS, check_compatibility, parse_compiler_log, run_compiler
from edgecnn.errors import ConversionError

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

QUANT = ["mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant", "mobilenet_v2_1.0_224_quant",
         "tf2_mobilenet_v2_1.0_224_ptq"]
TWINS = ["mobilenet_v1_0.25_128_quant", "mobilenet_v1_0.5_160_quant"]  # the *_edgetpu.tflite shared has

# A log in the format Coral documents for `edgetpu_compiler -s` (https://coral.ai/docs/edgetpu/compiler/):
# summary lines, then the "Operator Count Status" table. The numbers are made up for the test.
COMPILER_LOG = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 412 ms.

Input model: model.tflite
Input size: 1.02MiB
Output model: model_edgetpu.tflite
Output size: 1.13MiB
On-chip memory used for caching model parameters: 1.05MiB
On-chip memory remaining for caching model parameters: 6.79MiB
Off-chip memory used for streaming uncached model parameters: 512.00KiB
Number of Edge TPU subgraphs: 1
Total number of operations: 33
Operation log: model_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will \
instead run on the CPU, which is slower. If possible, consider updating your model to only use operations \
supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 30
Number of operations that will run on CPU: 3

Operator                       Count      Status

QUANTIZE                       1          Mapped to Edge TPU
CONV_2D                        15         Mapped to Edge TPU
DEPTHWISE_CONV_2D              13         Mapped to Edge TPU
MEAN                           1          Mapped to Edge TPU
FULLY_CONNECTED                1          More than one subgraph is not supported
SOFTMAX                        1          More than one subgraph is not supported
GATHER                         1          Operation not supported
"""


@pytest.mark.parametrize("name", QUANT)
def test_checker_maps_coral_quant_models_entirely(coral_dir, name):
    rep = check_compatibility(coral_dir / f"{name}.tflite")
    assert not rep["compiled"]
    assert rep["first_split"] is None and rep["unsupported"] == {}
    assert rep["mappable_ops"] == rep["num_ops"] >= 31
    assert rep["float_ops"] == [] and not rep["dynamic_shapes"]
    assert rep["parameters_fit_on_chip"]
    assert rep["verdict"].startswith("every op is in the Edge TPU op table")


@pytest.mark.parametrize("name", TWINS)
def test_checker_recognises_compiled_twins(coral_dir, name):
    rep = check_compatibility(coral_dir / f"{name}_edgetpu.tflite")
    assert rep["compiled"]
    assert [o["op"] for o in rep["ops"]] == ["edgetpu-custom-op"]
    assert rep["verdict"] == "already compiled for the Edge TPU (1 edgetpu-custom-op)"


def test_checker_on_our_int8_model_and_a_float_model(tiny_bundle, mini_run):
    rep = check_compatibility(tiny_bundle / "model.tflite")
    assert rep["first_split"] is None, rep["verdict"]
    assert {o["op"] for o in rep["ops"]} >= {"QUANTIZE", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}

    from edgecnn.converters.tflite import convert_model
    from edgecnn.models.classifier import load_classifier

    rep = check_compatibility(convert_model(load_classifier(mini_run / "model.keras"), "float32"))
    assert rep["first_split"]["index"] == 0 and rep["mappable_ops"] == 0
    assert rep["float_ops"] == list(range(rep["num_ops"]))
    assert "computes in float32" in rep["first_split"]["reasons"][0]
    assert rep["verdict"].startswith("op 0 (MUL) cannot map: the whole graph runs on the CPU")


def test_checker_finds_the_first_split_op(tiny_bundle):
    from edgecnn.converters import edgetpu

    supported = dict(edgetpu.SUPPORTED)
    del supported["MEAN"]  # pretend Coral's table lacks MEAN: the split moves to the pooling op
    orig = edgetpu.SUPPORTED
    edgetpu.SUPPORTED = supported
    try:
        rep = check_compatibility(tiny_bundle / "model.tflite")
    finally:
        edgetpu.SUPPORTED = orig
    mean = next(o["index"] for o in rep["ops"] if o["op"] == "MEAN")
    assert rep["first_split"]["index"] == mean == rep["mappable_ops"]
    assert rep["unsupported"] == {"MEAN": [mean]}
    assert f"the graph splits at op {mean} (MEAN: not in the Edge TPU op table)" in rep["verdict"]


def test_log_parser():
    log = parse_compiler_log(COMPILER_LOG)
    assert log["version"] == "16.0.384591198" and log["compiled"]
    assert log["ops_on_tpu"] == 30 and log["ops_on_cpu"] == 3
    assert log["on_chip_bytes"] == round(1.05 * 2 ** 20) and log["off_chip_bytes"] == 512 * 1024
    assert log["on_chip_remaining_bytes"] == round(6.79 * 2 ** 20)
    assert log["subgraphs"] == 1 and log["total_ops"] == 33
    assert log["ops"][4] == {"op": "FULLY_CONNECTED", "count": 1, "status": "More than one subgraph is not supported",
                             "mapped": False}
    # The .log file alone (no summary) still gives the table.
    table_only = "Edge TPU Compiler version 15.0.340273435\nInput: a.tflite\nOutput: a_edgetpu.tflite\n\n" \
                 "Operator                       Count      Status\n\nCONV_2D                        2          " \
                 "Mapped to Edge TPU\nCUSTOM                         1          Operation is working on an " \
                 "unsupported data type\n"
    log = parse_compiler_log(table_only)
    assert (log["ops_on_tpu"], log["ops_on_cpu"], log["on_chip_bytes"]) == (2, 1, None)


@pytest.fixture
def fake_compiler(tmp_path, monkeypatch):
    """A fake edgetpu_compiler on PATH: prints COMPILER_LOG and writes its input back as the "compiled" model
    (the real compiler keeps the outputs, so the run's labels still fit it, and drops any metadata)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "edgetpu_compiler"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import pathlib, shutil, sys, time
        args = sys.argv[1:]
        if "--sleep" in open({str(tmp_path / 'mode')!r}).read():
            time.sleep(30)
        out = pathlib.Path(args[args.index("-o") + 1])
        model = pathlib.Path(args[-1])
        shutil.copy(model, out / (model.stem + "_edgetpu.tflite"))
        log = {COMPILER_LOG!r}
        (out / (model.stem + "_edgetpu.log")).write_text(log[log.index("Operator "):])
        print(log)
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "mode").write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "mode"


def test_convert_with_fake_compiler_adds_the_edgetpu_model(mini_run, tmp_path, fake_compiler):
    res = CliRunner().invoke(cli, ["convert", str(mini_run), "--edgetpu", "--out", str(tmp_path / "b"),
                                   "--calibration-size", "8", "--eval-size", "0", "--golden", "1"])
    assert res.exit_code == 0, res.output
    manifest = verify_bundle(tmp_path / "b")
    assert manifest["model"]["edgetpu"] == "model_edgetpu.tflite"
    assert "model_edgetpu.tflite" in manifest["files"]
    log = manifest["edgetpu"]["compiler"]
    assert (log["ops_on_tpu"], log["ops_on_cpu"], log["version"]) == (30, 3, "16.0.384591198")
    assert manifest["edgetpu"]["report"]["first_split"] is None
    assert "30 ops on the Edge TPU, 3 on the CPU" in res.output
    # the compiler dropped the metadata; convert wrote it back, before the manifest hashed the file
    assert read_model_metadata(tmp_path / "b" / "model_edgetpu.tflite").labels == tuple(manifest["labels"])


def test_compiler_timeout_is_a_clear_error(mini_run, fake_compiler, tiny_bundle):
    fake_compiler.write_text("--sleep")
    with pytest.raises(ConversionError, match="edgetpu_compiler did not finish within 1 s"):
        run_compiler((tiny_bundle / "model.tflite").read_bytes(), timeout=1)


def test_without_compiler_keeps_int8_bundle_and_explains(mini_run, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    res = CliRunner().invoke(cli, ["convert", str(mini_run), "--edgetpu", "--out", str(tmp_path / "b"),
                                   "--calibration-size", "8", "--eval-size", "0", "--golden", "0", "--json"])
    assert res.exit_code == 0, res.output
    manifest = verify_bundle(tmp_path / "b")
    assert manifest["model"]["edgetpu"] is None and manifest["edgetpu"]["compiler"] is None
    assert json.loads(res.stdout)["messages"] == [INSTALL_STEPS]
    assert "sudo apt-get install edgetpu-compiler" in INSTALL_STEPS

    res = CliRunner().invoke(cli, ["convert", str(mini_run), "--require-edgetpu", "--out", str(tmp_path / "c"),
                                   "--calibration-size", "8"])
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: --require-edgetpu: edgetpu_compiler is not on PATH")
    assert not (tmp_path / "c").exists()
