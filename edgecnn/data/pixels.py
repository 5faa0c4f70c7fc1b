"""The pixels a model sees: ``load_images``, and the decoded-image cache it reads through.

The cache keeps each file's pixels at a model's input size, decoded once and kept by content.

Every stage that feeds images to a model (finetune, evaluate, convert's calibration and accuracy pass,
QAT, the remedy loop, the search's trials) reads them through :func:`load_images`,
which asks this cache first. An entry is keyed by what its pixels depend on and nothing else: the
sha256 of the file's bytes (so an edited file is decoded again, whatever its name), the output size,
the resize method and :data:`FORMAT` (bumped when decoding or resizing changes).

Where: ``$EDGECNN_CACHE_DIR/pixels`` when set, else ``$XDG_CACHE_HOME/edgecnn/pixels``, else
``~/.cache/edgecnn/pixels``; ``EDGECNN_CACHE_DIR=off`` keeps nothing on disk. One ``.npy`` file per
entry (``<sha[:2]>/<sha>-<H>x<W>-<resize>.npy``), written atomically, so processes (xdist workers,
search workers) share it safely; delete the folder at any time to reclaim the space.

The cache is a speed-up, never a source of truth: an unreadable or malformed entry is decoded again,
and a disk that refuses a write turns the disk layer off for the rest of the process with one warning.
A :class:`PixelCache` may also hand entries over in memory (``memory=True``): finetune's single scan
pass gives each decoded image to its base pass that way, without a round trip through the disk.
"""

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from edgecnn import atomic
from edgecnn.bundle.model import DEFAULT_RESIZE
from edgecnn.data.folders import parallel_map

FORMAT = "1"  # bump when the decoder or resize_rgb changes what an entry holds
OFF = "off"


def cache_root() -> Optional[Path]:
    """The folder holding the pixel cache, or None when ``EDGECNN_CACHE_DIR=off``."""
    configured = os.environ.get("EDGECNN_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in (OFF, "") else Path(configured).expanduser() / "pixels"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgecnn" / "pixels"


class PixelCache:
    """Decoded, resized uint8 RGB images keyed by ``(file sha256, (H, W), resize method)``.

    Args:
        root: the cache folder; the default from :func:`cache_root` when not given; None: no disk layer.
        memory: also keep the entries put in memory until each is read once (a hand-over: the reader
            keeps the array, so holding it here too would double the memory a dataset takes).
    """

    def __init__(self, root=..., memory: bool = False):
        self.root = cache_root() if root is ... else (Path(root) if root is not None else None)
        self._memory = {} if memory else None
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._problem = None

    def _path(self, sha: str, size: Tuple[int, int], resize: str) -> Path:
        return self.root / FORMAT / sha[:2] / f"{sha}-{int(size[0])}x{int(size[1])}-{resize}.npy"

    def get(self, sha: str, size: Tuple[int, int], resize: str) -> Optional[np.ndarray]:
        """The cached image, or None (a malformed entry on disk is removed and counts as a miss)."""
        key = (sha, tuple(int(v) for v in size), resize)
        image = self._memory.pop(key, None) if self._memory is not None else None
        if image is None and self.root is not None:
            image = self._read(key)
        self._count(hit=image is not None)
        return image

    def put(self, sha: str, size: Tuple[int, int], resize: str, image: np.ndarray) -> None:
        """Keep ``image`` (H x W x 3 uint8) under its key; a failed disk write only turns the disk layer off."""
        key = (sha, tuple(int(v) for v in size), resize)
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if self._memory is not None:
            self._memory[key] = image
        if self.root is None:
            return
        path = self._path(*key)
        if path.is_file():  # content-addressed: an entry already there holds these very pixels
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic.atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, image, allow_pickle=False)
        except OSError as exc:  # DiskFullError is an OSError too
            with self._lock:
                if self.root is not None:
                    self._problem = (f"the decoded-image cache '{self.root}' cannot be written ({exc}); images are "
                                     "decoded without it for the rest of this run. Free space there or set "
                                     "EDGECNN_CACHE_DIR (EDGECNN_CACHE_DIR=off keeps nothing).")
                self.root = None

    def warn_problem(self) -> None:
        """Warn (once) that the disk layer was turned off, and why. Called by the thread that started the
        work: a warning raised in a decoding thread can be lost, since the decoders silence Pillow's
        warnings with ``catch_warnings``, which is not thread-safe."""
        with self._lock:
            problem, self._problem = self._problem, None
        if problem:
            warnings.warn(problem, RuntimeWarning, stacklevel=3)

    def _read(self, key) -> Optional[np.ndarray]:
        path = self._path(*key)
        try:
            image = np.load(path, allow_pickle=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError):
            image = None
        h, w = key[1]
        if image is None or image.dtype != np.uint8 or image.shape != (h, w, 3):
            with contextlib.suppress(OSError):
                path.unlink()  # damaged or foreign: decoded again and rewritten
            return None
        return image

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1


def _load_one(path, size, resize: str, cache) -> np.ndarray:
    from edgecnn.bundle.manifest import sha256_file
    from edgecnn.data.scan import load_image_rgb
    from edgecnn.devices.preprocess import resize_rgb

    # Keyed by the bytes the file holds now, not the sha256 a run recorded: a file edited since is
    # decoded again. Hashing costs a fraction of decoding.
    sha = sha256_file(path) if cache is not None else None
    image = cache.get(sha, size, resize) if cache is not None else None
    if image is None:
        image = resize_rgb(load_image_rgb(path), size, resize)
        if cache is not None:
            cache.put(sha, size, resize, image)
    return image


def load_images(samples, size, resize: str = DEFAULT_RESIZE, progress: bool = False,
                cache=...) -> Tuple[np.ndarray, np.ndarray]:
    """Decode and resize ``samples`` into arrays, through the decoded-image cache.

    Args:
        samples: Samples (e.g. ``dataset.splits["train"]``).
        size: ``(height, width)`` or a square size in pixels.
        resize: ``area``, ``bilinear`` or ``nearest``: the same function as on the board
            (``edgecnn.devices.preprocess.resize_rgb``).
        progress: show a progress bar.
        cache: a :class:`edgecnn.data.pixels.PixelCache`; the default one (on disk) when not given,
            None to decode every file.

    Returns:
        ``(x, y)``: x is N x H x W x 3 uint8 RGB, y is N int64 labels.
    """
    samples = list(samples)
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    cache = PixelCache() if cache is ... else cache
    x = np.empty((len(samples), h, w, 3), dtype=np.uint8)
    images = parallel_map(lambda s: _load_one(s.path, (h, w), resize, cache), samples, progress, "Loading images")
    if cache is not None:
        cache.warn_problem()
    for i, img in enumerate(images):
        x[i] = img
    y = np.asarray([s.label for s in samples], dtype=np.int64)
    return x, y
