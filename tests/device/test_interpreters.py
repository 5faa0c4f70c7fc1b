"""Interpreter backends, adapters, the Edge TPU fallback and the invoke watchdog."""

import time

import numpy as np
import pytest

from edgecnn.devices import backends
from edgecnn.devices.edgetpu import EDGETPU_LIBRARIES, Watchdog, edgetpu_library, load_edgetpu_delegate
from edgecnn.devices.engine import Engine
from edgecnn.errors import DeviceError, EdgecnnError

from board_helpers import colour_frame

pytestmark = pytest.mark.device


def test_auto_backend_is_an_installed_interpreter(assets):
    interpreter, be = backends.make_interpreter(assets / "tiny_int8.tflite", "auto", threads=1)
    assert be.name in ("litert", "tflite-runtime")
    assert backends.input_size(interpreter) == (32, 32)
    assert backends.describe(interpreter)["output"] == {"shape": [1, 3], "dtype": "int8",
                                                       "scale": pytest.approx(1 / 256), "zero_point": -128}


def test_adapters_dequantize_with_the_models_scale(assets):
    interpreter, _ = backends.make_interpreter(assets / "tiny_int8.tflite")
    rgb = colour_frame(2)[..., ::-1]
    backends.set_input(interpreter, (rgb[:32, :32].astype(np.int16) - 128).astype(np.int8)[None])
    interpreter.invoke()
    raw = backends.output_tensor(interpreter)
    scale, zero_point = backends.output_details(interpreter, "quantization")
    np.testing.assert_allclose(backends.output_scores(interpreter), scale * (raw.astype(np.float32) - zero_point))
    assert int(np.argmax(raw)) == 2  # blue


def test_unknown_backend_and_missing_backend_are_clear():
    with pytest.raises(DeviceError, match="unknown backend"):
        backends.get_backend("onnx")
    installed = {backends.get_backend("auto").name}
    missing = ({"litert", "tflite-runtime"} - installed).pop()
    with pytest.raises(EdgecnnError, match="pip install 'edgecnn\\[device"):
        backends.get_backend(missing)


def test_delegate_library_names_per_platform():
    assert edgetpu_library("Linux") == "libedgetpu.so.1"
    assert edgetpu_library("Darwin") == "libedgetpu.1.dylib"
    assert edgetpu_library("Windows") == "edgetpu.dll"
    assert set(EDGETPU_LIBRARIES) == {"Linux", "Darwin", "Windows"}


def test_missing_delegate_raises_a_clear_error_without_noise(capsys):
    # No Edge TPU runtime on this machine: load_delegate raises OSError, which becomes a DeviceError,
    # and the interpreter's harmless Delegate.__del__ AttributeError is not printed.
    with pytest.raises(DeviceError, match="libedgetpu1-std"):
        load_edgetpu_delegate(backends.get_backend())
    assert "AttributeError" not in capsys.readouterr().err


def test_edgetpu_model_on_cpu_is_refused_clearly(coral_dir):
    with pytest.raises(DeviceError, match="compiled for the Edge TPU"):
        backends.make_interpreter(coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")


def test_edgetpu_requested_without_tpu_degrades_to_correct_cpu_results(coral_tpu_bundle, coral_dir):
    import cv2

    events = []
    engine = Engine(coral_tpu_bundle, edgetpu=True, on_event=events.append, tpu_retry_s=0.0)
    try:
        assert engine.primary.device == "cpu" and engine.primary.model_file.name == "model.tflite"
        assert [e["event"] for e in events] == ["degraded"] and "libedgetpu" in events[0]["reason"]
        label, score, _ = engine.classify(cv2.imread(str(coral_dir / "bird.bmp")))
        assert label == "chickadee" and score > 0.3  # the small v1 0.25/128 model: 0.44
        # the TPU is retried (retry_s 0 here) and still absent: still degraded, still on the CPU
        assert engine.maybe_retry_tpu() is False and engine.degraded
    finally:
        engine.close()


def test_retry_swaps_back_to_the_tpu_when_it_appears(tiny_bundle, monkeypatch):
    import edgecnn.devices.engine as engine_mod

    events = []
    engine = Engine(tiny_bundle, edgetpu=True, on_event=events.append, tpu_retry_s=0.0, probe=False)
    assert engine.degraded
    # Simulate the accelerator being plugged in: the delegate now loads (a stand-in that runs the
    # CPU model, since no TPU exists here).
    monkeypatch.setattr(engine_mod.Engine, "_try_tpu", lambda self: self._runner(tiny_bundle / "model.tflite"))
    assert engine.maybe_retry_tpu() is True and engine.degraded is None
    assert [e["event"] for e in events] == ["degraded", "recovered"]
    engine.close()


def test_watchdog_reports_a_hung_invoke_once():
    hangs = []
    dog = Watchdog(0.05, hangs.append, poll_s=0.01)
    with dog.guard():
        time.sleep(0.2)  # a stuck invoke
    with dog.guard():
        pass             # a quick one
    time.sleep(0.05)
    dog.close()
    assert len(hangs) == 1 and hangs[0] > 0.05 and dog.hangs == 1


def test_engine_reports_hung_invoke_as_an_event(tiny_bundle):
    events = []
    engine = Engine(tiny_bundle, on_event=events.append, invoke_limit_s=0.05, probe=False)
    real = engine.primary.invoke
    engine.primary.invoke = lambda tensor: (time.sleep(0.3), real(tensor))[1]  # a stuck invoke
    engine.classify(colour_frame(0))
    engine.close()
    assert [e["event"] for e in events] == ["hung"] and events[0]["seconds"] >= 0.05
