"""A board's ROOT: installed bundles, the ``current`` one the app runs, and the way back.

::

    ROOT/bundles/<sha>/     a complete, verified bundle (<sha>: the sha256 of its edgecnn.json)
    ROOT/current -> bundles/<sha>     what `edgecnn run ROOT/current --watch-bundle` runs
    ROOT/previous -> bundles/<sha>    what `rollback` returns to
    ROOT/selftest/<sha>.json          the self-test report that allowed the switch
    ROOT/history.json                 installs, oldest first (what --keep counts)

A board set up by hand looks the same (README: "The board's ROOT"). Every change is atomic: a
bundle arrives in a temporary folder and is renamed into ``bundles/`` only once every file matches
its sha256 (:func:`edgecnn.atomic.atomic_dir`); ``current`` and ``previous`` are replaced by a
symlink renamed over them, so the app sees the old bundle or the new one, never a gap. One lock
file keeps two deploys to the same ROOT from interleaving. Standard library only (the board).
"""

import contextlib
import fcntl
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

from edgecnn.atomic import atomic_dir, write_json
from edgecnn.bundle.manifest import MANIFEST, sha256_file, verify_bundle
from edgecnn.errors import DeviceError, DiskFullError, check_free_space, free_bytes, remove_path

CURRENT, PREVIOUS, BUNDLES, SELFTEST, HISTORY = "current", "previous", "bundles", "selftest", "history.json"
DEFAULT_KEEP = 3  # installed bundles kept on a board (current and previous always among them)
SPACE_MARGIN = 1.1  # a bundle needs its size plus this share free before its copy starts


class BoardRootError(DeviceError):
    """A board's ROOT cannot take a bundle, or a switch or rollback cannot be made."""


def manifest_sha256(bundle_dir) -> str:
    """A bundle's identity: the sha256 of its edgecnn.json (which holds every file's sha256)."""
    return sha256_file(Path(bundle_dir) / MANIFEST)


def root_path(root) -> Path:
    return Path(os.path.expanduser(str(root)))


def _check_sha(sha: str) -> str:
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise BoardRootError(f"'{sha}' is not a bundle sha256 (64 lowercase hex digits).")
    return sha


@contextlib.contextmanager
def locked(root: Path):
    """Hold ROOT's lock for one change; another deploy at work makes this one fail at once."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BoardRootError(f"another deploy is changing '{root}' now; wait for it to finish.") from None
        yield


def link_target(root: Path, name: str):
    """The sha a ROOT link points to, or None when there is no such link."""
    path = root / name
    if not path.is_symlink():
        if path.exists():
            raise BoardRootError(f"'{path}' is a folder, not a link. Move it to '{root / BUNDLES}/<sha256 of its "
                                 f"{MANIFEST}>/' and link it: ln -sfn {BUNDLES}/<sha> {path} (README: the board's "
                                 "ROOT).")
        return None
    return Path(os.readlink(path)).name


def _link(root: Path, name: str, sha: str):
    """Point ROOT/name at bundles/<sha> in one rename (relative, so ROOT can move)."""
    tmp = root / f".{name}.{os.getpid()}.tmp"
    remove_path(tmp)
    os.symlink(f"{BUNDLES}/{sha}", tmp)
    os.replace(tmp, root / name)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)  # the switch survives a power cut
    finally:
        os.close(fd)


def _history(root: Path) -> list:
    try:
        return json.loads((root / HISTORY).read_text())
    except (OSError, ValueError):
        return []


def _safe_members(archive, dest: Path, limit: int):
    """Extract a tar stream's regular files and folders into ``dest``; nothing may leave it."""
    total = 0
    for member in archive:
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise BoardRootError(f"the bundle stream holds '{member.name}', which is not a plain file inside the "
                                 "bundle: refused.")
        out = dest / name
        if member.isdir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        total += member.size
        if limit and total > limit:
            raise BoardRootError(f"the bundle stream is larger than the {limit} bytes announced: refused.")
        out.parent.mkdir(parents=True, exist_ok=True)
        with archive.extractfile(member) as src, open(out, "wb") as fh:
            shutil.copyfileobj(src, fh)


def receive(root, sha: str, stream, size: int = 0, name: str = "") -> dict:
    """Install a bundle sent as a tar stream into ROOT/bundles/<sha>, unless it is already there.

    ``size`` (bytes of its files) is checked against the free space before anything is written.
    Returns ``{"sha256", "installed": bool, "free_bytes"}``; raises BoardRootError / DiskFullError.
    """
    root, sha = root_path(root), _check_sha(sha)
    dest = root / BUNDLES / sha
    with locked(root):
        if (dest / MANIFEST).is_file():
            return {"sha256": sha, "installed": False, "free_bytes": free_bytes(root)}
        try:
            check_free_space(root, int(size * SPACE_MARGIN), f"bundle {sha[:12]}")
        except DiskFullError as exc:
            raise DiskFullError(f"disk full on this board: {exc}", up_front=True) from None
        with atomic_dir(dest) as tmp:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as archive:
                    _safe_members(archive, tmp, int(size))
            except (tarfile.TarError, EOFError) as exc:
                raise BoardRootError(f"the copy of bundle {sha[:12]} was cut ({exc}); nothing was installed. "
                                     "Run the deploy again.") from None
            verify_bundle(tmp)  # every file matches its sha256 before the bundle looks installed
            if manifest_sha256(tmp) != sha:
                raise BoardRootError(f"the bundle received is not {sha[:12]} (its {MANIFEST} differs): refused.")
        history = [h for h in _history(root) if h.get("sha256") != sha]
        write_json(root / HISTORY, history + [{"sha256": sha, "name": name, "installed_at": round(time.time(), 3)}])
    return {"sha256": sha, "installed": True, "free_bytes": free_bytes(root)}


