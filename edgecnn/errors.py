"""The one exception family of edgecnn (DESIGN rule 8).

Every message names the value at fault and the fix. The CLI prints ``Error: <message>`` and
exits 2 for any of these, with no traceback.

A failed write becomes one of them too: a full disk or an unwritable folder is one clear
:class:`WriteError` (:mod:`edgecnn.atomic` wraps every write in these helpers; a long step such as
finetune checks the free space up front with :func:`check_free_space`, before hours of training
meet a full disk). Standard library only: the board uses it too.
"""

import contextlib
import errno
import shutil
from pathlib import Path


class EdgecnnError(Exception):
    """Base class of every error edgecnn raises on purpose."""


class DataError(EdgecnnError):
    """A dataset folder, an image file or a split is unusable."""


class ModelError(EdgecnnError):
    """A model, a backbone or weights cannot be built or loaded."""


class RunError(EdgecnnError):
    """A RUN_DIR is missing, incomplete, or conflicts with the arguments given."""


class ConversionError(EdgecnnError):
    """A TFLite conversion or its verification failed."""


class BundleError(EdgecnnError):
    """A bundle is missing files, fails its sha256 check or its self-test."""


class DeviceError(EdgecnnError):
    """The board runtime cannot load an interpreter, a delegate or a frame source."""


class MissingDependencyError(EdgecnnError):
    """An optional dependency (an extra) is not installed."""


def require(module: str, extra: str):
    """Import ``module`` or raise a MissingDependencyError naming the extra to install.

    Args:
        module: dotted module name, e.g. ``"tensorflow"``.
        extra: the edgecnn extra that provides it, e.g. ``"train-cpu"``.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this command needs '{module}', which is not installed ({exc}). "
            f"Install it with: pip install 'edgecnn[{extra}]'"
        ) from None


# What a failed write tells the user.
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# Libraries that wrap the OS error in their own (h5py, TensorFlow) keep its text.
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "errno = 28", "file too large")


class WriteError(EdgecnnError, OSError):
    """An artifact cannot be written where asked: a read-only or foreign folder, a file in the way.

    Also an ``OSError``, so code that already handles OS errors around a write keeps doing so.
    """

    def __init__(self, message: str, code: int = errno.EIO):
        super().__init__(message)
        self.errno = code


class DiskFullError(WriteError):
    """The file system filled up (or a file size limit was hit) while writing an artifact.

    ``up_front`` is true when a step refused to start for lack of space (nothing was written).
    """

    def __init__(self, message: str, up_front: bool = False):
        super().__init__(message, errno.ENOSPC)
        self.up_front = up_front


@contextlib.contextmanager
def creating(path: Path):
    """A folder that cannot be created or written in becomes one clear WriteError naming ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_FULL_ERRNOS:
            raise DiskFullError(disk_full_message(path)) from None
        why = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "the file system is read-only", errno.ENOTDIR: "a file stands where a folder should be",
               errno.EEXIST: "a file stands where a folder should be"}.get(exc.errno)
        if why is None:
            raise
        raise WriteError(f"cannot write '{path}': {why} ({exc.filename or path}). Choose a folder you can "
                         "write to.", exc.errno) from None


# -- a full disk ----------------------------------------------------------------------------------

def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or a quota, or a file size limit) is full."""
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return True
    text = str(exc).lower()
    return any(t in text for t in _DISK_FULL_TEXT)


def remove_path(path):
    """Remove a file or a folder tree; what is already gone is fine."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _size(path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def free_bytes(folder) -> int:
    """Free bytes on the file system holding ``folder`` (its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def format_bytes(n: int) -> str:
    """``12.3 MB``, or ``4096 bytes`` below 0.1 MB."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def disk_full_message(path, needed: int = None, written: int = None) -> str:
    """``no space left on device writing 'PATH': ... Free space or ...`` (the one wording)."""
    free = free_bytes(Path(path).parent)
    if needed is not None:
        need = f"it needs {format_bytes(needed)}"
    elif written:
        need = f"it needs more than the {format_bytes(written)} written when the disk filled"
    else:
        need = "it needs more"
    return (f"no space left on the device writing '{path}': {format_bytes(free)} free there, {need}. Free some "
            "space there or write to another folder, then run the same command again.")


def check_free_space(path, needed: int, what: str):
    """Refuse a step before it starts when the file system of ``path`` has less than ``needed`` bytes."""
    free = free_bytes(path)
    if free < needed:
        raise DiskFullError(f"'{path}' has {format_bytes(free)} free but {what} needs about "
                            f"{format_bytes(needed)}. Free some space there or choose another folder.", up_front=True)


@contextlib.contextmanager
def disk_full_as_error(path, tmp=None, needed: int = None):
    """Turn a disk-full failure inside the block into a :class:`DiskFullError` naming ``path``.

    ``tmp`` (the temporary file or folder being written) is measured, then removed, so the message
    says how much was written and the space comes back.
    """
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        written = _size(tmp) if tmp is not None else None
        if tmp is not None:
            remove_path(tmp)
        raise DiskFullError(disk_full_message(path, needed, written)) from None
