"""Local "boards" for the deploy tests and benchmark: an sshd, a ROOT, and the real `edgecnn run` app.

Bundles are variants of the committed tiny bundle (tests/device/assets, no TensorFlow): a new
``source`` makes a new manifest sha; ``tampered`` changes a golden score after the files were
hashed (the sha check passes, the board's self-test fails); ``padded`` adds an incompressible file
so a copy takes long enough to be cut and a small disk fills.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS / "device"))
from board_helpers import ASSETS, colour_frame  # noqa: E402
from ssh_helpers import start_sshd, stop  # noqa: E402

EDGECNN = str(Path(sys.executable).with_name("edgecnn"))  # the board's edgecnn: this checkout's venv


def variant(out: Path, tag: str, tamper: bool = False, pad_bytes: int = 0) -> Path:
    """A copy of the tiny bundle whose manifest differs by ``source.tag`` (and is tampered / padded)."""
    from edgecnn.atomic import write_json
    from edgecnn.bundle.manifest import MANIFEST, sha256_file

    shutil.copytree(ASSETS / "tiny_bundle", out)
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["source"] = {**manifest.get("source", {}), "tag": tag}
    if pad_bytes:
        (out / "padding.bin").write_bytes(os.urandom(pad_bytes))
        manifest["files"]["padding.bin"] = {"sha256": sha256_file(out / "padding.bin"), "bytes": pad_bytes}
    if tamper:  # after the files were hashed: only the golden comparison on the board can tell
        manifest["golden"][1]["scores"][0] = round(manifest["golden"][1]["scores"][0] + 0.25, 5)
    write_json(out / MANIFEST, manifest)
    return out


def sha_of(bundle) -> str:
    from edgecnn.devices.board_root import manifest_sha256

    return manifest_sha256(bundle)


def hand_install(root: Path, bundle: Path) -> str:
    """The README's by-hand layout: ROOT/bundles/<sha>/ and ROOT/current -> bundles/<sha>."""
    sha = sha_of(bundle)
    shutil.copytree(bundle, root / "bundles" / sha)
    os.symlink(f"bundles/{sha}", root / "current")
    return sha


def write_video(path: Path, frames: int = 30, size=(64, 48)) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for i in range(frames):
        writer.write(colour_frame(i // 10 % 3, size=(size[1], size[0]), seed=i))
    writer.release()
    return path


def read_events(path: Path) -> list:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def classifies_with(events: list, sha: str) -> bool:
    """A start or swap to bundle ``sha`` followed by at least one classified frame."""
    marks = [i for i, e in enumerate(events) if e.get("event") in ("started", "bundle_swapped")]
    if not marks or events[marks[-1]].get("sha256") != sha:
        return False
    return any(e.get("event") == "frame" for e in events[marks[-1] + 1:])


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class LocalBoard:
    """sshd on its own port + ROOT + (optionally) `edgecnn run ROOT/current --watch-bundle` on a looped video."""

    def __init__(self, name: str, folder: Path, user_key: Path, root: Path = None):
        self.name, self.folder = name, folder
        self.root = root or folder / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.sshd = start_sshd(folder / "sshd", user_key)
        self.url = f"{self.sshd['url']}{self.root}"
        self.events = folder / "events.jsonl"
        self.http_port = None
        self.app = None

    def start_app(self, video: Path, http_port: int):
        self.http_port = http_port
        self.app = subprocess.Popen(
            [EDGECNN, "run", str(self.root / "current"), "--source", str(video), "--live", "--max-fps", "10",
             "--watch-bundle", "--events", str(self.events), "--http", str(http_port), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=open(self.folder / "app.stderr", "wb"))

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/status"

    def inventory_entry(self, groups=()) -> dict:
        return {"name": self.name, "url": self.url, "groups": list(groups),
                **({"status_url": self.status_url} if self.http_port else {})}

    def current(self):
        link = self.root / "current"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def previous(self):
        link = self.root / "previous"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def close(self):
        if self.app is not None:
            stop(self.app)
        stop(self.sshd["proc"])