def switch(root, sha: str, report: dict, keep: int = DEFAULT_KEEP) -> dict:
    """Make bundles/<sha> current (the old current becomes previous) once its self-test ``report`` passed.

    Keeps the ``keep`` most recently installed bundles (current and previous always). Returns
    ``{"current", "previous", "switched": False when it was current already, "removed": [...]}``."""
    root, sha = root_path(root), _check_sha(sha)
    if not report.get("ok"):
        raise BoardRootError(f"bundle {sha[:12]} did not pass its self-test on this board; it is not switched to.")
    with locked(root):
        if not (root / BUNDLES / sha / MANIFEST).is_file():
            raise BoardRootError(f"'{root / BUNDLES / sha}' is not installed; copy it first.")
        write_json(root / SELFTEST / f"{sha}.json", report)
        old = link_target(root, CURRENT)
        if old != sha:
            if old is not None:
                _link(root, PREVIOUS, old)
            _link(root, CURRENT, sha)
        removed = _prune(root, keep)
        return {"current": sha, "previous": link_target(root, PREVIOUS), "switched": old != sha, "removed": removed}


def rollback(root, failed: bool = False) -> dict:
    """Point ``current`` back at ``previous``; ``previous`` becomes what was current.

    ``failed``: what was current failed its health check: it is removed instead, and ``previous``
    becomes the newest other bundle installed (so a later rollback never returns to it)."""
    root = root_path(root)
    with locked(root):
        current, previous = link_target(root, CURRENT), link_target(root, PREVIOUS)
        if previous is None or not (root / BUNDLES / previous / MANIFEST).is_file():
            raise BoardRootError(f"'{root}' has no previous bundle to roll back to.")
        _link(root, CURRENT, previous)
        if current is not None and not failed:
            _link(root, PREVIOUS, current)
            return {"current": previous, "previous": current, "removed": []}
        others = [h["sha256"] for h in _history(root) if h["sha256"] not in (current, previous)
                  and (root / BUNDLES / h["sha256"] / MANIFEST).is_file()]
        if others:
            _link(root, PREVIOUS, others[-1])
        else:
            remove_path(root / PREVIOUS)
        if current is not None:
            remove_path(root / BUNDLES / current)
            write_json(root / HISTORY, [h for h in _history(root) if h.get("sha256") != current])
        return {"current": previous, "previous": others[-1] if others else None,
                "removed": [current] if current else []}


def discard(root, sha: str) -> dict:
    """Remove an installed bundle that failed its self-test (never the current or previous one)."""
    root, sha = root_path(root), _check_sha(sha)
    with locked(root):
        if sha in (link_target(root, CURRENT), link_target(root, PREVIOUS)):
            return {"sha256": sha, "removed": False}
        remove_path(root / BUNDLES / sha)
        write_json(root / HISTORY, [h for h in _history(root) if h.get("sha256") != sha])
        return {"sha256": sha, "removed": True}


def _prune(root: Path, keep: int) -> list:
    in_use = {link_target(root, CURRENT), link_target(root, PREVIOUS)}
    installed = [h["sha256"] for h in _history(root) if (root / BUNDLES / h["sha256"]).is_dir()]
    keep_set = set(installed[-max(int(keep), 1):]) | in_use
    removed = [sha for sha in installed if sha not in keep_set]
    for sha in removed:
        remove_path(root / BUNDLES / sha)
        remove_path(root / SELFTEST / f"{sha}.json")
    if removed:
        write_json(root / HISTORY, [h for h in _history(root) if h["sha256"] not in removed])
    return removed


def describe_root(root) -> dict:
    """What ROOT holds: current and previous (sha, name), the installed bundles, free bytes."""
    root = root_path(root)
    names = {h.get("sha256"): h.get("name") for h in _history(root)}
    out = {"root": str(root), "free_bytes": free_bytes(root)}
    for key in (CURRENT, PREVIOUS):
        sha = link_target(root, key) if root.is_dir() else None
        out[key] = {"sha256": sha, "name": names.get(sha) or None} if sha else None
    bundles = root / BUNDLES
    out["bundles"] = sorted(p.name for p in bundles.iterdir() if not p.name.startswith(".")) if bundles.is_dir() else []
    current = out[CURRENT]
    report = root / SELFTEST / f"{current['sha256']}.json" if current else None
    try:
        test = json.loads(report.read_text()) if report else None
    except (OSError, ValueError):
        test = None
    out["self_test"] = ({"ok": bool(test.get("ok")), "checks": len(test.get("checks") or []),
                         "errors": test.get("errors") or [], "backend": test.get("backend")} if test else None)
    return out
