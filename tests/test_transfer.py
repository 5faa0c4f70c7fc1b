"""Real transfer learning: hymenoptera (ants vs bees) on the pretrained MobileNet v1 0.5/160 base."""

import json

import pytest

from edgecnn.rundir import load_run

pytestmark = pytest.mark.shared


def test_pretrained_head_reaches_085_on_hymenoptera(hymenoptera_run):
    metrics = json.loads((hymenoptera_run / "metrics.json").read_text())
    # README of ../shared: ~0.88 for v1 after a few head epochs; majority baseline 0.54.
    assert metrics["val"]["accuracy"] >= 0.85, metrics["val"]["accuracy"]
    assert metrics["val"]["n"] == 153 and metrics["test"] is None


def test_hymenoptera_run_records_its_splits_and_the_skipped_gif(hymenoptera_run):
    run = load_run(hymenoptera_run)
    assert run["labels"] == ["ants", "bees"]
    assert run["data"]["layout"] == "splits"
    assert run["data"]["class_counts"]["train"] == {"ants": 123, "bees": 121}
    assert any(s["path"].endswith("imageNotFound.gif") for s in run["data"]["skipped"])
    assert run["timings"]["features_cached"] is False and run["timings"]["phase2_s"] == 0.0
    assert run["model"]["backbone"] == "mobilenet_v1" and run["preprocess"]["input_size"] == [160, 160]
