"""Manifests a careless edit or an attacker could write: each is refused on load with one `Error:` line
that names the field and the fix (exit 2, no traceback), by `run`, `run --self-test` and `bundle verify`."""

import json
import shutil
import subprocess

import pytest
from board_helpers import ASSETS, edgecnn_cmd

from edgecnn.bundle.manifest import load_manifest, sha256_file, update_manifest, verify_bundle, write_bundle
from edgecnn.errors import BundleError

pytestmark = pytest.mark.device


def _edit(bundle, change):
    path = bundle / "edgecnn.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    return bundle


def _set(section, key, value):
    return lambda m: m[section].__setitem__(key, value)


BAD_VALUES = [  # (change, what the error must say)
    (_set("decision", "thresholds", [0.5, 0.5]), "decision.thresholds has 2 entries for 3 labels"),
    (_set("decision", "thresholds", ["0.5", 0.5, 0.5]), "decision.thresholds is"),
    (_set("decision", "temperature", 0), "decision.temperature is 0 (a number above 0"),
    (_set("decision", "temperature", "1.5"), 'decision.temperature is "1.5"'),
    (_set("decision", "margin", -1), "decision.margin is -1"),
    (_set("decision", "smoothing", {"method": "median"}), 'decision.smoothing.method is "median"'),
    (_set("decision", "smoothing", {"method": "ema", "window": 0}), "decision.smoothing.window is 0"),
    (_set("model", "resize", "lanczos"), 'model.resize is "lanczos"; use one of bilinear, area, nearest'),
    (_set("model", "color_order", "RGBA"), 'model.color_order is "RGBA"'),
    (_set("model", "input_std", 0), "model.input_std is 0"),
    (_set("model", "fallbacks", "fallback0.tflite"), "model.fallbacks is"),
    (lambda m: m.__setitem__("labels", "red,green,blue"), "labels must be a non-empty list"),
    (lambda m: m.__setitem__("schema_version", "1"), 'schema_version is \'1\''),
    (lambda m: m["golden"][0].__setitem__("scores", None), "golden[0].scores is null"),
    (lambda m: m.__setitem__("decision", []), "decision must be an object"),
]


@pytest.mark.parametrize("change,message", BAD_VALUES, ids=[m.split(" ")[0] + str(i) for i, (_, m) in
                                                            enumerate(BAD_VALUES)])
def test_a_bad_value_is_one_clear_error_in_run_and_self_test(tiny_bundle, colour_folder, change, message):
    _edit(tiny_bundle, change)
    for args in (["run", tiny_bundle, "--source", colour_folder], ["run", tiny_bundle, "--self-test"],
                 ["bundle", "verify", tiny_bundle]):
        proc = subprocess.run(edgecnn_cmd(*args), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and message in errors[0] and "is not a valid bundle manifest" in errors[0], proc.stderr
        assert '"event": "frame"' not in proc.stdout  # nothing was classified with the bad policy


def test_every_problem_is_named_at_once(tiny_bundle):
    _edit(tiny_bundle, lambda m: (m["decision"].update(temperature=0, thresholds=[0.1]),
                                  m["model"].update(resize="cubic")))
    with pytest.raises(BundleError) as info:
        load_manifest(tiny_bundle)
    text = str(info.value)
    assert "decision.temperature is 0" in text and "decision.thresholds has 1 entries" in text
    assert 'model.resize is "cubic"' in text


def _outside_model(bundle, field):
    """Point ``field`` at a real, correctly hashed model that lives outside the bundle."""
    outside = bundle.parent / "outside"
    outside.mkdir()
    shutil.copy(ASSETS / "tiny_int8.tflite", outside / "evil.tflite")
    rel = "../outside/evil.tflite"

    def change(m):
        m["files"][rel] = {"sha256": sha256_file(outside / "evil.tflite"), "bytes": 1}
        if field == "tflite":
            m["model"]["tflite"] = rel
        else:
            m["model"]["fallbacks"] = [rel]
    return _edit(bundle, change)


@pytest.mark.parametrize("field", ["tflite", "fallbacks"])
def test_a_model_outside_the_bundle_is_refused(tiny_bundle, colour_folder, field):
    # before: verify, self-test and run all accepted ../outside/evil.tflite
    _outside_model(tiny_bundle, field)
    for args in (["bundle", "verify", tiny_bundle], ["run", tiny_bundle, "--self-test"],
                 ["run", tiny_bundle, "--source", colour_folder]):
        proc = subprocess.run(edgecnn_cmd(*args), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "'../outside/evil.tflite', which is outside the bundle" in proc.stderr


def test_a_fallback_without_a_sha256_is_refused(tiny_bundle):
    # before: fallbacks missing from `files` were loaded without any check
    shutil.copy(ASSETS / "tiny_float.tflite", tiny_bundle / "fallback0.tflite")
    _edit(tiny_bundle, _set("model", "fallbacks", ["fallback0.tflite"]))
    with pytest.raises(BundleError, match=r"model.fallbacks\[0\] 'fallback0.tflite' has no sha256 in files"):
        verify_bundle(tiny_bundle)


def test_a_link_out_of_the_bundle_is_refused(tiny_bundle):
    outside = tiny_bundle.parent / "elsewhere.tflite"
    shutil.move(tiny_bundle / "model.tflite", outside)
    (tiny_bundle / "model.tflite").symlink_to(outside)  # same bytes, same sha256, but not in the bundle
    with pytest.raises(BundleError, match="outside the bundle: refused"):
        verify_bundle(tiny_bundle)


def test_writers_refuse_a_bad_manifest_and_leave_nothing(tmp_path, tiny_bundle):
    manifest = load_manifest(tiny_bundle)
    files = {rel: tiny_bundle / rel for rel in manifest["files"] if rel != "labels.txt"}
    bad = dict(manifest, decision=dict(manifest["decision"], temperature=0.0))
    with pytest.raises(BundleError, match="decision.temperature is 0.0"):
        write_bundle(tmp_path / "new", files, bad)
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new*"))
    before = (tiny_bundle / "edgecnn.json").read_bytes()
    with pytest.raises(BundleError, match="decision.thresholds has 2 entries"):
        update_manifest(tiny_bundle, decision=dict(manifest["decision"], thresholds=[0.1, 0.2]))
    assert (tiny_bundle / "edgecnn.json").read_bytes() == before


@pytest.mark.parametrize("content", [b"not an array", None])
def test_a_golden_input_that_is_not_an_image_array_is_named(tiny_bundle, content):
    import numpy as np

    golden = tiny_bundle / "golden" / "000.npy"
    if content is None:
        np.save(golden, np.zeros((4, 4), dtype=np.float32))  # a real .npy, but not an H x W x 3 image
    else:
        golden.write_bytes(content)
    _edit(tiny_bundle, lambda m: m["files"]["golden/000.npy"].update(sha256=sha256_file(golden)))
    proc = subprocess.run(edgecnn_cmd("run", tiny_bundle, "--self-test"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "golden input 'golden/000.npy'" in proc.stderr and ("not a NumPy .npy array" in proc.stderr or
                                                               "not an H x W x 3 uint8 image" in proc.stderr)
