"""A trial's int8 model: full-integer conversion through the project's converter, and its accuracy.

The export converts with ``edgecnn convert --int8`` (:func:`edgecnn.compress.convert.convert_run`),
which needs a RUN_DIR; a trial has none, so it calls the same converter function directly.
"""

import numpy as np


def convert_int8(model, representative) -> bytes:
    """Full-integer int8 .tflite (uint8 raw-pixel input) through the project's converter."""
    from edgecnn.converters.tflite import convert_model

    return convert_model(model, "int8", representative=representative, io="uint8")


def int8_accuracy(content: bytes, images, y) -> float:
    """Top-1 accuracy of a .tflite on already-resized uint8 images (scale/zero point from the file)."""
    from edgecnn.converters.tflite import predict_tflite

    y = np.asarray(y)
    if not len(y):
        return 0.0
    return float((np.asarray(predict_tflite(content, images, num_threads=1)).argmax(axis=1) == y).mean())
