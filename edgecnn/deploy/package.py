"""The bundle as it travels: checked here first, then one tar file streamed to every board."""

import shutil
import tarfile
import tempfile
from pathlib import Path

from edgecnn.bundle.manifest import MANIFEST, verify_bundle
from edgecnn.devices.board_root import manifest_sha256


class BundlePackage:
    """``with BundlePackage(bundle) as pkg``: ``pkg.sha256``, ``pkg.size``, ``pkg.name``, ``pkg.tar``.

    The bundle is verified (every sha256) before any board sees it; the tar holds the manifest and
    exactly the files it lists, so nothing stray travels."""

    def __init__(self, bundle_dir):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = verify_bundle(self.bundle_dir)
        self.sha256 = manifest_sha256(self.bundle_dir)
        self.files = sorted(self.manifest["files"]) + [MANIFEST]
        self.size = sum((self.bundle_dir / rel).stat().st_size for rel in self.files)
        self.name = self.bundle_dir.resolve().name
        self._tmp = self.tar = None

    def __enter__(self):
        self._tmp = Path(tempfile.mkdtemp(prefix="edgecnn-deploy-"))
        self.tar = self._tmp / f"{self.sha256[:12]}.tar"
        with tarfile.open(self.tar, "w", format=tarfile.PAX_FORMAT) as archive:
            for rel in self.files:
                archive.add(self.bundle_dir / rel, arcname=rel, recursive=False)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self._tmp, ignore_errors=True)

    def describe(self) -> dict:
        return {"bundle": str(self.bundle_dir), "name": self.name, "sha256": self.sha256, "bytes": self.size,
                "files": len(self.files)}
