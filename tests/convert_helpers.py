"""Small RUN_DIRs for the compression and conversion tests (no pretrained weights, seconds to build).

``make_run`` writes a RUN_DIR the way `edgecnn finetune` does (model.keras, labels.txt, run.json
with the model config, preprocess and the dataset's splits), around any flat Keras model.
"""

import json
from pathlib import Path


def mini_model(num_classes: int, size: int = 32, seed: int = 0, dynamic: bool = False):
    """A flat classifier shaped like ours: Rescaling, conv/BN/ReLU blocks, pool, dropout, dense."""
    from edgecnn.models.classifier import HEAD_DENSE, HEAD_DROPOUT, POOL_LAYER, RESCALE_LAYER
    from edgecnn.tf import keras, tf

    tf.random.set_seed(seed)
    shape = (None, None, 3) if dynamic else (size, size, 3)
    inputs = keras.Input(shape=shape, name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name=RESCALE_LAYER)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="conv1")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="conv1_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv1_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw2")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="dw2_bn")(x)
    x = keras.layers.ReLU(6.0, name="dw2_relu")(x)
    x = keras.layers.Conv2D(32, 1, use_bias=False, name="pw2")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="pw2_bn")(x)
    x = keras.layers.ReLU(6.0, name="pw2_relu")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", name="conv3")(x)
    x = keras.layers.ReLU(6.0, name="conv3_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(x)
    x = keras.layers.Dropout(0.1, name=HEAD_DROPOUT)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=HEAD_DENSE)(x)
    return keras.Model(inputs, outputs, name="edgecnn_mini")


def make_run(out, data_dir, model, size: int = 32, epochs: int = 0, extra: dict = None) -> Path:
    """Write a RUN_DIR for ``model`` on ``data_dir``; fit ``epochs`` on its train split first."""
    import numpy as np

    from edgecnn.data.dataset import load_dataset
    from edgecnn.data.pixels import load_images
    from edgecnn.tf import keras

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(data_dir, val_fraction=0.25, test_fraction=0.0, seed=0)
    if epochs:
        x, y = load_images(dataset.splits["train"], size, "area")
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x.astype(np.float32), y, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    model.save(out / "model.keras")
    (out / "labels.txt").write_text("".join(f"{n}\n" for n in dataset.labels), encoding="utf-8")
    run = {
        "command": "test",
        "labels": list(dataset.labels),
        "model": {"backbone": "mini", "alpha": None, "input_size": size, "rescale": [1 / 127.5, -1.0],
                  "num_classes": len(dataset.labels), "pool_layer": "pool"},
        "preprocess": {"input_size": [size, size], "resize": "area", "color_order": "RGB"},
        "data": dataset.to_json(),
        "seed": 0,
        "parent": None,
    }
    run.update(extra or {})
    (out / "run.json").write_text(json.dumps(run, indent=1), encoding="utf-8")
    return out
