"""edgecnn calibration select: stratified, training images only, manifest with hashes; convert uses it."""

import json

from click.testing import CliRunner

from edgecnn.bundle.manifest import verify_bundle
from edgecnn.cli import cli


def test_select_from_a_run_uses_train_only(mini_run, tmp_path):
    res = CliRunner().invoke(cli, ["calibration", "select", str(mini_run), "--per-class", "3", "--out",
                                   str(tmp_path / "cal"), "--json"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert manifest == json.loads(res.stdout)
    assert manifest["counts"] == {"circle": 3, "square": 3, "stripes": 3, "triangle": 3}
    run = json.loads((mini_run / "run.json").read_text())
    root = run["data"]["root"]
    train = {f"{root}/{e['path']}" for e in run["data"]["splits"]["train"]}
    held_out = {f"{root}/{e['path']}" for s in ("val", "test") for e in run["data"]["splits"].get(s, [])}
    sources = {f["source"] for f in manifest["files"]}
    assert sources <= train and not sources & held_out
    from edgecnn.bundle.manifest import sha256_file

    for f in manifest["files"]:
        assert sha256_file(tmp_path / "cal" / f["path"]) == f["sha256"]
    # Same seed, same set.
    CliRunner().invoke(cli, ["calibration", "select", str(mini_run), "--per-class", "3", "--out", str(tmp_path / "c2")])
    assert json.loads((tmp_path / "c2" / "calibration.json").read_text())["files"] == manifest["files"]


def test_select_from_a_data_folder(demo_data, tmp_path):
    from edgecnn.converters.representative import select
    from edgecnn.data.dataset import load_dataset

    manifest = select(demo_data, 2, tmp_path / "cal")
    assert manifest["source"]["kind"] == "data" and len(manifest["files"]) == 8
    train = {str(s.path) for s in load_dataset(demo_data).splits["train"]}
    assert {f["source"] for f in manifest["files"]} <= train


def test_convert_records_the_set_it_used(mini_run, tmp_path):
    from edgecnn.converters.representative import select

    select(mini_run, 4, tmp_path / "cal")
    res = CliRunner().invoke(cli, ["convert", str(mini_run), "--calibration", str(tmp_path / "cal"), "--out",
                                   str(tmp_path / "b"), "--eval-size", "0", "--golden", "0"])
    assert res.exit_code == 0, res.output
    cal = verify_bundle(tmp_path / "b")["calibration"]
    assert cal["name"] == "cal" and cal["count"] == 16 and not cal["drawn"]
    assert len(cal["files"]) == 16 and all(len(f["sha256"]) == 64 for f in cal["files"])

    (tmp_path / "cal" / "circle" / next(p.name for p in (tmp_path / "cal" / "circle").iterdir())).write_bytes(b"x")
    res = CliRunner().invoke(cli, ["convert", str(mini_run), "--calibration", str(tmp_path / "cal"), "--out",
                                   str(tmp_path / "b2")])
    assert res.exit_code == 2 and "does not match its sha256 in calibration.json" in res.stderr


def test_calibration_labels_must_match(mini_run, tmp_path):
    from edgecnn.converters.representative import select

    select(mini_run, 1, tmp_path / "cal")
    path = tmp_path / "cal" / "calibration.json"
    manifest = json.loads(path.read_text())
    manifest["labels"] = ["a", "b", "c", "d"]
    path.write_text(json.dumps(manifest))
    res = CliRunner().invoke(cli, ["convert", str(mini_run), "--calibration", str(tmp_path / "cal"), "--out",
                                   str(tmp_path / "b")])
    assert res.exit_code == 2 and "was drawn for labels ['a', 'b', 'c', 'd']" in res.stderr
