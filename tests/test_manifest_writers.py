"""One owner of the manifest's model section (issue 14): `edgecnn convert`, `edgecnn bundle wrap` and
`edgecnn search --export` all build it through edgecnn.bundle.model.ModelSpec, so the sections hold
the same keys and the same defaults."""

from edgecnn.bundle.manifest import verify_bundle
from edgecnn.bundle.model import DEFAULT_RESIZE, ModelSpec
import pytest

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)


def test_convert_wrap_and_search_export_write_the_same_model_section(tmp_path, demo_data, tiny_bundle):
    from edgecnn.devices.wrap import wrap_tflite
    from edgecnn.search.export import export_trial

    converted = verify_bundle(tiny_bundle)
    wrapped = verify_bundle(wrap_tflite(tiny_bundle / "model.tflite", converted["labels"], tmp_path / "wrapped"))
    record = {"number": 7, "config": {"backbone": "mobilenet_v1", "alpha": 0.25, "input_size": 64, "lr": 1e-3,
                                      "batch_size": 16}}
    result = export_trial(demo_data, tmp_path / "search", record, weights="none",
                          options={"epochs": 1, "fine_tune_epochs": 0, "patience": 1, "seed": 0})
    exported = verify_bundle(result["bundle"])
    keys = set(ModelSpec.__dataclass_fields__)
    for name, manifest in (("convert", converted), ("bundle wrap", wrapped), ("search export", exported)):
        assert set(manifest["model"]) == keys, name
        assert ModelSpec.from_manifest(manifest).to_section() == manifest["model"], name
    # the defaults are one set: wrap's resize default is the training resize convert records
    assert wrapped["model"]["resize"] == converted["model"]["resize"] == exported["model"]["resize"] == DEFAULT_RESIZE
    assert exported["model"]["input_size"] == [64, 64] and exported["source"]["run_dir"] == result["run_dir"]
    # what only a conversion knows is there, and None for a wrapped model
    assert converted["model"]["tflite_report"]["input"]["dtype"] == "uint8" and wrapped["model"]["tflite_report"] is None
