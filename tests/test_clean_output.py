"""TensorFlow's and LiteRT's native log noise stays off the console; `edgecnn --verbose` keeps it."""

import os
import subprocess
import sys

from cli_helpers import edgecnn

from edgecnn.native_log import is_noise, quiet_native_stderr, replay
import pytest

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

# Lines a user saw on every run before (issue 12), each as the program printed it.
NOISE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796179432.469817    4161 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1796179432.470853    4161 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1796179434.831526    4161 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796179480.089128    4161 node_def_util.cc:682] NodeDef mentions attribute "
    "use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; ...>",
    "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
MARKERS = ["absl::InitializeLog", "oneDNN", "cudart_stub", "cuInit", "use_unbounded_threadpool",
           "fully_quantize", "XNNPACK"]


def test_the_known_lines_are_noise_and_real_errors_are_not():
    assert all(is_noise(line) for line in NOISE_LINES)
    assert not is_noise("E0000 00:00:1796179480.089128    4161 conv_ops.cc:12] Conv2D failed: out of memory")
    assert not is_noise("Traceback (most recent call last):")
    assert not is_noise("Error: the bundle is corrupt")


def test_replay_keeps_the_other_lines_in_order(tmp_path):
    out = tmp_path / "err.txt"
    with open(out, "w") as stream:
        replay("\n".join([NOISE_LINES[0], "first real line", NOISE_LINES[-1], "second real line"]) + "\n", stream)
    assert out.read_text() == "first real line\nsecond real line\n"


def test_native_writes_to_fd2_are_filtered_and_the_rest_replayed():
    # A child process so that fd 2 is its own: the noise is written with os.write, below Python's
    # sys.stderr, as the C++ code does.
    code = ("import os, sys\n"
            "from edgecnn.native_log import quiet_native_stderr\n"
            "with quiet_native_stderr():\n"
            f"    os.write(2, {NOISE_LINES[-1]!r}.encode() + b'\\n')\n"
            "    os.write(2, b'kept: a real native error\\n')\n"
            "    print('kept: python stderr', file=sys.stderr)\n"
            "os.write(2, b'after the block\\n')\n")
    env = {k: v for k, v in os.environ.items() if k != "EDGECNN_VERBOSE"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "kept: a real native error\nkept: python stderr\nafter the block\n"
    verbose = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**env, "EDGECNN_VERBOSE": "1"}, timeout=60)
    assert "XNNPACK" in verbose.stderr


def test_nested_blocks_capture_once(capfd):
    with quiet_native_stderr():
        with quiet_native_stderr():
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\ninner\n")
        os.write(2, b"outer\n")
    assert capfd.readouterr().err == "inner\nouter\n"


def test_convert_int8_prints_no_tensorflow_noise(mini_run, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("EDGECNN_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    proc = edgecnn("convert", mini_run, "--out", tmp_path / "bundle", "--int8", "--calibration-size", "16",
                   env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [m for m in MARKERS if m in proc.stderr + proc.stdout]
    assert not seen, proc.stderr[-3000:]
    assert (tmp_path / "bundle" / "model.tflite").is_file()
    # --verbose shows TensorFlow's own lines again (the converter's settings at least).
    loud = edgecnn("--verbose", "convert", mini_run, "--out", tmp_path / "loud", "--int8", "--calibration-size",
                   "16", env=env)
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "fully_quantize" in loud.stderr


def test_evaluate_prints_no_tensorflow_noise(mini_run, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("EDGECNN_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    bundle = tmp_path / "bundle"
    assert edgecnn("convert", mini_run, "--out", bundle, "--int8", "--calibration-size", "16", "--eval-size", "0",
                   env=env).returncode == 0
    proc = edgecnn("evaluate", bundle, "--against", mini_run, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [m for m in MARKERS if m in proc.stderr + proc.stdout]
    assert not seen, proc.stderr[-3000:]
