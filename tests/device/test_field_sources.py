"""What a field brings to the board's sources: names that are not UTF-8, decompression bombs, videos
with corrupt frames. Real files (cv2.VideoWriter, cv2.imwrite), the real CLI in a subprocess."""

import json
import os
import shutil
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from board_helpers import ASSETS, LABELS, colour_frame, edgecnn_cmd

pytestmark = pytest.mark.device


def _bytes_name(parent, raw: bytes):
    """A path under ``parent`` whose last part is ``raw`` (not valid UTF-8), as Python sees it."""
    return os.fsdecode(os.fsencode(parent) + b"/" + raw)


def _events(path):
    return [json.loads(line) for line in open(path, encoding="utf-8").read().splitlines()]


def write_video(path, colours, size=(64, 48)):
    """An MJPG AVI with one frame per entry of ``colours`` (label indices); returns the path."""
    tmp = os.path.join(os.path.dirname(path), "tmp_video.avi")
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i, colour in enumerate(colours):
        writer.write(colour_frame(colour, size=(size[1], size[0]), seed=i))
    writer.release()
    os.replace(tmp, path)
    return path


def corrupt_frames(path, indices):
    """Overwrite the JPEG data of the given frames of an MJPG AVI with garbage (the file stays valid)."""
    data = bytearray(open(path, "rb").read())
    movi_end = data.index(b"idx1")
    chunks, pos = [], data.index(b"movi")
    while True:
        pos = data.find(b"00dc", pos + 4, movi_end)
        if pos < 0:
            break
        chunks.append(pos)
    for i in indices:
        start = chunks[i] + 8
        size = int.from_bytes(data[chunks[i] + 4:start], "little")
        data[start:start + size] = b"\x55" * size
    open(path, "wb").write(bytes(data))


def _run(*args, timeout=180):
    return subprocess.run(edgecnn_cmd(*args), capture_output=True, text=True, timeout=timeout)


# --- names that are not UTF-8 (SIGSEGV inside OpenCV before) ---------------------------------------

def test_folder_source_with_non_utf8_names(tmp_path):
    folder = _bytes_name(tmp_path, b"frames-\xff")
    os.mkdir(folder)
    for i in range(3):
        ok, png = cv2.imencode(".png", colour_frame(i, seed=i))
        with open(_bytes_name(folder, b"%d-caf\xe9-\xfe.png" % i), "wb") as fh:
            fh.write(png.tobytes())
    events = tmp_path / "events.jsonl"
    proc = _run("run", ASSETS / "tiny_bundle", "--source", folder, "--events", events)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [e["label"] for e in _events(events) if e["event"] == "frame"] == LABELS


def test_video_source_with_a_non_utf8_name(tmp_path):
    video = write_video(_bytes_name(tmp_path, b"clip-\xe9\xff.avi"), [0, 1, 2, 0])
    events = tmp_path / "events.jsonl"
    proc = _run("run", ASSETS / "tiny_bundle", "--source", video, "--events", events)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [e["label"] for e in _events(events) if e["event"] == "frame"] == ["red", "green", "blue", "red"]


def test_self_test_and_run_of_a_bundle_under_a_non_utf8_path(tmp_path, colour_folder):
    bundle = _bytes_name(tmp_path, b"bundle-\xff")
    shutil.copytree(ASSETS / "tiny_bundle", bundle)
    proc = _run("run", bundle, "--self-test")
    assert proc.returncode == 0 and "self-test passed" in proc.stdout, proc.stderr[-2000:]
    proc = _run("run", bundle, "--source", colour_folder, "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_bundle_wrap_with_a_non_utf8_image_name(tmp_path):
    image = _bytes_name(tmp_path, b"golden-\xe9.png")
    with open(image, "wb") as fh:
        fh.write(cv2.imencode(".png", colour_frame(2, size=(60, 80)))[1].tobytes())
    out = tmp_path / "wrapped"
    proc = _run("bundle", "wrap", ASSETS / "tiny_int8.tflite", "--labels", ASSETS / "labels.txt", "--out", out,
                "--image", image, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1])["golden"] == 1
    assert _run("bundle", "verify", out, "--self-test").returncode == 0


# --- decompression bombs ------------------------------------------------------------------------------

def write_png_bomb(path, width, height):
    """A real PNG of ``width`` x ``height`` black pixels: a few hundred KB that decode to width*height*3 bytes."""
    def chunk(kind, body):
        return (len(body).to_bytes(4, "big") + kind + body +
                zlib.crc32(kind + body).to_bytes(4, "big"))

    compressor, parts = zlib.compressobj(9), []
    row = bytes(1 + 3 * width)  # filter byte 0 and black RGB pixels
    block = row * 64
    for _ in range(height // 64):
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(row * (height % 64)) + compressor.flush())
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    # 8000 x 8000 = 64 M pixels, over the training scanner's cap (50 M): 192 MB once decoded.
    # (The field's 30000 x 30000 took 5.35 GB and 38 s; this one is enough to tell and cheap to make.)
    return write_png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png", 8000, 8000)


def test_a_decompression_bomb_in_a_folder_is_skipped_without_decoding(tmp_path, bomb):
    from edgecnn.data.scan import DEFAULT_MAX_PIXELS

    assert 8000 * 8000 > DEFAULT_MAX_PIXELS
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), colour_frame(0))
    shutil.copy(bomb, folder / "1.png")
    cv2.imwrite(str(folder / "2.png"), colour_frame(2))
    events = tmp_path / "events.jsonl"
    proc, peak_mb = run_reporting_peak(folder, events)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = _events(events)
    assert [e["label"] for e in records if e["event"] == "frame"] == ["red", "blue"]
    bad = [e for e in records if e["event"] == "bad_frames"]
    assert len(bad) == 1 and "decompression bomb" in bad[0]["reason"] and "8000x8000" in bad[0]["reason"]
    # Against the same run without the bomb (the baseline differs by platform: qemu adds its own),
    # a decode of the bomb alone would add 192 MB.
    (folder / "1.png").unlink()
    _, baseline_mb = run_reporting_peak(folder, tmp_path / "baseline.jsonl")
    assert peak_mb - baseline_mb < 96, f"peak RSS {peak_mb:.0f} MB vs {baseline_mb:.0f} MB: the bomb was decoded"


