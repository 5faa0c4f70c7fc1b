"""The tensor the board feeds the interpreter equals what the workstation builds for the same image.

Workstation side (without TensorFlow): decode with PIL, ``resize_rgb`` to the model's size with the
manifest's method, then the input quantization the converter bakes into the .tflite
(``round(x / scale) + zero_point`` with the scale and zero point read from the model). Board side:
OpenCV decode (BGR), the preprocessing :class:`edgecnn.devices.engine.Engine` applies to captured
frames (resize, then BGR -> RGB), ``set_tensor``; the tensor is read back from the interpreter.
"""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from board_helpers import ASSETS

from edgecnn.devices import backends
from edgecnn.devices.engine import Runner
from edgecnn.devices.preprocess import quantize, resize_rgb

pytestmark = pytest.mark.device


def _workstation_tensor(png: bytes, runner: Runner) -> np.ndarray:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    resized = resize_rgb(rgb, runner.size, runner.resize)
    if runner.dtype.kind == "f":
        return resized[None].astype(runner.dtype)
    return quantize(resized.astype(np.float32), runner.dtype, runner.scale, runner.zero_point)[None]


def _board_tensor(png: bytes, runner: Runner) -> np.ndarray:
    import cv2

    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    backends.set_input(runner.interpreter, runner.frame_tensor(bgr, swap=True))  # what Engine.classify feeds
    return runner.interpreter.get_tensor(backends.input_details(runner.interpreter, "index"))


@pytest.fixture(scope="module")
def runners():
    return {name: Runner(ASSETS / f"tiny_{name}.tflite") for name in ("int8", "float")}


frames = st.tuples(st.integers(1, 90), st.integers(1, 90)).flatmap(
    lambda hw: arrays(np.uint8, (hw[0], hw[1], 3), elements=st.integers(0, 255)))


@given(frame=frames, method=st.sampled_from(["bilinear", "area", "nearest"]), model=st.sampled_from(["int8", "float"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_board_tensor_equals_workstation_tensor(runners, frame, method, model):
    import cv2

    runner = runners[model]
    runner.resize = method
    ok, png = cv2.imencode(".png", frame[..., ::-1])  # a lossless file holding the RGB image `frame`
    assert ok
    board = _board_tensor(png.tobytes(), runner)
    workstation = _workstation_tensor(png.tobytes(), runner)
    assert board.dtype == workstation.dtype and board.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(board, workstation)


def test_int8_input_quantization_comes_from_the_model(runners):
    runner = runners["int8"]
    assert runner.dtype == np.int8 and runner.zero_point == -128 and runner.scale == pytest.approx(1.0, rel=0.01)
