"""A board's ROOT (edgecnn.devices.board_root): install from a tar stream, atomic switch, keep, rollback.

Board side: runs in .venv-board too (no TensorFlow). The streams are real tar files of the
committed tiny bundle; the self-test reports come from the real self-test.
"""

import io
import json
import os
import shutil
import tarfile
import threading
from pathlib import Path

import pytest
from board_helpers import ASSETS, ColourCamera

from edgecnn.atomic import write_json
from edgecnn.devices.board_root import (BoardRootError, describe_root, discard, manifest_sha256, receive, rollback,
                                        switch)
from edgecnn.devices.selftest import self_test
from edgecnn.errors import DiskFullError

pytestmark = pytest.mark.device


def _variant(folder: Path, tag: str) -> Path:
    shutil.copytree(ASSETS / "tiny_bundle", folder)
    manifest = json.loads((folder / "edgecnn.json").read_text())
    manifest["source"] = {"tag": tag}
    write_json(folder / "edgecnn.json", manifest)
    return folder


def _stream(bundle: Path, extra=None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for path in sorted(bundle.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(bundle)), recursive=False)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _install(root, bundle, name=""):
    sha = manifest_sha256(bundle)
    receive(root, sha, _stream(bundle), 100_000, name)
    return sha


@pytest.fixture
def bundles(tmp_path):
    return [_variant(tmp_path / f"v{i}", f"v{i}") for i in range(4)]


def test_install_switch_keep_and_rollback(tmp_path, bundles):
    root = tmp_path / "root"
    shas = []
    for i, bundle in enumerate(bundles[:3]):  # as deploy does: install, self-test, switch
        shas.append(_install(root, bundle, f"v{i}"))
        switch(root, shas[-1], self_test(root / "bundles" / shas[-1]), keep=2)
    assert receive(root, shas[2], io.BytesIO(b""), 0)["installed"] is False  # there already: nothing read
    again = switch(root, shas[2], self_test(root / "bundles" / shas[2]), keep=2)
    assert again["switched"] is False and again["previous"] == shas[1]  # current already: no change
    shas.append(_install(root, bundles[3], "v3"))  # installed, not switched to
    state = describe_root(root)
    assert state["current"] == {"sha256": shas[2], "name": "v2"} and state["previous"]["sha256"] == shas[1]
    assert state["self_test"]["ok"] and state["self_test"]["checks"] > 0
    assert shas[0] not in state["bundles"] and shas[3] in state["bundles"]  # keep 2: v0 went, v3 is newest
    assert os.readlink(root / "current") == f"bundles/{shas[2]}"  # relative: ROOT can move
    assert rollback(root) == {"current": shas[1], "previous": shas[2], "removed": []}
    back = rollback(root, failed=True)  # v1 failed its health check: gone, v3 (newest other) is previous
    assert back == {"current": shas[2], "previous": shas[3], "removed": [shas[1]]}
    assert not (root / "bundles" / shas[1]).exists()
    assert discard(root, shas[2])["removed"] is False  # never the current one


def test_a_failed_self_test_report_is_never_switched_to(tmp_path, bundles):
    root = tmp_path / "root"
    sha = _install(root, bundles[0])
    with pytest.raises(BoardRootError, match="did not pass its self-test on this board"):
        switch(root, sha, {"ok": False, "errors": ["golden"]})
    assert not (root / "current").exists()
    with pytest.raises(BoardRootError, match="has no previous bundle to roll back to"):
        rollback(root)


def test_a_cut_stream_installs_nothing_and_leaves_nothing(tmp_path, bundles):
    root = tmp_path / "root"
    data = _stream(bundles[0]).getvalue()
    sha = manifest_sha256(bundles[0])
    with pytest.raises(BoardRootError, match=r"was cut .*nothing was installed. Run the deploy again."):
        receive(root, sha, io.BytesIO(data[:len(data) // 2]), 100_000)
    assert os.listdir(root / "bundles") == []
    assert _install(root, bundles[0]) == sha  # the re-run completes


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil"])
def test_a_stream_escaping_the_bundle_is_refused(tmp_path, bundles, name):
    root = tmp_path / "root"
    with pytest.raises(BoardRootError, match="which is not a plain file inside the bundle: refused"):
        receive(root, manifest_sha256(bundles[0]), _stream(bundles[0], {name: b"x"}), 100_000)
    assert os.listdir(root / "bundles") == [] and not (tmp_path / "evil").exists()


def test_a_stream_of_another_bundle_or_a_changed_file_is_refused(tmp_path, bundles):
    root = tmp_path / "root"
    with pytest.raises(BoardRootError, match="is not .* \\(its edgecnn.json differs\\): refused"):
        receive(root, manifest_sha256(bundles[1]), _stream(bundles[0]), 100_000)
    (bundles[2] / "labels.txt").write_text("x\ny\nz\n")
    with pytest.raises(Exception, match="does not match its sha256"):
        receive(root, manifest_sha256(bundles[2]), _stream(bundles[2]), 100_000)
    assert os.listdir(root / "bundles") == []


def test_too_little_free_space_is_said_before_copying(tmp_path, bundles):
    with pytest.raises(DiskFullError, match=r"^disk full on this board: .* has .* free but bundle .* needs about"):
        receive(tmp_path / "root", manifest_sha256(bundles[0]), io.BytesIO(b""), 1 << 60)


def test_a_current_folder_set_up_the_old_way_is_explained(tmp_path, bundles):
    root = tmp_path / "root"
    sha = _install(root, bundles[0])
    shutil.copytree(bundles[1], root / "current")
    with pytest.raises(BoardRootError, match=r"is a folder, not a link. Move it to .*ln -sfn"):
        switch(root, sha, {"ok": True})


def test_the_app_follows_a_symlink_switch_and_names_the_sha(tmp_path, bundles):
    from edgecnn.devices.app import run

    root = tmp_path / "root"
    shas = [_install(root, b) for b in bundles[:2]]
    switch(root, shas[0], {"ok": True})
    seen, cond, stop = [], threading.Condition(), threading.Event()

    class Sink:
        def write(self, line):
            with cond:
                seen.append(json.loads(line))
                cond.notify_all()

        def flush(self):
            pass

    def wait(check):
        with cond:
            assert cond.wait_for(lambda: check(seen), timeout=120), [e["event"] for e in seen][-20:]

    result = {}
    thread = threading.Thread(target=lambda: result.update(run(
        root / "current", lambda: ColourCamera(seeds=5), mode="live", watch_bundle=True, watch_interval_s=0.05,
        stop_event=stop, install_signals=False, event_stream=Sink())))
    thread.start()
    try:
        wait(lambda ev: any(e["event"] == "frame" for e in ev))
        assert seen[0]["event"] == "started" and seen[0]["sha256"] == shas[0]
        assert seen[0]["bundle"] == str(root / "bundles" / shas[0])  # the folder the link named
        switch(root, shas[1], {"ok": True})
        wait(lambda ev: any(e["event"] == "bundle_swapped" for e in ev))
        swap = next(i for i, e in enumerate(seen) if e["event"] == "bundle_swapped")
        assert seen[swap]["sha256"] == shas[1] and seen[swap]["bundle"] == str(root / "bundles" / shas[1])
        wait(lambda ev: any(e["event"] == "frame" for e in ev[swap + 1:]))
    finally:
        stop.set()
        thread.join(60)
    assert result["engine"]["sha256"] == shas[1] and result["bundle_swaps"] == 1
    assert 0 < result["frames_on_bundle"] <= result["frames"]
