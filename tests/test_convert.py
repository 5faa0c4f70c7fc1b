"""edgecnn convert: int8 and other modes, verification, the bundle, golden samples, atomicity, errors."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.bundle.manifest import load_golden, model_path, update_manifest, verify_bundle
from edgecnn.cli import cli

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_tiny_bundle_is_a_valid_int8_bundle(tiny_bundle):
    import cv2

    from edgecnn.converters.flatbuffer import float_ops, read_tflite
    from edgecnn.converters.tflite import predict_tflite
    from edgecnn.devices.preprocess import bgr_to_rgb, resize_rgb

    manifest = verify_bundle(tiny_bundle)
    model = manifest["model"]
    assert model["quantization"] == "int8"
    assert model["input_dtype"] == "uint8" and model["output_dtype"] == "uint8"
    assert model["edgetpu"] is None and model["fallbacks"] == []
    assert model["color_order"] == "RGB" and model["input_mean"] == 0.0 and model["input_std"] == 1.0
    assert (tiny_bundle / "labels.txt").read_text().split() == manifest["labels"]
    fb = read_tflite(tiny_bundle / "model.tflite")
    assert float_ops(fb) == []                          # every op integer
    assert fb.input.scale == [1.0] and fb.input.zero_point == [0]   # raw pixels in
    assert list(fb.input.shape) == [1, *model["input_size"], 3]
    assert manifest["calibration"]["drawn"] and manifest["calibration"]["count"] >= 32
    assert 0.0 <= manifest["metrics"]["quantized_accuracy"] <= 1.0
    # Golden samples: the PNG decoded as on the board gives the stored input, which gives the scores.
    golden = list(load_golden(tiny_bundle, manifest))
    assert len(golden) == 4
    content = (tiny_bundle / "model.tflite").read_bytes()
    for sample, x in golden:
        assert x.dtype == np.uint8 and x.shape == (*model["input_size"], 3)
        png = bgr_to_rgb(cv2.imread(str(tiny_bundle / sample["source"]), cv2.IMREAD_COLOR))
        assert max(png.shape[:2]) <= 128
        np.testing.assert_array_equal(resize_rgb(png, model["input_size"], model["resize"]), x)
        # The stored scores are the reference kernels' (the same in every interpreter build), and the
        # tolerance is at least two output steps and covers this machine's optimized kernels.
        np.testing.assert_allclose(predict_tflite(reference_interpreter(content), [x])[0], sample["scores"],
                                   atol=1e-6)
        assert sample["atol"] >= 2 / 256 - 1e-9
        np.testing.assert_allclose(predict_tflite(content, [x])[0], sample["scores"], atol=sample["atol"])


def reference_interpreter(content):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    return interp


def test_int8_agrees_with_float_on_held_out_images(mini_run, tmp_path):
    from edgecnn.compress.convert import convert_run

    result = convert_run(mini_run, tmp_path / "b", calibration_size=64, eval_size=None, golden=0)
    met = result["metrics"]
    assert met["data"]["split"] == "val" and met["data"]["n"] == 60
    # Measured (seeds 0, 1): float 0.62-0.77, int8 within one image of it, agreement 0.97-0.98,
    # largest score difference 0.01-0.03.
    assert met["float_accuracy"] > 0.5, "the mini model should have learned something"
    assert met["top1_agreement"] >= 0.93
    assert abs(met["drop_pp"]) <= 5.0
    assert met["max_abs_score_diff"] < 0.1


@pytest.mark.parametrize("flag,io,in_dtype", [("--float16", "uint8", "float32"), ("--dynamic", "uint8", "float32"),
                                              ("--float32", "uint8", "float32"), ("--int8", "int8", "int8"),
                                              ("--int8", "float32", "float32")])
def test_cli_modes_and_io(mini_run, tmp_path, flag, io, in_dtype):
    res = invoke("convert", mini_run, flag, "--io", io, "--out", tmp_path / "b", "--calibration-size", "8",
                 "--eval-size", "8", "--golden", "1", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    manifest = verify_bundle(tmp_path / "b")
    assert manifest["model"]["quantization"] == flag[2:] == out["model"]["quantization"]
    assert manifest["model"]["input_dtype"] == in_dtype
    assert (manifest["calibration"] is not None) == (flag == "--int8")
    sample, x = next(load_golden(tmp_path / "b", manifest))
    from edgecnn.converters.tflite import predict_tflite

    scores = predict_tflite((tmp_path / "b" / "model.tflite").read_bytes(), [x])[0]
    np.testing.assert_allclose(scores, sample["scores"], atol=sample["atol"])


def test_verify_catches_a_float_model_passed_as_int8(mini_run):
    from edgecnn.converters.tflite import convert_model, verify_tflite
    from edgecnn.errors import ConversionError
    from edgecnn.models.classifier import load_classifier

    content = convert_model(load_classifier(mini_run / "model.keras"), "dynamic")
    with pytest.raises(ConversionError, match="the int8 export still computes in float"):
        verify_tflite(content, "int8", "float32", (32, 32))
    with pytest.raises(ConversionError, match="input is float32, expected uint8"):
        verify_tflite(content, "int8", "uint8", (32, 32))


def test_fallback_models(mini_run, tmp_path):
    assert invoke("convert", mini_run, "--float32", "--out", tmp_path / "f32", "--eval-size", "0",
                  "--golden", "0").exit_code == 0
    res = invoke("convert", mini_run, "--out", tmp_path / "b", "--fallback", tmp_path / "f32",
                 "--calibration-size", "8", "--eval-size", "0", "--golden", "0")
    assert res.exit_code == 0, res.output
    manifest = verify_bundle(tmp_path / "b")
    assert manifest["model"]["fallbacks"] == ["fallback_0.tflite"]
    assert (tmp_path / "b" / "fallback_0.tflite").read_bytes() == (tmp_path / "f32" / "model.tflite").read_bytes()
    assert manifest["source"]["fallbacks"][0]["quantization"] == "float32"
    update_manifest(tmp_path / "f32", labels=["a", "b", "c", "d"])
    res = invoke("convert", mini_run, "--out", tmp_path / "b", "--fallback", tmp_path / "f32", "--calibration-size", "8")
    assert res.exit_code == 2
    assert "has labels ['a', 'b', 'c', 'd'], but this model has ['circle', 'square', 'stripes', 'triangle']" in res.stderr


def test_failed_conversion_keeps_the_existing_bundle(mini_run, tmp_path, monkeypatch):
    from edgecnn.devices import golden

    out = tmp_path / "b"
    assert invoke("convert", mini_run, "--float32", "--out", out, "--eval-size", "0", "--golden", "1").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while writing golden samples")

    monkeypatch.setattr(golden, "golden_samples", boom)
    res = invoke("convert", mini_run, "--float16", "--out", out, "--eval-size", "0", "--golden", "1")
    assert res.exit_code != 0 and isinstance(res.exception, RuntimeError)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert verify_bundle(out)["model"]["quantization"] == "float32"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]     # no temporary folder left behind
    # A conversion that fails before writing leaves no bundle at all.
    res = invoke("convert", tmp_path / "nothing", "--out", tmp_path / "new")
    assert res.exit_code == 2 and not (tmp_path / "new").exists()


# --- clear errors, exact texts ---------------------------------------------------------------------


def test_error_run_dir_without_model(mini_run, tmp_path):
    run = copy_run(mini_run, tmp_path / "run")
    (run / "model.keras").unlink()
    res = invoke("convert", run, "--out", tmp_path / "b")
    assert res.exit_code == 2
    assert res.stderr == (f"Error: RUN_DIR '{run}' has no model.keras: it is not a finished run. Run `edgecnn "
                          "finetune` into it (an interrupted run resumes with the same command).\n")


def test_error_empty_calibration_folder(mini_run, tmp_path):
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "notes.txt").write_text("no images here")
    res = invoke("convert", mini_run, "--out", tmp_path / "b", "--calibration", tmp_path / "cal")
    assert res.exit_code == 2
    assert res.stderr == (f"Error: calibration folder '{tmp_path / 'cal'}' has no images (.bmp, .gif, .jpeg, .jpg, "
                          ".png, .tif, .tiff, .webp). Put training images in it, or create a set with `edgecnn "
                          "calibration select RUN_DIR --per-class N --out calibration_data/NAME`.\n")
    assert not (tmp_path / "b").exists()


def test_error_calibration_image_that_does_not_decode(mini_run, tmp_path, demo_data):
    cal = tmp_path / "cal"
    cal.mkdir()
    shutil.copy(next((demo_data / "circle").glob("*.jpg")), cal / "good.jpg")
    (cal / "broken.jpg").write_bytes(b"this is text, not a JPEG")
    res = invoke("convert", mini_run, "--out", tmp_path / "b", "--calibration", cal)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"Error: cannot load image '{cal / 'broken.jpg'}': ")
    assert res.stderr.endswith("Remove or replace the file (`edgecnn audit DATA_DIR` lists every bad file).\n")


def test_error_lambda_layer(mini_run, tmp_path):
    from convert_helpers import make_run

    from edgecnn.tf import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    run = make_run(tmp_path / "run", json.loads((mini_run / "run.json").read_text())["data"]["root"], model)
    res = invoke("convert", run, "--out", tmp_path / "b")
    assert res.exit_code == 2
    assert res.stderr == (f"Error: model '{run / 'model.keras'}' contains a Lambda layer (layer 'lambda'), which runs "
                          "arbitrary Python code when loaded; edgecnn refuses it. Replace the Lambda with a built-in "
                          "layer and save the model again.\n")


def test_error_dynamic_input_size(mini_run, tmp_path):
    from convert_helpers import make_run, mini_model

    root = json.loads((mini_run / "run.json").read_text())["data"]["root"]
    run = make_run(tmp_path / "run", root, mini_model(4, dynamic=True))
    res = invoke("convert", run, "--out", tmp_path / "b")
    assert res.exit_code == 2
    assert res.stderr == ("Error: the model's input shape (None, None, None, 3) has a dynamic height or width. TFLite "
                          "integer models and the Edge TPU need a fixed size: rebuild the model with a fixed input, "
                          "e.g. keras.Input(shape=(224, 224, 3)).\n")


def test_edgetpu_needs_int8_uint8(mini_run, tmp_path):
    res = invoke("convert", mini_run, "--edgetpu", "--io", "int8", "--out", tmp_path / "b")
    assert res.exit_code == 2
    assert res.stderr == ("Error: --edgetpu needs --int8 with --io uint8 (got --int8 --io int8): the Edge TPU runs "
                          "full-integer models only.\n")


def test_model_path_helper_reads_the_bundle(tiny_bundle):
    manifest = verify_bundle(tiny_bundle)
    assert model_path(tiny_bundle, manifest).name == "model.tflite"
    assert model_path(tiny_bundle, manifest, edgetpu=True) is None


def test_demo_steps(mini_run, tmp_path):
    from edgecnn.demo.convert_steps import convert_step, prune_step

    ctx = {"out": tmp_path, "quiet": True, "run_dir": mini_run, "failures": [], "progress": None}
    line = convert_step(ctx)
    assert line.startswith("convert: int8 model.tflite") and verify_bundle(ctx["bundle_dir"])
    assert "calibrated on 100 training images" in line  # the CLI's default, not a demo-only setting
    line = prune_step(ctx)
    assert line.startswith("prune: 50% of the prunable weights zeroed") and "x the unpruned int8 file gzipped" in line
    held = "held" in line
    assert held == (not ctx["failures"])  # a pruned model that lost accuracy fails the demo, saying why
    if not held:
        assert ctx["failures"][0]["why"].startswith("the 50% pruned int8 model is ")
    assert verify_bundle(tmp_path / "bundle_pruned")["source"]["pruning"]["target_sparsity"] == 0.5
