"""Make the tiny real .tflite test assets (run with the main venv; TensorFlow is allowed only here).

    .venv/bin/python tests/device/make_assets.py

Writes, under tests/device/assets/:
- ``tiny_int8.tflite``: a 3-class classifier (red, green, blue: which channel dominates) with a
  32×32×3 int8 input (raw pixels; the graph rescales itself, as edgecnn models do) and int8 output,
  trained for a few seconds on generated images and fully integer quantized.
- ``tiny_float.tflite``: the same network as float32, used as a fallback model in tests.
- ``tiny_bundle/``: a bundle around ``tiny_int8.tflite`` (edgecnn.devices.wrap), whose golden scores
  were computed here with LiteRT: the board venv's tflite-runtime must reproduce them.
"""

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
LABELS = ["red", "green", "blue"]
SIZE = 32


def colour_images(n, seed):
    """Images whose dominant channel is the label, with clutter so the task is not trivial."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 120, size=(n, SIZE, SIZE, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    boost = rng.uniform(60, 135, size=n)
    x[np.arange(n), :, :, y] += boost[:, None, None]
    return np.clip(x, 0, 255).astype(np.uint8), y


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(HERE.parents[1]))
    from edgecnn.tf import tf, keras  # noqa: F401  (selects tf_keras first, DESIGN rule 3)

    tf.random.set_seed(0)
    x, y = colour_images(3000, 0)
    model = keras.Sequential([
        keras.layers.Input((SIZE, SIZE, 3)),
        keras.layers.Rescaling(1.0 / 255),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype(np.float32), y, epochs=8, batch_size=64, verbose=0)
    xv, yv = colour_images(300, 1)
    acc = float((model.predict(xv.astype(np.float32), verbose=0).argmax(1) == yv).mean())
    print(f"float accuracy on held-out generated images: {acc:.3f}")

    def representative():
        for i in range(100):
            yield [x[i:i + 1].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    (ASSETS / "tiny_float.tflite").write_bytes(converter.convert())
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    (ASSETS / "tiny_int8.tflite").write_bytes(converter.convert())
    (ASSETS / "labels.txt").write_text("".join(f"{name}\n" for name in LABELS))

    from edgecnn.devices.wrap import wrap_tflite

    golden = [img for img in colour_images(3, 7)[0]]
    golden = [np.repeat(np.repeat(img, 2, 0), 3, 1) for img in golden]  # 64×96 sources, resized on the board
    wrap_tflite(ASSETS / "tiny_int8.tflite", LABELS, ASSETS / "tiny_bundle", images=golden, resize="bilinear",
                source={"made_by": "tests/device/make_assets.py"})
    for path in sorted(ASSETS.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ASSETS)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
