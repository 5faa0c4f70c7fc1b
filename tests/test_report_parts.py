"""`evaluate --report`: the JSON's name, the confusion-matrix layout, calibrated ECE (issue 12)."""

import json
import re
import shutil

import numpy as np
from cli_helpers import edgecnn
import pytest

pytestmark = pytest.mark.slow  # trains a model or runs the CLI in subprocesses (make test-fast skips it)

LABELS = ["circle", "square", "stripes", "triangle"]


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_confusion_matrices_keep_their_labels_clear_of_each_other():
    from edgecnn.evaluation.report import confusion_fig

    cm = (np.eye(4, dtype=int) * 25 + 1).tolist()
    models = {"float": {"confusion_matrix": cm, "accuracy": 0.9}, "int8": {"confusion_matrix": cm, "accuracy": 0.9},
              "int8_edgetpu": {"confusion_matrix": cm, "accuracy": 0.9}}
    fig = confusion_fig(models, LABELS)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = fig.axes
    for left, right in zip(axes, axes[1:]):
        box = left.get_window_extent(renderer)
        texts = [t for t in right.get_yticklabels() if t.get_text()] + [right.yaxis.label]
        assert not [t.get_text() for t in texts if t.get_text() and _overlaps(t.get_window_extent(renderer), box)]
        # ...and the left matrix's own labels stay out of the right one.
        assert not _overlaps(left.get_tightbbox(renderer), right.get_window_extent(renderer))
    assert [t.get_text() for t in axes[0].get_yticklabels()] == LABELS and axes[0].get_ylabel() == "true"


def test_report_json_is_named_after_the_html_and_shows_calibrated_ece(tiny_bundle, tiny_run, tmp_path):
    from edgecnn.bundle.manifest import load_manifest
    from edgecnn.evaluation.calibrate import calibrate_bundle
    from edgecnn.evaluation.evaluate import evaluate

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    calibrate_bundle(bundle, tiny_run, write=True)
    manifest = load_manifest(bundle)
    cal = manifest["metrics"]["calibration"]
    result = evaluate([bundle], tiny_run, report=tmp_path / "pages" / "tiny.html")
    assert result["report"] == {"html": str(tmp_path / "pages" / "tiny.html"),
                                "json": str(tmp_path / "pages" / "tiny.json")}
    assert not (tmp_path / "pages" / "report.json").exists()
    assert json.loads((tmp_path / "pages" / "tiny.json").read_text())["data"]["n"] == result["data"]["n"]
    page = (tmp_path / "pages" / "tiny.html").read_text()
    assert "<h2 id='calibration'>Confidence calibration</h2>" in page
    held, section = cal["held_out"], page[page.index("id='calibration'"):][:1500]
    assert f"{held['ece_before']:.4f} -&gt; {held['ece_after']:.4f} (n={held['n']})" in section, section
    assert f"<td>int8</td><td>{manifest['decision']['temperature']:.4f}</td>" in section


def test_cli_report_names_its_json_and_the_images_in_words(tiny_bundle, tiny_run, tmp_path):
    proc = edgecnn("evaluate", tiny_bundle, "--against", tiny_run, "--report", tmp_path / "x.html")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"report: {tmp_path / 'x.html'} (+ {tmp_path / 'x.json'})" in proc.stdout
    assert (tmp_path / "x.json").is_file() and not (tmp_path / "report.json").exists()
    assert "{'kind'" not in proc.stderr + proc.stdout  # no raw Python dict for the images' source
    assert re.search(r"^\d+ images from the test split of /\S+/run$", proc.stderr, re.M), proc.stderr[-2000:]
