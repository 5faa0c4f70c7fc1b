"""edgecnn prune: sparsity reached, a normal child run, 2:4 structure, reports, errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import cli

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


@pytest.fixture(scope="session")
def pruned_run(mini_run, tmp_path_factory):
    from edgecnn.compress.prune import prune_run

    out = tmp_path_factory.mktemp("pruned") / "run"
    prune_run(mini_run, out, sparsity=0.5, epochs=3, lr=1e-3, batch_size=32, augment="none", exclude=["conv1"])
    return out


def test_pruning_reaches_the_sparsity_and_writes_a_normal_run(pruned_run, mini_run):
    from edgecnn.models.classifier import load_classifier
    from edgecnn.run import load_run

    run = load_run(pruned_run)
    assert sorted(p.name for p in pruned_run.iterdir()) == sorted(
        ["model.keras", "run.json", "labels.txt", "history.csv", "metrics.json", "confusion_matrix.png"])
    assert run["parent"]["run_dir"] == str(mini_run.resolve()) and run["parent"]["step"] == "finetune"
    p = run["pruning"]
    assert p["schedule"]["kind"] == "polynomial" and p["schedule"]["end_step"] < p["schedule"]["total_steps"]
    assert set(p["sparsity"]["layers"]) == {"pw2", "conv3", "head_dense"}     # conv1 excluded, dw not pruned
    model = load_classifier(pruned_run / "model.keras")
    for name, entry in p["sparsity"]["layers"].items():
        kernel = model.get_layer(name).get_weights()[0]
        assert entry["sparsity"] == pytest.approx(np.mean(kernel == 0)) and 0.49 <= entry["sparsity"] <= 0.51
    assert not np.any(model.get_layer("conv1").get_weights()[0] == 0)
    assert 0.4 < p["sparsity"]["overall_sparsity"] < 0.5
    assert p["weights_gzip_bytes_after"] < 0.75 * p["weights_gzip_bytes_before"]
    assert p["val_accuracy_before"] > 0.5 and p["val_accuracy_after"] >= p["val_accuracy_before"] - 0.2
    assert json.loads((pruned_run / "metrics.json").read_text())["val"]["accuracy"] == p["val_accuracy_after"]


def test_pruned_run_converts_and_zeros_survive_int8(pruned_run, tmp_path):
    import gzip

    from edgecnn.compress.convert import convert_run

    result = convert_run(pruned_run, tmp_path / "b", calibration_size=16, eval_size=0, golden=0)
    assert result["source"]["pruning"]["target_sparsity"] == 0.5
    content = (tmp_path / "b" / "model.tflite").read_bytes()
    assert len(gzip.compress(content)) < 0.8 * len(content)


def test_m_by_n_2_4(mini_run, tmp_path):
    res = CliRunner().invoke(cli, ["prune", str(mini_run), "--m-by-n", "2:4", "--epochs", "1", "--lr", "1e-3",
                                   "--exclude", "conv1", "--exclude", "head_*", "--out", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["m_by_n"] == [2, 4] and set(report["sparsity"]["layers"]) == {"pw2", "conv3"}
    for entry in report["sparsity"]["layers"].values():
        assert entry["m_by_n_ok"] is True and entry["sparsity"] >= 0.5


def test_prune_errors(mini_run, tmp_path):
    def run(*args):
        return CliRunner().invoke(cli, ["prune", str(mini_run), "--out", str(tmp_path / "r"), *args])

    res = run("--sparsity", "1.5")
    assert res.exit_code == 2 and "Error: --sparsity 1.5 must be between 0 and 1" in res.stderr
    res = run("--m-by-n", "4:2")
    assert res.exit_code == 2 and res.stderr == ("Error: --m-by-n '4:2': M must be between 1 and N-1 (for example "
                                                 "2:4).\n")
    res = run("--exclude", "*")
    assert res.exit_code == 2 and "Error: no layer to prune: every Conv2D/Dense layer matches --exclude ['*']" \
        in res.stderr
    assert not (tmp_path / "r").exists()


def test_train_layers_pruned_keeps_the_dense_layers(mini_run, tmp_path):
    from edgecnn.models.classifier import load_classifier
    from edgecnn.compress.prune import prune_run

    report = prune_run(mini_run, tmp_path / "r", sparsity=0.5, epochs=1, lr=1e-3, augment="none", min_params=1000,
                       train_layers="pruned")
    assert set(report["sparsity"]["layers"]) == {"conv3"} and report["train_layers"] == "pruned"
    before, after = load_classifier(mini_run / "model.keras"), load_classifier(tmp_path / "r" / "model.keras")
    for name in ("conv1", "dw2", "pw2"):            # below --min-params: not pruned, not trained
        np.testing.assert_array_equal(before.get_layer(name).get_weights()[0], after.get_layer(name).get_weights()[0])
    assert not np.array_equal(before.get_layer("head_dense").get_weights()[0],
                              after.get_layer("head_dense").get_weights()[0])


def test_allocate_spreads_zeros_where_they_hurt_least():
    from edgecnn.compress.allocation import allocate, levels_for, magnitude_mask

    assert levels_for(0.5) == [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    # 'fragile' loses a lot beyond 0.2, 'robust' nothing up to 0.8: the zeros go to 'robust'
    levels = levels_for(0.5)
    damage = {"fragile": {lv: (0.0 if lv <= 0.2 else 10.0 * lv) for lv in levels},
              "robust": {lv: (0.0 if lv <= 0.8 else 1.0) for lv in levels}}
    params = {"fragile": 100, "robust": 100}
    per_layer = allocate(damage, params, target=0.5)
    assert per_layer == {"fragile": 0.2, "robust": 0.8}  # 20 + 80 zeros = the uniform 50% budget
    kernel = np.arange(1, 11, dtype=np.float32).reshape(2, 5)
    assert np.count_nonzero(magnitude_mask(kernel, 0.3) == 0) == 3 and magnitude_mask(kernel, 0.3)[0, 0] == 0


def test_sensitivity_allocation_keeps_the_number_of_zeros(mini_run, tmp_path):
    from edgecnn.compress.prune import prune_run

    report = prune_run(mini_run, tmp_path / "r", sparsity=0.5, epochs=2, lr=1e-3, augment="none",
                       exclude=["conv1"], allocation="sensitivity")
    per_layer = report["sensitivity"]["per_layer"]
    assert set(per_layer) == set(report["sparsity"]["layers"]) and report["allocation"] == "sensitivity"
    layers = report["sparsity"]["layers"]
    for name, entry in layers.items():  # each layer reaches its own allocated sparsity
        assert entry["sparsity"] == pytest.approx(per_layer[name], abs=0.02)
    zeros = sum(entry["sparsity"] * entry["params"] for entry in layers.values())
    assert zeros >= 0.5 * report["sparsity"]["pruned_params"] - len(layers)  # the uniform budget, spread
    damage = report["sensitivity"]["damage"]
    assert all(set(d) == {"0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"} for d in damage.values())
    res = CliRunner().invoke(cli, ["prune", str(mini_run), "--out", str(tmp_path / "r2"), "--allocation",
                                   "sensitivity", "--m-by-n", "2:4"])
    assert res.exit_code == 2 and res.stderr == ("Error: --allocation sensitivity sets a sparsity per layer; --m-by-n "
                                                 "fixes it at M/N. Use one.\n")
