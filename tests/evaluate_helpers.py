"""RUN_DIRs and bundles for the evaluate, calibrate and remedy tests (built once per process).

``good`` is a small CNN trained on the demo data (channel 0 of ``conv1`` is dead: always 0 after
ReLU); ``broken`` is the same model after surgery that leaves its float outputs unchanged but makes
``conv_bad`` impossible to quantize: the dead channel gets a huge weight in every filter, so
per-channel int8 weights crush the useful weights to zero.
"""

import json
from pathlib import Path

import numpy as np

SIZE = 32
_CACHE = {}


def tiny_model(num_classes: int, seed: int = 0):
    from edgecnn.tf import keras, tf

    tf.random.set_seed(seed)
    inputs = keras.Input(shape=(SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    conv1 = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")
    x = conv1(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_bad")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head_dense")(x)
    model = keras.Model(inputs, outputs, name="edgecnn_tiny")
    w1, b1 = conv1.get_weights()
    w1[..., 0], b1[0] = 0.0, -1.0  # a dead channel (its gradient is 0, so it stays dead in training)
    conv1.set_weights([w1, b1])
    return model


def break_quantization(model):
    """Make ``conv_bad`` hard to quantize without changing the float model's outputs."""
    w, b = model.get_layer("conv_bad").get_weights()
    w[1, 1, 0, :] = 1e4  # huge weights on the dead channel: no effect in float, ruin int8 scales
    model.get_layer("conv_bad").set_weights([w, b])
    return model


def write_run(out, model, dataset) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    (out / "labels.txt").write_text("".join(f"{n}\n" for n in dataset.labels), encoding="utf-8")
    run = {"command": "test", "labels": list(dataset.labels),
           "model": {"backbone": "tiny", "input_size": SIZE, "num_classes": len(dataset.labels)},
           "preprocess": {"input_size": [SIZE, SIZE], "resize": "area", "color_order": "RGB"},
           "data": dataset.to_json(), "seed": 0, "parent": None}
    (out / "run.json").write_text(json.dumps(run, indent=1), encoding="utf-8")
    return out


def build(base: Path, demo_data: Path) -> dict:
    """``{"good_run", "broken_run", "good_bundle", "broken_bundle", "dataset"}`` under ``base``, cached."""
    if "built" in _CACHE:
        return _CACHE["built"]
    from edgecnn.compress.convert import convert_run
    from edgecnn.data.dataset import load_dataset
    from edgecnn.data.pixels import load_images
    from edgecnn.tf import keras

    dataset = load_dataset(demo_data, val_fraction=0.25, test_fraction=0.25, seed=0)
    x, y = load_images(dataset.splits["train"], SIZE, "area")
    model = tiny_model(len(dataset.labels))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(x.astype(np.float32), y, epochs=25, batch_size=32, verbose=0)
    good_run = write_run(base / "good_run", model, dataset)
    float_out = model.predict(x[:8].astype(np.float32), verbose=0)
    broken = break_quantization(model)
    assert np.allclose(broken.predict(x[:8].astype(np.float32), verbose=0), float_out, atol=1e-5)
    broken_run = write_run(base / "broken_run", broken, dataset)
    out = {"dataset": dataset, "good_run": good_run, "broken_run": broken_run}
    for name, run in (("good_bundle", good_run), ("broken_bundle", broken_run)):
        out[name] = base / name
        convert_run(run, out[name], mode="int8", io="uint8", calibration_size=32, eval_size=0, golden=1)
    _CACHE["built"] = out
    return out
