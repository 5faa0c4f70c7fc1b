"""The demo dataset generator: deterministic, fast, scannable, with optional bad files."""

import time

import numpy as np

from edgecnn.data.dataset import load_dataset
from edgecnn.data.scan import load_image_rgb
from edgecnn.data.synth import make_demo_dataset


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_and_fast(tmp_path):
    start = time.perf_counter()
    a = make_demo_dataset(tmp_path / "a", per_class=60, size=96, seed=0)
    assert time.perf_counter() - start < 3
    b = make_demo_dataset(tmp_path / "b", per_class=60, size=96, seed=0)
    fa, fb = files(a), files(b)
    assert len(fa) == 240 and fa == fb
    c = make_demo_dataset(tmp_path / "c", per_class=2, size=96, seed=1)
    assert files(c)["circle/circle_0000.jpg"] != fa["circle/circle_0000.jpg"]


def test_demo_data_fixture(demo_data):
    d = load_dataset(demo_data)
    assert d.labels == ["circle", "square", "stripes", "triangle"]
    assert not d.skipped and not [w for w in d.warnings if w["path"]]
    assert d.class_counts()["train"] == {"circle": 42, "square": 42, "stripes": 42, "triangle": 42}
    rgb = load_image_rgb(demo_data / "circle" / "circle_0000.jpg")
    assert rgb.shape == (96, 96, 3)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 500  # camera-like noise, not flat colours


def test_classes_differ(demo_data):
    # Stripes have much more edge energy than a single filled shape: a cheap sanity check of the drawing.
    def edges(name):
        x = np.stack([load_image_rgb(p).astype(float).mean(-1) for p in sorted((demo_data / name).glob("*.jpg"))[:20]])
        return np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()
    assert edges("stripes") > 1.5 * edges("circle")


def test_bad_files(tmp_path):
    root = make_demo_dataset(tmp_path / "d", classes=("circle", "square", "hexagon"), per_class=4, size=64,
                             bad_files=True)
    d = load_dataset(root, test_fraction=0)
    reasons = {s["path"]: s["reason"] for s in d.skipped}
    assert set(reasons) == {"circle/bad_empty.jpg", "circle/bad_text.jpg", "circle/bad_truncated.jpg"}
    assert reasons["circle/bad_empty.jpg"] == "empty file (0 bytes)"
    assert reasons["circle/bad_truncated.jpg"].startswith("truncated or corrupt image data")
    assert d.class_counts()["train"] == {"circle": 3, "hexagon": 3, "square": 3}
