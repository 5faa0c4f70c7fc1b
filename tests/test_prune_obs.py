"""edgecnn prune --method obs: the layer rows, exact reconstruction on a known case, a real run."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import cli

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


def _pre_activation(model, name, x):
    """The layer's kernel (and bias) applied to its input, before any activation."""
    from edgecnn.tf import keras

    layer = model.get_layer(name)
    inputs = keras.Model(model.input, layer.input)(x, training=False)
    config = dict(layer.get_config(), activation="linear", name=name + "_linear")
    twin = type(layer).from_config(config)
    twin.build(inputs.shape)
    twin.set_weights(layer.get_weights())
    return inputs, np.asarray(twin(inputs))


def test_rows_times_kernel_is_the_layer(mini_run):
    """The patch rows match each layer kind's own arithmetic (strided 3x3 'same', depthwise, 1x1, dense)."""
    from edgecnn.models.classifier import load_classifier
    from edgecnn.compress.obs import _rows

    model = load_classifier(mini_run / "model.keras")
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    for name in ("conv1", "dw2", "pw2", "conv3", "head_dense"):
        inputs, expected = _pre_activation(model, name, x)
        layer = model.get_layer(name)
        weights = layer.get_weights()
        rows = _rows(layer, inputs)
        if name == "dw2":
            out = np.einsum("nkc,kc->nc", rows, weights[0].reshape(9, -1))
        else:
            out = rows @ weights[0].reshape(-1, weights[0].shape[-1])
        if len(weights) > 1:
            out = out + weights[1]
        np.testing.assert_allclose(out, expected.reshape(out.shape), rtol=1e-4, atol=1e-4)


def test_obs_reconstructs_exactly_when_the_inputs_are_redundant():
    """Inputs 4-7 copy inputs 0-3: dropping one of each pair costs nothing if the twin takes its weight.
    OBS finds that; magnitude pruning of the same layer does not."""
    from edgecnn.compress.allocation import magnitude_mask
    from edgecnn.compress.obs import obs_prune
    from edgecnn.tf import keras

    rng = np.random.default_rng(1)
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(4, name="fc")(inputs)
    model = keras.Model(inputs, outputs)
    kernel = rng.normal(size=(8, 4)).astype(np.float32)
    model.get_layer("fc").set_weights([kernel, rng.normal(size=4).astype(np.float32)])
    base = rng.normal(size=(400, 4)).astype(np.float32)
    x = np.concatenate([base, base], axis=1)
    pruned, report = obs_prune(model, {"fc": 0.5}, x)
    assert report["fc"]["sparsity"] == 0.5 and report["fc"]["intercept"] == "bias"
    new = pruned.get_layer("fc").get_weights()[0]
    assert np.all((new[:4] == 0) != (new[4:] == 0))         # exactly one of each twin pair kept
    want = model.predict(x, verbose=0)
    assert np.abs(pruned.predict(x, verbose=0) - want).mean() < 0.01  # all but the ridge term's shrinkage
    model.get_layer("fc").set_weights([magnitude_mask(kernel, 0.5), model.get_layer("fc").get_weights()[1]])
    assert np.abs(model.predict(x, verbose=0) - want).mean() > 0.3
    np.testing.assert_array_equal(model.get_layer("fc").get_weights()[0] != 0, magnitude_mask(kernel, 0.5) != 0)


