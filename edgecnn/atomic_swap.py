"""Put a finished folder in place of another without a moment when neither exists.

A board watching BUNDLE_DIR (``edgecnn run --watch-bundle``) or a person copying it must always
find a complete bundle at that path: the old one or the new one. ``os.replace`` cannot move a
folder over a non-empty folder, and moving the old one aside first leaves a gap. So:

- Linux (workstation and board): ``renameat2(RENAME_EXCHANGE)`` swaps the two names in one step;
  the old bundle then sits under the temporary name and is removed.
- Elsewhere, or on a file system that cannot exchange (some network ones): the old folder is
  renamed aside to ``.NAME.old.PID`` and the new one renamed in; the gap is two renames long, and a
  kill in between leaves ``.NAME.old.PID``, which the next write cleans up
  (:func:`edgecnn.atomic.clean_leftovers`).

Why not a ``current`` symlink switched over versioned folders: BUNDLE_DIR would become a symlink,
and ``cp -r``/``scp -r`` of it copy the link rather than the bundle, while the README says "copy
BUNDLE_DIR to the board". The folder keeps its name and kind; only its contents change at once.
(``edgecnn deploy`` on the board keeps its own release folders and symlink.) Standard library only.
"""

import ctypes
import errno
import os
import shutil
import sys
from pathlib import Path

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
