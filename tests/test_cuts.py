"""Cutting the pretrained base (--cut-at, probe-cuts): block-end cut points, truncated graphs that equal
today's model at the last layer, a probe pass equal to separate truncated models, integer-only int8
bundles that pass the board's self-test, `auto` recorded in run.json, and the search dimension."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgecnn.errors import ModelError

SMALL = {"mobilenet_v1": dict(alpha=0.25, input_size=64), "mobilenet_v2": dict(alpha=0.35, input_size=64),
         "mobilenet_v3_small": dict(alpha=0.75, input_size=64)}


def _base(backbone):
    from edgecnn.models.classifier import load_base

    return load_base(backbone, weights="none", **SMALL[backbone])


def test_cut_points_are_the_block_ends_and_the_last_is_the_whole_base():
    from edgecnn.models.cuts import cut_points

    v1 = _base("mobilenet_v1")
    assert cut_points(v1.model, v1.cut_pattern) == [f"conv_pw_{i}_relu" for i in range(1, 14)]
    v2 = _base("mobilenet_v2")
    points = cut_points(v2.model, v2.cut_pattern)
    # a residual block ends at its add (its projection is crossed by the skip connection); others at the projection
    assert "block_2_add" in points and "block_2_project_BN" not in points and "block_3_project_BN" in points
    assert points[0] == "expanded_conv_project_BN" and points[-1] == "out_relu" and len(points) == 18
    v3 = _base("mobilenet_v3_small")
    points = cut_points(v3.model, v3.cut_pattern)
    assert points[-1] == v3.model.layers[-1].name and "expanded_conv_2/Add" in points
    assert "expanded_conv_2/project/BatchNorm" not in points


def test_a_cut_at_the_last_layer_is_todays_model():
    from edgecnn.models.classifier import build_classifier
    from edgecnn.tf import keras

    keras.utils.set_random_seed(3)
    plain, plain_cfg = build_classifier(3, "mobilenet_v2", weights="none", **SMALL["mobilenet_v2"])
    keras.utils.set_random_seed(3)
    cut, cut_cfg = build_classifier(3, "mobilenet_v2", weights="none", cut_at=-1, **SMALL["mobilenet_v2"])
    assert cut_cfg["cut_at"] is None and plain_cfg["cut_at"] is None
    assert cut_cfg["base_layers"] == plain_cfg["base_layers"]
    assert all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), cut.get_weights()))
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.float32)
    assert np.array_equal(plain(x, training=False).numpy(), cut(x, training=False).numpy())


def test_a_cut_drops_everything_after_it_and_stays_one_flat_graph():
    from edgecnn.models.classifier import build_classifier
    from edgecnn.tf import keras

    full, _ = build_classifier(3, "mobilenet_v2", weights="none", **SMALL["mobilenet_v2"])
    model, config = build_classifier(3, "mobilenet_v2", weights="none", cut_at="block_6_project_BN",
                                     **SMALL["mobilenet_v2"])
    assert config["cut_at"] == "block_6_project_BN" and config["base_layers"][-1] == "block_6_project_BN"
    names = {layer.name for layer in model.layers}
    assert "block_7_expand" not in names and "out_relu" not in names
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)  # flat: tfmot can wrap it
    assert model.count_params() < full.count_params() / 5
    assert config["unfreeze_from"] is None  # the registry's block_15_expand is cut off


def test_a_bad_cut_names_the_value_and_the_candidates():
    from edgecnn.models.classifier import build_classifier

    with pytest.raises(ModelError, match=r"--cut-at 'block_6_expand' is a layer .* not a block boundary.*block_6_project_BN"):
        build_classifier(3, "mobilenet_v2", weights="none", cut_at="block_6_expand", **SMALL["mobilenet_v2"])
    with pytest.raises(ModelError, match=r"--cut-at '40' is not a cut point .* index from 0 to 17"):
        build_classifier(3, "mobilenet_v2", weights="none", cut_at=40, **SMALL["mobilenet_v2"])


def test_the_probe_pass_gives_each_cut_the_features_of_its_truncated_model():
    from edgecnn.models.classifier import build_classifier, feature_extractor
    from edgecnn.train.cut_probe import features_at_cuts, probe_model

    found = _base("mobilenet_v2")
    model, names = probe_model(found)
    images = np.random.default_rng(1).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    feats = features_at_cuts(model, names, {"train": images[:4], "val": images[4:]}, batch_size=4)
    weights = {layer.name: layer.get_weights() for layer in found.model.layers}
    for k in (0, 5, 12, len(names) - 1):
        cut, _ = build_classifier(2, "mobilenet_v2", weights="none", cut_at=k, **SMALL["mobilenet_v2"])
        for layer in cut.layers:
            if layer.name in weights:
                layer.set_weights(weights[layer.name])
        expect = feature_extractor(cut).predict(images.astype(np.float32), verbose=0)
        got = np.concatenate([feats["train"][k], feats["val"][k]])
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5, err_msg=names[k])


def test_auto_picks_the_smallest_cut_within_the_drop():
    from edgecnn.train.cut_probe import choose

    rows = [{"index": 0, "params": 10, "val_accuracy": 0.70}, {"index": 1, "params": 50, "val_accuracy": 0.905},
            {"index": 2, "params": 90, "val_accuracy": 0.91}, {"index": 3, "params": 200, "val_accuracy": 0.90}]
    assert choose(rows, 1.0)["index"] == 1
    assert choose(rows, 0.0)["index"] == 2
    assert choose(rows, 30.0)["index"] == 0


def test_the_search_space_has_the_cut_as_a_dimension():
    from edgecnn.search.space import SpaceError, build_space
    from edgecnn.search.trial_options import trial_options

    space = build_space(None, {"bases": ["mobilenet_v2:0.35:96"], "cut_at": [-1, -3]})
    assert space["cut_at"] == [-1, -3]
    config = {"backbone": "mobilenet_v2", "alpha": 0.35, "input_size": 96, "lr": 1e-3, "cut_at": -3}
    assert trial_options(config, None)["cut_at"] == "-3"
    assert "cut_at" not in trial_options(dict(config, cut_at=-1), None)  # the whole base: finetune's default
    with pytest.raises(SpaceError, match="lists 'auto'"):
        build_space(None, {"bases": ["mobilenet_v2:0.35:96"], "cut_at": ["auto"]})


@pytest.mark.slow
@pytest.mark.parametrize("backbone,cut", [("mobilenet_v1", "conv_pw_7_relu"), ("mobilenet_v2", "block_9_add"),
                                          ("mobilenet_v3_small", "expanded_conv_5/Add")])
def test_cut_models_convert_to_integer_only_int8_and_pass_the_self_test(backbone, cut, demo_data, tmp_path):
    from edgecnn.compress.convert import convert_run
    from edgecnn.converters.flatbuffer import float_ops, read_tflite
    from edgecnn.devices.selftest import self_test
    from edgecnn.train.finetune import finetune

    run = tmp_path / "run"
    finetune(demo_data, run, quiet=True, backbone=backbone, weights="none", epochs=2, fine_tune_epochs=0,
             batch_size=32, cut_at=cut, **SMALL[backbone])
    assert json.loads((run / "run.json").read_text())["model"]["cut_at"] == cut
    bundle = tmp_path / "bundle"
    convert_run(run, bundle, mode="int8", calibration_size=32, eval_size=32, golden=2)
    assert float_ops(read_tflite(bundle / "model.tflite"), allow_boundary=False) == []
    manifest = json.loads((bundle / "edgecnn.json").read_text())
    assert manifest["source"]["cut_at"] == cut
    report = self_test(bundle)
    assert report["ok"], report["errors"]


@pytest.mark.slow
def test_finetune_cut_at_auto_probes_chooses_and_records(demo_data, tmp_path):
    from edgecnn.train.finetune import finetune

    run = tmp_path / "run"
    finetune(demo_data, run, quiet=True, backbone="mobilenet_v1", weights="none", epochs=2, fine_tune_epochs=0,
             batch_size=32, cut_at="auto", cut_max_drop=100.0, alpha=0.25, input_size=64)
    info = json.loads((run / "run.json").read_text())
    probe = info["cut_probe"]
    assert [r["cut_at"] for r in probe["cuts"]] == [f"conv_pw_{i}_relu" for i in range(1, 14)]
    assert probe["auto"]["index"] == 0  # within 100 pp of the best, the smallest: the first block
    assert info["model"]["cut_at"] == "conv_pw_1_relu" and info["model"]["base_layers"][-1] == "conv_pw_1_relu"
    assert sorted(p.name for p in (run / ".cache").glob("features-*.npz")).__len__() == 2  # probe + head pass


@pytest.mark.slow
def test_probe_cuts_command_prints_json_and_writes_the_plot(demo_data, tmp_path):
    plot = tmp_path / "cuts.png"
    res = subprocess.run([sys.executable, "-m", "edgecnn", "probe-cuts", str(demo_data), "--backbone", "mobilenet_v1",
                          "--alpha", "0.25", "--input-size", "64", "--weights", "none", "--target", "rpi4",
                          "--plot", str(plot), "--json"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    rows = result["cuts"]
    assert len(rows) == 13 and all(r["latency_kind"] == "estimate" for r in rows)
    assert [r["params"] for r in rows] == sorted(r["params"] for r in rows)
    assert [r["macs"] for r in rows] == sorted(r["macs"] for r in rows)
    assert result["auto"]["index"] in {r["index"] for r in rows}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

