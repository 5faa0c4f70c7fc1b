"""Bias correction removes the systematic shift that int8 weight rounding puts on a channel's mean,
measured on the real converter and the real LiteRT interpreter."""

import numpy as np

from edgecnn.converters.bias_correction import bias_correct, rounding_error

SCALE = 0.01  # the largest weight of each channel


def _biased_model():
    """Pixels -> 3x3 Conv2D (3 -> 4, valid) -> BatchNorm -> global mean. Every weight but one per channel
    sits 0.45 of an int8 step above a step, so rounding lowers each channel's output by a known amount."""
    from edgecnn.tf import keras

    inputs = keras.Input((10, 10, 3), name="image")
    conv = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")
    bn = keras.layers.BatchNormalization(name="bn")
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(bn(conv(inputs)))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    step = SCALE / 127.0
    kernel = (rng.integers(-100, 100, (3, 3, 3, 4)) + 0.45) * step
    kernel[0, 0, 0, :] = SCALE  # the channel maximum: the int8 step is exactly SCALE/127
    conv.set_weights([kernel.astype(np.float32)])
    bn.set_weights([np.ones(4, np.float32), np.zeros(4, np.float32), np.zeros(4, np.float32),
                    np.ones(4, np.float32) - bn.epsilon])  # identity BatchNorm (fold factor 1)
    return model


def test_rounding_error_follows_tflite_per_channel_scheme():
    kernel = np.array([[[[1.0, -2.0], [0.3, 0.5]]]], np.float32)  # 1x1x2x2: channel maxima 1.0 and 2.0
    d = rounding_error(kernel, depthwise=False)
    expected = np.round(kernel / (np.array([1.0, 2.0]) / 127)) * (np.array([1.0, 2.0]) / 127) - kernel
    np.testing.assert_allclose(d, expected, atol=1e-7)
    assert d[0, 0, 0, 0] == 0.0 and d[0, 0, 0, 1] == 0.0  # the maxima are exact


def test_bias_correction_cancels_the_int8_mean_shift():
    from edgecnn.converters.tflite import convert_model, predict_tflite

    model = _biased_model()
    rng = np.random.default_rng(1)
    calib = rng.integers(0, 256, (64, 10, 10, 3)).astype(np.float32)  # pixels: the input scale is 1, exact
    test = rng.integers(0, 256, (200, 10, 10, 3)).astype(np.float32)

    def mean_error(m):
        got = predict_tflite(convert_model(m, "int8", calib, io="float32"), test.astype(np.uint8))
        return (got - model.predict(test, verbose=0)).mean(axis=0)  # against the ORIGINAL float model

    corrected, report = bias_correct(model, calib)
    before, after = mean_error(model), mean_error(corrected)
    expected_shift = 26 * 0.45 * SCALE / 127 * 127.5  # 26 weights per channel 0.45 step low, input mean 127.5
    np.testing.assert_allclose(before, -expected_shift, rtol=0.25)
    assert np.all(np.abs(after) < 0.2 * np.abs(before))
    assert report["layers"][0]["layer"] == "conv"
    assert report["layers"][0]["max_shift"] == np.float32(report["layers"][0]["max_shift"])
    np.testing.assert_array_equal(model.get_layer("bn").get_weights()[1], np.zeros(4))  # the original is untouched
