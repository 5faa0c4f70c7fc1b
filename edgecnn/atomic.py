"""Atomic writes (DESIGN rule 7): a temporary file in the same folder, then ``os.replace``.

A failed step never leaves a half-written artifact and never destroys the previous one.
Standard library only: the board uses it too.

Three promises besides atomicity:

- Modes: what lands in place has the usual modes of a new file (0666) or folder (0777) less the
  umask, as ``open`` and ``mkdir`` would give; ``mkstemp``/``mkdtemp`` create 0600/0700, which
  would make a bundle copied with its modes unreadable to a board service running as another user.
- Leftovers: temporary names carry the writer's process id (``.NAME.PID.RANDOM.tmp``), so the next
  write of NAME removes those of processes that no longer run (a ``kill -9`` leaves them behind),
  and never those of a writer still at work.
- A full disk raises :class:`DiskFullError` (an :class:`EdgecnnError` and an ``OSError``), naming
  the path and the space needed, after the temporary file or folder is removed.
"""

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from edgecnn.errors import DiskFullError, WriteError, creating, disk_full_as_error, remove_path

__all__ = ["write_bytes", "write_text", "write_json", "atomic_path", "atomic_dir", "clean_leftovers",
           "clean_folder", "file_mode", "dir_mode", "DiskFullError", "WriteError"]


# Putting a finished folder in place of another without a moment when neither exists (swap_in).
# A board watching BUNDLE_DIR (``edgecnn run --watch-bundle``) or a person copying it must always
# find a complete bundle at that path: the old one or the new one. ``os.replace`` cannot move a
# folder over a non-empty folder, and moving the old one aside first leaves a gap. So:
#
# - Linux (workstation and board): ``renameat2(RENAME_EXCHANGE)`` swaps the two names in one step;
#   the old bundle then sits under the temporary name and is removed.
# - Elsewhere, or on a file system that cannot exchange (some network ones): the old folder is
#   renamed aside to ``.NAME.old.PID`` and the new one renamed in; the gap is two renames long, and a
#   kill in between leaves ``.NAME.old.PID``, which the next write cleans up
#   (:func:`edgecnn.atomic.clean_leftovers`).
#
# Why not a ``current`` symlink switched over versioned folders: BUNDLE_DIR would become a symlink,
# and ``cp -r``/``scp -r`` of it copy the link rather than the bundle, while the README says "copy
# BUNDLE_DIR to the board". The folder keeps its name and kind; only its contents change at once.
# (``edgecnn deploy`` on the board keeps its own release folders and symlink.)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_RENAMEAT2 = _renameat2()


def exchange(a, b) -> bool:
    """Swap the names ``a`` and ``b`` (both must exist) in one step; False where not supported."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # the kernel or the file system cannot exchange: fall back to two renames
    raise OSError(err, os.strerror(err), str(b))


def swap_in(new, path):
    """Put folder ``new`` at ``path``, replacing what is there; ``new``'s name is gone afterwards."""
    new, path = Path(new), Path(path)
    if not os.path.lexists(path):
        os.replace(new, path)
        return
    if exchange(new, path):
        old = new  # the old contents now live under the temporary name
    else:
        old = path.parent / f".{path.name}.old.{os.getpid()}"
        os.replace(path, old)
        os.replace(new, path)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    path = Path(path)
    with atomic_path(path, needed=len(data)) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_text(path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (keys kept in insertion order)."""
    return write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(obj):
    # numpy scalars and arrays appear in metrics; convert without importing numpy here.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


@contextlib.contextmanager
def atomic_path(path, needed: int = None):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    Use it for writers that want a filename (``model.save``, ``cv2.imwrite``, converters). The
    temporary name ends with ``path``'s suffix, because some writers pick the format by it.
    ``needed`` (bytes), when known, goes into the disk-full message.
    """
    path = Path(path)
    with creating(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp" + path.suffix,
                                   dir=path.parent)
    os.close(fd)
    try:
        with disk_full_as_error(path, tmp, needed):
            yield Path(tmp)
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds.

    On failure the temporary folder is removed and any existing ``path`` is left untouched. An
    existing folder is exchanged with the new one in one step where the system allows it, so
    ``path`` never disappears (see :mod:`edgecnn.atomic`); the old one is then removed.
    Leftovers of earlier writers of ``path`` that were killed are removed first.
    """
    path = Path(path)
    with creating(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    try:
        with disk_full_as_error(path, tmp):
            os.chmod(tmp, dir_mode())
            yield tmp
            swap_in(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -- modes --------------------------------------------------------------------------------------

def _umask() -> int:
    try:  # Linux >= 4.7 shows it without changing it (os.umask would, for a moment, in every thread)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the umask (0644 with the usual 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder: 0777 less the umask (0755 with the usual 022)."""
    return 0o777 & ~_umask()


# -- leftovers of killed writers ----------------------------------------------------------------

# The names temporaries get: .NAME.PID.RANDOM.tmp[.suffix] (files and folders) and .NAME.old.PID
# (a folder swapped out where the system cannot exchange); and, without a PID, those edgecnn wrote
# before temporaries carried one: .NAME.RANDOM.tmp and .STEM.RANDOM.SUFFIX (RANDOM: 8 of [a-z0-9_]).
_LEFTOVERS = [
    re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]{8}\.tmp(?:\.\w+)?$"),
    re.compile(r"^\.(?P<target>.+)\.old\.(?P<pid>\d+)$"),
    re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$"),
    re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}(?P<suffix>\.\w+)$"),
]


def _leftover(name: str):
    """``(target name, writer pid or None)`` when ``name`` is a temporary's name, else None."""
    for pattern in _LEFTOVERS:
        match = pattern.match(name)
        if match:
            groups = match.groupdict()
            target = groups.get("target") or groups["stem"] + groups["suffix"]
            return target, int(groups["pid"]) if groups.get("pid") else None
    return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _dead_writer(name: str, target: str = None) -> bool:
    found = _leftover(name)
    if found is None or (target is not None and found[0] != target):
        return False
    return found[1] is None or not _alive(found[1])


def clean_leftovers(path) -> list:
    """Remove the temporary files and folders that killed writers of ``path`` left beside it.

    Returns:
        The paths removed.
    """
    path = Path(path)
    try:
        entries = [Path(e.path) for e in os.scandir(path.parent) if e.name.startswith(".")]
    except OSError:
        return []
    removed = [entry for entry in entries if _dead_writer(entry.name, path.name)]
    for entry in removed:
        remove_path(entry)
    return removed


def clean_folder(folder) -> list:
    """Remove the leftovers of killed writers anywhere under ``folder`` (e.g. a RUN_DIR).

    Only for folders one program owns (a run's): a PID-less temporary of an old edgecnn is taken
    for a leftover whatever it is.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = [entry for entry in sorted(folder.rglob(".*")) if _dead_writer(entry.name)]
    for entry in removed:
        remove_path(entry)
    return removed
