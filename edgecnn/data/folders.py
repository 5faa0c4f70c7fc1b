"""Walking a DATA_DIR: its layout, class folders and files, before any file is opened.

``edgecnn.data.dataset`` (finetune) and ``edgecnn.audit`` both start here, so they see the same files.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from edgecnn.bundle.manifest import sha256_file
from edgecnn.errors import DataError
from edgecnn.data.scan import ScanResult, scan_file

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


def _rel(path, root) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _class_dirs(folder: Path) -> List[Path]:
    dirs = sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)
    for p in dirs:
        # A class name becomes a label in labels.txt, run.json, the bundle and the board's output:
        # UTF-8 text. Refused here, before any training, rather than when the model is written.
        if not _utf8(p.name):
            raise DataError(f"class folder '{printable(p)}' has a name that is not valid UTF-8, and class names "
                            "become the labels of the model (UTF-8 text on the board). Rename the folder (for "
                            "example with `mv`, or `convmv -f latin1 -t utf-8 -r --notest DATA_DIR`).")
    return dirs


def _files_in(folder: Path) -> List[Path]:
    """Every visible file under ``folder`` (recursively, hidden folders skipped), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(out, key=lambda p: p.as_posix())


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _progress_map(func, items, progress: bool, description: str):
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
                per_split[split] = {p.name: p for p in _class_dirs(root / split)}
        return "splits", per_split
    return "folders", {"all": {p.name: p for p in _class_dirs(root)}}


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
            files.extend((split, index[name], p) for p in _files_in(folder))
    return Discovery(root, layout, labels, files)
