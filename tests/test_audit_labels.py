"""Likely label errors on real photos: four hymenoptera photos put in the wrong class folder are named,
each with the class it looks like, by cleanlab on cross-validated predictions from the pretrained
base's pooled features; and the embedding method finds a planted copy. Needs ../shared."""

import json
import shutil

import pytest
from click.testing import CliRunner

from edgecnn.audit import audit_dataset
from edgecnn.audit.report import format_audit, render_html
from edgecnn.cli import cli
from edgecnn.errors import DataError

pytestmark = pytest.mark.slow  # runs the pretrained base over 120 photos

WEIGHTS = "mobilenet_v2_1.0_224_imagenet_notop.h5"
# Clear photos of their class; each goes into the other class's folder.
FLIPPED = {"ants": ["0013035.jpg", "1095476100_3906d8afde.jpg"],
           "bees": ["1092977343_cb42b38d62.jpg", "1093831624_fb5fbe2308.jpg"]}


@pytest.fixture(scope="module")
def mislabelled(hymenoptera, tmp_path_factory):
    root = tmp_path_factory.mktemp("mislabelled") / "data"
    for cls, other in (("ants", "bees"), ("bees", "ants")):
        (root / cls).mkdir(parents=True, exist_ok=True)
        (root / other).mkdir(parents=True, exist_ok=True)
        files = sorted((hymenoptera / "train" / cls).glob("*.jpg"))[:58]
        for f in files + [hymenoptera / "train" / cls / name for name in FLIPPED[cls]]:
            shutil.copy(f, root / (other if f.name in FLIPPED[cls] else cls) / f.name)
    return root


@pytest.fixture(scope="module")
def weights(pretrained_dir):
    return str(pretrained_dir / WEIGHTS)


def test_flipped_labels_are_named_with_the_class_they_look_like(mislabelled, weights):
    result = audit_dataset(mislabelled, labels=True, weights=weights, min_class_images=5)
    [finding] = [f for f in result["findings"] if f["kind"] == "label_issues"]
    assert finding["severity"] == "warning"
    flagged = {item["path"]: item for item in finding["items"]}
    for true_class, names in FLIPPED.items():
        for name in names:
            wrong = "bees" if true_class == "ants" else "ants"
            item = flagged.get(f"{wrong}/{name}")
            assert item is not None, f"{wrong}/{name} (an {true_class} photo) not flagged: {sorted(flagged)}"
            assert item["label"] == wrong and item["likely_label"] == true_class
            assert item["p_likely"] > 0.5 > item["p_label"]
            assert item["message"].startswith(f"{wrong}/{name} is labelled '{wrong}' but looks like '{true_class}'")
    # the flipped photos are the most suspicious ones, not lost among many
    assert len(flagged) <= 4 + 6, sorted(flagged)
    page, text = render_html(result), format_audit(result)
    assert "Likely label errors (" in page and "labelled bees, looks like ants" in page
    assert "base (backbone mobilenet_v2, alpha 1.0, input size 224, weights " in page  # words, not a dict
    assert f"[warning] Likely label errors: {len(flagged)} image(s) look like another class than their label" in text
    assert result["settings"]["base"] == {"backbone": "mobilenet_v2", "alpha": 1.0, "input_size": 224,
                                          "weights": weights}


def test_embedding_method_finds_a_mirrored_copy(mislabelled, weights, tmp_path):
    import cv2

    data = tmp_path / "data"
    shutil.copytree(mislabelled, data)
    src = sorted((data / "ants").glob("*.jpg"))[5]
    cv2.imwrite(str(data / "ants" / "mirror.jpg"), cv2.imread(str(src))[:, ::-1])
    result = audit_dataset(data, method="embedding", weights=weights, min_class_images=5)
    pairs = [p for f in result["findings"] for item in f["items"] for p in item.get("pairs", [])]
    mine = [p for p in pairs if {p["a"], p["b"]} == {f"ants/{src.name}", "ants/mirror.jpg"}]
    assert mine and mine[0]["how"] == "mirrored" and mine[0]["similarity"] >= 0.9, pairs


def test_the_base_is_required_and_checked(mislabelled, tmp_path):
    with pytest.raises(DataError, match="--labels needs the pretrained base: pass --weights PATH"):
        audit_dataset(mislabelled, labels=True)
    with pytest.raises(DataError, match="--weights '.*missing.h5': no such file"):
        audit_dataset(mislabelled, method="embedding", weights=str(tmp_path / "missing.h5"))
    odd = tmp_path / "base.h5"
    odd.write_bytes(b"")
    with pytest.raises(DataError, match="cannot tell the backbone from the file name; pass --backbone"):
        audit_dataset(mislabelled, labels=True, weights=str(odd))
    out = CliRunner().invoke(cli, ["audit", str(mislabelled), "--labels"])
    assert out.exit_code == 2 and out.output.startswith("Error: --labels needs the pretrained base")


def test_a_runs_cached_features_are_used_when_they_cover_every_image(hymenoptera, hymenoptera_run):
    out = CliRunner().invoke(cli, ["audit", str(hymenoptera), "--run", str(hymenoptera_run), "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["settings"]["labels"] and result["settings"]["base"]["cached"]
    assert result["settings"]["base"]["backbone"] == "mobilenet_v1" and result["settings"]["base"]["alpha"] == 0.5
    issues = [item for f in result["findings"] if f["kind"] == "label_issues" for item in f["items"]]
    assert all(i["likely_label"] != i["label"] and i["p_likely"] > i["p_label"] for i in issues)
    assert len(issues) < 0.1 * result["usable"]  # a few doubtful photos, not a tenth of a clean dataset


def test_finetune_warns_on_the_flipped_photos_from_its_cached_features(mislabelled, weights, tmp_path, capsys):
    """finetune's audit runs before any feature exists; after phase 1 the label check runs on the
    features it cached and the warning names the flipped photos (on stderr and in the result)."""
    from edgecnn.train.finetune import finetune

    out = tmp_path / "run"
    result = finetune(mislabelled, out, weights=weights, backbone="mobilenet_v2", alpha=1.0, input_size=224,
                      epochs=3, fine_tune_epochs=0, seed=0)
    [warning] = [w for w in result["warnings"] if "look like another class than their label" in w]
    err = capsys.readouterr().err
    assert f"Warning: {warning}" in err
    flagged = warning.split(": ", 1)[1]
    first = [f"{'bees' if c == 'ants' else 'ants'}/{n}" for c, names in FLIPPED.items() for n in names]
    assert sum(name in flagged for name in first) >= 3, warning  # the first three listed are flips
    assert f"edgecnn audit {mislabelled} --run {out} --labels --report" in warning