@pytest.fixture(scope="module")
def obs_report(mini_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("obs") / "run"
    res = CliRunner().invoke(cli, ["prune", str(mini_run), "--method", "obs", "--sparsity", "0.5",
                                   "--include-depthwise", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_obs_prunes_every_layer_kind_without_training(obs_report, mini_run):
    from edgecnn.models.classifier import load_classifier

    out, report = obs_report
    assert report["method"] == "obs" and report["epochs"] == 0 and report["schedule"]["kind"] == "none"
    layers = report["sparsity"]["layers"]
    assert set(layers) == {"conv1", "dw2", "pw2", "conv3", "head_dense"}
    # half of each kernel, plus the weights on inputs that are always 0 (they solve to exactly 0: free
    # zeros; the small demo model has dead ReLU channels, 24 of its 32 pooled features in one run)
    from edgecnn.compress import retrain
    from edgecnn.compress.obs import _rows
    from edgecnn.run import load_run
    from edgecnn.tf import keras

    child = load_classifier(out / "model.keras")
    train = retrain.split_arrays(load_run(mini_run), "train")[0].astype(np.float32)
    for name, entry in layers.items():
        layer = child.get_layer(name)
        rows = _rows(layer, keras.Model(child.input, layer.input)(train, training=False))
        dead = np.all(rows == 0, axis=0)
        kernel = layer.get_weights()[0]
        free = int(dead.sum()) if rows.ndim == 3 else int(dead.sum()) * kernel.shape[-1]
        zeros = int(np.sum(kernel == 0))
        assert round(0.5 * kernel.size) - 1 <= zeros <= round(0.5 * kernel.size) + free, (name, zeros, free)
    obs = report["obs"]
    assert obs["layers"]["pw2"]["intercept"] == "bn" and obs["layers"]["conv3"]["intercept"] == "bias"
    assert obs["calibration_images"] == obs["layers"]["pw2"]["rows"] > 0
    from edgecnn.compress.prune import format_summary

    assert format_summary(report).startswith(f"Pruned run {out} (obs, one shot): 5 layers, sparsity ")
    # BatchNorm moving means moved by the fitted intercepts; the parent is untouched
    parent = load_classifier(mini_run / "model.keras")
    assert not np.allclose(parent.get_layer("pw2_bn").get_weights()[2], child.get_layer("pw2_bn").get_weights()[2])
    assert not np.any(parent.get_layer("pw2").get_weights()[0] == 0)
    assert report["val_accuracy_after"] >= report["val_accuracy_before"] - 0.1


def test_obs_keeps_outputs_closer_than_magnitude(obs_report, mini_run):
    """Same layers, same sparsity, no training: OBS's outputs stay closer to the unpruned model's."""
    from edgecnn.compress import retrain
    from edgecnn.models.classifier import load_classifier
    from edgecnn.compress.allocation import kl_divergence, magnitude_mask
    from edgecnn.run import load_run

    out, report = obs_report
    x = retrain.split_arrays(load_run(mini_run), "val")[0].astype(np.float32)
    parent, obs = load_classifier(mini_run / "model.keras"), load_classifier(out / "model.keras")
    reference = parent.predict(x, verbose=0)
    for name in report["sparsity"]["layers"]:
        weights = parent.get_layer(name).get_weights()
        parent.get_layer(name).set_weights([magnitude_mask(weights[0], 0.5)] + weights[1:])
    kl_obs, kl_mag = kl_divergence(reference, obs.predict(x, verbose=0)), kl_divergence(reference,
                                                                                        parent.predict(x, verbose=0))
    assert kl_obs < 0.5 * kl_mag, (kl_obs, kl_mag)


def test_obs_then_fine_tuning_keeps_the_mask(obs_report, tmp_path):
    from edgecnn.models.classifier import load_classifier
    from edgecnn.compress.prune import prune_run

    out, _ = obs_report
    report = prune_run(_parent_of(out), tmp_path / "ft",
                       method="obs", epochs=1, lr=1e-4, include_depthwise=True, augment="none")
    assert report["schedule"] == {"kind": "fixed_mask", "epochs": 1}
    one_shot, tuned = load_classifier(out / "model.keras"), load_classifier(tmp_path / "ft" / "model.keras")
    for name in ("conv1", "dw2", "pw2", "conv3", "head_dense"):
        a, b = one_shot.get_layer(name).get_weights()[0], tuned.get_layer(name).get_weights()[0]
        np.testing.assert_array_equal(a == 0, b == 0)       # the same zeros
    assert any(not np.allclose(one_shot.get_layer(n).get_weights()[0], tuned.get_layer(n).get_weights()[0])
               for n in ("pw2", "conv3"))                  # and the kept weights trained


def _parent_of(run_dir):
    from edgecnn.run import load_run

    return load_run(run_dir)["parent"]["run_dir"]


def test_obs_errors(mini_run, tmp_path):
    def run(*args):
        return CliRunner().invoke(cli, ["prune", str(mini_run), "--out", str(tmp_path / "r"), *args])

    res = run("--method", "obs", "--m-by-n", "2:4")
    assert res.exit_code == 2 and res.stderr == ("Error: --m-by-n is tfmot's structured pruning; use it with "
                                                 "--method magnitude.\n")
    res = run("--epochs", "0")
    assert res.exit_code == 2 and res.stderr == ("Error: --epochs 0: magnitude pruning needs at least 1 epoch of "
                                                 "fine-tuning (or use --method obs, which needs none).\n")
    res = run("--include-depthwise")
    assert res.exit_code == 2 and res.stderr == ("Error: --include-depthwise: tfmot does not prune DepthwiseConv2D "
                                                 "kernels; use --method obs, which does.\n")
    assert not (tmp_path / "r").exists()


def test_obs_sensitivity_allocation_measures_obs_damage(mini_run, tmp_path):
    """With --method obs the allocation measures each layer pruned by OBS, which hurts less than
    magnitude pruning at the same level; the zeros budget is kept."""
    from edgecnn.compress.prune import prune_run
    from edgecnn.run import load_run

    report = prune_run(mini_run, tmp_path / "r", method="obs", allocation="sensitivity", exclude=["conv1"],
                       obs_copies=1)
    train_images = len(load_run(mini_run)["data"]["splits"]["train"])
    assert report["obs"]["calibration_images"] == 3 * train_images   # images, mirrored, one augmented copy
    alloc = report["sensitivity"]
    assert alloc["pruner"] == "obs" and set(alloc["per_layer"]) == set(report["sparsity"]["layers"])
    layers = report["sparsity"]["layers"]
    zeros = sum(entry["sparsity"] * entry["params"] for entry in layers.values())
    assert zeros >= 0.5 * report["sparsity"]["pruned_params"] - len(layers)
    magnitude = prune_run(mini_run, tmp_path / "m", allocation="sensitivity", exclude=["conv1"], epochs=1,
                          augment="none")["sensitivity"]
    assert magnitude["pruner"] == "magnitude"
    obs_total = sum(sum(d.values()) for d in alloc["damage"].values())
    mag_total = sum(sum(d.values()) for d in magnitude["damage"].values())
    assert obs_total < 0.5 * mag_total, (obs_total, mag_total)
