"""Self-test and bad bundles: a clear error every time, and a running app never goes down."""

import json
import shutil
import subprocess
import threading
import time

import pytest
from board_helpers import ASSETS, ColourCamera, colour_frame, edgecnn_cmd

from edgecnn.bundle.manifest import load_manifest, make_manifest, write_bundle
from edgecnn.devices.engine import Engine
from edgecnn.devices.selftest import check, self_test, self_test_subprocess
from edgecnn.errors import BundleError, DeviceError

pytestmark = pytest.mark.device


def _rebundle(tmp_path, model_bytes, name="bad"):
    """A bundle like the tiny one whose model.tflite is ``model_bytes`` (sha256 consistent)."""
    manifest = load_manifest(ASSETS / "tiny_bundle")
    files = {rel: ASSETS / "tiny_bundle" / rel for rel in manifest["files"] if rel != "labels.txt"}
    files["model.tflite"] = model_bytes
    fresh = make_manifest(manifest["labels"], manifest["model"], golden=manifest["golden"])
    return write_bundle(tmp_path / name, files, fresh)


def test_self_test_passes_against_golden_scores_from_another_interpreter(tiny_bundle):
    # The golden scores were computed with LiteRT by make_assets.py; in .venv-board this runs them
    # on tflite-runtime 2.14: the board's preprocessing and kernels agree with the workstation's.
    report = check(tiny_bundle)
    assert report["ok"] and any("preprocesses to golden/000.npy" in line for line in report["checks"])
    assert sum("scores match" in line for line in report["checks"]) == 3


def test_sha_mismatch_is_refused_naming_the_file(tiny_bundle):
    model = tiny_bundle / "model.tflite"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    report = self_test(tiny_bundle)
    assert not report["ok"] and "model.tflite" in report["errors"][0] and "sha256" in report["errors"][0]
    with pytest.raises(BundleError, match="model.tflite' does not match its sha256"):
        Engine(tiny_bundle)


def test_golden_mismatch_names_the_sample_and_class(tiny_bundle):
    manifest = json.loads((tiny_bundle / "edgecnn.json").read_text())
    manifest["golden"][1]["scores"][2] += 0.25
    (tiny_bundle / "edgecnn.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"golden 'golden/001.npy': score of class 2 \(blue\)"):
        check(tiny_bundle)


def test_preprocessing_mismatch_is_named(tmp_path):
    import cv2

    manifest = load_manifest(ASSETS / "tiny_bundle")
    files = {rel: ASSETS / "tiny_bundle" / rel for rel in manifest["files"] if rel != "labels.txt"}
    files["golden/000.png"] = cv2.imencode(".png", colour_frame(0, size=(64, 96)))[1].tobytes()
    bundle = write_bundle(tmp_path / "b", files, make_manifest(manifest["labels"], manifest["model"],
                                                                golden=manifest["golden"]))
    report = self_test(bundle)
    assert not report["ok"] and "preprocessing of 'golden/000.png' differs from 'golden/000.npy'" in report["errors"][0]


def test_truncated_model_gives_a_clear_error_not_a_crash(tmp_path):
    # tflite-runtime 2.14 segfaults on this file; the probe child absorbs it.
    bundle = _rebundle(tmp_path, (ASSETS / "tiny_int8.tflite").read_bytes()[:1500])
    with pytest.raises(DeviceError, match="corrupt|truncated|Flatbuffer"):
        Engine(bundle)
    report = self_test(bundle)
    assert not report["ok"] and "model.tflite" in report["errors"][0]


def test_garbage_model_is_refused_before_any_interpreter(tmp_path):
    bundle = _rebundle(tmp_path, b"\x00" * 64)
    with pytest.raises(DeviceError, match="not a TFLite model"):
        Engine(bundle)


def test_invalid_model_gives_a_clear_error(coral_dir, tmp_path):
    from edgecnn.devices.backends import probe_model

    invalid = coral_dir / "invalid_models" / "model_invoking_error.tflite"
    with pytest.raises(DeviceError, match="fake-op-double"):
        probe_model(invalid)
    bundle = _rebundle(tmp_path, invalid.read_bytes())
    report = self_test(bundle)
    assert not report["ok"] and "fake-op-double" in report["errors"][0]


def test_cli_self_test_exits_non_zero_naming_what_differs(tiny_bundle):
    model = tiny_bundle / "golden" / "002.npy"
    model.write_bytes(model.read_bytes()[:-3] + b"abc")
    proc = subprocess.run(edgecnn_cmd("run", tiny_bundle, "--self-test"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "golden/002.npy" in proc.stderr and "sha256" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_hot_swap_refuses_bad_bundles_and_takes_a_good_one(tmp_path, tiny_bundle):
    from edgecnn.devices.app import run

    lines, stop = [], threading.Event()

    class Sink:
        def write(self, text):
            lines.append(json.loads(text))

        def flush(self):
            pass

    result = {}
    thread = threading.Thread(target=lambda: result.update(run(
        tiny_bundle, ColourCamera, mode="live", watch_bundle=True, watch_interval_s=0.1, stop_event=stop,
        install_signals=False, event_stream=Sink(), http_port=0)))
    thread.start()

    # Deadlines for a CPU 20 times slower (aarch64 under qemu: a swap's self-test took over 20 s);
    # each wait returns as soon as its event is there.
    def wait_for(kind, count=1, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(e.get("event") == kind for e in list(lines)) >= count:
                return True
            time.sleep(0.05)
        return False

    try:
        assert wait_for("frame", 5)
        # 1. a copy that truncates the model in place (sha256 no longer matches)
        model = tiny_bundle / "model.tflite"
        model.write_bytes(model.read_bytes()[:1000])
        assert wait_for("bundle_rejected", 1)
        # 2. a complete bundle whose model is truncated (sha256 consistent: only loading tells)
        shutil.rmtree(tiny_bundle)
        _rebundle(tiny_bundle.parent, (ASSETS / "tiny_int8.tflite").read_bytes()[:2000], name=tiny_bundle.name)
        assert wait_for("bundle_rejected", 2)
        frames_before = sum(e["event"] == "frame" for e in lines)
        assert wait_for("frame", frames_before + 3)  # the old bundle keeps running
        status_url = next(e["http"] for e in lines if e["event"] == "started")
        import urllib.request

        status = json.loads(urllib.request.urlopen(status_url, timeout=5).read())
        assert status["events"]["bundle_rejected"] == 2 and status["frames"] > 5
        # 3. a good bundle replaces it, put in place by a rename as `edgecnn deploy` and convert do (a
        # watcher polling a folder that is being copied file by file may see, and refuse, half a bundle)
        shutil.copytree(ASSETS / "tiny_bundle", tiny_bundle.parent / "incoming")
        shutil.rmtree(tiny_bundle)
        (tiny_bundle.parent / "incoming").rename(tiny_bundle)
        assert wait_for("bundle_swapped", 1)
    finally:
        stop.set()
        thread.join(10)
    rejected = [e for e in lines if e["event"] == "bundle_rejected"]
    assert "sha256" in rejected[0]["reason"]
    assert "model.tflite" in rejected[1]["reason"]
    assert result["bundle_swaps"] == 1 and result["bundle_rejections"] == 2
    labels = [e["label"] for e in lines if e["event"] == "frame"]
    assert {"red", "green", "blue"} <= set(labels)


def test_self_test_subprocess_reports_a_crash_as_failure(tmp_path):
    bundle = _rebundle(tmp_path, (ASSETS / "tiny_int8.tflite").read_bytes()[:1500])
    report = self_test_subprocess(bundle)
    assert report["ok"] is False and "model.tflite" in report["errors"][0]
