"""Board commands given bad options or a broken model: exit 2, one `Error:` line, no traceback, and the
JSON a command promises still printed. The real CLI in a subprocess."""

import importlib.util
import json
import socket
import subprocess

import pytest
from board_helpers import ASSETS, edgecnn_cmd

pytestmark = pytest.mark.device


def _run(*args, timeout=120):
    return subprocess.run(edgecnn_cmd(*args), capture_output=True, text=True, timeout=timeout)


def assert_one_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_http_port_in_use_is_an_error_not_a_traceback(colour_folder):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _run("run", ASSETS / "tiny_bundle", "--source", colour_folder, "--http", port)
    assert_one_error(proc, f"cannot serve the status on 127.0.0.1:{port} (Address already in use)", "--http PORT")


@pytest.mark.parametrize("host", ["256.1.2.3", "no-such-host.invalid", "192.0.2.1"])
def test_an_unusable_http_host_is_an_error(colour_folder, host):
    proc = _run("run", ASSETS / "tiny_bundle", "--source", colour_folder, "--http", "0", "--http-host", host)
    assert_one_error(proc, f"cannot serve the status on {host}:0", "--http-host")


@pytest.mark.parametrize("option,value", [("--duration", "-5"), ("--duration", "0"), ("--events-max-mb", "-1"),
                                          ("--review-quota", "0"), ("--stall", "-1")])
def test_negative_limits_are_refused(colour_folder, option, value):
    proc = _run("run", ASSETS / "tiny_bundle", "--source", colour_folder, option, value)
    assert_one_error(proc, f"Invalid value for '{option}'")


def test_an_unwritable_review_dir_is_an_error(tmp_path, colour_folder):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = _run("run", ASSETS / "tiny_bundle", "--source", colour_folder, "--review-dir", blocker / "review")
    assert_one_error(proc, "cannot use --review-dir", "review")


def test_benchmark_of_a_model_that_cannot_load_exits_2_with_its_json(tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes((ASSETS / "tiny_int8.tflite").read_bytes()[:1500])
    proc = _run("benchmark", broken, "--runs", "3", "--warmup", "0", "--json")
    assert_one_error(proc, "1 of 1 benchmark configurations", "broken.tflite")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["results"][0]["error"] and result["results"][0]["p50_ms"] is None


def test_benchmark_with_a_backend_that_is_not_installed_exits_2():
    missing = [name for name, module in (("tflite-runtime", "tflite_runtime"), ("litert", "ai_edge_litert"))
               if importlib.util.find_spec(module) is None]
    if not missing:
        pytest.skip("both interpreters are installed in this venv")
    proc = _run("benchmark", ASSETS / "tiny_bundle", "--backend", missing[0], "--runs", "3", "--warmup", "0")
    assert_one_error(proc, f"{missing[0]} threads 1", "pip install")


@pytest.mark.parametrize("self_test", [False, True])
def test_bundle_verify_json_prints_one_object_when_it_fails(tiny_bundle, self_test):
    model = tiny_bundle / "model.tflite"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    proc = _run("bundle", "verify", tiny_bundle, "--json", *(["--self-test"] if self_test else []))
    assert_one_error(proc, "model.tflite", "sha256")
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    report = json.loads(lines[0])
    assert report["ok"] is False and "model.tflite" in report["errors"][0]


def test_bundle_verify_json_when_it_passes(tiny_bundle):
    proc = _run("bundle", "verify", tiny_bundle, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"] is True


def test_wrap_refuses_a_normalization_the_input_quantization_contradicts(tmp_path):
    # tiny_int8 takes raw pixels (input scale ~1, zero point -128): mean 128 / std 128 left 2 input levels,
    # every frame became one class, and the self-test still passed
    proc = _run("bundle", "wrap", ASSETS / "tiny_int8.tflite", "--labels", ASSETS / "labels.txt", "--out",
                tmp_path / "w", "--mean", "128", "--std", "128")
    assert_one_error(proc, "--mean 128 --std 128 map the 256 pixel values onto only 2 of the input levels",
               "use --mean 0 --std 1.008")
    assert not (tmp_path / "w").exists()


def test_wrap_refuses_a_coral_model_without_its_normalization(coral_dir, tmp_path):
    # raw pixels (mean 0, std 1) given over the 127.5/127.5 of the model's metadata: given values win, and
    # the input quantization refuses them
    proc = _run("bundle", "wrap", coral_dir / "mobilenet_v1_0.25_128_quant.tflite", "--labels",
                coral_dir / "imagenet_labels.txt", "--out", tmp_path / "w", "--mean", "0", "--std", "1")
    assert_one_error(proc, "zero point 128", "use --mean 128 --std 128")


def test_wrap_with_a_labels_file_that_is_not_utf8_is_an_error(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"red\ngr\xe9en\nblue\n")  # Latin-1: a UnicodeDecodeError traceback before
    proc = _run("bundle", "wrap", ASSETS / "tiny_int8.tflite", "--labels", labels, "--out", tmp_path / "w")
    assert_one_error(proc, str(labels), "is not UTF-8 text (byte 0xe9 at offset 6)")
    assert not (tmp_path / "w").exists()


def test_a_malformed_picamera2_size_is_an_error(tmp_path):
    proc = _run("run", ASSETS / "tiny_bundle", "--source", "picamera2:abc")
    assert_one_error(proc, "'picamera2:abc' is not picamera2[:WIDTHxHEIGHT]")
