"""Augmentation for phase 2, applied in the tf.data pipeline with Keras preprocessing layers.

It is never part of the saved model: the model stays a plain graph that converts to TFLite.
Each transform can be switched off, because a flip or a rotation can change what a picture shows
(a left arrow, a digit 6).
"""

from edgecnn.tf import keras

# strength -> (rotation factor in turns, zoom factor, contrast factor, brightness factor)
_LEVELS = {"light": (0.03, 0.1, 0.1, 0.1), "strong": (0.1, 0.25, 0.3, 0.25)}


def describe(level: str, flip=True, rotate=True, zoom=True, color=True) -> dict:
    """The transforms used, for run.json (empty when augmentation is off)."""
    if level == "none":
        return {}
    rot, zm, contrast, bright = _LEVELS[level]
    out = {}
    if flip:
        out["flip"] = "horizontal"
    if rotate:
        out["rotate"] = rot
    if zoom:
        out["zoom"] = zm
    if color:
        out["contrast"], out["brightness"] = contrast, bright
    return out


def make_augmenter(level: str, seed: int, flip=True, rotate=True, zoom=True, color=True):
    """A Sequential of random layers for float images in [0, 255], or None when nothing applies."""
    spec = describe(level, flip, rotate, zoom, color)
    f32 = {"dtype": "float32"}  # runs in tf.data on the CPU, whatever the mixed-precision policy
    layers = []
    if "flip" in spec:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, **f32))
    if "rotate" in spec:
        layers.append(keras.layers.RandomRotation(spec["rotate"], fill_mode="reflect", seed=seed + 1, **f32))
    if "zoom" in spec:
        layers.append(keras.layers.RandomZoom(spec["zoom"], fill_mode="reflect", seed=seed + 2, **f32))
    if "contrast" in spec:
        layers.append(keras.layers.RandomContrast(spec["contrast"], seed=seed + 3, **f32))
        layers.append(keras.layers.RandomBrightness(spec["brightness"], value_range=(0, 255), seed=seed + 4, **f32))
    if not layers:
        return None
    return keras.Sequential(layers, name="augment")
