"""Walking a data folder: its layout, class folders and files, and scanning them.

The one walker of image folders: ``edgecnn.data.dataset`` (finetune), ``edgecnn.audit``, evaluation's
DATA folders and calibration sets all list files here, so they see the same files (hidden files and
folders skipped); nothing outside this module walks a data folder itself.

Public API:

* :func:`discover`: the layout, classes and files of a DATA_DIR (:class:`Discovery`), no file opened;
* :func:`class_folders`, :func:`files_in`, :func:`image_files`: the pieces it is made of;
* :func:`scan_files`: scan and sha256 a list of files (the finetune scanner, on a thread pool);
* :func:`parallel_map`: ``[func(x) for x in items]`` on that thread pool, with an optional progress bar;
* :func:`relative`, :func:`printable`: a path as a report shows it.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from edgecnn.bundle.manifest import sha256_file
from edgecnn.errors import DataError
from edgecnn.data.scan import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ScanResult, scan_file

__all__ = ["SPLIT_NAMES", "Discovery", "discover", "class_folders", "files_in", "image_files",
           "scan_files", "parallel_map", "relative", "printable"]

SPLIT_NAMES = ("train", "val", "test")
_FIX_LAYOUT = ("Put the images in one sub-folder per class: DATA_DIR/<class>/*.jpg, or "
               "DATA_DIR/train/<class>/ and DATA_DIR/val/<class>/ (optionally DATA_DIR/test/<class>/).")


def printable(text) -> str:
    """``text`` as it can be printed and written as UTF-8.

    A file name that is not valid UTF-8 reaches Python with its odd bytes as surrogate escapes
    (PEP 383): they open the file, but cannot be encoded for a report or a terminal. Here they
    read ``\\xNN``, the bytes they stand for.
    """
    text = str(text)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def relative(path, root) -> str:
    """``path`` relative to ``root`` as a POSIX string (the path itself when it is not under ``root``)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def class_folders(folder) -> List[Path]:
    """The visible sub-folders of ``folder``, sorted by name: its class folders.

    Raises:
        DataError: a folder name that is not valid UTF-8 (class names become labels).
    """
    folder = Path(folder)
    dirs = sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)
    for p in dirs:
        # A class name becomes a label in labels.txt, run.json, the bundle and the board's output:
        # UTF-8 text. Refused here, before any training, rather than when the model is written.
        if not _utf8(p.name):
            raise DataError(f"class folder '{printable(p)}' has a name that is not valid UTF-8, and class names "
                            "become the labels of the model (UTF-8 text on the board). Rename the folder (for "
                            "example with `mv`, or `convmv -f latin1 -t utf-8 -r --notest DATA_DIR`).")
    return dirs


def files_in(folder) -> List[Path]:
    """Every visible file under ``folder`` (recursively, hidden folders skipped), sorted by POSIX path.

    Nothing is opened: a file that is not an image is listed too (the scan says why it is unusable).
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(out, key=lambda p: p.as_posix())


def image_files(folder) -> List[Path]:
    """The regular files under ``folder`` with an image extension (``IMAGE_EXTENSIONS``), hidden ones skipped.

    Sorted as paths (part by part), the order a calibration folder's files have always been listed in
    (bundles record it); :func:`files_in` sorts by the POSIX string, which differs only where a name
    and a folder share a prefix followed by a character below ``/`` (``a.b/`` and ``a/``).
    """
    return sorted(p for p in files_in(folder) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def parallel_map(func, items, progress: bool = False, description: str = ""):
    """``[func(x) for x in items]`` on a thread pool (Pillow and OpenCV release the GIL)."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        if not progress:
            return list(pool.map(func, items))
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        results = []
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task(description, total=len(items))
            for result in pool.map(func, items):
                results.append(result)
                bar.advance(task)
        return results


def _scan_one(path: Path, max_pixels: int) -> Tuple[ScanResult, Optional[str]]:
    result = scan_file(path, max_pixels)
    digest = sha256_file(path) if result.ok else None
    return result, digest


def scan_files(paths, max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False,
               description: str = "Scanning images") -> List[Tuple[ScanResult, Optional[str]]]:
    """``(ScanResult, sha256 or None)`` of each path, in order: the finetune scanner, on a thread pool.

    The sha256 is computed for usable files only.
    """
    return parallel_map(lambda path: _scan_one(path, max_pixels), paths, progress, description)


def _check_root(data_dir) -> Path:
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise DataError(f"data folder '{root}' does not exist. Pass the folder that holds one sub-folder "
                        "per class (DATA_DIR/<class>/*.jpg).")
    if not root.is_dir():
        raise DataError(f"'{root}' is not a folder. Pass DATA_DIR, the folder that holds one sub-folder per "
                        "class, not a file.")
    return root.resolve()


def _detect_layout(root: Path):
    """Return ``(layout, {split: {label: folder}})``; splits is None for the folders layout."""
    if (root / "train").is_dir():
        if not (root / "val").is_dir():
            raise DataError(f"'{root}' has a train/ folder but no val/ folder. Add {root / 'val'}/<class>/ "
                            "folders, or put every class folder directly in DATA_DIR and edgecnn makes the "
                            "split.")
        per_split = {}
        for split in SPLIT_NAMES:
            if (root / split).is_dir():
                per_split[split] = {p.name: p for p in class_folders(root / split)}
        return "splits", per_split
    return "folders", {"all": {p.name: p for p in class_folders(root)}}


@dataclass
class Discovery:
    """The files of a DATA_DIR before scanning: ``files`` holds ``(split, label index, path)``.

    ``split`` is ``train``/``val``/``test`` in the splits layout and ``all`` in the folders layout.
    """

    root: Path
    layout: str
    labels: List[str]
    files: List[Tuple[str, int, Path]]


def discover(data_dir) -> Discovery:
    """Find the layout, the classes and every visible file of ``data_dir`` (no file is opened).

    Raises:
        DataError: the folder is missing, is a file, has no class folders, or (splits layout) has no
            val/ folder or class folders in val/ or test/ that train/ lacks.
    """
    root = _check_root(data_dir)
    layout, per_split = _detect_layout(root)
    labels = sorted(per_split["train"] if layout == "splits" else per_split["all"])
    if not labels:
        where = root / "train" if layout == "splits" else root
        raise DataError(f"'{where}' has no class folders. {_FIX_LAYOUT}")
    if layout == "splits":
        for split, classes in per_split.items():
            extra = sorted(set(classes) - set(labels))
            if extra:
                raise DataError(f"'{root / split}' has class folders {extra} that '{root / 'train'}' does not "
                                f"have. Every class in {split}/ needs training images in train/<class>/; add "
                                "them or remove the folders.")
    index = {name: i for i, name in enumerate(labels)}
    files = []
    for split, classes in per_split.items():
        for name, folder in sorted(classes.items()):
            files.extend((split, index[name], p) for p in files_in(folder))
    return Discovery(root, layout, labels, files)
