"""QAT's kernel ranges never make a folded bias overflow int32 in the converted model.

A channel whose weights are all near zero gets a tiny weight scale; the converter stores the
channel's folded BatchNorm bias as int32 in units of input scale x weight scale, and a bias of a few
units then saturates. That is what took MobileNetV2's QAT int8 export below plain PTQ (issue 13).
Real tfmot graph, real TFLite converter and interpreter, on a small model with one such channel.
"""

import numpy as np

INT32_MAX = 2 ** 31 - 1


def _model():
    from edgecnn.tf import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
    x = keras.layers.Conv2D(8, 3, use_bias=False, name="c1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(6.0, name="r1")(x)
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="c2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(6.0, name="r2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    kernel = model.get_layer("c2").get_weights()[0]
    kernel[..., 0] *= 1e-7  # a dead channel: its output is its bias, 3.0
    model.get_layer("c2").set_weights([kernel])
    gamma, beta, mean, var = model.get_layer("bn2").get_weights()
    beta[0] = 3.0
    model.get_layer("bn2").set_weights([gamma, beta, mean, var])
    head_w, head_b = model.get_layer("head").get_weights()
    head_w[0] = [2.0, -2.0]  # the dead channel's constant moves the decision
    model.get_layer("head").set_weights([head_w, head_b])
    return model


def _biases(content: bytes):
    from edgecnn.tf import tf

    interpreter = tf.lite.Interpreter(model_content=content)
    interpreter.allocate_tensors()
    out = []
    for t in interpreter.get_tensor_details():
        if t["dtype"] == np.int32 and len(t["shape"]) == 1 and t["shape"][0] > 2:
            try:
                out.append(np.abs(interpreter.get_tensor(t["index"]).astype(np.int64)))
            except ValueError:  # an intermediate tensor holds no data
                continue
    return out


def test_a_dead_channel_no_longer_saturates_its_bias():
    from edgecnn.compress import retrain
    from edgecnn.compress.qat import quantize
    from edgecnn.compress.qat_graph import bias_safe_kernel_ranges, init_ranges
    from edgecnn.converters.tflite import convert_model, predict_tflite
    from edgecnn.models.classifier import keras_probs

    model = _model()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 16, 16, 3)).astype(np.uint8)
    qat, _ = quantize(model)
    retrain.freeze_batchnorm(qat)
    init_ranges(qat, model, images)
    fake_quant = keras_probs(qat, images)

    before = convert_model(qat, "int8", images)
    assert any((b >= INT32_MAX - 1).any() for b in _biases(before)), "the planted channel should saturate"
    error_before = np.abs(predict_tflite(before, images) - fake_quant).max()

    assert bias_safe_kernel_ranges(qat) == 1  # exactly the dead channel
    assert bias_safe_kernel_ranges(qat) == 0  # and it stays fixed
    np.testing.assert_allclose(keras_probs(qat, images), fake_quant, atol=1e-6)  # the graph computes the same
    after = convert_model(qat, "int8", images)
    assert all((b < 2 ** 30 + 2 ** 20).all() for b in _biases(after))
    error_after = np.abs(predict_tflite(after, images) - fake_quant).max()
    assert error_after < 0.05 < error_before, (error_before, error_after)
    # post-training quantization of the float model handles the channel the same way
    ptq = predict_tflite(convert_model(model, "int8", images), images)
    assert np.abs(ptq - keras_probs(model, images)).max() < 0.05
