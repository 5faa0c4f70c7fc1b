"""Latency profiles: MAC counting from .tflite and Keras, and the estimate within each profile's stated error."""

import json

import pytest

from edgecnn.search import estimate as est

PROFILES = ("rpi4", "rpi5", "coral-usb", "coral-devboard")


@pytest.mark.parametrize("name", PROFILES)
def test_profile_documents_every_coefficient(name):
    p = est.load_profile(name)
    assert p["kind"] == "estimate"
    assert set(p["ms_per_gmac"]) == {"conv", "depthwise", "fully_connected"}
    assert p["fit_error"] > 0
    assert p["fitted_on"], "a profile names the published figures it was fitted on"
    for point in p["fitted_on"]:
        assert point["source"].startswith("https://"), point
        assert point["published_ms"] > 0


@pytest.mark.parametrize("name", PROFILES)
def test_estimate_within_stated_error_on_fitted_models(name):
    p = est.load_profile(name)
    for point in p["fitted_on"]:
        out = est.estimate(dict(point["macs"]), p)
        assert out["latency_kind"] == "estimate"
        rel = abs(out["latency_ms"] - point["published_ms"]) / point["published_ms"]
        assert rel <= p["fit_error"] + 1e-9, (name, point["model"], out["latency_ms"], point["published_ms"])


@pytest.mark.shared
@pytest.mark.parametrize("name", PROFILES)
def test_estimate_on_the_real_coral_models(name, coral_dir):
    """The MACs stored in the profile are the ones counted on the real Coral file, and the estimate holds."""
    p = est.load_profile(name)
    checked = 0
    for point in p["fitted_on"]:
        if not point.get("coral_file"):
            continue
        counts = est.count_tflite(coral_dir / point["coral_file"])
        assert {t: counts[t] for t in est.OP_TYPES} == point["macs"]
        ms = est.estimate(str(coral_dir / point["coral_file"]), name)["latency_ms"]
        assert abs(ms - point["published_ms"]) / point["published_ms"] <= p["fit_error"] + 1e-9
        checked += 1
    assert checked


@pytest.mark.shared
def test_tflite_counts_match_published_mobilenet_macs(coral_dir):
    # MobileNet papers: v1 0.25/128 ~14 M MACs, v1 0.5/160 ~77 M, v2 1.0/224 ~300 M.
    expected = {"mobilenet_v1_0.25_128_quant.tflite": 14e6, "mobilenet_v1_0.5_160_quant.tflite": 77e6,
                "mobilenet_v2_1.0_224_quant.tflite": 300e6}
    for name, macs in expected.items():
        counts = est.count_tflite(coral_dir / name)
        assert abs(est.total_macs(counts) - macs) / macs < 0.08, (name, est.total_macs(counts))
        assert counts["depthwise"] > 0 and counts["conv"] > counts["depthwise"]


@pytest.mark.shared
def test_keras_count_agrees_with_tflite_count(coral_dir):
    """count_keras (used before training) gives the same MACs as the converted model."""
    from edgecnn.tf import keras

    model = keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, weights=None, classes=1001)
    k = est.count_keras(model)
    t = est.count_tflite(coral_dir / "mobilenet_v1_0.25_128_quant.tflite")
    for op in est.OP_TYPES:
        assert k[op] == t[op], (op, k[op], t[op])


@pytest.mark.shared
def test_edgetpu_custom_op_is_not_counted(coral_dir):
    counts = est.count_tflite(coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    assert counts["uncounted"], "the edgetpu-custom-op has no MAC rule and must be listed, not guessed"


def test_unknown_profile_error():
    with pytest.raises(est.ProfileError, match="unknown latency profile 'rpi9'"):
        est.load_profile("rpi9")


def test_profiles_are_valid_json_files():
    names = sorted(path.stem for path in est.PROFILES_DIR.glob("*.json"))
    assert names == ["coral-devboard", "coral-usb", "rpi4", "rpi5"]
    for name in names:
        assert isinstance(json.loads((est.PROFILES_DIR / f"{name}.json").read_text()), dict)
