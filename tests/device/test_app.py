"""The whole app: no TensorFlow, signals, real models on real photos, review, benchmark, wrap, demo."""

import json
import signal
import subprocess
import sys
import time

import pytest
from board_helpers import ASSETS, edgecnn_cmd

from edgecnn.devices.app import gui_available, run
from edgecnn.errors import DeviceError

pytestmark = pytest.mark.device

DEVICE_MODULES = ["app", "backends", "benchmark", "capture", "decision", "edgetpu", "engine", "events", "golden",
                  "golden_kernels", "hotswap", "imageio", "notify", "options", "preprocess", "review", "selftest",
                  "sources", "status_http", "wrap"]


def test_app_runs_in_a_subprocess_without_tensorflow_and_stops_on_sigterm(colour_folder):
    # Imports every board module and the board CLI, runs `edgecnn run` on a live (looping) source,
    # and reports at exit whether tensorflow was ever imported.
    code = ("import atexit, sys\n"
            f"import {', '.join('edgecnn.devices.' + m for m in DEVICE_MODULES)}\n"
            "import edgecnn.cli.run, edgecnn.cli.benchmark, edgecnn.cli.bundle, edgecnn.bundle.manifest, edgecnn.bundle.schema\n"
            "atexit.register(lambda: print('TENSORFLOW', 'tensorflow' in sys.modules, file=sys.stderr))\n"
            "from edgecnn.cli import main\n"
            "sys.exit(main())\n")
    proc = subprocess.Popen([sys.executable, "-c", code, "run", str(ASSETS / "tiny_bundle"), "--source",
                             str(colour_folder), "--live"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # live mode on a folder: it is read far faster than classified, so frames are dropped, and at
        # its end it is reopened (source_lost ... source_reopened), like a camera that comes back
        first = []
        while sum(e["event"] == "frame" for e in first) < 3:
            first.append(json.loads(proc.stdout.readline()))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert first[0]["event"] == "started" and first[0]["mode"] == "live"
    assert {e["label"] for e in first if e["event"] == "frame"} <= {"red", "green", "blue"}
    assert "TENSORFLOW False" in err
    assert "frames in" in err and "Traceback" not in err  # the summary


def test_replay_of_a_folder_classifies_every_frame(colour_folder, tmp_path):
    events = tmp_path / "events.jsonl"
    summary = run(ASSETS / "tiny_bundle", str(colour_folder), events=events, install_signals=False)
    frames = [json.loads(line) for line in events.read_text().splitlines()]
    frames = [e for e in frames if e["event"] == "frame"]
    assert [e["label"] for e in frames] == ["red", "green", "blue"] * 2
    assert [e["frame"] for e in frames] == list(range(6))
    assert all(e["model"] == "model.tflite" and e["fallback_reason"] is None and e["latency_ms"] > 0 for e in frames)
    assert summary["frames"] == 6 and summary["labels"] == {"red": 2, "green": 2, "blue": 2}
    assert summary["ended_by"] == "source_end" and summary["capture"]["dropped"] == 0


def test_run_takes_an_options_object_or_the_same_names_as_keywords(colour_folder, tmp_path):
    from edgecnn.devices.options import RunOptions

    options = RunOptions(events=tmp_path / "a.jsonl", max_frames=2, install_signals=False)
    summary = run(ASSETS / "tiny_bundle", str(colour_folder), options)
    assert summary["frames"] == 2 and summary["ended_by"] == "limit"
    summary = run(ASSETS / "tiny_bundle", str(colour_folder), options, max_frames=None, events=tmp_path / "b.jsonl")
    assert summary["frames"] == 6 and summary["ended_by"] == "source_end"
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) < len((tmp_path / "b.jsonl").read_text().splitlines())
    with pytest.raises(TypeError, match="unknown run option.*no_such_option"):
        run(ASSETS / "tiny_bundle", str(colour_folder), no_such_option=1)
    for name in ("max_frames", "duration_s"):
        with pytest.raises(DeviceError, match=f"{name} is 0; give a number above 0"):
            run(ASSETS / "tiny_bundle", str(colour_folder), **{name: 0})


def test_the_cli_takes_its_defaults_from_run_options():
    from edgecnn.cli.run import run as command
    from edgecnn.devices.options import RunOptions

    defaults = {p.name: p.default for p in command.params}
    options = RunOptions()
    assert (defaults["backend"], defaults["events_max_mb"], defaults["review_quota"], defaults["http_host"],
            defaults["stall_s"], defaults["duration"]) == \
        (options.backend, options.events_max_mb, options.review_quota_mb, options.http_host, options.stall_s,
         options.duration_s)


def test_uncertain_frames_use_the_fallback_model_and_go_to_review(colour_folder, tmp_path):
    from edgecnn.bundle.manifest import load_manifest
    from edgecnn.devices.wrap import wrap_tflite

    # thresholds no frame reaches alone: every frame goes to the fallback ensemble and then is unknown
    bundle = wrap_tflite(ASSETS / "tiny_int8.tflite", ASSETS / "labels.txt", tmp_path / "b",
                         fallbacks=[ASSETS / "tiny_float.tflite"],
                         decision={"temperature": 1.0, "thresholds": [1.01] * 3, "margin": 0.0,
                                   "smoothing": {"method": "none"}, "fallback_action": "unknown"})
    assert load_manifest(bundle)["model"]["fallbacks"] == ["fallback0.tflite"]
    summary = run(bundle, str(colour_folder), events=tmp_path / "e.jsonl", review_dir=tmp_path / "review",
                  review_quota_mb=1, install_signals=False)
    assert summary["labels"] == {"unknown": 6}
    assert summary["models"] == {"ensemble:model.tflite+fallback0.tflite": 6}
    assert summary["fallback_reasons"] == {"below_threshold": 6}
    assert summary["review"]["saved"] == 6 and len(list((tmp_path / "review").glob("*.jpg"))) == 6


def test_show_on_headless_opencv_is_explained(colour_folder):
    if gui_available():
        pytest.skip("this OpenCV has GUI support")
    with pytest.raises(DeviceError, match="headless"):
        run(ASSETS / "tiny_bundle", str(colour_folder), show=True, install_signals=False)


def test_coral_imagenet_classifier_on_real_photos_through_the_app(coral_dir, coral_bundle, tmp_path):
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(["cat.bmp", "bird.bmp", "hot_dog.jpg"]):
        shutil.copy(coral_dir / name, folder / f"{i}_{name}")
    events = tmp_path / "events.jsonl"
    run(coral_bundle, str(folder), events=events, install_signals=False)
    frames = [e for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "frame"]
    labels = [e["label"] for e in frames]
    assert labels[0] in ("Egyptian cat", "tabby, tabby cat", "tiger cat")
    assert labels[1] == "chickadee" and frames[1]["score"] > 0.9
    assert labels[2] == "hotdog, hot dog, red hot" and frames[2]["score"] > 0.8
    assert check_self_test(coral_bundle)


def check_self_test(bundle):
    from edgecnn.devices.selftest import check

    return check(bundle)["ok"]


def test_edgetpu_bundle_without_tpu_runs_degraded_on_cpu(coral_dir, coral_tpu_bundle, tmp_path):
    events = tmp_path / "events.jsonl"
    folder = tmp_path / "photos"
    folder.mkdir()
    import shutil

    shutil.copy(coral_dir / "bird.bmp", folder / "bird.bmp")
    summary = run(coral_tpu_bundle, str(folder), edgetpu=True, events=events, install_signals=False)
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert records[0]["event"] == "degraded" and "libedgetpu" in records[0]["reason"]
    frame = next(e for e in records if e["event"] == "frame")
    assert frame["label"] == "chickadee" and frame["device"] == "cpu"
    assert summary["degraded"] and summary["engine"]["model"] == "model.tflite"


def test_benchmark_cli_json_is_stable(tmp_path):
    proc = subprocess.run(edgecnn_cmd("benchmark", ASSETS / "tiny_bundle", "--runs", "20", "--warmup", "2",
                                      "--threads", "1", "--threads", "2", "--json"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["schema"] == "edgecnn.benchmark/1" and result["model"].endswith("model.tflite")
    assert set(result) >= {"model_bytes", "sha256", "edgetpu", "runs", "warmup", "host", "results"}
    assert [r["threads"] for r in result["results"]] == [1, 2]
    for r in result["results"]:
        assert r["error"] is None and r["backend"] in ("litert", "tflite-runtime")
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] and r["throughput_fps"] > 0 and r["peak_rss_mb"] > 10


def test_benchmark_reports_a_broken_model_without_crashing(tmp_path):
    from edgecnn.devices.benchmark import benchmark

    broken = tmp_path / "broken.tflite"
    broken.write_bytes((ASSETS / "tiny_int8.tflite").read_bytes()[:1500])
    result = benchmark(broken, runs=5, warmup=0)
    assert result["results"][0]["error"] and result["results"][0]["p50_ms"] is None


def test_bundle_wrap_and_verify_cli(tmp_path):
    out = tmp_path / "wrapped"
    proc = subprocess.run(edgecnn_cmd("bundle", "wrap", ASSETS / "tiny_int8.tflite", "--labels", ASSETS / "labels.txt",
                                      "--out", out, "--json"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["labels"] == 3 and result["golden"] == 3 and result["model"]["input_dtype"] == "int8"
    proc = subprocess.run(edgecnn_cmd("bundle", "verify", out, "--self-test"), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "scores match" in proc.stdout
    proc = subprocess.run(edgecnn_cmd("bundle", "wrap", ASSETS / "tiny_int8.tflite", "--labels",
                                      ASSETS / "tiny_bundle" / "edgecnn.json", "--out", tmp_path / "x"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "labels list has" in proc.stderr


def test_demo_step_writes_a_video_and_runs_the_app(tmp_path):
    import cv2
    from board_helpers import colour_frame

    from edgecnn.demo.board_step import demo_step, format_demo

    images = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), colour_frame(i, size=(120, 160)))
        images.append(path)
    result = demo_step(ASSETS / "tiny_bundle", images, tmp_path / "out", frames_per_image=3)
    assert result["frames"] == 9
    assert result["per_image"] == {"img0.png": {"red": 3}, "img1.png": {"green": 3}, "img2.png": {"blue": 3}}
    assert "img2.png: blue ×3" in format_demo(result)
