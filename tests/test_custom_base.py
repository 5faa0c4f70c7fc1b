"""--base models of unusual shapes: ending in a pooling layer (accepted, trains, converts), one layer
(trains), no layer at all or a feature map of the wrong rank (one clear error)."""

import pytest

from cli_helpers import assert_user_error, edgecnn

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

TRAIN = ["--epochs", "2", "--fine-tune-epochs", "1", "--batch-size", "16", "--patience", "3"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    from edgecnn.tf import keras

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("bases")

    def save(name, build):
        inputs = keras.Input((32, 32, 3))
        path = root / f"{name}.keras"
        keras.Model(inputs, build(inputs), name=name).save(path)
        return path

    def conv(x, filters=8):
        return keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)

    return {
        "pooled": save("pooled", lambda i: keras.layers.GlobalAveragePooling2D()(conv(conv(i), 16))),
        "max_pooled": save("max_pooled", lambda i: keras.layers.GlobalMaxPooling2D()(conv(i))),
        "one_layer": save("one_layer", lambda i: conv(i)),
        "identity": save("identity", lambda i: i),
        "sequence": save("sequence", lambda i: keras.layers.Reshape((256, 8))(conv(i))),
    }


def test_a_base_that_ends_in_global_pooling_trains_and_converts(bases, demo_data, tmp_path):
    run = tmp_path / "run"
    proc = edgecnn("finetune", demo_data, "--out", run, "--base", bases["pooled"], *TRAIN, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = tmp_path / "bundle"
    conv = edgecnn("convert", run, "--out", bundle, "--calibration-size", "16", "--eval-size", "16", "-q",
                   timeout=400)
    assert conv.returncode == 0, conv.stderr[-3000:]
    verify = edgecnn("bundle", "verify", bundle, timeout=120)
    assert verify.returncode == 0, verify.stderr[-2000:]


def test_a_base_that_ends_in_global_max_pooling_trains(bases, demo_data, tmp_path):
    proc = edgecnn("finetune", demo_data, "--out", tmp_path / "run", "--base", bases["max_pooled"], *TRAIN,
                   "--fine-tune-epochs", "0", timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_one_layer_base_trains(bases, demo_data, tmp_path):
    proc = edgecnn("finetune", demo_data, "--out", tmp_path / "run", "--base", bases["one_layer"], *TRAIN,
                   timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "model.keras").is_file()


def test_a_base_without_layers_is_refused(bases, demo_data, tmp_path):
    proc = edgecnn("finetune", demo_data, "--out", tmp_path / "run", "--base", bases["identity"], *TRAIN)
    assert_user_error(proc, f"--base '{bases['identity']}' has no layers besides its input")


def test_a_base_whose_output_is_not_a_feature_map_is_refused(bases, demo_data, tmp_path):
    proc = edgecnn("finetune", demo_data, "--out", tmp_path / "run", "--base", bases["sequence"], *TRAIN)
    assert_user_error(proc, f"--base '{bases['sequence']}' outputs shape (None, 256, 8)", "feature map")