def run_reporting_peak(folder, events):
    """``edgecnn run`` on ``folder`` in a child that reports its own peak RSS: ``(process, peak MB)``."""
    code = ("import atexit, resource, sys\n"
            "atexit.register(lambda: print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            "file=sys.stderr))\n"
            "from edgecnn.cli import main\nsys.exit(main())\n")
    proc = subprocess.run([sys.executable, "-c", code, "run", str(ASSETS / "tiny_bundle"), "--source", str(folder),
                           "--events", str(events)], capture_output=True, text=True, timeout=600)
    return proc, int(proc.stderr.split("PEAK_KB")[1].split()[0]) / 1024


def test_a_decompression_bomb_as_the_source_file_is_not_decoded(tmp_path, bomb):
    # one image as --source went to cv2.VideoCapture, which decodes it whatever its size
    events = tmp_path / "events.jsonl"
    proc = _run("run", ASSETS / "tiny_bundle", "--source", bomb, "--events", events)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = _events(events)
    assert not [e for e in records if e["event"] == "frame"]
    assert "decompression bomb" in next(e for e in records if e["event"] == "bad_frames")["reason"]
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), colour_frame(1))
    assert _run("run", ASSETS / "tiny_bundle", "--source", image, "--events", events).returncode == 0
    assert [e["label"] for e in _events(events) if e["event"] == "frame"] == ["green"]


def test_a_decompression_bomb_as_a_golden_image_is_refused(tmp_path, bomb):
    proc = _run("bundle", "wrap", ASSETS / "tiny_int8.tflite", "--labels", ASSETS / "labels.txt",
                "--out", tmp_path / "w", "--image", bomb)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "decompression bomb" in proc.stderr and "bomb.png" in proc.stderr
    assert not (tmp_path / "w").exists()


def test_image_headers_are_read_for_every_folder_format(tmp_path):
    from edgecnn.devices.imageio import image_size, read_image

    image = colour_frame(1, size=(37, 53))
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm"):
        ok, data = cv2.imencode(ext, image)
        assert image_size(data.tobytes()) == (53, 37), ext
        (tmp_path / f"x{ext}").write_bytes(data.tobytes())
        assert read_image(tmp_path / f"x{ext}").shape == (37, 53, 3)
    assert image_size(b"not an image at all") is None


# --- videos with undecodable frames -------------------------------------------------------------------

def test_a_video_with_one_corrupt_frame_plays_to_the_end(tmp_path):
    # before: the replay stopped at the corrupt frame (40 of 89 frames) and exited 0
    colours = [i // 10 % 3 for i in range(89)]
    video = write_video(tmp_path / "clip.avi", colours)
    corrupt_frames(video, [40])
    events = tmp_path / "events.jsonl"
    proc = _run("run", ASSETS / "tiny_bundle", "--source", video, "--events", events, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = _events(events)
    frames = [e["label"] for e in records if e["event"] == "frame"]
    assert frames == [LABELS[c] for i, c in enumerate(colours) if i != 40]
    summary = json.loads(proc.stdout.splitlines()[-1])["summary"]  # on stdout: the events went to a file
    assert summary["capture"]["bad_frames"] == 1 and summary["frames"] == 88
    bad = [e for e in records if e["event"] == "bad_frames"]
    assert len(bad) == 1 and "frame 40 of" in bad[0]["reason"] and "cannot be decoded: skipped" in bad[0]["reason"]
    ended = [e for e in records if e["event"] == "source_ended"]
    assert len(ended) == 1 and ended[0]["bad_frames"] == 1


def test_a_long_run_of_corrupt_frames_ends_the_video_and_says_so(tmp_path):
    from edgecnn.devices.sources import MAX_BAD_RUN

    colours = [0] * 10 + [1] * (MAX_BAD_RUN + 5) + [2] * 10
    video = write_video(tmp_path / "clip.avi", colours)
    corrupt_frames(video, range(10, 10 + MAX_BAD_RUN + 5))
    events = tmp_path / "events.jsonl"
    proc = _run("run", ASSETS / "tiny_bundle", "--source", video, "--events", events)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = _events(events)
    assert [e["label"] for e in records if e["event"] == "frame"] == ["red"] * 10
    bad = [e for e in records if e["event"] == "bad_frames"]
    assert len(bad) == 1 and f"frames 10-{9 + MAX_BAD_RUN} of" in bad[0]["reason"]
    assert f"{MAX_BAD_RUN} in a row: the rest of the file is not read" in bad[0]["reason"]


def test_source_ended_follows_the_last_frame(tmp_path):
    # before: the reader reached the end with frames still queued, and source_ended came before them
    video = write_video(tmp_path / "clip.avi", [i % 3 for i in range(30)])
    events = tmp_path / "board_events.jsonl"
    proc = _run("run", ASSETS / "tiny_bundle", "--source", video, "--events", events)
    assert proc.returncode == 0, proc.stderr[-2000:]
    kinds = [e["event"] for e in _events(events)]
    assert kinds.count("frame") == 30 and kinds.count("source_ended") == 1
    assert kinds.index("source_ended") > max(i for i, kind in enumerate(kinds) if kind == "frame")
