"""The decoded-image cache: keyed by content, safe when damaged or unwritable, and finetune decodes each
file once (its scan's pixels reach the base pass and later stages without a second decode)."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.data import scan
from edgecnn.data.dataset import Sample
from edgecnn.data.pixels import load_images
from edgecnn.data.pixels import PixelCache, cache_root
from edgecnn.data.scan import load_image_rgb
from edgecnn.devices.preprocess import resize_rgb


def _photo(path: Path, seed: int, size=(90, 70)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
    return path


def _samples(folder: Path, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    return [Sample(_photo(folder / f"img{i}.jpg", i), i % 2, "") for i in range(n)]


def _decoded(path, size=32, resize="area"):
    return resize_rgb(load_image_rgb(path), (size, size), resize)


def test_entries_are_keyed_by_content_and_an_edited_file_is_decoded_again(tmp_path):
    samples = _samples(tmp_path / "data")
    first = PixelCache(tmp_path / "cache")
    x1, y1 = load_images(samples, 32, cache=first)
    assert (first.hits, first.misses) == (0, 3)
    assert all(np.array_equal(x1[i], _decoded(s.path)) for i, s in enumerate(samples))

    again = PixelCache(tmp_path / "cache")  # another process, later: the disk layer answers
    x2, _ = load_images(samples, 32, cache=again)
    assert (again.hits, again.misses) == (3, 0)
    assert np.array_equal(x1, x2)

    _photo(samples[1].path, seed=99)  # same name, new content: its old entry must not be used
    edited = PixelCache(tmp_path / "cache")
    x3, _ = load_images(samples, 32, cache=edited)
    assert (edited.hits, edited.misses) == (2, 1)
    assert np.array_equal(x3[1], _decoded(samples[1].path)) and not np.array_equal(x3[1], x1[1])

    other = PixelCache(tmp_path / "cache")  # another size or resize method is another entry
    load_images(samples, 40, resize="bilinear", cache=other)
    assert other.misses == 3


def test_a_damaged_entry_is_decoded_again_and_rewritten(tmp_path):
    samples = _samples(tmp_path / "data", n=2)
    load_images(samples, 32, cache=PixelCache(tmp_path / "cache"))
    entries = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 2
    entries[0].write_bytes(b"not a numpy file")
    np.save(entries[1], np.zeros((5, 5, 3), np.uint8))  # valid .npy, wrong shape
    cache = PixelCache(tmp_path / "cache")
    x, _ = load_images(samples, 32, cache=cache)
    assert cache.misses == 2
    assert all(np.array_equal(x[i], _decoded(s.path)) for i, s in enumerate(samples))
    assert PixelCache(tmp_path / "cache").get(*_key(samples[0].path)) is not None  # rewritten


def _key(path, size=32, resize="area"):
    from edgecnn.bundle.manifest import sha256_file

    return sha256_file(path), (size, size), resize


def test_a_cache_that_cannot_be_written_warns_once_and_images_still_load(tmp_path):
    samples = _samples(tmp_path / "data")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should go")
    cache = PixelCache(blocker / "pixels")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, _ = load_images(samples, 32, cache=cache)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "EDGECNN_CACHE_DIR" in messages[0] and str(blocker) in messages[0]
    assert cache.root is None
    assert all(np.array_equal(x[i], _decoded(s.path)) for i, s in enumerate(samples))


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGECNN_CACHE_DIR", "off")
    assert cache_root() is None
    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c" / "pixels"
    monkeypatch.delenv("EDGECNN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "edgecnn" / "pixels"


def test_with_the_cache_off_nothing_is_written(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGECNN_CACHE_DIR", "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    samples = _samples(tmp_path / "data")
    x, _ = load_images(samples, 32)
    assert np.array_equal(x[0], _decoded(samples[0].path))
    assert not (tmp_path / "home").exists() and not (tmp_path / "xdg").exists()


@pytest.mark.slow
def test_finetune_decodes_each_file_once_and_later_stages_reuse_the_pixels(demo_data, tmp_path, monkeypatch):
    from edgecnn.run import load_run
    from edgecnn.train.finetune import finetune

    monkeypatch.setenv("EDGECNN_CACHE_DIR", str(tmp_path / "cache"))
    decoded = []
    real = scan._to_rgb

    def counting(im):
        decoded.append(Path(im.filename).name)
        return real(im)

    monkeypatch.setattr(scan, "_to_rgb", counting)
    options = dict(backbone="mobilenet_v1", alpha=0.25, input_size=48, weights="none", epochs=1,
                   fine_tune_epochs=1, batch_size=32, augment="none", patience=2, seed=0)
    finetune(demo_data, tmp_path / "run", quiet=True, **options)
    files = [p for p in demo_data.rglob("*") if p.is_file()]
    assert sorted(decoded) == sorted(p.name for p in files)  # the scan's one decode per file, nothing more

    # evaluate, convert and the search read a run's images through load_images: all from the cache
    from edgecnn.converters.representative import run_samples

    run = load_run(tmp_path / "run")
    decoded.clear()
    cache = PixelCache()
    x, _ = load_images(run_samples(run, "val"), 48, cache=cache)
    assert decoded == [] and cache.misses == 0 and cache.hits == len(x) > 0
