"""File and folder names that are not valid UTF-8 (a Latin-1 camera card, an old NAS) on the
workstation: a class folder is refused before training, image files are used and shown as \\xNN,
the audit report is written, finetune says which bad files it skipped."""

import json
import os
import shutil

import pytest

from cli_helpers import assert_user_error, edgecnn
from train_helpers import finetune_flags

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

MICRO = dict(backbone="mobilenet_v1", alpha=0.25, input_size=32, weights="none", epochs=1, fine_tune_epochs=0,
             batch_size=16, patience=2, seed=0)


@pytest.fixture
def latin1_data(demo_data, tmp_path):
    """demo_data with a Latin-1 named image, a Latin-1 named copy (a duplicate) and a broken file."""
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    square = os.fsencode(data / "square")
    first, second = sorted(os.listdir(square))[:2]
    os.rename(os.path.join(square, first), os.path.join(square, b"ph\xf6to.jpg"))
    shutil.copyfile(os.path.join(square, second), os.path.join(square, b"d\xfcp.jpg"))
    with open(os.path.join(square, b"br\xf6ken.jpg"), "wb") as fh:
        fh.write(b"this is no image")
    return data


def test_a_class_folder_that_is_not_utf8_is_refused_before_training(latin1_data, tmp_path):
    os.rename(os.fsencode(latin1_data / "circle"), os.path.join(os.fsencode(latin1_data), b"caf\xe9"))
    out = tmp_path / "run"
    proc = edgecnn("finetune", latin1_data, "--out", out, *finetune_flags(MICRO), timeout=120)
    assert_user_error(proc, "class folder", "caf\\xe9", "not valid UTF-8", "Rename the folder")
    assert "Phase 1" not in proc.stderr  # refused before any training
    audit = edgecnn("audit", latin1_data, "--report", "--out", tmp_path / "report", timeout=120)
    assert_user_error(audit, "caf\\xe9", "not valid UTF-8")


def test_image_names_that_are_not_utf8_train_to_a_model(latin1_data, tmp_path):
    out = tmp_path / "run"
    proc = edgecnn("finetune", latin1_data, "--out", out, *finetune_flags(MICRO), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("Skipped ")]
    assert skipped == ["Skipped 1 bad file (1 not an image): square/br\\xf6ken.jpg (all in run.json under "
                       "data.skipped; `edgecnn audit DATA_DIR` explains each)"]
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    used = [e["path"] for split in run["data"]["splits"].values() for e in split]
    assert "square/ph\udcf6to.jpg" in used  # the recorded path opens the very file
    assert (out / "model.keras").is_file()


def test_audit_report_shows_names_that_are_not_utf8(latin1_data, tmp_path):
    report = tmp_path / "report"
    proc = edgecnn("audit", latin1_data, "--report", "--out", report, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "square/br\\xf6ken.jpg: not an image" in proc.stdout
    assert "square/d\\xfcp.jpg" in proc.stdout  # in its duplicate group
    page = (report / "audit.html").read_text(encoding="utf-8")
    assert "br\\xf6ken.jpg" in page and "d\\xfcp.jpg" in page
    data = json.loads((report / "audit.json").read_text(encoding="utf-8"))
    bad = [i["path"] for f in data["findings"] if f["kind"] == "bad_files" for i in f["items"]]
    assert bad == ["square/br\udcf6ken.jpg"]  # JSON keeps the name a program can open
    assert (latin1_data / bad[0]).is_file()
    as_json = edgecnn("audit", latin1_data, "--json", timeout=300)
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["images"] == data["images"]
