"""The manifest's model section as one type (edgecnn.bundle.model.ModelSpec): each default once,
a bad value named with the fix. Board-safe: runs in the board venvs too."""

import pytest

from edgecnn.bundle.model import DEFAULT_COLOR_ORDER, DEFAULT_RESIZE, MODEL, ModelSpec
from edgecnn.errors import BundleError


def test_a_sparse_section_takes_the_one_set_of_defaults():
    spec = ModelSpec.from_manifest({"model": {"input_size": [96, 128], "edgetpu": None}})
    assert spec.input_size == (96, 128) and spec.resize == DEFAULT_RESIZE and spec.color_order == DEFAULT_COLOR_ORDER
    assert spec.tflite == MODEL and spec.edgetpu is None and spec.fallbacks == () and spec.files() == [MODEL]
    section = spec.to_section()
    assert section["input_size"] == [96, 128] and section["fallbacks"] == [] and section["input_std"] == 1.0
    assert ModelSpec.from_manifest({"model": section}) == spec  # a written section reads back the same


@pytest.mark.parametrize("field, value, fragment", [
    ("resize", "cubic", "resize 'cubic' (use one of bilinear, area, nearest)"),
    ("color_order", "RGBA", "color_order 'RGBA' (use RGB or BGR)"),
    ("quantization", "int4", "quantization 'int4'"),
    ("input_size", [0, 64], "input_size [0, 64]"),
    ("input_std", 0, "input_std 0 (a number above 0)"),
])
def test_a_bad_value_is_a_bundle_error_naming_it(field, value, fragment):
    with pytest.raises(BundleError, match="model section has") as info:
        ModelSpec(**{"input_size": (64, 64), field: value})
    assert fragment in str(info.value)


def test_the_files_it_names_put_the_cpu_model_first():
    spec = ModelSpec(input_size=(64, 64), edgetpu="model_edgetpu.tflite", fallbacks=["fallback0.tflite"])
    assert spec.files() == [MODEL, "model_edgetpu.tflite", "fallback0.tflite"]
