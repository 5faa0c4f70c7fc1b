"""Corruptions (numpy + OpenCV), the robustness report, and FGSM on a tiny real Keras model."""

import numpy as np
import pytest

from edgecnn.evaluation.robustness import KINDS, corrupt, plot_robustness, robustness_report
from edgecnn.data.synth import make_image


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.stack([make_image(c, np.random.default_rng([4, i]), 48)
                     for i, c in enumerate(["circle", "square", "triangle", "stripes"] * 4)])


@pytest.mark.parametrize("kind", KINDS)
def test_corruption_contract(images, kind):
    original = images.copy()
    diffs = []
    for severity in range(1, 6):
        out = corrupt(images, kind, severity, seed=3)
        assert out.shape == images.shape and out.dtype == np.uint8
        assert (out == corrupt(images, kind, severity, seed=3)).all()  # deterministic
        diffs.append(float(np.abs(out.astype(int) - images).mean()))
    # Monotone: each severity changes the images at least as much as the one before (small tolerance for
    # JPEG's non-linear quantisation), and severity 5 clearly more than severity 1.
    assert all(b >= a * 0.97 for a, b in zip(diffs, diffs[1:])), diffs
    assert diffs[-1] > 1.5 * diffs[0] and diffs[0] > 0
    assert (out != images).any(axis=(1, 2, 3)).all()  # severity 5 changes every image, not just the mean
    assert (images == original).all()  # the input is not corrupted in place
    single = corrupt(images[0], kind, 2, seed=3)  # one H x W x 3 image
    assert single.shape == images[0].shape and single.dtype == np.uint8


def test_seed_changes_random_corruptions(images):
    for kind in ("gaussian_noise", "occlusion", "rotation", "motion_blur"):
        assert not (corrupt(images, kind, 3, seed=0) == corrupt(images, kind, 3, seed=1)).all(), kind
    assert (corrupt(images, "contrast", 3, seed=0) == corrupt(images, "contrast", 3, seed=1)).all()


def test_corrupt_errors(images):
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corrupt(images, "fog", 1)
    with pytest.raises(ValueError, match="severity 6 must be an integer from 1"):
        corrupt(images, "jpeg", 6)
    with pytest.raises(ValueError, match="takes uint8 images"):
        corrupt(images.astype(np.float32), "jpeg", 1)


def brightness_model(x):
    """A 'model' that classifies by mean brightness: fragile to brightness, blind to blur."""
    m = x.reshape(len(x), -1).mean(axis=1)
    p1 = 1 / (1 + np.exp(-(m - 100) / 5))
    return np.stack([1 - p1, p1], axis=1)


def test_robustness_report(images):
    x = images
    y = (x.reshape(len(x), -1).mean(axis=1) > 100).astype(int)

    def int8_like(batch):  # a copy that is worse on bright images, as a badly quantized model might be
        p = brightness_model(batch)
        bright = batch.reshape(len(batch), -1).mean(axis=1) > 130
        p[bright] = p[bright][:, ::-1]
        return p

    report = robustness_report({"float": brightness_model, "int8": int8_like}, x, y,
                               kinds=["brightness", "defocus_blur"], severities=[1, 3, 5], seed=0)
    assert report["clean"]["float"] == 1.0
    assert report["accuracy"]["float"]["defocus_blur"] == {1: 1.0, 3: 1.0, 5: 1.0}
    assert report["accuracy"]["float"]["brightness"][5] < 1.0
    assert report["fragile_to"]["float"][0]["kind"] == "brightness"
    text = report["summary"]
    assert "'float': clean accuracy 100.0%" in text and "Most fragile to over-bright images (brightness:" in text
    assert "Robust to: defocus_blur." in text
    assert "'int8' vs 'float': clean" in text and "under brightness (" in text
    png = plot_robustness(report, title="test")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    same = robustness_report({"a": brightness_model, "b": brightness_model}, x, y, kinds=["jpeg"], severities=[1])
    assert "so quantization did not make it more fragile" in same["summary"]


def test_fgsm_lowers_accuracy_of_a_real_keras_model():
    from edgecnn.evaluation.adversarial import fgsm, fgsm_report
    from edgecnn.tf import keras, tf

    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    # Two classes told apart by the red-minus-blue balance; a tiny model on raw pixels learns it.
    n = 128
    y = rng.integers(0, 2, n)
    x = rng.integers(60, 196, (n, 8, 8, 3)).astype(np.int16)
    x[..., 0] += np.where(y == 1, 30, -30)[:, None, None]
    x[..., 2] -= np.where(y == 1, 30, -30)[:, None, None]
    x = np.clip(x, 0, 255).astype(np.uint8)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype(np.float32), y, epochs=30, verbose=0)
    clean = float(np.mean(model.predict(x.astype(np.float32), verbose=0).argmax(1) == y))
    adv = fgsm(model, x, y, epsilon=40)
    assert adv.dtype == np.uint8 and adv.shape == x.shape
    assert np.abs(adv.astype(int) - x).max() <= 40
    attacked = float(np.mean(model.predict(adv.astype(np.float32), verbose=0).argmax(1) == y))
    assert clean >= 0.9 and attacked < clean - 0.3
    report = fgsm_report(model, x, y, epsilons=[10, 40])
    acc = report["accuracy"]["model"]
    assert report["epsilons"] == [0.0, 10.0, 40.0] and acc[0] == clean and acc[2] < acc[0]
